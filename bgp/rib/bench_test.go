package rib

import (
	"encoding/binary"
	"net/netip"
	"runtime"
	"testing"

	"github.com/bgplb/bgplb/bgp/wire"
)

// The design target is a million IPv4 prefixes from one peer. They are only
// map keys here, nothing is ever sent to them; they come from 240.0.0.0/4
// (reserved) because the documentation ranges hold only 768 host routes.
const (
	benchPrefixes  = 1 << 20
	benchPerUpdate = 800 // about what fits a 4096-byte UPDATE of /32s
)

func hostRoutes(n int) []wire.NLRI {
	out := make([]wire.NLRI, n)
	for i := range out {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], 0xf0000000+uint32(i))
		out[i].Prefix = netip.PrefixFrom(netip.AddrFrom4(a), 32)
	}
	return out
}

func chunks(all []wire.NLRI, size int) [][]wire.NLRI {
	var out [][]wire.NLRI
	for len(all) > 0 {
		n := min(size, len(all))
		out = append(out, all[:n])
		all = all[n:]
	}
	return out
}

// seedAttrs is what MetalLB sends over iBGP: ORIGIN IGP, empty AS_PATH,
// LOCAL_PREF 100.
func seedAttrs() *wire.Attrs { return attrs(withLocalPref(100)) }

// load announces every chunk from peer p, consuming the changes as a daemon
// would, a message at a time.
func load(tb testing.TB, r *RIB, p Peer, msgs [][]wire.NLRI, out *Changes) {
	a := seedAttrs()
	for _, m := range msgs {
		out.Reset()
		if err := r.Update(p.ID, wire.IPv4Unicast, a, p.Addr, m, nil, out); err != nil {
			tb.Fatal(err)
		}
	}
}

func reportRate(b *testing.B, n int) {
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "prefixes/s")
}

// BenchmarkUpdate: a million /32s from one peer into an empty RIB, in
// UPDATEs of 800, with the Loc-RIB changes built for the FIB.
func BenchmarkUpdate(b *testing.B) {
	msgs := chunks(hostRoutes(benchPrefixes), benchPerUpdate)
	var out Changes
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r := newRIB(b, Config{}, node(11))
		runtime.GC()
		b.StartTimer()
		load(b, r, node(11), msgs, &out)
	}
	reportRate(b, benchPrefixes)
}

// BenchmarkUpdateECMP: the same million from a second node, each prefix
// turning into a two-path ECMP set.
func BenchmarkUpdateECMP(b *testing.B) {
	msgs := chunks(hostRoutes(benchPrefixes), benchPerUpdate)
	var out Changes
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r := newRIB(b, Config{}, node(11), node(12))
		load(b, r, node(11), msgs, &out)
		runtime.GC()
		b.StartTimer()
		load(b, r, node(12), msgs, &out)
	}
	reportRate(b, benchPrefixes)
}

// BenchmarkWithdraw: the peer withdraws its million, 800 per UPDATE.
func BenchmarkWithdraw(b *testing.B) {
	msgs := chunks(hostRoutes(benchPrefixes), benchPerUpdate)
	var out Changes
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r := newRIB(b, Config{}, node(11))
		load(b, r, node(11), msgs, &out)
		runtime.GC()
		b.StartTimer()
		for _, m := range msgs {
			out.Reset()
			if err := r.Update(11, wire.IPv4Unicast, nil, netip.Addr{}, nil, m, &out); err != nil {
				b.Fatal(err)
			}
		}
	}
	reportRate(b, benchPrefixes)
}

// BenchmarkRemovePeer: the session of a peer with a million paths drops;
// sub-benchmark ecmp has a second peer announcing the same million, which
// stay.
func BenchmarkRemovePeer(b *testing.B) {
	msgs := chunks(hostRoutes(benchPrefixes), benchPerUpdate)
	for _, peers := range []int{1, 2} {
		name := map[int]string{1: "alone", 2: "ecmp"}[peers]
		b.Run(name, func(b *testing.B) {
			var out Changes
			n := 0
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				r := newRIB(b, Config{}, node(11), node(12))
				for p := range peers {
					load(b, r, node(byte(11+p)), msgs, &out)
				}
				runtime.GC()
				b.StartTimer()
				if err := r.RemovePeer(11, func(c *Changes) { n += len(c.List) }); err != nil {
					b.Fatal(err)
				}
			}
			if n != benchPrefixes*b.N {
				b.Fatalf("%d changes, want %d", n, benchPrefixes*b.N)
			}
			reportRate(b, benchPrefixes)
		})
	}
}

// BenchmarkMemory measures the heap a million prefixes take, per path, from
// one peer and from two (every prefix a two-path ECMP set).
func BenchmarkMemory(b *testing.B) {
	msgs := chunks(hostRoutes(benchPrefixes), benchPerUpdate)
	for _, peers := range []int{1, 2} {
		name := map[int]string{1: "1peer", 2: "2peers"}[peers]
		b.Run(name, func(b *testing.B) {
			var out Changes
			var perPath float64
			for i := 0; i < b.N; i++ {
				before := heapInuse()
				r := newRIB(b, Config{}, node(11), node(12))
				for p := range peers {
					load(b, r, node(byte(11+p)), msgs, &out)
				}
				out = Changes{}
				after := heapInuse()
				perPath = float64(after-before) / float64(peers*benchPrefixes)
				runtime.KeepAlive(r)
			}
			b.ReportMetric(perPath, "bytes/path")
		})
	}
}

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// BenchmarkUpdateSteady: one UPDATE of 800 host routes withdrawn and
// announced again in a RIB holding a million: the cost of a flapping
// service on a full router.
func BenchmarkUpdateSteady(b *testing.B) {
	msgs := chunks(hostRoutes(benchPrefixes), benchPerUpdate)
	r := newRIB(b, Config{}, node(11))
	var out Changes
	load(b, r, node(11), msgs, &out)
	a, m := seedAttrs(), msgs[len(msgs)/2]
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out.Reset()
		if err := r.Update(11, wire.IPv4Unicast, nil, netip.Addr{}, nil, m, &out); err != nil {
			b.Fatal(err)
		}
		out.Reset()
		if err := r.Update(11, wire.IPv4Unicast, a, node(11).Addr, m, nil, &out); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, 2*len(m))
}
