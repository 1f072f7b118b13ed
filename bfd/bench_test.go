package bfd_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bfd"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/labtest"
)

// extraAddrs gives each host n more IPv4 addresses, so that n more
// sessions (one per address pair) can run between the two.
func extraAddrs(b testing.TB, p pair, n int) (as, bs []netip.Addr) {
	b.Helper()
	ctx := labtest.Context(b, time.Minute)
	var ca, cb [][]string
	for i := range n {
		a := netip.AddrFrom4([4]byte{198, 51, 100, byte(30 + i)})
		c := netip.AddrFrom4([4]byte{198, 51, 100, byte(30 + n + i)})
		as, bs = append(as, a), append(bs, c)
		ca = append(ca, []string{"addr", "add", a.String() + "/32", "dev", "eth0"})
		cb = append(cb, []string{"addr", "add", c.String() + "/32", "dev", "eth0"})
	}
	if err := p.a.IPBatch(ctx, ca...); err != nil {
		b.Fatal(err)
	}
	if err := p.b.IPBatch(ctx, cb...); err != nil {
		b.Fatal(err)
	}
	return as, bs
}

// idleSessions starts n sessions between the hosts on the extra
// addresses and waits until all are Up.
func idleSessions(b testing.TB, p pair, ma, mb *bfd.Manager, n int, cfg bfd.Config) {
	b.Helper()
	as, bs := extraAddrs(b, p, n)
	var keys []bfd.Key
	for i := range n {
		keys = append(keys, add(b, ma, as[i], bs[i], cfg))
		add(b, mb, bs[i], as[i], cfg)
	}
	ctx := labtest.Context(b, time.Minute)
	if err := lab.Poll(ctx, 20*ms, func() (bool, error) {
		for _, k := range keys {
			if s, _ := ma.Status(k); s.State != bfd.Up {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		b.Fatalf("%d idle sessions not Up: %v", n, err)
	}
}

// spin keeps the CPUs busy in this process until the returned function
// is called, so the timers compete with runnable goroutines.
func spin(n int) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
					for i := 0; i < 1e5; i++ {
						_ = i * i
					}
				}
			}
		})
	}
	return func() { close(done); wg.Wait() }
}

// spinProc runs a busy shell loop, another process competing for the
// CPUs, until the returned function kills it.
func spinProc(b *testing.B) (stop func()) {
	cmd := exec.Command("sh", "-c", "while :; do :; done")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return func() { cmd.Process.Kill(); cmd.Wait() }
}

// BenchmarkDetect measures link cut → Down event at the bgplb end, and how
// late the detection timer fired (Down − (last packet + detection time)).
// Each iteration waits for steady state, cuts at a random phase of the
// transmit interval, waits for Down, heals and waits for Up. "loaded" adds
// 100 idle 50 ms sessions and two goroutines spinning on the two CPUs;
// "busy-box" the 100 sessions and two spinning processes instead.
//
//	go test -p 1 -run XXX -bench BenchmarkDetect -benchtime 20x ./bfd
func BenchmarkDetect(b *testing.B) {
	cases := []struct {
		name  string
		cfg   bfd.Config
		idle  int
		spins int // goroutines spinning in this process
		procs int // processes spinning on the box
	}{
		{"50msx3", fastCfg(), 0, 0, 0},
		{"300msx3", bfd.DefaultConfig(), 0, 0, 0},
		{"50msx3/loaded", fastCfg(), 100, 2, 0},
		{"50msx3/busy-box", fastCfg(), 100, 0, 2},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			p := newPair(b)
			ma := bfd.NewManager(context.Background(), bfd.Options{Do: p.a.Do, Logger: quiet()})
			mb := bfd.NewManager(context.Background(), bfd.Options{Do: p.b.Do, Logger: quiet()})
			b.Cleanup(func() { ma.Close(); mb.Close() })
			if c.idle > 0 {
				idleSessions(b, p, ma, mb, c.idle, fastCfg())
			}
			k := add(b, ma, p.a4, p.b4, c.cfg)
			kb := add(b, mb, p.b4, p.a4, c.cfg)
			ev := subscribe(b, ma, k)
			if _, err := waitState(ev, bfd.Up, 5*time.Second); err != nil {
				b.Fatal(err)
			}
			if c.spins > 0 {
				b.Cleanup(spin(c.spins))
			}
			for range c.procs {
				b.Cleanup(spinProc(b))
			}
			ctx := labtest.Context(b, 10*time.Minute)
			var (
				took, late []time.Duration
				flaps      int // Down events before the cut: spurious detections
			)
			want := time.Duration(c.cfg.DetectMult) * max(c.cfg.RequiredMinRx, c.cfg.DesiredMinTx)
			for b.Loop() {
				// Cut in steady state (poll done, fast timers on both
				// ends) at a random phase of the transmit interval.
				if err := lab.Poll(ctx, 5*ms, func() (bool, error) {
					sa, _ := ma.Status(k)
					sb, _ := mb.Status(kb)
					return sa.DetectTime == want && sb.DetectTime == want && !sa.Polling && !sb.Polling, nil
				}); err != nil {
					b.Fatal(err)
				}
				time.Sleep(rand.N(2 * c.cfg.DesiredMinTx))
				flaps += drainDowns(ev)
				st, _ := ma.Status(k)
				detect := st.DetectTime
				cut := time.Now()
				if err := p.lan.SetLink(ctx, "b", false); err != nil {
					b.Fatal(err)
				}
				down, err := waitState(ev, bfd.Down, 5*time.Second)
				if err != nil {
					b.Fatal(err)
				}
				st, _ = ma.Status(k)
				took = append(took, down.At.Sub(cut))
				late = append(late, down.At.Sub(st.LastRx.Add(detect)))
				if err := p.lan.SetLink(ctx, "b", true); err != nil {
					b.Fatal(err)
				}
				if _, err := waitState(ev, bfd.Up, 10*time.Second); err != nil {
					b.Fatal(err)
				}
			}
			report(b, "cut-down", took)
			report(b, "timer-late", late)
			b.ReportMetric(float64(flaps), "spurious-downs")
		})
	}
}

// drainDowns empties the event channel, counting the Down events.
func drainDowns(ch <-chan bfd.Event) int {
	n := 0
	for {
		select {
		case ev := <-ch:
			if ev.To == bfd.Down && ev.From == bfd.Up {
				n++
			}
		default:
			return n
		}
	}
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func report(b *testing.B, name string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	b.ReportMetric(float64(sum)/float64(len(ds))/1e6, name+"-mean-ms")
	b.ReportMetric(float64(ds[len(ds)-1])/1e6, name+"-max-ms")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIdleSessions measures the CPU this process spends per second of
// wall time on n Up sessions at 50 ms × 3, with both ends in this process
// (so 2n sessions, 4n/0.05 packets a second counting both directions);
// each iteration is 100 ms of wall time.
//
//	go test -p 1 -run XXX -bench BenchmarkIdleSessions -benchtime 30x ./bfd
func BenchmarkIdleSessions(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			p := newPair(b)
			ma := bfd.NewManager(context.Background(), bfd.Options{Do: p.a.Do, Logger: quiet()})
			mb := bfd.NewManager(context.Background(), bfd.Options{Do: p.b.Do, Logger: quiet()})
			b.Cleanup(func() { ma.Close(); mb.Close() })
			idleSessions(b, p, ma, mb, n, fastCfg())
			start, cpu0 := time.Now(), cpuTime()
			for b.Loop() {
				time.Sleep(100 * ms)
			}
			wall, cpu := time.Since(start), cpuTime()-cpu0
			b.ReportMetric(100*float64(cpu)/float64(wall), "cpu-%")
			b.ReportMetric(float64(cpu)/float64(wall)*1e6/float64(2*n), "cpu-µs/s/session")
			var down int
			for _, s := range ma.Sessions() {
				if s.State != bfd.Up {
					down++
				}
			}
			if down > 0 {
				b.Errorf("%d sessions went down while idle", down)
			}
		})
	}
}
