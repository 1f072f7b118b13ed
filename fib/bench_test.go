package fib

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

// The route benchmarks install many distinct /32s into a fresh namespace.
// Up to 131072 come from 198.18.0.0/15, the benchmarking range; beyond that
// they come from 100.64.0.0/10 (shared address space), which is safe here
// because the routes exist only inside the benchmark's own namespace and no
// packet is ever sent to them.
func benchPrefixes(n int) []netip.Prefix {
	ps := make([]netip.Prefix, n)
	for i := range ps {
		ps[i] = benchPrefix(i, n)
	}
	return ps
}

// benchPrefix is the i-th of benchPrefixes(n), for callers that must not
// hold all of them.
func benchPrefix(i, n int) netip.Prefix {
	a := [4]byte{198, 18, 0, 0}
	if n > 1<<17 {
		a = [4]byte{100, 64, 0, 0}
	}
	a[1] += byte(i >> 16)
	a[2], a[3] = byte(i>>8), byte(i)
	return netip.PrefixFrom(netip.AddrFrom4(a), 32)
}

var benchSizes = []struct {
	name string
	n    int
}{{"100k", 100_000}, {"1M", 1_000_000}}

// BenchmarkInstall measures batch installs into a fresh namespace: ours
// with nexthop objects ("bgplb") and with inline gateways, and `ip -batch`
// installing the same routes in the same run.
//
//	go test -run '^$' -bench 'Install|Delete' -benchtime 1x ./fib
func BenchmarkInstall(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			b.Run("bgplb", func(b *testing.B) { benchFIB(b, size.n, NextHopOn, false) })
			b.Run("bgplb-inline", func(b *testing.B) { benchFIB(b, size.n, NextHopOff, false) })
			b.Run("ip-batch", func(b *testing.B) { benchIPBatch(b, size.n, false) })
		})
	}
}

// BenchmarkDelete measures deleting every route installed beforehand.
func BenchmarkDelete(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			b.Run("bgplb", func(b *testing.B) { benchFIB(b, size.n, NextHopOn, true) })
			b.Run("bgplb-inline", func(b *testing.B) { benchFIB(b, size.n, NextHopOff, true) })
			b.Run("ip-batch", func(b *testing.B) { benchIPBatch(b, size.n, true) })
		})
	}
}

func benchFIB(b *testing.B, n int, mode Mode, del bool) {
	ps := benchPrefixes(n)
	adds := make([]Change, n)
	dels := make([]Change, n)
	gw := []NextHop{{Addr: netip.MustParseAddr("198.51.100.2")}}
	for i, p := range ps {
		adds[i] = Change{Prefix: p, NextHops: gw}
		dels[i] = Change{Prefix: p}
	}
	ctx := context.Background()
	var heapPerRoute, user, sys float64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		ns := newNS(b)
		f := ns.open(b, Config{NextHopObjects: mode})
		before := heapInUse()
		if !del {
			b.StartTimer()
		}
		u0, s0 := cpuTimes(b)
		res, err := f.Apply(ctx, adds)
		if !del {
			b.StopTimer()
			u1, s1 := cpuTimes(b)
			user += u1 - u0
			sys += s1 - s0
		}
		if err != nil || res.Added != n {
			b.Fatalf("install: %+v %v", res.Added, err)
		}
		heapPerRoute = float64(heapInUse()-before) / float64(n)
		if del {
			b.StartTimer()
		}
		u0, s0 = cpuTimes(b)
		res, err = f.Apply(ctx, dels)
		b.StopTimer()
		if del {
			u1, s1 := cpuTimes(b)
			user += u1 - u0
			sys += s1 - s0
		}
		if err != nil || res.Deleted != n {
			b.Fatalf("delete: %+v %v", res.Deleted, err)
		}
		f.Close()
		ns.del(b)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "routes/s")
	b.ReportMetric(user/float64(b.N), "user-s")
	b.ReportMetric(sys/float64(b.N), "sys-s")
	if !del {
		b.ReportMetric(heapPerRoute, "heap-B/route")
	}
}

// cpuTimes returns the process's user and system CPU seconds: the system
// time of a batch install is the kernel inserting the routes, the user time
// ours.
func cpuTimes(b *testing.B) (user, sys float64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	sec := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return sec(ru.Utime), sec(ru.Stime)
}

// flushNS deletes our routes before the namespace goes: the kernel tears a
// namespace down in the background, and a million routes torn down that way
// would still be using the CPU during the next measurement.
func flushNS(b *testing.B, ns *testNS) {
	f := ns.open(b, Config{})
	defer f.Close()
	setTo(b, f, nil)
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func benchIPBatch(b *testing.B, n int, del bool) {
	dir := b.TempDir()
	write := func(name, verb string) string {
		path := filepath.Join(dir, name)
		fh, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		w := bufio.NewWriter(fh)
		for _, p := range benchPrefixes(n) {
			fmt.Fprintf(w, "route %s %s via 198.51.100.2 proto bgp metric 20\n", verb, p)
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		fh.Close()
		return path
	}
	adds, dels := write("add", "add"), write("del", "del")
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		ns := newNS(b)
		if !del {
			b.StartTimer()
		}
		ns.ip(b, "-batch", adds)
		if del {
			b.StartTimer()
			ns.ip(b, "-batch", dels)
		}
		b.StopTimer()
		if !del {
			flushNS(b, ns)
		}
		ns.del(b)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "routes/s")
}

// BenchmarkEncodeRoutes is the user-space share of an install: building
// the netlink messages.
func BenchmarkEncodeRoutes(b *testing.B) {
	ps := benchPrefixes(4096)
	gw := []NextHop{{Addr: netip.MustParseAddr("198.51.100.2")}}
	var m msgBuf
	b.ReportAllocs()
	for b.Loop() {
		m.reset()
		for i, p := range ps {
			m.addRoute(uint32(i), 0, testKey, p, 0, gw, nil)
		}
	}
	b.ReportMetric(float64(len(ps))*float64(b.N)/b.Elapsed().Seconds(), "routes/s")
}

// BenchmarkDiff diffs 100k routes against a copy with 1% changed.
func BenchmarkDiff(b *testing.B) {
	ps := benchPrefixes(100_000)
	gw := hops("198.51.100.2", "198.51.100.3")
	cur := make([]Route, len(ps))
	want := make([]Route, len(ps))
	for i, p := range ps {
		cur[i] = Route{p, gw}
		want[i] = Route{p, gw}
		if i%100 == 0 {
			want[i] = Route{p, gw[:1]}
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if len(Diff(cur, want)) != 1000 {
			b.Fatal("wrong diff")
		}
	}
}
