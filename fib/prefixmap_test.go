package fib

import (
	"cmp"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"
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
	if pm.len() != 0 || pm.v4.slots() > u64Parts*u64MinSlots {
		t.Errorf("after removing everything: len %d, %d slots", pm.len(), pm.v4.slots())
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
			var cpu threadClock
			for range b.N {
				b.StopTimer()
				pm := newPrefixMap()
				for _, p := range ps {
					pm.put(p, 1)
				}
				order := orders[name](&pm)
				b.StartTimer()
				cpu.start()
				for _, p := range order {
					pm.remove(p)
				}
				cpu.stop()
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "removals/s")
			cpu.report(b, n)
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
			var cpu threadClock
			cpu.start()
			for b.Loop() {
				pm := newPrefixMap()
				if reserve {
					pm.reserve(n)
				}
				for i := range n {
					pm.put(benchPrefix(i, n), 1)
				}
			}
			cpu.stop()
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "puts/s")
			cpu.report(b, n)
		})
	}
}

// BenchmarkPrefixMapGet looks up 1M /32s, present and absent, in random
// order: what a fuller table costs in probes.
//
//	go test -run '^$' -bench PrefixMapGet ./fib
func BenchmarkPrefixMapGet(b *testing.B) {
	const n = 1 << 20
	pm := newPrefixMap()
	for i := range n {
		pm.put(benchPrefix(i, n), 1)
	}
	rng := newRand(1)
	hit := make([]netip.Prefix, n)
	miss := make([]netip.Prefix, n)
	for i := range hit {
		hit[i] = benchPrefix(rng.IntN(n), n)
		miss[i] = netip.PrefixFrom(hit[i].Addr(), 31).Masked()
	}
	for _, c := range []struct {
		name string
		ps   []netip.Prefix
	}{{"hit", hit}, {"miss", miss}} {
		b.Run(c.name, func(b *testing.B) {
			found := 0
			var cpu threadClock
			cpu.start()
			for b.Loop() {
				for _, p := range c.ps {
					if _, ok := pm.get(p); ok {
						found++
					}
				}
			}
			cpu.stop()
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "gets/s")
			cpu.report(b, n)
		})
	}
}

// threadClock adds up the CPU time of the benchmark's thread, which other
// processes on a busy machine do not inflate as they do wall time.
type threadClock struct {
	t0, sum time.Duration
}

// threadCPU reads the thread's CPU clock, which (unlike getrusage) counts
// the time since the last scheduler tick.
func threadCPU() time.Duration {
	var ts syscall.Timespec
	const clockThreadCPUTime = 3
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		panic(e)
	}
	return time.Duration(ts.Nano())
}

func (c *threadClock) start() {
	runtime.LockOSThread()
	c.t0 = threadCPU()
}

func (c *threadClock) stop() {
	c.sum += threadCPU() - c.t0
	runtime.UnlockOSThread()
}

// report gives the CPU time per operation, n operations an iteration.
func (c *threadClock) report(b *testing.B, n int) {
	b.ReportMetric(float64(c.sum.Nanoseconds())/float64(n*b.N), "cpu-ns/op")
}

// checkPart holds a part to its invariants: every entry's dist is its
// distance from its home slot plus one, a run's entries are in order of
// their home slots (Robin Hood), the count is right and each entry is
// found where it is.
func checkPart(t *testing.T, p *u64Part, want map[uint64]uint32) {
	t.Helper()
	n := 0
	for i := range p.slots {
		s := &p.slots[i]
		if !s.used() {
			continue
		}
		n++
		if d := (i-p.home(s.key())+len(p.slots))%len(p.slots) + 1; int(s.dist) != d {
			t.Fatalf("slot %d of %d: key %#x dist %d, want %d", i, len(p.slots), s.key(), s.dist, d)
		}
		if nx := &p.slots[p.next(i)]; nx.dist > s.dist+1 {
			t.Fatalf("slot %d of %d: dist %d followed by %d", i, len(p.slots), s.dist, nx.dist)
		}
		if w, ok := want[s.key()]; !ok || w != s.val {
			t.Fatalf("slot %d: key %#x holds %d, want %d %v", i, s.key(), s.val, w, ok)
		}
		if f := p.find(s.key()); f != s {
			t.Fatalf("key %#x in slot %d not found there", s.key(), i)
		}
	}
	if n != len(want) || p.n != n {
		t.Fatalf("%d entries counted %d, want %d", n, p.n, len(want))
	}
}

// TestU64PartMatchesMap drives one part through growth and shrinking at
// the part's own sizes (not powers of two) with keys from a small space,
// key 0 (0.0.0.0/0) among them, so that runs collide, wrap round the end
// and are cut by deletions.
func TestU64PartMatchesMap(t *testing.T) {
	for seed := range uint64(10) {
		rng := newRand(seed)
		var p u64Part
		want := map[uint64]uint32{}
		sizes := map[int]bool{}
		space := 16 + rng.IntN(4000)
		for step := range 30000 {
			k := uint64(rng.IntN(space))
			phase := step / 3000 % 2 // alternately fill up and drain
			if rng.IntN(10) < 3+5*phase {
				s, ok := p.remove(k)
				if w, had := want[k]; ok != had || s.val != w {
					t.Fatalf("seed %d step %d: remove %#x = %d %v, want %d %v", seed, step, k, s.val, ok, w, had)
				}
				delete(want, k)
			} else {
				v := rng.Uint32()
				old, _, ok := p.put(newSlot(k, v))
				if w, had := want[k]; ok != had || old != w {
					t.Fatalf("seed %d step %d: put %#x = %d %v, want %d %v", seed, step, k, old, ok, w, had)
				}
				want[k] = v
			}
			if p.n*u64LoadDen > len(p.slots)*u64LoadNum {
				t.Fatalf("seed %d step %d: %d entries in %d slots", seed, step, p.n, len(p.slots))
			}
			sizes[len(p.slots)] = true
			if step%500 == 0 {
				checkPart(t, &p, want)
			}
		}
		checkPart(t, &p, want)
		odd := 0
		for s := range sizes {
			if s&(s-1) != 0 {
				odd++
			}
		}
		if odd == 0 {
			t.Errorf("seed %d: sizes %v are all powers of two", seed, sizes)
		}
	}
}

// keysHomedAt finds n keys whose home in p is slot i.
func keysHomedAt(p *u64Part, i, n int) []uint64 {
	var ks []uint64
	for k := uint64(1); len(ks) < n; k++ {
		if p.home(k) == i {
			ks = append(ks, k)
		}
	}
	return ks
}

// TestU64PartWraparound deletes from a run that wraps round the end of an
// 11-slot part: the entries after the hole, some homed at the last slot
// and now at the front, must move back across the end.
func TestU64PartWraparound(t *testing.T) {
	p := u64Part{slots: make([]u64Slot, 11), seed: 42}
	last := keysHomedAt(&p, 10, 3)
	first := keysHomedAt(&p, 0, 2)
	want := map[uint64]uint32{}
	for i, k := range append(last, first...) {
		p.insert(newSlot(k, uint32(i)))
		want[k] = uint32(i)
	}
	// 10: last[0]; 0, 1: last[1], last[2]; 2, 3: first[0], first[1].
	if p.slots[1].key() != last[2] || p.slots[3].key() != first[1] {
		t.Fatalf("unexpected layout %+v", p.slots)
	}
	checkPart(t, &p, want)
	for _, k := range []uint64{last[0], first[0], last[2], first[1], last[1]} {
		if _, ok := p.take(k); !ok {
			t.Fatalf("%#x not found", k)
		}
		delete(want, k)
		checkPart(t, &p, want)
	}
}

// TestU64PartLongRun puts 300 keys with one home slot into a part: past a
// run of 255 the part grows with a new seed rather than overflow dist.
func TestU64PartLongRun(t *testing.T) {
	p := u64Part{slots: make([]u64Slot, 1000), seed: 7}
	want := map[uint64]uint32{}
	for i, k := range keysHomedAt(&p, 999, 300) {
		p.put(newSlot(k, uint32(i)))
		want[k] = uint32(i)
	}
	if len(p.slots) != 2000 || p.seed == 7 {
		t.Errorf("a run of 300 left %d slots, seed %d", len(p.slots), p.seed)
	}
	checkPart(t, &p, want)
}

// TestU64MapPeak grows a map to a million entries and adds up its slots
// at every step, counting a growing part's old and new slots together as
// its copy holds them: the peak stays under 16 MiB (a million entries
// leave the parts 76% full; anywhere else at most 1.5625 slots an entry,
// plus one part's old slots). One table doubling from 1M to 2M slots held
// 36 MB. Reserving first needs 15 MiB and no growth.
func TestU64MapPeak(t *testing.T) {
	const n = 1000000
	slotSize := int(unsafe.Sizeof(u64Slot{}))
	for _, c := range []struct {
		reserve bool
		bound   int
	}{{false, 16 << 20}, {true, 15 << 20}} {
		m := u64Map{seed: 1}
		if c.reserve {
			m.reserve(n)
		}
		total := m.slots()
		peak, grown := total, 0
		for i := range n {
			k := uint64(0x64400000+i)<<8 | 32
			p := m.part(k)
			l0 := len(p.slots)
			m.put(k, 1)
			if l1 := len(p.slots); l1 != l0 {
				peak = max(peak, total+l1)
				total += l1 - l0
				grown++
			}
		}
		t.Logf("reserve %v: %d entries in %d slots (%.1f MB), peak %.1f MB, %d growths",
			c.reserve, m.n, total, float64(total*slotSize)/(1<<20), float64(peak*slotSize)/(1<<20), grown)
		if peak*slotSize > c.bound {
			t.Errorf("reserve %v: peak %d bytes, want at most %d", c.reserve, peak*slotSize, c.bound)
		}
		if c.reserve && grown > 0 {
			t.Errorf("a reserved map grew %d times", grown)
		}
	}
}

// TestU64PartGrow fills parts of many lengths, some nearly full, some
// with runs wrapping round the end, and grows them by a quarter up to a
// hundredfold: grow places keys in order without searching, and must
// leave the part as inserting each would.
func TestU64PartGrow(t *testing.T) {
	rng := newRand(3)
	for range 3000 {
		size := u64MinSlots + rng.IntN(500)
		p := u64Part{slots: make([]u64Slot, size), seed: rng.Uint64()}
		want := map[uint64]uint32{}
		fill := size * (1 + rng.IntN(u64LoadNum)) / u64LoadDen
		if rng.IntN(4) == 0 { // a run from the last slot round to the first
			for _, k := range keysHomedAt(&p, size-1-rng.IntN(3), min(fill, 6)) {
				p.insert(newSlot(k, 1))
				want[k] = 1
			}
		}
		for len(want) < fill {
			k := rng.Uint64() >> 24
			p.insert(newSlot(k, uint32(k)))
			want[k] = uint32(k)
		}
		grown := size + 1 + rng.IntN(size)
		if rng.IntN(4) == 0 {
			grown = size * (2 + rng.IntN(100))
		}
		seed := p.seed
		p.resize(grown)
		if len(p.slots) != grown || p.seed != seed {
			t.Fatalf("grown to %d slots with seed %d, want %d with %d", len(p.slots), p.seed, grown, seed)
		}
		checkPart(t, &p, want)
	}
}
