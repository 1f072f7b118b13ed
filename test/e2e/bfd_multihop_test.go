package e2e

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/daemons"
	"github.com/bgplb/bgplb/lab/labtest"
	"github.com/bgplb/bgplb/view"
)

// TestRouterBFDMultihop: a neighbour one router away (ebgpMultihop 2) runs
// a multihop BFD session (RFC 5883) with the router: the node's FRR bfdd
// and the router come Up across the forwarding hop, and when the node's
// link beyond that hop is cut (the router's own link stays up), BFD takes
// the node's route out of the router's kernel well before the 9 s hold
// time.
func TestRouterBFDMultihop(t *testing.T) {
	labtest.Require(t)
	labtest.RequireBinaries(t, "gobgpd", "/usr/lib/frr/bfdd", "/usr/lib/frr/zebra")
	ctx := labtest.Context(t, 2*time.Minute)
	pfx, a := netip.MustParsePrefix, netip.MustParseAddr
	// router .1 — .126 mid .129 — .140 node: two halves of 198.51.100.0/24.
	r := node{name: "router", v4: a("198.51.100.1")}
	n1 := node{name: "node1", v4: a("198.51.100.140")}
	midNear, midFar := a("198.51.100.126"), a("198.51.100.129")
	l, _ := labtest.LAN(t,
		lab.HostSpec{Name: r.name, Addrs: []netip.Prefix{netip.PrefixFrom(r.v4, 25)}},
		lab.HostSpec{Name: "mid", Addrs: []netip.Prefix{netip.PrefixFrom(midNear, 25)}})
	far, err := l.AddLAN(ctx, "far",
		lab.HostSpec{Name: "mid", Ifname: "eth1", Addrs: []netip.Prefix{netip.PrefixFrom(midFar, 25)}},
		lab.HostSpec{Name: n1.name, Addrs: []netip.Prefix{netip.PrefixFrom(n1.v4, 25)}})
	if err != nil {
		t.Fatal(err)
	}
	r.ns, n1.ns = l.Host(r.name), l.Host(n1.name)
	if err := l.Host("mid").EnableForwarding(ctx, true, false); err != nil {
		t.Fatal(err)
	}
	if err := r.ns.AddRoute(ctx, pfx("198.51.100.128/25"), midNear); err != nil {
		t.Fatal(err)
	}
	if err := n1.ns.AddRoute(ctx, pfx("198.51.100.0/25"), midFar); err != nil {
		t.Fatal(err)
	}

	rp := startRouter(t, ctx, r, `asn: 64512
routerID: 198.51.100.1
listen: ["0.0.0.0:179"]
neighbors:
  - {address: 198.51.100.140, peerASN: 64512, ebgpMultihop: 2, connectRetry: 1s, holdTime: 9s, bfd: {minTx: 50ms, minRx: 50ms, multiplier: 3}}
import:
  prefixes: ["203.0.113.0/24"]
fib: {graceTime: 0s}
api: {socket: SOCKET}
`)
	t.Cleanup(func() { _ = rp.proc.Stop() })
	gobgp, err := daemons.StartGoBGP(ctx, n1.ns, daemons.Config{ASN: 64512, RouterID: n1.v4, Local4: n1.v4,
		Neighbors: []daemons.Neighbor{{Address: r.v4, ASN: 64512, Passive: true}}})
	labtest.SkipIfNotInstalled(t, err)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gobgp.Stop() })
	bfdd, err := daemons.StartFRRBFD(ctx, n1.ns, []daemons.BFDPeer{{Peer: r.v4, Local: n1.v4, Multihop: true, Interval: 50 * time.Millisecond, Mult: 3}})
	labtest.SkipIfNotInstalled(t, err)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bfdd.Stop() })
	// The route's next hop is mid, on the router's link: the kernel takes
	// no gateway it cannot reach directly.
	route := pfx("203.0.113.11/32")
	if _, err := gobgp.CLI(ctx, "global", "rib", "add", "-a", "ipv4", route.String(), "nexthop", midNear.String(), "origin", "igp"); err != nil {
		t.Fatal(err)
	}

	var ns []view.Neighbor
	if err := lab.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		rp.cli(t, ctx, &ns, "neighbor")
		return len(ns) == 1 && ns[0].State == "Established" && ns[0].BFD != nil && ns[0].BFD.State == "Up", nil
	}); err != nil {
		t.Fatalf("session with multihop BFD not up: %v; last %+v", err, ns)
	}
	if b := ns[0].BFD; b.Session != "198.51.100.1->198.51.100.140 multihop" || b.DetectTimeUs != 150_000 {
		t.Errorf("bgplb neighbor bfd: %+v, want a multihop session at 50 ms x 3", b)
	}
	if err := daemons.WaitBFD(ctx, bfdd, r.v4, "up"); err != nil {
		t.Fatal(err)
	}
	if _, err := waitKernel(ctx, r.ns, want{route: {midNear}}); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if err := far.SetLink(ctx, n1.name, false); err != nil {
		t.Fatal(err)
	}
	if _, err := waitKernel(ctx, r.ns, want{route: nil}); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("route left the router's kernel %v after the far link was cut (multihop BFD 50 ms x 3, hold 9 s)", took)
	if took >= bfdBound {
		t.Errorf("route gone %v after the cut, want well before the 9 s hold time (BFD 150 ms; bound %v)", took, bfdBound)
	}
	if logs := rp.proc.Logs(); !strings.Contains(logs, "BFD down: closing the BGP session") {
		t.Errorf("no BFD teardown in the router's log")
	}
}
