package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/bgp/wire"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/labtest"
)

// v6Injector is a BGP speaker of our own (bgp/session) in a node's
// namespace, for UPDATEs no daemon here sends as such: IPv4 routes via an
// IPv6 next hop (RFC 8950) and IPv6 next hops of a link-local address
// alone, as from a node without a global address.
type v6Injector struct {
	peer *session.Peer
	enc  wire.Encoder
	up   chan session.Negotiated
}

func (in *v6Injector) Established(_ *session.Peer, n session.Negotiated) { in.up <- n }
func (in *v6Injector) Update(*session.Peer, *wire.Update, wire.Action) error {
	return nil
}
func (in *v6Injector) EndOfRIB(*session.Peer, wire.Family) {}
func (in *v6Injector) Down(*session.Peer, error)           {}

// injectV6 connects from ns to the router at to (zoned if link-local) as an
// eBGP peer in AS 64513 offering RFC 8950 for IPv4, and returns once the
// session is up. stop ends it (closing the TCP connection); the test's
// cleanup does too.
func injectV6(t *testing.T, ctx context.Context, ns *lab.Netns, routerID, to netip.Addr) (in *v6Injector, stop func()) {
	t.Helper()
	var conn net.Conn
	err := lab.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		derr := ns.Do(func() error {
			var d net.Dialer
			dctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			var err error
			conn, err = d.DialContext(dctx, "tcp6", netip.AddrPortFrom(to, 179).String())
			return err
		})
		return derr == nil, nil
	})
	if err != nil {
		t.Fatalf("router never accepted a connection at %s: %v", to, err)
	}
	in = &v6Injector{up: make(chan session.Negotiated, 1)}
	in.peer = session.New(session.Config{LocalAS: 64513, PeerAS: 64512, RouterID: routerID, PeerAddr: to,
		Passive: true, HoldTime: 9 * time.Second, ExtendedNextHop: true}, in, slog.New(slog.DiscardHandler))
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = in.peer.Run(pctx)
	}()
	stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	in.peer.Accept(conn)
	select {
	case n := <-in.up:
		in.enc = wire.Encoder{Options: n.Tx}
	case <-ctx.Done():
		t.Fatalf("v6Injector session with %s never came up", to)
	}
	return in, stop
}

// announce sends prefixes of family f with next hop nh (and ll as the
// link-local half of an IPv6 next hop, if valid), AS path 64513.
func (in *v6Injector) announce(t *testing.T, ctx context.Context, f wire.Family, nh, ll netip.Addr, ps ...netip.Prefix) {
	t.Helper()
	var a wire.Attrs
	a.Origin, a.ASPath = wire.OriginIGP, wire.ASPath{{Type: wire.ASSequence, ASNs: []uint32{64513}}}
	a.Set(wire.AttrOrigin)
	a.Set(wire.AttrASPath)
	b, _, err := in.enc.AppendReach(nil, f, nh, ll, &a, nlris(ps))
	if err != nil {
		t.Fatal(err)
	}
	if err := in.peer.Send(ctx, b); err != nil {
		t.Fatal(err)
	}
}

func (in *v6Injector) withdraw(t *testing.T, ctx context.Context, f wire.Family, ps ...netip.Prefix) {
	t.Helper()
	b, _, err := in.enc.AppendWithdraw(nil, f, nlris(ps))
	if err != nil {
		t.Fatal(err)
	}
	if err := in.peer.Send(ctx, b); err != nil {
		t.Fatal(err)
	}
}

func nlris(ps []netip.Prefix) []wire.NLRI {
	out := make([]wire.NLRI, len(ps))
	for i, p := range ps {
		out[i] = wire.NLRI{Prefix: p}
	}
	return out
}

// injectLab is the router (with the node as its one neighbour, at the
// address of kind) and an v6Injector session from the node.
func injectLab(t *testing.T, kind v6Kind) (context.Context, *routerProc, *v6Injector, func(), node, v6Peering) {
	t.Helper()
	labtest.Require(t)
	ctx := labtest.Context(t, 45*time.Second)
	n := newNode("node1", 11)
	r := topology(t, &n)
	pe := peering(t, ctx, kind, r, n)
	rp := startRouter(t, ctx, r, v6RouterConfig(pe.router, v6Case{kind: kind}))
	in, stop := injectV6(t, ctx, n.ns, n.v4, pe.node)
	rp.waitEstablished(t, ctx, pe.router)
	return ctx, rp, in, stop, n, pe
}

// TestRouterIPv6ExtendedNextHop sends, over an IPv6 session between global
// and between link-local addresses, IPv4 routes whose next hop is the
// node's global IPv6 address (RFC 8950; alone, and with its link-local
// address as the second half) and an IPv6 route with both halves. The
// kernel must route the IPv4 ones `via inet6` the node's global address on
// the LAN port, and drop them on withdrawal and when the session closes.
func TestRouterIPv6ExtendedNextHop(t *testing.T) {
	for _, kind := range []v6Kind{global, linkLocal} {
		t.Run(string(kind), func(t *testing.T) {
			ctx, rp, in, stop, n, pe := injectLab(t, kind)
			nodeLL := ifLinkLocal(t, ctx, n.ns, lab.DefaultIfname)
			p4, p4ll, p6 := prefix("203.0.113.51/32"), prefix("203.0.113.52/32"), prefix("2001:db8:100::51/128")
			in.announce(t, ctx, wire.IPv4Unicast, n.v6, netip.Addr{}, p4)
			in.announce(t, ctx, wire.IPv4Unicast, n.v6, nodeLL, p4ll)
			in.announce(t, ctx, wire.IPv6Unicast, n.v6, nodeLL, p6)
			via := on0(n.v6)[0]
			rp.checkV6Routes(t, ctx, pe.router, map[netip.Prefix]hop{p4: via, p4ll: via, p6: via})

			in.withdraw(t, ctx, wire.IPv4Unicast, p4)
			rp.waitHops(t, ctx, map[netip.Prefix][]hop{p4: nil, p4ll: {via}, p6: {via}})
			stop()
			rp.waitHops(t, ctx, map[netip.Prefix][]hop{p4ll: nil, p6: nil})
		})
	}
}

const llNextHopConfig = `asn: 64512
routerID: 198.51.100.1
listen: ["[::]:179"]
neighbors:
  - {address: "NODE1", peerASN: 64513, passive: true, holdTime: 9s}
  - {address: "NODE2", peerASN: 64513, passive: true, holdTime: 9s}
import:
  prefixes: ["203.0.113.0/24", "2001:db8:100::/48"]
api: {socket: SOCKET}
`

// TestRouterIPv6LinkLocalNextHop: nodes with no global address, each on a
// LAN of its own (the router's eth0 and eth1), send IPv6 routes and (RFC
// 8950) IPv4 routes whose next hop is their link-local address alone. A
// link-local gateway means nothing without an interface, and both LANs
// hold fe80::/64, so each route must go via its node's address on the
// interface that node's session runs over, and leave when it closes.
func TestRouterIPv6LinkLocalNextHop(t *testing.T) {
	labtest.Require(t)
	ctx := labtest.Context(t, 45*time.Second)
	r := newNode("router", 1)
	// The router needs an IPv4 address for nothing but its ID; the nodes
	// have only the link-local addresses of their ports.
	l, _ := labtest.LAN(t, lab.HostSpec{Name: "router", Addrs: []netip.Prefix{netip.PrefixFrom(r.v4, 24)}}, lab.HostSpec{Name: "node1"})
	if _, err := l.AddLAN(ctx, "lan2", lab.HostSpec{Name: "router", Ifname: "eth1"}, lab.HostSpec{Name: "node2"}); err != nil {
		t.Fatal(err)
	}
	r.ns = l.Host("router")
	type side struct {
		ns       *lab.Netns
		dev      string
		nodeLL   netip.Addr // the node's address, as the router names it
		routerLL netip.Addr // the router's, as the node names it
		p4, p6   netip.Prefix
	}
	sides := []*side{
		{ns: l.Host("node1"), dev: "eth0", p4: prefix("203.0.113.61/32"), p6: prefix("2001:db8:100::61/128")},
		{ns: l.Host("node2"), dev: "eth1", p4: prefix("203.0.113.62/32"), p6: prefix("2001:db8:100::62/128")},
	}
	config := llNextHopConfig
	for i, s := range sides {
		s.nodeLL = ifLinkLocal(t, ctx, s.ns, lab.DefaultIfname).WithZone(s.dev)
		s.routerLL = ifLinkLocal(t, ctx, r.ns, s.dev).WithZone(lab.DefaultIfname)
		config = strings.Replace(config, fmt.Sprintf("NODE%d", i+1), s.nodeLL.String(), 1)
	}
	rp := startRouter(t, ctx, r, config)
	want := map[netip.Prefix][]hop{}
	var stops []func()
	for i, s := range sides {
		in, stop := injectV6(t, ctx, s.ns, netip.AddrFrom4([4]byte{198, 51, 100, byte(11 + i)}), s.routerLL)
		stops = append(stops, stop)
		rp.waitEstablished(t, ctx, s.nodeLL)
		ll := s.nodeLL.WithZone("")
		in.announce(t, ctx, wire.IPv4Unicast, ll, netip.Addr{}, s.p4)
		in.announce(t, ctx, wire.IPv6Unicast, ll, netip.Addr{}, s.p6)
		via := hop{gw: ll, dev: s.dev}
		rp.checkV6Routes(t, ctx, s.nodeLL, map[netip.Prefix]hop{s.p4: via, s.p6: via})
		want[s.p4], want[s.p6] = []hop{via}, []hop{via}
	}
	rp.waitHops(t, ctx, want)
	for i, s := range sides {
		stops[i]()
		want[s.p4], want[s.p6] = nil, nil
		rp.waitHops(t, ctx, want)
	}
}
