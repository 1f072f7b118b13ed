package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/daemons"
	"github.com/bgplb/bgplb/lab/labtest"
	"github.com/bgplb/bgplb/view"
)

var (
	addr   = netip.MustParseAddr
	prefix = netip.MustParsePrefix
)

// node is a host on the LAN: .N in 198.51.100.0/24 and 2001:db8::N/64.
type node struct {
	name   string
	ns     *lab.Netns
	v4, v6 netip.Addr
}

func newNode(name string, n int) node {
	return node{name: name, v4: addr(fmt.Sprintf("198.51.100.%d", n)), v6: addr(fmt.Sprintf("2001:db8::%d", n))}
}

// topology builds one LAN with the router (.1) and the given nodes.
func topology(t testing.TB, nodes ...*node) node {
	t.Helper()
	r := newNode("router", 1)
	var specs []lab.HostSpec
	for _, n := range append([]*node{&r}, nodes...) {
		specs = append(specs, lab.HostSpec{Name: n.name, Addrs: []netip.Prefix{netip.PrefixFrom(n.v4, 24), netip.PrefixFrom(n.v6, 64)}})
	}
	l, _ := labtest.LAN(t, specs...)
	r.ns = l.Host("router")
	for _, n := range nodes {
		n.ns = l.Host(n.name)
	}
	return r
}

// startFn is a daemons launcher.
type startFn[D daemons.Daemon] func(context.Context, *lab.Netns, daemons.Config) (D, error)

// peerWith starts a daemon of AS asn on n whose one neighbour is the router
// (passive when the router dials it), skipping the test when the daemon is
// not installed.
func peerWith[D daemons.Daemon](t *testing.T, ctx context.Context, start startFn[D], n node, asn uint32, r node, passive bool) D {
	t.Helper()
	d, err := start(ctx, n.ns, daemons.Config{ASN: asn, RouterID: n.v4, Local4: n.v4, Local6: n.v6,
		Neighbors: []daemons.Neighbor{{Address: r.v4, ASN: 64512, Passive: passive}}})
	labtest.SkipIfNotInstalled(t, err)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// routerLab is the router (.1) and two nodes (.11, .12) on one LAN, with
// `bgplb router` running on config.
type routerLab struct {
	ctx    context.Context
	r      node
	n1, n2 node
	rp     *routerProc
}

// newRouterLab skips unless root with bins installed, and builds the lab.
func newRouterLab(t testing.TB, limit time.Duration, config string, bins ...string) routerLab {
	t.Helper()
	labtest.Require(t)
	labtest.RequireBinaries(t, bins...)
	l := routerLab{ctx: labtest.Context(t, limit), n1: newNode("node1", 11), n2: newNode("node2", 12)}
	l.r = topology(t, &l.n1, &l.n2)
	l.rp = startRouter(t, l.ctx, l.r, config)
	return l
}

// routerProc is `bgplb router` running in the router namespace.
type routerProc struct {
	ns     *lab.Netns
	proc   *lab.Proc
	socket string
	config string
}

func startRouter(t testing.TB, ctx context.Context, r node, config string) *routerProc {
	t.Helper()
	return startRouterIn(t, ctx, r, config, t.TempDir())
}

// startRouterIn starts the router with its config and API socket in dir,
// where a previous run may have left its FIB state.
func startRouterIn(t testing.TB, ctx context.Context, r node, config, dir string) *routerProc {
	t.Helper()
	rp := &routerProc{ns: r.ns, socket: filepath.Join(dir, "router.sock"), config: filepath.Join(dir, "router.yaml")}
	config = strings.ReplaceAll(config, "SOCKET", rp.socket)
	if err := os.WriteFile(rp.config, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	var err error
	rp.proc, err = r.ns.StartWith(ctx, lab.StartOptions{Label: "bgplb-router"}, bgplbBin,
		"router", "--config", rp.config, "--log-level", "debug")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = rp.proc.Stop()
		// Built with GOFLAGS=-race, the router reports races on its stderr.
		if strings.Contains(rp.proc.Logs(), "WARNING: DATA RACE") {
			t.Error("data race in the router")
		}
		if t.Failed() {
			t.Logf("bgplb router log:\n%s", rp.proc.Logs())
		}
	})
	return rp
}

// cli runs a bgplb view against the router and decodes its JSON.
func (rp *routerProc) cli(t testing.TB, ctx context.Context, v any, args ...string) {
	t.Helper()
	out, err := exec.CommandContext(ctx, bgplbBin, append(args, "--socket", rp.socket, "-o", "json")...).Output()
	if err != nil {
		t.Fatalf("bgplb %s: %v", strings.Join(args, " "), err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("bgplb %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// waitEstablished polls `bgplb neighbor` until every address is Established.
func (rp *routerProc) waitEstablished(t testing.TB, ctx context.Context, peers ...netip.Addr) {
	t.Helper()
	var last []view.Neighbor
	err := lab.Poll(ctx, 200*time.Millisecond, func() (bool, error) {
		var ns []view.Neighbor
		out, err := exec.CommandContext(ctx, bgplbBin, "neighbor", "--socket", rp.socket, "-o", "json").Output()
		if err != nil {
			return false, nil // not listening yet
		}
		if err := json.Unmarshal(out, &ns); err != nil {
			return false, err
		}
		last = ns
		for _, p := range peers {
			if !slices.ContainsFunc(ns, func(n view.Neighbor) bool { return n.Address == p && n.State == "Established" }) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("sessions not established: %v; last: %+v", err, last)
	}
}

// want is the expected gateways per prefix in the router's kernel; an empty
// list means the prefix must be absent.
type want map[netip.Prefix][]netip.Addr

// waitKernel waits until the router's kernel holds exactly w for proto bgp;
// on failure it shows the router's own views too.
func (rp *routerProc) waitKernel(t testing.TB, ctx context.Context, w want) []lab.Route {
	t.Helper()
	rs, err := waitKernel(ctx, rp.ns, w)
	if err != nil {
		for _, v := range []string{"neighbor", "rib", "fib"} {
			out, _ := exec.Command(bgplbBin, v, "--socket", rp.socket).CombinedOutput()
			t.Logf("bgplb %s:\n%s", v, out)
		}
		t.Fatal(err)
	}
	return rs
}

func waitKernel(ctx context.Context, ns *lab.Netns, w want) ([]lab.Route, error) {
	var last []lab.Route
	_, err := ns.WaitRoutes(ctx, lab.RouteQuery{Proto: "bgp"}, func(rs []lab.Route) bool {
		last = rs
		for p, gws := range w {
			i := slices.IndexFunc(rs, func(r lab.Route) bool { return r.Dst == p })
			if len(gws) == 0 {
				if i >= 0 {
					return false
				}
				continue
			}
			if i < 0 {
				return false
			}
			got := rs[i].Gateways()
			slices.SortFunc(got, netip.Addr.Compare)
			exp := slices.Clone(gws)
			slices.SortFunc(exp, netip.Addr.Compare)
			if !slices.Equal(got, exp) {
				return false
			}
		}
		return true
	})
	if err != nil {
		return last, fmt.Errorf("router kernel: %w\nwant %v\nhave:\n%s", err, w, lab.FormatRoutes(last))
	}
	return last, nil
}

const ibgpConfig = `asn: 64512
routerID: 198.51.100.1
listen: ["0.0.0.0:179", "[::]:179"]
neighbors:
  - {address: 198.51.100.12, peerASN: 64512, connectRetry: 1s, holdTime: 9s}
dynamicNeighbors:
  - {prefix: 198.51.100.0/24, peerASN: 64512, holdTime: 9s}
import:
  prefixes: ["203.0.113.0/24", "2001:db8:100::/48"]
fib: {graceTime: 5s}
api: {socket: SOCKET}
`

// TestRouterIBGP is the seed's router: two nodes in AS 64512 announce /32s
// and /128s over iBGP, one through a dynamic neighbour range (BIRD dials in)
// and one as a static neighbour the router dials (gobgpd, as in the seed).
// A prefix both announce becomes an ECMP route; a withdrawal and a node
// going away update the kernel.
func TestRouterIBGP(t *testing.T) {
	l := newRouterLab(t, 40*time.Second, ibgpConfig, "bird", "gobgpd")
	ctx, r, n1, n2, rp := l.ctx, l.r, l.n1, l.n2, l.rp

	bird := peerWith(t, ctx, daemons.StartBIRD, n1, 64512, r, false)
	gobgp := peerWith(t, ctx, daemons.StartGoBGP, n2, 64512, r, true)
	shared := prefix("203.0.113.10/32")
	p1, p1v6 := prefix("203.0.113.11/32"), prefix("2001:db8:100::11/128")
	p2, p2v6 := prefix("203.0.113.12/32"), prefix("2001:db8:100::12/128")
	if err := bird.Announce(ctx, shared, p1, p1v6); err != nil {
		t.Fatal(err)
	}
	if err := gobgp.Announce(ctx, shared, p2, p2v6); err != nil {
		t.Fatal(err)
	}
	rp.waitEstablished(t, ctx, n1.v4, n2.v4)
	rp.waitKernel(t, ctx, want{
		shared: {n1.v4, n2.v4},
		p1:     {n1.v4}, p1v6: {n1.v6},
		p2: {n2.v4}, p2v6: {n2.v6},
	})

	// The operator's views agree with the kernel.
	var rib []view.RIBEntry
	rp.cli(t, ctx, &rib, "rib", shared.String())
	if len(rib) != 1 || len(rib[0].Paths) != 2 || !rib[0].Paths[0].Best || !rib[0].Paths[1].Multipath {
		t.Fatalf("bgplb rib %s: %+v", shared, rib)
	}
	var fib []view.FIBRoute
	rp.cli(t, ctx, &fib, "fib")
	if !slices.ContainsFunc(fib, func(r view.FIBRoute) bool { return r.Prefix == shared && len(r.NextHops) == 2 }) {
		t.Fatalf("bgplb fib: %+v", fib)
	}

	// A withdrawal removes one route and shrinks the ECMP route.
	if err := gobgp.Withdraw(ctx, p2, shared); err != nil {
		t.Fatal(err)
	}
	rp.waitKernel(t, ctx, want{shared: {n1.v4}, p2: nil, p2v6: {n2.v6}, p1: {n1.v4}})

	// A node going away takes all its routes with it, within a second of
	// its session closing.
	stopped := time.Now()
	if err := bird.Stop(); err != nil {
		t.Fatal(err)
	}
	rp.waitKernel(t, ctx, want{shared: nil, p1: nil, p1v6: nil, p2v6: {n2.v6}})
	if took := time.Since(stopped); took > time.Second {
		t.Errorf("routes of a closed session took %v to leave the kernel (want under 1 s)", took)
	} else {
		t.Logf("routes of a closed session left the kernel %v after the peer stopped", took)
	}
}
