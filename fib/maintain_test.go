package fib

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// maintain runs Maintain for the test's lifetime.
func maintain(tb testing.TB, f *FIB, o MaintainOptions) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Maintain(ctx, o) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && err != context.Canceled {
			tb.Errorf("Maintain: %v", err)
		}
	})
}

// repairBound is how long a repair may take in a test: the goal is well
// under a second; the bound leaves room for a loaded CI machine.
const repairBound = 10 * time.Second

// TestMaintainRepairs changes our routes behind the FIB's back and checks
// that Maintain puts them back, and that routes of other protocols and
// metrics are never touched.
func TestMaintainRepairs(t *testing.T) {
	disruptions := []struct {
		name   string
		nhOnly bool
		kernel bool // the kernel itself removes the other routes too
		do     func(t *testing.T, ns *testNS)
	}{
		{"ip route del", false, false, func(t *testing.T, ns *testNS) {
			ns.ip(t, "route", "del", "203.0.113.1/32", "proto", "bgp", "metric", "20")
			ns.ip(t, "-6", "route", "del", "2001:db8:100::1/128", "proto", "bgp", "metric", "20")
		}},
		{"link down and up", false, true, func(t *testing.T, ns *testNS) {
			ns.ip(t, "link", "set", "d0", "down")
			ns.ip(t, "link", "set", "d0", "up")
			ns.ip(t, "addr", "replace", "2001:db8::1/64", "dev", "d0", "nodad")
		}},
		{"nexthop object deleted", true, false, func(t *testing.T, ns *testNS) {
			ns.ip(t, "nexthop", "del", "id", fmt.Sprint(ns.nhid(t, "203.0.113.2/32")))
		}},
		{"foreign replace", false, false, func(t *testing.T, ns *testNS) {
			ns.ip(t, "route", "replace", "203.0.113.1/32", "via", "198.51.100.9", "proto", "bgp", "metric", "20")
			ns.ip(t, "route", "replace", "203.0.113.2/32", "via", "198.51.100.9", "proto", "static", "metric", "20")
		}},
		{"foreign route of our key", false, false, func(t *testing.T, ns *testNS) {
			ns.ip(t, "route", "add", "203.0.113.9/32", "via", "198.51.100.9", "proto", "bgp", "metric", "20")
		}},
	}
	want := []Route{
		route("203.0.113.1/32", "198.51.100.2"),
		route("203.0.113.2/32", "198.51.100.2", "198.51.100.3"),
		route("2001:db8:100::1/128", "2001:db8::2"),
	}
	for _, m := range modes {
		for _, d := range disruptions {
			if d.nhOnly && m.mode != NextHopOn {
				continue
			}
			t.Run(m.name+"/"+d.name, func(t *testing.T) {
				ns := newNS(t)
				// Not ours: another protocol, and our protocol at another metric.
				ns.ip(t, "route", "add", "203.0.113.50/32", "via", "198.51.100.4", "proto", "static", "metric", "20")
				ns.ip(t, "route", "add", "203.0.113.1/32", "via", "198.51.100.4", "proto", "bgp", "metric", "50")
				f := ns.open(t, Config{NextHopObjects: m.mode})
				if _, err := f.Apply(testCtx(t), Diff(nil, want)); err != nil {
					t.Fatal(err)
				}
				maintain(t, f, MaintainOptions{})
				waitFor(t, repairBound, func() bool { return f.Stats().Resyncs > 0 })
				d.do(t, ns)
				waitFor(t, repairBound, func() bool {
					return routesEqual(ns.ipRoutes(t, 254, "bgp", 20), canonicalRoutes(want))
				})
				checkKernel(t, ns, f, want)
				if st := f.Stats(); st.Repairs == 0 && st.Resyncs < 2 {
					t.Errorf("stats %+v: no repair counted", st)
				}
				out := ns.ip(t, "route", "show", "table", "main")
				for _, other := range []string{"203.0.113.50 via 198.51.100.4 dev d0 proto static metric 20", "203.0.113.1 via 198.51.100.4 dev d0 proto bgp metric 50"} {
					if !d.kernel && !strings.Contains(out, other) {
						t.Errorf("a route that is not ours was touched: %q missing from\n%s", other, out)
					}
				}
				if r, err := f.Check(testCtx(t)); err != nil || !r.Equal() {
					t.Errorf("Check: %+v %v", r, err)
				}
			})
		}
	}
}

// TestMaintainRetriesFailedRoutes installs a route through a gateway that
// is not on link yet, and checks that it appears once the gateway is.
func TestMaintainRetriesFailedRoutes(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ns := newNS(t)
			f := ns.open(t, Config{NextHopObjects: m.mode})
			maintain(t, f, MaintainOptions{})
			res, err := f.Apply(testCtx(t), []Change{
				change("203.0.113.7/32", "203.0.113.254"),
				change("203.0.113.8/32", "198.51.100.2", "203.0.113.254"),
			})
			if err == nil || len(res.Failed) != 1 {
				t.Fatalf("Apply: %+v %v", res, err)
			}
			checkRoutes(t, ns, f, []Route{route("203.0.113.8/32", "198.51.100.2")})
			r, err := f.Check(testCtx(t))
			if err != nil || !r.Equal() || r.Unusable != 1 {
				t.Errorf("Check: %+v %v", r, err)
			}
			ns.ip(t, "addr", "add", "203.0.113.1/24", "dev", "d0")
			want := []Route{
				route("203.0.113.7/32", "203.0.113.254"),
				route("203.0.113.8/32", "198.51.100.2", "203.0.113.254"),
			}
			waitFor(t, repairBound, func() bool {
				return routesEqual(ns.ipRoutes(t, 254, "bgp", 20), canonicalRoutes(want))
			})
			checkKernel(t, ns, f, want)
		})
	}
}

// BenchmarkRepair measures how long a route of ours deleted behind the
// FIB's back stays missing: from the delete to the kernel's notice of the
// route's return.
//
//	go test -run '^$' -bench Repair -benchtime 20x ./fib
func BenchmarkRepair(b *testing.B) {
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			ns := newNS(b)
			f := ns.open(b, Config{NextHopObjects: m.mode})
			p := mustPrefix("203.0.113.1/32")
			if _, err := f.Apply(context.Background(), []Change{change(p.String(), "198.51.100.2")}); err != nil {
				b.Fatal(err)
			}
			maintain(b, f, MaintainOptions{})
			for f.Stats().Resyncs == 0 {
				time.Sleep(10 * time.Millisecond)
			}
			writer, err := dial(ns.path, 1<<20, 1<<20)
			if err != nil {
				b.Fatal(err)
			}
			defer writer.close()
			mon, err := f.dialMonitor()
			if err != nil {
				b.Fatal(err)
			}
			defer mon.close()
			var total time.Duration
			b.ResetTimer()
			for range b.N {
				var req msgBuf
				seq := writer.nextSeq(1)
				req.delRoute(seq, unix.NLM_F_ACK, f.key, p)
				start := time.Now()
				if err := writer.exchange(context.Background(), req.b, seq, seq, func(reply) {}); err != nil {
					b.Fatal(err)
				}
				waitRoute(b, mon, p)
				total += time.Since(start)
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms-to-repair")
		})
	}
}

// waitRoute reads notifications until one adds a route to p.
func waitRoute(b *testing.B, mon *conn, p netip.Prefix) {
	if err := mon.f.SetReadDeadline(time.Now().Add(repairBound)); err != nil {
		b.Fatal(err)
	}
	for {
		d, err := mon.recv(true)
		if err != nil {
			b.Fatalf("waiting for %v to come back: %v", p, err)
		}
		for len(d) > 0 {
			m, rest, err := nextMsg(d)
			if err != nil {
				b.Fatal(err)
			}
			d = rest
			if m.typ != unix.RTM_NEWROUTE {
				continue
			}
			if r, _, err := parseRoute(m.data, nil, nil); err == nil && r.prefix == p {
				return
			}
		}
	}
}
