package e2e

import (
	"context"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/view"
)

// truthConfig has node1 as a passive neighbour for the injector, a small
// prefix limit, and metrics for the repair counters.
const truthConfig = `asn: 64512
routerID: 198.51.100.1
neighbors:
  - {address: 198.51.100.11, peerASN: 64512, passive: true, holdTime: 90s}
import:
  prefixes: ["203.0.113.0/24", "198.18.0.0/15"]
  maxPrefixes: 100
fib: {graceTime: 5s, metric: METRIC}
metrics: {address: "127.0.0.1:9473"}
api: {socket: SOCKET}
`

func truthConf(metric string) string { return strings.ReplaceAll(truthConfig, "METRIC", metric) }

// announceVia sends one UPDATE announcing ps with next hop nh.
func (in *injector) announceVia(t testing.TB, ctx context.Context, nh netip.Addr, ps ...netip.Prefix) {
	t.Helper()
	enc := wire.Encoder{Options: in.neg.Tx}
	var a wire.Attrs
	a.Origin, a.LocalPref = wire.OriginIGP, 100
	for _, c := range []uint8{wire.AttrOrigin, wire.AttrASPath, wire.AttrLocalPref} {
		a.Set(c)
	}
	nlri := make([]wire.NLRI, len(ps))
	for i, p := range ps {
		nlri[i] = wire.NLRI{Prefix: p}
	}
	b, _, err := enc.AppendReach(nil, wire.IPv4Unicast, nh, netip.Addr{}, &a, nlri)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.send(ctx, b); err != nil {
		t.Fatal(err)
	}
}

// ribUnusable returns what `bgplb rib` says of p's only path: "" when it is
// usable, else why not.
func (rp *routerProc) ribUnusable(t *testing.T, ctx context.Context, p netip.Prefix) (string, bool) {
	t.Helper()
	var es []view.RIBEntry
	rp.cli(t, ctx, &es, "rib")
	for _, e := range es {
		if e.Prefix == p && len(e.Paths) == 1 {
			return e.Paths[0].Unusable, true
		}
	}
	return "", false
}

// TestRouterNextHops: paths whose next hop the router cannot forward
// through stay in the RIB, shown with the reason, and never reach the
// kernel; a next hop becomes usable when an address makes its network
// connected, and unusable again when it goes.
func TestRouterNextHops(t *testing.T) {
	l := newRouterLab(t, 90*time.Second, truthConf("20"))
	in := inject(t, l.ctx, l.n1, l.r.v4)
	good, loop, own, far := prefix("203.0.113.1/32"), prefix("203.0.113.2/32"), prefix("203.0.113.3/32"), prefix("203.0.113.4/32")
	in.announceVia(t, l.ctx, l.n1.v4, good)
	in.announceVia(t, l.ctx, addr("127.0.0.1"), loop)
	in.announceVia(t, l.ctx, l.r.v4, own)
	in.announceVia(t, l.ctx, addr("198.18.7.7"), far)
	l.rp.waitKernel(t, l.ctx, want{good: {l.n1.v4}, loop: nil, own: nil, far: nil})

	reasons := map[netip.Prefix]string{loop: "loopback", own: "own address", far: "unreachable"}
	err := lab.Poll(l.ctx, 100*time.Millisecond, func() (bool, error) {
		for p, why := range reasons {
			got, ok := l.rp.ribUnusable(t, l.ctx, p)
			if !ok || !strings.Contains(got, why) {
				return false, nil
			}
		}
		got, ok := l.rp.ribUnusable(t, l.ctx, good)
		return ok && got == "", nil
	})
	if err != nil {
		out, _ := l.r.ns.Run(l.ctx, bgplbBin, "rib", "--socket", l.rp.socket)
		t.Fatalf("bgplb rib does not give the reasons %v: %v\n%s", reasons, err, out)
	}

	// The far next hop's network becomes connected: its route goes in.
	if err := l.r.ns.IP(l.ctx, "addr", "add", "198.18.7.1/24", "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	l.rp.waitKernel(t, l.ctx, want{good: {l.n1.v4}, far: {addr("198.18.7.7")}, loop: nil, own: nil})
	if err := l.r.ns.IP(l.ctx, "addr", "del", "198.18.7.1/24", "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	l.rp.waitKernel(t, l.ctx, want{good: {l.n1.v4}, far: nil})

	var c view.FIBCheck
	l.rp.cli(t, l.ctx, &c, "fib", "--check")
	// The RIB never hands the FIB a path it cannot use: one route.
	if len(c.Differences) != 0 || c.Routes != 1 || c.Unusable != 0 {
		t.Fatalf("bgplb fib --check: %+v, want the one usable route and no difference", c)
	}
}

// TestRouterRepairsKernel: the kernel is the truth, and the router keeps it
// equal to its RIB: a route deleted behind its back comes back, a foreign
// change to it is reverted, `bgplb fib --check` agrees, and the repairs are
// counted.
func TestRouterRepairsKernel(t *testing.T) {
	l := newRouterLab(t, 90*time.Second, truthConf("20"))
	m := probeMetrics(t, l.r, "127.0.0.1:9473")
	in := inject(t, l.ctx, l.n1, l.r.v4)
	p := prefix("203.0.113.10/32")
	in.announceVia(t, l.ctx, l.n1.v4, p)
	l.rp.waitKernel(t, l.ctx, want{p: {l.n1.v4}})

	if err := l.r.ns.IP(l.ctx, "route", "del", p.String(), "proto", "bgp"); err != nil {
		t.Fatal(err)
	}
	l.rp.waitKernel(t, l.ctx, want{p: {l.n1.v4}})
	if err := l.r.ns.IP(l.ctx, "route", "replace", p.String(), "via", l.n2.v4.String(), "proto", "bgp", "metric", "20"); err != nil {
		t.Fatal(err)
	}
	l.rp.waitKernel(t, l.ctx, want{p: {l.n1.v4}})
	m.waitGauge(t, l.ctx, "bgplb_router_fib_repairs_total", func(v float64) bool { return v >= 2 })

	var c view.FIBCheck
	l.rp.cli(t, l.ctx, &c, "fib", "--check")
	if len(c.Differences) != 0 || c.Routes != 1 || c.Repairs < 2 {
		t.Fatalf("bgplb fib --check: %+v, want 1 route, no difference, 2 repairs or more", c)
	}
}

// TestRouterRestartMovesRoutes: a restart with another fib.metric moves the
// routes of the previous run to the new metric before deleting the old
// ones, with no peer connected: nothing is left under the old metric.
func TestRouterRestartMovesRoutes(t *testing.T) {
	l := newRouterLab(t, 90*time.Second, truthConf("20"))
	in := inject(t, l.ctx, l.n1, l.r.v4)
	ps := []netip.Prefix{prefix("203.0.113.20/32"), prefix("203.0.113.21/32")}
	in.announceVia(t, l.ctx, l.n1.v4, ps...)
	l.rp.waitKernel(t, l.ctx, want{ps[0]: {l.n1.v4}, ps[1]: {l.n1.v4}})
	if err := l.rp.proc.Stop(); err != nil {
		t.Fatal(err)
	}
	// The new run shares the old one's API socket, beside which the FIB
	// keeps its state file.
	moved := startRouterIn(t, l.ctx, l.r, truthConf("30"), filepath.Dir(l.rp.socket))
	_, err := l.r.ns.WaitRoutes(l.ctx, lab.RouteQuery{Proto: "bgp"}, func(rs []lab.Route) bool {
		return len(rs) == 2 && !slices.ContainsFunc(rs, func(r lab.Route) bool { return r.Metric != 30 })
	})
	if err != nil {
		t.Fatalf("routes not moved to metric 30: %v\n%s", err, moved.proc.Logs())
	}
}

// TestRouterMaxPrefixesWithinUpdate: one UPDATE with far more prefixes
// than import.maxPrefixes never puts more than the limit in the kernel,
// and the session is reset with the RFC 4486 Cease.
func TestRouterMaxPrefixesWithinUpdate(t *testing.T) {
	l := newRouterLab(t, 90*time.Second, truthConf("20"))
	m := probeMetrics(t, l.r, "127.0.0.1:9473")
	in := inject(t, l.ctx, l.n1, l.r.v4)
	v4, _ := scaleRoutes(5000)
	if err := in.send(l.ctx, in.updates(t, v4, nil, false)); err != nil {
		t.Fatal(err)
	}
	err := lab.Poll(l.ctx, 100*time.Millisecond, func() (bool, error) {
		return strings.Contains(l.rp.proc.Logs(), "exceeded import.maxPrefixes"), nil
	})
	if err != nil {
		t.Fatalf("the session was not reset for its prefix limit: %v\n%s", err, l.rp.proc.Logs())
	}
	m.waitGauge(t, l.ctx, "bgplb_router_fib_routes", func(v float64) bool { return v == 0 })
	adds, err := m.gauge(l.ctx, `bgplb_router_fib_operations_total{op="add"}`)
	if err != nil {
		t.Fatal(err)
	}
	if adds > 100 {
		t.Fatalf("%v routes went into the kernel from a peer limited to 100", adds)
	}
}
