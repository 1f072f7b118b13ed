package healthcheck

import (
	"context"
	"fmt"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/bgplb/bgplb/speaker/healthcheck/hctest"
)

// BenchmarkProbe1000Targets: a node with 1,000 Local Services probed at
// the default pace, each on a health check server of its own on loopback
// (in this process too: the CPU reported is both sides'). Each iteration
// is a second of probing, after a second of warming up.
func BenchmarkProbe1000Targets(b *testing.B) {
	const n = 1000
	ctx, cancel := context.WithCancel(context.Background())
	p := New(ctx, DefaultConfig(), slog.New(slog.DiscardHandler), nil)
	b.Cleanup(func() {
		cancel()
		p.Wait()
	})
	servers := make([]*hctest.Server, n)
	targets := make([]Target, n)
	for i := range n {
		servers[i] = hctest.Listen(b, "127.0.0.1:0")
		targets[i] = Target{Service: svcKey(fmt.Sprintf("s%d", i)), Addr: servers[i].Addr}
	}
	p.Set(targets)
	time.Sleep(time.Second)
	before, start := cpu(b), time.Now()
	var reqs0, conns0 int64
	for _, s := range servers {
		reqs0, conns0 = reqs0+s.Requests.Load(), conns0+s.Conns.Load()
	}
	for range b.N {
		time.Sleep(time.Second)
	}
	elapsed := time.Since(start)
	var reqs, conns int64
	for _, s := range servers {
		reqs, conns = reqs+s.Requests.Load(), conns+s.Conns.Load()
	}
	b.ReportMetric(float64(cpu(b)-before)/float64(elapsed), "cpu-s/s")
	b.ReportMetric(float64(reqs-reqs0)/elapsed.Seconds(), "probes/s")
	b.ReportMetric(float64(conns-conns0), "new-conns")
	if st := p.Stats(); st.Targets[Up] != n {
		b.Errorf("stats %+v, want %d up", st, n)
	}
}

// cpu is this process's CPU time so far.
func cpu(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
