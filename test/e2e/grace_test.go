package e2e

import (
	"context"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bgplb/bgplb/lab"
)

// restartConfig is the router for its own restart: node1 and node2 as
// passive static neighbours, or as dynamic ones from the LAN.
const restartConfig = `asn: 64512
routerID: 198.51.100.1
PEERS
import:
  prefixes: ["203.0.113.0/24", "198.18.0.0/15"]
  maxPrefixes: 200000
fib: {graceTime: GRACE}
api: {socket: SOCKET}
`

func restartConf(dynamic bool, grace string) string {
	peers := "neighbors:\n" +
		"  - {address: 198.51.100.11, peerASN: 64512, passive: true, holdTime: 9s}\n" +
		"  - {address: 198.51.100.12, peerASN: 64512, passive: true, holdTime: 9s}"
	if dynamic {
		peers = "dynamicNeighbors:\n  - {prefix: 198.51.100.0/24, peerASN: 64512, holdTime: 9s}"
	}
	return strings.NewReplacer("PEERS", peers, "GRACE", grace).Replace(restartConfig)
}

// restartLab is the router, node1 announcing many routes and node2 three:
// kept1 and kept2 come back after the router's restart, gone does not.
type restartLab struct {
	routerLab
	conf        string
	many        []netip.Prefix
	kept2, gone netip.Prefix
	kept1       netip.Prefix
	dels        deletions
}

func newRestartLab(tb testing.TB, dynamic bool, grace string, routes int) *restartLab {
	tb.Helper()
	conf := restartConf(dynamic, grace)
	l := &restartLab{routerLab: newRouterLab(tb, 3*time.Minute, conf), conf: conf,
		kept1: prefix("203.0.113.1/32"), kept2: prefix("203.0.113.2/32"), gone: prefix("203.0.113.3/32")}
	v4, _ := scaleRoutes(routes)
	for _, n := range v4 {
		l.many = append(l.many, n.Prefix)
	}
	l.speak(tb, l.n1, true, append([]netip.Prefix{l.kept1}, l.many...)...)
	l.speak(tb, l.n2, true, l.kept2, l.gone)
	l.rp.waitKernel(tb, l.ctx, l.all(true))
	l.dels = watchDeletions(tb, l.ctx, l.r.ns)
	return l
}

// all is the kernel with every route, gone's as withGone says.
func (l *restartLab) all(withGone bool) want {
	w := want{l.kept1: {l.n1.v4}, l.kept2: {l.n2.v4}, l.gone: nil}
	if withGone {
		w[l.gone] = []netip.Addr{l.n2.v4}
	}
	for _, p := range []netip.Prefix{l.many[0], l.many[len(l.many)/2], l.many[len(l.many)-1]} {
		w[p] = []netip.Addr{l.n1.v4}
	}
	return w
}

// speak connects n's speaker, announces ps and, with eor, End-of-RIB.
func (l *restartLab) speak(tb testing.TB, n node, eor bool, ps ...netip.Prefix) *injector {
	tb.Helper()
	in := injectWith(tb, l.ctx, n, l.r.v4, grSession(false, true))
	in.announceVia(tb, l.ctx, n.v4, ps...)
	if eor {
		in.endOfRIB(tb, l.ctx)
	}
	return in
}

// restart stops the router (its routes stay in the kernel) and starts it
// again in the same directory, where its FIB state is.
func (l *restartLab) restart(tb testing.TB) time.Time {
	tb.Helper()
	if err := l.rp.proc.Stop(); err != nil {
		tb.Fatal(err)
	}
	if _, err := waitKernel(l.ctx, l.r.ns, l.all(true)); err != nil {
		tb.Fatalf("routes did not outlive the router: %v", err)
	}
	start := time.Now()
	l.rp = startRouterIn(tb, l.ctx, l.r, l.conf, filepath.Dir(l.rp.socket))
	return start
}

// waitLog waits for the router's log to contain s.
func (l *restartLab) waitLog(tb testing.TB, s string) {
	tb.Helper()
	if err := lab.Poll(l.ctx, 20*time.Millisecond, func() (bool, error) {
		return strings.Contains(l.rp.proc.Logs(), s), nil
	}); err != nil {
		tb.Fatalf("no %q in the router's log:\n%s", s, l.rp.proc.Logs())
	}
}

// TestRouterRestartEndOfRIB: after the router's own restart, the routes
// of its previous run stay until every peer expected back has sent
// End-of-RIB (static neighbours; for dynamic ranges, the nodes those
// routes pointed at), then the one no peer sent again goes at once, long
// before fib.graceTime (60 s here); the others are never deleted.
func TestRouterRestartEndOfRIB(t *testing.T) {
	for _, dynamic := range []bool{false, true} {
		name := map[bool]string{false: "static", true: "dynamic"}[dynamic]
		t.Run(name, func(t *testing.T) {
			l := newRestartLab(t, dynamic, "60s", 2000)
			l.restart(t)
			watch := watchPresent(t, l.ctx, l.r.ns, l.kept1, l.kept2, l.many[0], l.many[len(l.many)-1])
			l.waitLog(t, "routes from a previous run kept until every peer has sent End-of-RIB")
			watch.waitPolls(t, l.ctx, 10)

			l.speak(t, l.n1, true, append([]netip.Prefix{l.kept1}, l.many...)...)
			// node2 had routes too: the grace goes on without it. The
			// router says so once it has decided, after node1's
			// End-of-RIB.
			l.waitLog(t, `msg="routes of the previous run still wait for End-of-RIB" synced=1 expected=2`)

			eor := time.Now()
			l.speak(t, l.n2, true, l.kept2)
			l.rp.waitKernel(t, l.ctx, l.all(false))
			took := time.Since(eor)
			t.Logf("the route not sent again left the kernel %v after the last peer's End-of-RIB", took.Round(time.Millisecond))
			if took > 5*time.Second {
				t.Errorf("%v after the last End-of-RIB: the grace time ended it, not End-of-RIB", took)
			}
			l.waitLog(t, "every peer sent End-of-RIB")
			logs := l.rp.proc.Logs()
			if end, eor2 := strings.Index(logs, "every peer sent End-of-RIB"), strings.Index(logs, `msg="end of RIB" peer=198.51.100.12`); eor2 < 0 || end < eor2 {
				t.Fatalf("the grace ended before node2's End-of-RIB:\n%s", logs)
			}
			watch.check(t)
			if n := l.dels.of(l.gone); n != 1 {
				t.Errorf("ip monitor saw %s deleted %d times, want once", l.gone, n)
			}
			for _, p := range []netip.Prefix{l.kept1, l.kept2, l.many[0]} {
				if n := l.dels.of(p); n != 0 {
					t.Errorf("ip monitor saw %s deleted %d times", p, n)
				}
			}
		})
	}
}

// BenchmarkRouterRestartGrace is the router's restart with 10,000 routes
// from node1 and node2's few: the time from its start until the route no
// peer sent again leaves the kernel, when both peers send End-of-RIB
// (graceTime 60 s) and when they do not, which leaves it to graceTime (5 s).
func BenchmarkRouterRestartGrace(b *testing.B) {
	for _, bc := range []struct {
		name  string
		eor   bool
		grace string
	}{{"end-of-rib", true, "60s"}, {"timer-5s", false, "5s"}} {
		b.Run(bc.name, func(b *testing.B) {
			l := newRestartLab(b, true, bc.grace, 10_000)
			var total time.Duration
			for range b.N {
				start := l.restart(b)
				ctx, cancel := context.WithTimeout(l.ctx, time.Minute)
				l.speak(b, l.n1, bc.eor, append([]netip.Prefix{l.kept1}, l.many...)...)
				in2 := l.speak(b, l.n2, bc.eor, l.kept2)
				if _, err := waitKernel(ctx, l.r.ns, l.all(false)); err != nil {
					cancel()
					b.Fatal(err)
				}
				cancel()
				total += time.Since(start)
				// The next round needs gone back in the kernel.
				in2.announceVia(b, l.ctx, l.n2.v4, l.gone)
				if _, err := waitKernel(l.ctx, l.r.ns, l.all(true)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-clean")
			b.ReportMetric(0, "ns/op")
		})
	}
}
