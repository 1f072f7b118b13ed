package fib

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"unsafe"
)

// TestPrefixMapMatchesMap compares prefixMap, and the hash table under it,
// with a Go map through random inserts, updates and removals (heavy on
// removals, which move entries back along their probe runs) while the
// table grows and shrinks.
func TestPrefixMapMatchesMap(t *testing.T) {
	rng := newRand(7)
	pm := newPrefixMap()
	want := map[netip.Prefix]uint32{}
	randPrefix := func() netip.Prefix {
		if rng.IntN(4) == 0 {
			a := [16]byte{0x20, 0x01, 0x0d, 0xb8, 0x01, 15: byte(rng.IntN(64))}
			return netip.PrefixFrom(netip.AddrFrom16(a), 120+rng.IntN(9)).Masked()
		}
		// Few distinct keys, so that removals and updates hit.
		a := [4]byte{198, 18, byte(rng.IntN(8)), byte(rng.IntN(256))}
		return netip.PrefixFrom(netip.AddrFrom4(a), 24+rng.IntN(9)).Masked()
	}
	for step := range 200000 {
		p := randPrefix()
		wv, wok := want[p]
		phase := step / 20000 % 2 // alternately fill up and drain
		var v uint32
		var ok bool
		if rng.IntN(10) < 3+5*phase {
			v, ok = pm.remove(p)
			delete(want, p)
		} else {
			val := rng.Uint32()
			v, ok = pm.put(p, val)
			want[p] = val
		}
		if v != wv || ok != wok {
			t.Fatalf("step %d %v: old value %d %v, want %d %v", step, p, v, ok, wv, wok)
		}
		if pm.len() != len(want) {
			t.Fatalf("step %d: len %d, want %d", step, pm.len(), len(want))
		}
		if step%5000 == 0 {
			checkPrefixMap(t, &pm, want)
		}
	}
	checkPrefixMap(t, &pm, want)
	for p := range want {
		pm.remove(p)
	}
	if pm.len() != 0 || len(pm.v4.slots) > u64MinSlots {
		t.Errorf("after removing everything: len %d, %d slots", pm.len(), len(pm.v4.slots))
	}
	// 4in6 prefixes are IPv6 prefixes and stay apart from IPv4 ones.
	pm.put(mustPrefix("::ffff:203.0.113.1/128"), 1)
	pm.put(mustPrefix("203.0.113.1/32"), 2)
	if v, _ := pm.get(mustPrefix("::ffff:203.0.113.1/128")); v != 1 {
		t.Errorf("4in6 prefix collides with its IPv4 prefix")
	}
}

func checkPrefixMap(t *testing.T, pm *prefixMap, want map[netip.Prefix]uint32) {
	t.Helper()
	for p, v := range want {
		if got, ok := pm.get(p); !ok || got != v {
			t.Fatalf("get(%v) = %d %v, want %d", p, got, ok, v)
		}
	}
	n := 0
	pm.all(func(p netip.Prefix, v uint32) {
		n++
		if w, ok := want[p]; !ok || w != v {
			t.Fatalf("all yields %v=%d, want %d %v", p, v, w, ok)
		}
	})
	if n != len(want) {
		t.Fatalf("all yields %d entries, want %d", n, len(want))
	}
}

func TestPrefixMapNoAllocs(t *testing.T) {
	pm := newPrefixMap()
	ps := benchPrefixes(1000)
	for _, p := range ps {
		pm.put(p, 1)
	}
	n := testing.AllocsPerRun(10, func() {
		for _, p := range ps {
			pm.put(p, 2)
			pm.get(p)
		}
	})
	if n != 0 {
		t.Errorf("updating existing IPv4 entries allocates %v times", n)
	}
}

// BenchmarkPrefixMapSweep removes 1M /24s in the orders a peer-down sweep
// produces: the slot order of a table hashing the keys the way the RIB's
// shards do (Fibonacci hashing of the same uint64), and the map's own slot
// order. With one shared hash both orders pack the survivors of every
// shrink into one probe run, and the sweep turns quadratic.
//
//	go test -run '^$' -bench PrefixMapSweep -benchtime 1x ./fib
func BenchmarkPrefixMapSweep(b *testing.B) {
	const n = 1 << 20
	ps := make([]netip.Prefix, n)
	for i := range ps {
		ps[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{10 + byte(i>>16), byte(i >> 8), byte(i), 0}), 24)
	}
	fib := func(k uint64) uint64 { return k * 0x9e3779b97f4a7c15 }
	orders := map[string]func(pm *prefixMap) []netip.Prefix{
		"rib-order": func(*prefixMap) []netip.Prefix {
			out := slices.Clone(ps)
			slices.SortFunc(out, func(a, b netip.Prefix) int { return cmp.Compare(fib(v4Key(a)), fib(v4Key(b))) })
			return out
		},
		"own-order": func(pm *prefixMap) []netip.Prefix {
			var out []netip.Prefix
			pm.all(func(p netip.Prefix, _ uint32) { out = append(out, p) })
			return out
		},
	}
	for _, name := range []string{"rib-order", "own-order"} {
		b.Run(name, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				pm := newPrefixMap()
				for _, p := range ps {
					pm.put(p, 1)
				}
				order := orders[name](&pm)
				b.StartTimer()
				for _, p := range order {
					pm.remove(p)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "removals/s")
		})
	}
}

// TestSlotSize holds the desired state's memory to 12 bytes a slot: at a
// million IPv4 routes (two million slots) every byte is 2 MB.
func TestSlotSize(t *testing.T) {
	if n := unsafe.Sizeof(u64Slot{}); n != 12 {
		t.Errorf("a prefix map slot is %d bytes, want 12", n)
	}
}

// BenchmarkPrefixMapFill puts 1M consecutive /32s, as an ingest of a
// benchmark range does, into a map sized for them and into a growing one.
//
//	go test -run '^$' -bench PrefixMapFill ./fib
func BenchmarkPrefixMapFill(b *testing.B) {
	const n = 1 << 20
	for _, reserve := range []bool{false, true} {
		b.Run(fmt.Sprintf("reserved=%v", reserve), func(b *testing.B) {
			for b.Loop() {
				pm := newPrefixMap()
				if reserve {
					pm.reserve(n)
				}
				for i := range n {
					pm.put(benchPrefix(i, n), 1)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "puts/s")
		})
	}
}
