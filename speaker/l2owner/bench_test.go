package l2owner

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkFailover measures, per op, the time from cutting an owning node
// off (every request and watch fails) to the last of its addresses being
// taken by the next-ranked node's OnChange. ns/op is that failover time.
// Run with -benchtime=Nx: each op starts a node and waits for it to settle
// first, off the clock. The slow cases add latency to every request of
// every node (an API server on slow storage).
func BenchmarkFailover(b *testing.B) {
	for _, tc := range []struct {
		name               string
		duration, interval time.Duration
		latency            time.Duration
	}{
		{"default", DefaultLeaseDuration, DefaultRenewInterval, 0},
		{"tuned", 600 * time.Millisecond, 200 * time.Millisecond, 0},
		{"default-slow40ms", DefaultLeaseDuration, DefaultRenewInterval, 40 * time.Millisecond},
		{"default-slow140ms", DefaultLeaseDuration, DefaultRenewInterval, 140 * time.Millisecond},
	} {
		b.Run(tc.name, func(b *testing.B) { benchFailover(b, tc.duration, tc.interval, tc.latency) })
	}
}

func benchFailover(b *testing.B, duration, interval, latency time.Duration) {
	c := newCluster(b, duration, interval)
	want := wants(30, "p")
	c.startSlow("stay1", latency, want, "p")
	c.startSlow("stay2", latency, want, "p")
	c.waitOwners(30*time.Second, want, bestFn("stay1", "stay2"))
	var total, worst time.Duration
	n := 0
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		node := fmt.Sprintf("crash%d", i)
		m := c.startSlow(node, latency, want, "p")
		c.waitOwners(30*time.Second, want, bestFn(node, "stay1", "stay2"))
		since := time.Now()
		b.StartTimer()
		m.frozen.Store(true)
		c.waitOwners(duration+10*latency+margin, want, bestFn("stay1", "stay2"))
		b.StopTimer()
		var last time.Time
		for _, w := range want {
			if bestOf(w.Addr, node, "stay1", "stay2") != node {
				continue
			}
			to := bestOf(w.Addr, "stay1", "stay2")
			added, ok := c.rec.added(to, w.Addr, since)
			if !ok {
				b.Fatalf("%s: %s never added it", w.Addr, to)
			}
			if added.After(last) {
				last = added
			}
		}
		if last.IsZero() {
			b.Fatalf("%s owned nothing: the op measures nothing", node)
		}
		took := last.Sub(since)
		total += took
		worst = max(worst, took)
		n++
		c.kill(m)
		b.StartTimer()
	}
	if n > 0 {
		b.ReportMetric(float64(total.Nanoseconds())/float64(n), "ns/op")
		b.ReportMetric(float64(worst.Nanoseconds()), "max-ns")
	}
}
