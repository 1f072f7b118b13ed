package rib

import (
	"encoding/binary"
	"net/netip"
	"runtime"
	"runtime/metrics"
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

// BenchmarkMemory measures the heap a million /32s take in the RIB, from
// one peer and from two (every prefix a two-path ECMP set): live-B/prefix
// is the live heap after GC, peak-MB the most heap in use (live and not yet
// collected, at the GOGC in force) while the UPDATEs went in, both over
// what was in use before. The UPDATEs are made one at a time in one
// buffer, as a session decodes them, so that the input does not count.
func BenchmarkMemory(b *testing.B) {
	for _, peers := range []int{1, 2} {
		name := map[int]string{1: "1peer", 2: "2peers"}[peers]
		b.Run(name, func(b *testing.B) {
			var live, peak uint64
			for i := 0; i < b.N; i++ {
				var out Changes
				msg := make([]wire.NLRI, benchPerUpdate)
				before := liveHeap()
				var hw heapWatch
				hw.reset()
				r := newRIB(b, Config{}, node(11), node(12))
				for p := range peers {
					a, nh := seedAttrs(), node(byte(11+p)).Addr
					for j := 0; j < benchPrefixes; j += benchPerUpdate {
						m := msg[:min(benchPerUpdate, benchPrefixes-j)]
						for k := range m {
							m[k].Prefix = netip.PrefixFrom(netip.AddrFrom4([4]byte{0xf0, byte((j + k) >> 16), byte((j + k) >> 8), byte(j + k)}), 32)
						}
						out.Reset()
						if err := r.Update(PeerID(11+p), wire.IPv4Unicast, a, nh, m, nil, &out); err != nil {
							b.Fatal(err)
						}
						if j%(4*benchPerUpdate) == 0 {
							hw.sample()
						}
					}
				}
				hw.sample()
				out = Changes{}
				live, peak = liveHeap()-before, hw.peak-hw.base
				runtime.KeepAlive(r)
			}
			b.ReportMetric(float64(live)/benchPrefixes, "live-B/prefix")
			b.ReportMetric(float64(peak)/(1<<20), "peak-MB")
		})
	}
}

// memAfterGC reads the memory statistics after a full collection.
func memAfterGC() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

// liveHeap is the heap in use by live objects.
func liveHeap() uint64 { return memAfterGC().HeapAlloc }

func heapInuse() uint64 { return memAfterGC().HeapInuse }

// heapWatch samples the heap's spans in use (what RSS follows) without
// stopping the world.
type heapWatch struct {
	s          []metrics.Sample
	base, peak uint64
}

func (h *heapWatch) reset() {
	h.s = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	runtime.GC()
	h.base = h.read()
	h.peak = h.base
}

func (h *heapWatch) read() uint64 {
	metrics.Read(h.s)
	return h.s[0].Value.Uint64() + h.s[1].Value.Uint64()
}

func (h *heapWatch) sample() { h.peak = max(h.peak, h.read()) }

// BenchmarkRevalidate: a million prefixes, each with paths from two nodes,
// and a third node with paths for a thousand of them. Sub-benchmark
// unchanged re-checks next hops that did not change (the cost of a link
// event that matters to no path); flip makes one of the two nodes' next hop
// unreachable or reachable again, changing every ECMP set; few does that to
// the third node, changing a thousand (the cost is then the scan of the
// shards for its paths).
func BenchmarkRevalidate(b *testing.B) {
	all := hostRoutes(benchPrefixes)
	msgs := chunks(all, benchPerUpdate)
	down := map[netip.Addr]uint8{}
	r := newRIB(b, Config{NextHop: func(_ *Peer, nh netip.Addr) uint8 { return down[nh] }}, node(11), node(12), node(13))
	var out Changes
	load(b, r, node(11), msgs, &out)
	load(b, r, node(12), msgs, &out)
	few := all[:1000:1000]
	for i := range few {
		few[i] = all[i*(benchPrefixes/1000)]
	}
	load(b, r, node(13), [][]wire.NLRI{few}, &out)
	toggle := func(a netip.Addr) {
		if down[a] == 0 {
			down[a] = 1
		} else {
			delete(down, a)
		}
	}
	b.Run("unchanged", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if n := r.Revalidate(func(*Changes) { b.Fatal("a change") }); n != 0 {
				b.Fatal(n)
			}
		}
	})
	b.Run("flip", func(b *testing.B) {
		n := 0
		for i := 0; i < b.N; i++ {
			toggle(node(12).Addr)
			r.Revalidate(func(c *Changes) { n += len(c.List) })
		}
		if n != benchPrefixes*b.N {
			b.Fatalf("%d changes, want %d", n, benchPrefixes*b.N)
		}
		reportRate(b, benchPrefixes)
	})
	b.Run("few", func(b *testing.B) {
		n := 0
		for i := 0; i < b.N; i++ {
			toggle(node(13).Addr)
			r.Revalidate(func(c *Changes) { n += len(c.List) })
		}
		if n != len(few)*b.N {
			b.Fatalf("%d changes, want %d", n, len(few)*b.N)
		}
	})
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
