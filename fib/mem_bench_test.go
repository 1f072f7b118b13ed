package fib

import (
	"bufio"
	"context"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkRestart measures what a restart costs the FIB when n routes of
// ours are already in the kernel: Open (reading them back), the first
// comparison Maintain makes (Sync), the peers' routes applied again (in
// chunks, as the router's queue hands them over), and EndGrace. Peak
// figures are high-water marks over those steps, above what the process
// held before Open: peak-heap is the live heap objects sampled every 2 ms
// (what the FIB holds, garbage included), peak-RSS the kernel's VmHWM
// (reset before Open).
//
//	go test -run '^$' -bench Restart/1M -benchtime 1x ./fib
func BenchmarkRestart(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			for _, m := range modes {
				b.Run(m.name, func(b *testing.B) { benchRestart(b, size.n, m.mode) })
			}
		})
	}
}

func benchRestart(b *testing.B, n int, mode Mode) {
	ctx := context.Background()
	gw := []NextHop{{Addr: netip.MustParseAddr("198.51.100.2")}}
	ns := newNS(b)
	cfg := Config{NextHopObjects: mode, NetNS: ns.path}
	applyAll := func(f *FIB) { applyBench(b, f, n, gw) }
	first, err := Open(ctx, cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	applyAll(first)
	first.Close()
	b.Cleanup(func() { flushNS(b, ns) })

	var open, sync, reapply, peakHeap, peakRSS, allocs float64
	for b.Loop() {
		runtime.GC()
		debug.FreeOSMemory()
		s := startHeapSampler()
		rss0 := resetPeakRSS(b)
		t0 := time.Now()
		f, err := Open(ctx, cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := f.Sync(ctx); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		applyAll(f)
		if _, err := f.EndGrace(ctx); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		heap, alloc := s.stop()
		peakRSS += float64(peakRSSBytes(b) - rss0)
		if st := f.Stats(); st.Routes != n || st.Stale != 0 || st.Resyncs != 1 {
			b.Fatalf("after the restart: %+v", st)
		}
		f.Close()
		open += t1.Sub(t0).Seconds()
		sync += t2.Sub(t1).Seconds()
		reapply += t3.Sub(t2).Seconds()
		peakHeap += float64(heap)
		allocs += float64(alloc)
	}
	runs := float64(b.N)
	b.ReportMetric(open/runs, "open-s")
	b.ReportMetric(sync/runs, "sync-s")
	b.ReportMetric(reapply/runs, "reapply-s")
	b.ReportMetric(peakHeap/runs, "peak-heap-B")
	b.ReportMetric(peakHeap/runs/float64(n), "peak-heap-B/route")
	b.ReportMetric(peakRSS/runs, "peak-RSS-B")
	b.ReportMetric(allocs/runs/float64(n), "alloc-B/route")
}

// applyBench applies benchPrefixes(n) through gw in chunks, making the
// routes as they go: the heap of the run is the FIB's alone.
func applyBench(b *testing.B, f *FIB, n int, gw []NextHop) {
	cs := make([]Change, 0, 4096)
	for i := 0; i < n; i += cap(cs) {
		cs = cs[:0]
		for j := i; j < min(i+cap(cs), n); j++ {
			cs = append(cs, Change{Prefix: benchPrefix(j, n), NextHops: gw})
		}
		if _, err := f.Apply(context.Background(), cs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSync is Maintain's full comparison over n routes that match:
// it streams the kernel's routes against the desired state, so what it
// allocates must not grow with n (no []Route, nothing per route).
//
//	go test -run '^$' -bench Sync/1M -benchtime 3x ./fib
func BenchmarkSync(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			for _, m := range modes {
				b.Run(m.name, func(b *testing.B) {
					ns := newNS(b)
					f := ns.open(b, Config{NextHopObjects: m.mode})
					b.Cleanup(func() { flushNS(b, ns) })
					applyBench(b, f, size.n, []NextHop{{Addr: netip.MustParseAddr("198.51.100.2")}})
					b.ReportAllocs()
					for b.Loop() {
						res, err := f.Sync(context.Background())
						if err != nil || res.Added+res.Replaced+res.Deleted != 0 {
							b.Fatalf("Sync: %+v %v", res, err)
						}
					}
					b.ReportMetric(float64(size.n)*float64(b.N)/b.Elapsed().Seconds(), "routes/s")
				})
			}
		})
	}
}

// heapSampler follows the live heap in the background: its peak above the
// heap at the start, and the bytes allocated meanwhile.
type heapSampler struct {
	stopc chan struct{}
	wg    sync.WaitGroup
	base  uint64
	peak  uint64
	alloc uint64
}

var heapMetrics = []string{"/memory/classes/heap/objects:bytes", "/gc/heap/allocs:bytes"}

func readHeap() (live, allocated uint64) {
	s := []metrics.Sample{{Name: heapMetrics[0]}, {Name: heapMetrics[1]}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

func startHeapSampler() *heapSampler {
	s := &heapSampler{stopc: make(chan struct{})}
	s.base, s.alloc = readHeap()
	s.peak = s.base
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.stopc:
				return
			case <-t.C:
				if live, _ := readHeap(); live > s.peak {
					s.peak = live
				}
			}
		}
	}()
	return s
}

// stop ends sampling and returns the peak above the start and the bytes
// allocated since.
func (s *heapSampler) stop() (peak, alloc uint64) {
	close(s.stopc)
	s.wg.Wait()
	live, total := readHeap()
	return max(s.peak, live) - s.base, total - s.alloc
}

// resetPeakRSS resets the process's VmHWM to its current RSS (Linux 4.0+)
// and returns that RSS.
func resetPeakRSS(b *testing.B) uint64 {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Fatalf("resetting the peak RSS: %v", err)
	}
	return procStatus(b, "VmRSS:")
}

func peakRSSBytes(b *testing.B) uint64 { return procStatus(b, "VmHWM:") }

// procStatus reads a "kB" field of /proc/self/status in bytes.
func procStatus(b *testing.B, field string) uint64 {
	fh, err := os.Open("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatalf("no %s in /proc/self/status", field)
	return 0
}
