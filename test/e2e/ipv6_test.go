package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/daemons"
	"github.com/bgplb/bgplb/lab/labtest"
	"github.com/bgplb/bgplb/view"
)

// The prefixes every IPv6 case announces: one IPv4 and one IPv6 route on
// the one IPv6 session.
var (
	v6caseP4 = prefix("203.0.113.41/32")
	v6caseP6 = prefix("2001:db8:100::41/128")
)

// v6Case is one node peering with the router over IPv6.
type v6Case struct {
	name  string
	bin   string
	start func(context.Context, *lab.Netns, daemons.Config) (daemons.Daemon, error)
	kind  v6Kind
	// routerDials makes the node passive and the router connect out;
	// otherwise the node dials in.
	routerDials bool
	// dynamic accepts the node through a dynamicNeighbors range instead
	// of a static neighbour.
	dynamic bool
	// extNH: the daemon sends its IPv4 routes with its IPv6 address as
	// next hop (RFC 8950), so the kernel route is `via inet6`.
	extNH bool
}

// launcher lets one table hold the typed daemon launchers.
func launcher[D daemons.Daemon](f startFn[D]) func(context.Context, *lab.Netns, daemons.Config) (daemons.Daemon, error) {
	return func(ctx context.Context, ns *lab.Netns, c daemons.Config) (daemons.Daemon, error) {
		return f(ctx, ns, c)
	}
}

// TestRouterIPv6Sessions has gobgpd, BIRD and FRR each peer with the
// router over IPv6, once between the global addresses and once between the
// link-local ones (the interface named on both sides), and announce an
// IPv4 and an IPv6 route on that one session. Both routes must reach the
// router's kernel via the node on the LAN port, show in `bgplb neighbor`
// and `bgplb rib` against the IPv6 peer, and leave when withdrawn or when
// the node stops. More cases: gobgpd sending its IPv4 route via its IPv6
// address (RFC 8950, `via inet6` in the kernel), the router dialling a
// link-local neighbour, and dynamic ranges of global and of link-local
// addresses.
func TestRouterIPv6Sessions(t *testing.T) {
	gobgp, bird, frr := launcher(daemons.StartGoBGP), launcher(daemons.StartBIRD), launcher(daemons.StartFRR)
	const frrBin = "/usr/lib/frr/bgpd"
	cases := []v6Case{
		{name: "gobgpd/global", bin: "gobgpd", start: gobgp, kind: global},
		{name: "gobgpd/link-local", bin: "gobgpd", start: gobgp, kind: linkLocal},
		{name: "gobgpd/global/rfc8950", bin: "gobgpd", start: gobgp, kind: global, extNH: true},
		{name: "gobgpd/link-local/rfc8950", bin: "gobgpd", start: gobgp, kind: linkLocal, extNH: true},
		{name: "bird/global", bin: "bird", start: bird, kind: global},
		{name: "bird/link-local", bin: "bird", start: bird, kind: linkLocal},
		{name: "frr/global", bin: frrBin, start: frr, kind: global},
		// FRR 8.4 never dials a neighbour configured as `fe80::… interface
		// eth0`: its next-hop tracking registers the peer without the
		// interface and waits for ever ("Waiting for NHT", fixed in later
		// FRR releases). It does accept the session, so the router dials.
		{name: "frr/link-local", bin: frrBin, start: frr, kind: linkLocal, routerDials: true},
		{name: "gobgpd/link-local/router-dials", bin: "gobgpd", start: gobgp, kind: linkLocal, routerDials: true},
		{name: "bird/global/dynamic", bin: "bird", start: bird, kind: global, dynamic: true},
		{name: "gobgpd/link-local/dynamic", bin: "gobgpd", start: gobgp, kind: linkLocal, dynamic: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			labtest.Require(t)
			labtest.RequireBinaries(t, c.bin)
			ctx := labtest.Context(t, 45*time.Second)
			n := newNode("node1", 11)
			r := topology(t, &n)
			pe := peering(t, ctx, c.kind, r, n)
			rp := startRouter(t, ctx, r, v6RouterConfig(pe.router, c))
			sp, err := c.start(ctx, n.ns, daemons.Config{ASN: 64513, RouterID: n.v4, Local4: n.v4, Local6: n.v6,
				Neighbors: []daemons.Neighbor{{Address: pe.node, ASN: 64512, Passive: c.routerDials}}})
			labtest.SkipIfNotInstalled(t, err)
			if err != nil {
				t.Fatal(err)
			}
			rp.waitEstablished(t, ctx, pe.router)
			via4 := n.v4
			if c.extNH {
				via4 = n.v6
				announceVia(t, ctx, sp, v6caseP4, via4)
			} else if err := sp.Announce(ctx, v6caseP4); err != nil {
				t.Fatal(err)
			}
			if err := sp.Announce(ctx, v6caseP6); err != nil {
				t.Fatal(err)
			}
			rp.checkV6Routes(t, ctx, pe.router, map[netip.Prefix]hop{v6caseP4: on0(via4)[0], v6caseP6: on0(n.v6)[0]})

			if err := sp.Withdraw(ctx, v6caseP4); err != nil {
				t.Fatal(err)
			}
			rp.waitHops(t, ctx, map[netip.Prefix][]hop{v6caseP4: nil, v6caseP6: on0(n.v6)})
			if err := sp.Stop(); err != nil {
				t.Fatal(err)
			}
			rp.waitHops(t, ctx, map[netip.Prefix][]hop{v6caseP6: nil})
			rp.waitNotEstablished(t, ctx, pe.router)
		})
	}
}

// announceVia originates p with next hop nh, which daemons.Announce
// cannot say: an IPv4 route via an IPv6 address goes out with RFC 8950's
// extended next hop. Only gobgpd's CLI takes a next hop per route.
func announceVia(t *testing.T, ctx context.Context, d daemons.Daemon, p netip.Prefix, nh netip.Addr) {
	t.Helper()
	g, ok := d.(*daemons.GoBGP)
	if !ok {
		t.Fatalf("%s cannot announce a route via a given next hop", d.Kind())
	}
	if out, err := g.CLI(ctx, "global", "rib", "add", "-a", "ipv4", p.String(), "nexthop", nh.String(), "origin", "igp"); err != nil {
		t.Fatalf("gobgp global rib add %s nexthop %s: %v\n%s", p, nh, err, out)
	}
}

// v6Kind is how a node and the router address each other over IPv6.
type v6Kind string

const (
	global    v6Kind = "global"     // 2001:db8::N
	linkLocal v6Kind = "link-local" // fe80::…%eth0, the kernel's own address of the LAN port
)

// v6Peering is one IPv6 session's addresses: the node as the router names
// it, and the router as the node names it.
type v6Peering struct {
	router, node netip.Addr
}

// peering picks the addresses of kind; link-local ones carry the zone of
// the interface they are reached through, on the side that names them.
func peering(t *testing.T, ctx context.Context, kind v6Kind, r, n node) v6Peering {
	t.Helper()
	if kind == global {
		return v6Peering{router: n.v6, node: r.v6}
	}
	return v6Peering{
		router: ifLinkLocal(t, ctx, n.ns, lab.DefaultIfname).WithZone(lab.DefaultIfname),
		node:   ifLinkLocal(t, ctx, r.ns, lab.DefaultIfname).WithZone(lab.DefaultIfname),
	}
}

// ifLinkLocal waits for the usable link-local address of an interface
// (the kernel adds it when the link comes up) and returns it unzoned.
func ifLinkLocal(t *testing.T, ctx context.Context, ns *lab.Netns, ifname string) netip.Addr {
	t.Helper()
	var ll netip.Addr
	err := lab.Poll(ctx, 20*time.Millisecond, func() (bool, error) {
		as, err := ns.Addrs(ctx, ifname)
		if err != nil {
			return false, err
		}
		i := slices.IndexFunc(as, func(a lab.Addr) bool { return a.Prefix.Addr().IsLinkLocalUnicast() && !a.Tentative })
		if i >= 0 {
			ll = as[i].Prefix.Addr()
		}
		return i >= 0, nil
	})
	if err != nil {
		t.Fatalf("no link-local address on %s in %s: %v", ifname, ns.Name, err)
	}
	return ll
}

// v6RouterConfig makes the node an eBGP neighbour (AS 64513) at address
// nb, or accepts it from a dynamic range: 2001:db8::/64 for a global
// address, fe80::/64 for a link-local one.
func v6RouterConfig(nb netip.Addr, c v6Case) string {
	peers := fmt.Sprintf("neighbors:\n  - {address: %q, peerASN: 64513, passive: %v, connectRetry: 1s, holdTime: 9s}\n", nb, !c.routerDials)
	if c.dynamic {
		rng := "2001:db8::/64"
		if c.kind == linkLocal {
			rng = "fe80::/64"
		}
		peers = fmt.Sprintf("dynamicNeighbors:\n  - {prefix: %q, peerASN: 64513, holdTime: 9s}\n", rng)
	}
	return `asn: 64512
routerID: 198.51.100.1
listen: ["0.0.0.0:179", "[::]:179"]
` + peers + `import:
  prefixes: ["203.0.113.0/24", "2001:db8:100::/48"]
api: {socket: SOCKET}
`
}

// checkV6Routes waits for each prefix in the kernel via its one next hop,
// then checks the router's own views: the neighbour Established with
// every prefix accepted, and each prefix's one path best, from peer, via
// the same gateway, which `bgplb fib` shows too.
func (rp *routerProc) checkV6Routes(t *testing.T, ctx context.Context, peer netip.Addr, via map[netip.Prefix]hop) {
	t.Helper()
	w := map[netip.Prefix][]hop{}
	for p, h := range via {
		w[p] = []hop{h}
	}
	rp.waitHops(t, ctx, w)

	var ns []view.Neighbor
	rp.cli(t, ctx, &ns, "neighbor")
	i := slices.IndexFunc(ns, func(n view.Neighbor) bool { return n.Address == peer })
	if i < 0 || ns[i].State != "Established" || ns[i].ASN != 64513 || ns[i].Accepted != len(via) || ns[i].Rejected != 0 {
		t.Errorf("bgplb neighbor: want %s Established, AS 64513, %d accepted; got %+v", peer, len(via), ns)
	}
	for p, h := range via {
		var rib []view.RIBEntry
		rp.cli(t, ctx, &rib, "rib", p.String())
		if len(rib) != 1 || rib[0].Prefix != p || len(rib[0].Paths) != 1 {
			t.Errorf("bgplb rib %s: want one path; got %+v", p, rib)
			continue
		}
		// A link-local next hop may carry its interface as its zone.
		path := rib[0].Paths[0]
		nh, zone := path.NextHop.WithZone(""), path.NextHop.Zone()
		if !path.Best || path.Peer != peer || nh != h.gw || zone != "" && zone != h.dev {
			t.Errorf("bgplb rib %s: want best from %s via %s (on %s); got %+v", p, peer, h.gw, h.dev, path)
		}
	}
	var fib []view.FIBRoute
	rp.cli(t, ctx, &fib, "fib")
	for p, h := range via {
		i := slices.IndexFunc(fib, func(r view.FIBRoute) bool { return r.Prefix == p })
		if i < 0 || len(fib[i].NextHops) != 1 || fib[i].NextHops[0].Addr.WithZone("") != h.gw {
			t.Errorf("bgplb fib: want %s via %s; got %+v", p, h.gw, fib)
		}
	}
}

// waitNotEstablished waits until `bgplb neighbor` shows no Established
// session with peer (a dynamic one may be gone altogether).
func (rp *routerProc) waitNotEstablished(t *testing.T, ctx context.Context, peer netip.Addr) {
	t.Helper()
	var last []view.Neighbor
	err := lab.Poll(ctx, 100*time.Millisecond, func() (bool, error) {
		last = nil
		rp.cli(t, ctx, &last, "neighbor")
		return !slices.ContainsFunc(last, func(n view.Neighbor) bool { return n.Address == peer && n.State == "Established" }), nil
	})
	if err != nil {
		t.Fatalf("session with %s still Established after the node stopped: %+v", peer, last)
	}
}
