package announce

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/daemons"
	"github.com/bgplb/bgplb/lab/labtest"
)

// otherRouter is a third-party BGP daemon as the router, driven through its
// own CLI: what it shows of a route, how to reset our session from its side,
// and where it reports the shutdown communication it received.
type otherRouter struct {
	bins             []string
	routerAS, nodeAS uint32
	start            func(context.Context, *lab.Netns, daemons.Config) (daemons.Daemon, error)
	// show is the daemon's detailed view of one route.
	show func(ctx context.Context, d daemons.Daemon, p netip.Prefix) (string, error)
	// attrs is what show must contain for the route with community
	// 64512:c (LOCAL_PREF lp on iBGP, link bandwidth 2, large 64512:7:7).
	attrs func(c, lp int) []string
	reset func(ctx context.Context, d daemons.Daemon, node netip.Addr) error
	// refresh asks for our routes again with a ROUTE-REFRESH (soft reset
	// in); nil when the daemon cannot be made to send one.
	refresh func(ctx context.Context, d daemons.Daemon, node netip.Addr) error
	// shutdownSeen is where the daemon reports the received Cease.
	shutdownSeen func(ctx context.Context, d daemons.Daemon, node netip.Addr) (string, error)
}

// TestNSGoBGP: gobgpd (the seed's router) over iBGP.
func TestNSGoBGP(t *testing.T) {
	cli := func(ctx context.Context, d daemons.Daemon, args ...string) (string, error) {
		out, err := d.(*daemons.GoBGP).CLI(ctx, args...)
		return string(out), err
	}
	testOtherRouter(t, otherRouter{
		bins: []string{"gobgpd", "gobgp"}, routerAS: 64512, nodeAS: 64512,
		start: func(ctx context.Context, ns *lab.Netns, c daemons.Config) (daemons.Daemon, error) {
			return daemons.StartGoBGP(ctx, ns, c)
		},
		show: func(ctx context.Context, d daemons.Daemon, p netip.Prefix) (string, error) {
			return cli(ctx, d, "global", "rib", "-a", fmt.Sprintf("ipv%d", map[bool]int{true: 4, false: 6}[p.Addr().Is4()]), p.String())
		},
		attrs: func(c, lp int) []string {
			return []string{"{Origin: i}", fmt.Sprintf("{LocalPref: %d}", lp), fmt.Sprintf("{Communities: 64512:%d}", c),
				"{Extcomms: [64512:2]}", "{LargeCommunity: [ 64512:7:7]}"}
		},
		// `gobgp neighbor X reset` would do, but gobgpd 3.10 then refuses
		// the peer for 30 s whatever idle-hold-time-after-reset says;
		// disable and enable close the session just the same.
		reset: func(ctx context.Context, d daemons.Daemon, node netip.Addr) error {
			if _, err := cli(ctx, d, "neighbor", node.String(), "disable"); err != nil {
				return err
			}
			_, err := cli(ctx, d, "neighbor", node.String(), "enable")
			return err
		},
		// No refresh: gobgpd keeps an Adj-RIB-In and answers softresetin
		// from it, without a ROUTE-REFRESH.
		shutdownSeen: func(_ context.Context, d daemons.Daemon, _ netip.Addr) (string, error) {
			return d.Procs()[0].Logs(), nil
		},
	})
}

// TestNSBIRD: BIRD 2 over eBGP (it in AS 64500, the speaker in 64512).
func TestNSBIRD(t *testing.T) {
	cli := func(ctx context.Context, d daemons.Daemon, args ...string) (string, error) {
		out, err := d.(*daemons.BIRD).CLI(ctx, args...)
		return string(out), err
	}
	proto := func(a netip.Addr) string { return "n" + strings.ReplaceAll(a.String(), ".", "_") }
	testOtherRouter(t, otherRouter{
		bins: []string{"bird", "birdc"}, routerAS: 64500, nodeAS: 64512,
		start: func(ctx context.Context, ns *lab.Netns, c daemons.Config) (daemons.Daemon, error) {
			return daemons.StartBIRD(ctx, ns, c)
		},
		show: func(ctx context.Context, d daemons.Daemon, p netip.Prefix) (string, error) {
			return cli(ctx, d, "show", "route", p.String(), "all")
		},
		attrs: func(c, _ int) []string {
			// 1073741824 is 2.0 as an IEEE float: BIRD does not know the
			// link-bandwidth subtype and shows the raw value.
			return []string{"BGP.origin: IGP", "BGP.as_path: 64512\n", fmt.Sprintf("BGP.community: (64512,%d)", c),
				"BGP.ext_community: (unknown 0x4004, 64512, 1073741824)", "BGP.large_community: (64512, 7, 7)"}
		},
		reset: func(ctx context.Context, d daemons.Daemon, node netip.Addr) error {
			_, err := cli(ctx, d, "restart", proto(node))
			return err
		},
		refresh: func(ctx context.Context, d daemons.Daemon, node netip.Addr) error {
			_, err := cli(ctx, d, "reload", "in", proto(node))
			return err
		},
		shutdownSeen: func(ctx context.Context, d daemons.Daemon, node netip.Addr) (string, error) {
			return cli(ctx, d, "show", "protocols", "all", proto(node))
		},
	})
}

// TestNSFRR: FRR over eBGP, the speaker with a 4-octet AS (4200000001).
func TestNSFRR(t *testing.T) {
	vty := func(ctx context.Context, d daemons.Daemon, cmds ...string) (string, error) {
		out, err := d.(*daemons.FRR).VTY(ctx, cmds...)
		return string(out), err
	}
	testOtherRouter(t, otherRouter{
		bins: []string{"/usr/lib/frr/bgpd", "/usr/lib/frr/zebra", "vtysh"}, routerAS: 64501, nodeAS: 4200000001,
		start: func(ctx context.Context, ns *lab.Netns, c daemons.Config) (daemons.Daemon, error) {
			return daemons.StartFRR(ctx, ns, c)
		},
		show: func(ctx context.Context, d daemons.Daemon, p netip.Prefix) (string, error) {
			return vty(ctx, d, fmt.Sprintf("show bgp ipv%d unicast %s", map[bool]int{true: 4, false: 6}[p.Addr().Is4()], p))
		},
		attrs: func(c, _ int) []string {
			// The 4-octet AS in the path; AS_TRANS in the community,
			// which has room for two octets only.
			return []string{"\n  4200000001\n", "Origin IGP, valid, external, best", fmt.Sprintf("Community: 64512:%d", c),
				"Extended Community: LB:23456:2", "Large Community: 64512:7:7"}
		},
		reset: func(ctx context.Context, d daemons.Daemon, node netip.Addr) error {
			_, err := vty(ctx, d, "clear bgp "+node.String())
			return err
		},
		refresh: func(ctx context.Context, d daemons.Daemon, node netip.Addr) error {
			_, err := vty(ctx, d, fmt.Sprintf("clear bgp %s soft in", node))
			return err
		},
		shutdownSeen: func(ctx context.Context, d daemons.Daemon, node netip.Addr) (string, error) {
			return vty(ctx, d, fmt.Sprintf("show bgp neighbors %s json", node))
		},
	})
}

// testOtherRouter: the speaker on node1 announces to the daemon, which
// must show the routes with their attributes; a change of attributes and a
// withdrawal follow; a ROUTE-REFRESH gets everything again on the same
// session; the daemon resets the session and gets everything again;
// Shutdown withdraws it all and the daemon reports our message.
func testOtherRouter(t *testing.T, o otherRouter) {
	labtest.Require(t)
	labtest.RequireBinaries(t, o.bins...)
	r, nodes := newLab(t, 1)
	n1 := nodes[0]
	ctx := labtest.Context(t, 60*time.Second)
	d, err := o.start(ctx, r.ns, daemons.Config{ASN: o.routerAS, RouterID: r.v4, Local4: r.v4, Local6: r.v6,
		Neighbors: []daemons.Neighbor{{Address: n1.v4, ASN: o.nodeAS, Passive: true}}})
	labtest.SkipIfNotInstalled(t, err)
	sp := startSpeaker(t, ctx, n1, routerPeer("rtr", n1, r, o.nodeAS, o.routerAS))

	pA, pB, p6 := prefix("203.0.113.20/32"), prefix("203.0.113.21/32"), prefix("2001:db8:100::20/128")
	routes := func(c int) []Route {
		return []Route{
			{Prefix: pA, LocalPref: u32(uint32(100 + c)), Communities: []wire.Community{wire.NewCommunity(64512, uint16(c))},
				LargeCommunities: []wire.LargeCommunity{{Global: 64512, Local1: 7, Local2: 7}}, Bandwidth: 2},
			{Prefix: pB},
			{Prefix: p6},
		}
	}
	waitShow := func(what string, p netip.Prefix, wants []string) { t.Helper(); o.waitShow(t, ctx, d, what, p, wants) }
	received := func(what string, cond func([]daemons.Route) bool) {
		t.Helper()
		if _, err := daemons.WaitReceived(ctx, d, cond); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	sp.announce(t, ctx, "rtr", routes(100))
	received("the routes", func(rs []daemons.Route) bool {
		return daemons.HasRoutes(n1.v4, n1.v4, pA, pB)(rs) && daemons.HasRoutes(n1.v4, n1.v6, p6)(rs)
	})
	waitShow("attributes", pA, o.attrs(100, 200))

	sp.announce(t, ctx, "rtr", routes(150))
	waitShow("changed attributes", pA, o.attrs(150, 250))
	sp.announce(t, ctx, "rtr", []Route{routes(150)[0], routes(150)[2]})
	received("the withdrawal", daemons.LacksRoutes(pB))

	// A ROUTE-REFRESH gets every route sent again on the same session.
	if o.refresh != nil {
		before := sp.waitStatus(t, ctx, "rtr", synced)
		if err := o.refresh(ctx, d, n1.v4); err != nil {
			t.Fatal(err)
		}
		sp.waitStatus(t, ctx, "rtr", func(s PeerStatus) bool { return s.Synced && s.UpdatesOut >= before.UpdatesOut+2 && s.Flaps == 0 })
	}

	// The daemon resets the session: the speaker reconnects and resends.
	if err := o.reset(ctx, d, n1.v4); err != nil {
		t.Fatal(err)
	}
	sp.waitStatus(t, ctx, "rtr", func(s PeerStatus) bool { return s.Flaps == 1 && s.Synced })
	received("the routes after the reset", func(rs []daemons.Route) bool {
		return daemons.HasRoutes(n1.v4, n1.v4, pA)(rs) && daemons.HasRoutes(n1.v4, n1.v6, p6)(rs) && daemons.LacksRoutes(pB)(rs)
	})
	waitShow("attributes after the reset", pA, o.attrs(150, 250))

	const msg = "node1 drained: kernel upgrade"
	sp.shutdown(t, ctx, msg)
	received("everything withdrawn", daemons.LacksRoutes(pA, p6))
	var seen string
	if err := lab.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		out, err := o.shutdownSeen(ctx, d, n1.v4)
		seen = out
		return strings.Contains(out, msg), err
	}); err != nil {
		t.Fatalf("the daemon did not report our shutdown communication %q: %v\n%s", msg, err, seen)
	}
}

// waitShow polls the daemon's view of p until it contains every string of wants.
func (o *otherRouter) waitShow(t *testing.T, ctx context.Context, d daemons.Daemon, what string, p netip.Prefix, wants []string) {
	t.Helper()
	var last string
	err := lab.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		out, err := o.show(ctx, d, p)
		last = out
		for _, w := range wants {
			if !strings.Contains(out, w) {
				return false, err
			}
		}
		return err == nil, err
	})
	if err != nil {
		t.Fatalf("%s: %v; want %q in:\n%s", what, err, wants, last)
	}
}
