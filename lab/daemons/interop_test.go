package daemons_test

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/daemons"
	"github.com/bgplb/bgplb/lab/labtest"
)

// host is one end of a two-host LAN.
type host struct {
	name   string
	ns     *lab.Netns
	v4, v6 netip.Addr
}

// twoHosts builds a LAN with a (.11) and b (.12) in 198.51.100.0/24 and
// 2001:db8::/64.
func twoHosts(t *testing.T) (a, b host) {
	t.Helper()
	a = host{name: "a", v4: addr("198.51.100.11"), v6: addr("2001:db8::11")}
	b = host{name: "b", v4: addr("198.51.100.12"), v6: addr("2001:db8::12")}
	var specs []lab.HostSpec
	for _, h := range []host{a, b} {
		specs = append(specs, lab.HostSpec{Name: h.name, Addrs: []netip.Prefix{
			netip.PrefixFrom(h.v4, 24), netip.PrefixFrom(h.v6, 64)}})
	}
	l, _ := labtest.LAN(t, specs...)
	a.ns, b.ns = l.Host("a"), l.Host("b")
	return a, b
}

// config is a daemon config on h with one neighbour, peer, reached at its
// IPv4 or IPv6 address.
func config(h host, asn uint32, peer host, peerASN uint32, family int, mod func(*daemons.Neighbor)) daemons.Config {
	n := daemons.Neighbor{Address: peer.v4, ASN: peerASN}
	if family == 6 {
		n.Address = peer.v6
	}
	if mod != nil {
		mod(&n)
	}
	return daemons.Config{ASN: asn, RouterID: h.v4, Local4: h.v4, Local6: h.v6, Neighbors: []daemons.Neighbor{n}}
}

// side is a daemon with what it announces and where it is reached.
type side struct {
	d        daemons.Daemon
	h        host
	session  netip.Addr // its address on the session, as the other side names the peer
	prefixes []netip.Prefix
}

// exchange proves a session between x and y: it comes up on both ends; each
// side's /32 and /128 reach the other as best paths with the announcer's
// LAN addresses as next hops; a withdrawal removes them.
func exchange(t *testing.T, ctx context.Context, x, y side) {
	t.Helper()
	for _, s := range [][2]side{{x, y}, {y, x}} {
		if err := daemons.WaitEstablished(ctx, s[0].d, s[1].session); err != nil {
			t.Fatal(err)
		}
	}

	for _, s := range []side{x, y} {
		if err := s.d.Announce(ctx, s.prefixes...); err != nil {
			t.Fatalf("%s: %v", s.d.Kind(), err)
		}
	}
	for _, s := range [][2]side{{x, y}, {y, x}} {
		from, to := s[0], s[1]
		v4, v6 := split(from.prefixes)
		if _, err := daemons.WaitReceived(ctx, to.d, daemons.HasRoutes(from.session, from.h.v4, v4...)); err != nil {
			t.Fatalf("%s -> %s, IPv4: %v", from.d.Kind(), to.d.Kind(), err)
		}
		if _, err := daemons.WaitReceived(ctx, to.d, daemons.HasRoutes(from.session, from.h.v6, v6...)); err != nil {
			t.Fatalf("%s -> %s, IPv6: %v", from.d.Kind(), to.d.Kind(), err)
		}
	}
	if err := x.d.Withdraw(ctx, x.prefixes...); err != nil {
		t.Fatal(err)
	}
	if _, err := daemons.WaitReceived(ctx, y.d, daemons.LacksRoutes(x.prefixes...)); err != nil {
		t.Fatalf("%s withdrew, %s: %v", x.d.Kind(), y.d.Kind(), err)
	}
	// The other direction is untouched.
	if _, err := daemons.WaitReceived(ctx, x.d, daemons.HasRoutes(y.session, netip.Addr{}, y.prefixes...)); err != nil {
		t.Fatal(err)
	}
	if err := x.d.Announce(ctx, x.prefixes...); err != nil {
		t.Fatal(err)
	}
	if _, err := daemons.WaitReceived(ctx, y.d, daemons.HasRoutes(x.session, netip.Addr{}, x.prefixes...)); err != nil {
		t.Fatalf("%s re-announced, %s: %v", x.d.Kind(), y.d.Kind(), err)
	}
}

func split(ps []netip.Prefix) (v4, v6 []netip.Prefix) {
	for _, p := range ps {
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else {
			v6 = append(v6, p)
		}
	}
	return v4, v6
}

// waitKernel waits until ns's kernel has exactly these host routes via gw
// (IPv4 and IPv6 gateways as given) for proto, or, with none, until it has
// none of them.
func waitKernel(t *testing.T, ctx context.Context, ns *lab.Netns, proto string, gw4, gw6 netip.Addr, present bool, prefixes ...netip.Prefix) {
	t.Helper()
	_, err := ns.WaitRoutes(ctx, lab.RouteQuery{Proto: proto}, func(rs []lab.Route) bool {
		for _, p := range prefixes {
			gw := gw4
			if p.Addr().Is6() {
				gw = gw6
			}
			found := slices.ContainsFunc(rs, func(r lab.Route) bool {
				return r.Dst == p && slices.Equal(r.Gateways(), []netip.Addr{gw})
			})
			if found != present {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
}

func start(t *testing.T, ctx context.Context, kind string, h host, cfg daemons.Config) daemons.Daemon {
	t.Helper()
	var (
		d   daemons.Daemon
		err error
	)
	switch kind {
	case "gobgpd":
		d, err = daemons.StartGoBGP(ctx, h.ns, cfg)
	case "bird":
		d, err = daemons.StartBIRD(ctx, h.ns, cfg)
	case "frr":
		d, err = daemons.StartFRR(ctx, h.ns, cfg)
	case "exabgp":
		d, err = daemons.StartExaBGP(ctx, h.ns, cfg)
	}
	labtest.SkipIfNotInstalled(t, err)
	return d
}

var (
	aPrefixes = []netip.Prefix{pfx("203.0.113.11/32"), pfx("2001:db8:100::11/128")}
	bPrefixes = []netip.Prefix{pfx("203.0.113.12/32"), pfx("2001:db8:100::12/128")}
)

// TestGoBGPAndBIRD: the seed's daemon, passive, against BIRD, active, with
// TCP-MD5, iBGP AS 64512 over IPv4 carrying both families. BIRD installs
// what it learns; when gobgpd dies, BIRD drops its session and its routes.
// (gobgpd is passive because, active, it waits 5-10 s before connecting.)
func TestGoBGPAndBIRD(t *testing.T) {
	t.Parallel()
	labtest.Require(t)
	a, b := twoHosts(t)
	ctx := labtest.Context(t, 60*time.Second)
	md5 := func(n *daemons.Neighbor) { n.Password = "lab-secret" }
	g := start(t, ctx, "gobgpd", a, config(a, 64512, b, 64512, 4, func(n *daemons.Neighbor) { md5(n); n.Passive = true }))
	bcfg := config(b, 64512, a, 64512, 4, md5)
	bcfg.FIB = true
	bird := start(t, ctx, "bird", b, bcfg)
	exchange(t, ctx, side{g, a, a.v4, aPrefixes}, side{bird, b, b.v4, bPrefixes})
	waitKernel(t, ctx, b.ns, "bird", a.v4, a.v6, true, aPrefixes...)

	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	waitKernel(t, ctx, b.ns, "bird", a.v4, a.v6, false, aPrefixes...)
	ss, err := bird.Sessions(ctx)
	if err != nil || len(ss) != 1 || ss[0].State == daemons.Established {
		t.Errorf("bird sessions after gobgpd stopped: %v (%v)", ss, err)
	}
}

// TestFRRAndGoBGP: FRR (bgpd with its zebra) in AS 64513 against gobgpd in
// AS 64512: eBGP, which FRR 8 refuses without policy unless told not to.
// zebra installs what FRR learns with proto bgp.
func TestFRRAndGoBGP(t *testing.T) {
	t.Parallel()
	labtest.Require(t)
	a, b := twoHosts(t)
	ctx := labtest.Context(t, 60*time.Second)
	fcfg := config(a, 64513, b, 64512, 4, nil)
	fcfg.FIB = true
	frr := start(t, ctx, "frr", a, fcfg)
	g := start(t, ctx, "gobgpd", b, config(b, 64512, a, 64513, 4, func(n *daemons.Neighbor) { n.Passive = true }))

	exchange(t, ctx, side{frr, a, a.v4, aPrefixes}, side{g, b, b.v4, bPrefixes})
	waitKernel(t, ctx, a.ns, "bgp", b.v4, b.v6, true, bPrefixes...)
	if err := g.Withdraw(ctx, bPrefixes...); err != nil {
		t.Fatal(err)
	}
	waitKernel(t, ctx, a.ns, "bgp", b.v4, b.v6, false, bPrefixes...)
}

// TestExaBGPAndBIRD: ExaBGP against BIRD over an IPv6 session carrying
// IPv4 routes too (with IPv4 next hops). BIRD sends IPv6 next hops with a
// link-local part; ExaBGP's view must keep the global one.
func TestExaBGPAndBIRD(t *testing.T) {
	t.Parallel()
	labtest.Require(t)
	a, b := twoHosts(t)
	ctx := labtest.Context(t, 60*time.Second)
	exa := start(t, ctx, "exabgp", a, config(a, 64512, b, 64512, 6, nil))
	bcfg := config(b, 64512, a, 64512, 6, nil)
	bcfg.FIB = true
	bird := start(t, ctx, "bird", b, bcfg)

	exchange(t, ctx, side{exa, a, a.v6, aPrefixes}, side{bird, b, b.v6, bPrefixes})
	waitKernel(t, ctx, b.ns, "bird", a.v4, a.v6, true, aPrefixes...)
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }
