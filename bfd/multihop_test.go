package bfd_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bfd"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/daemons"
	"github.com/bgplb/bgplb/lab/labtest"
)

// routed is a — r — b: two LANs joined by a forwarding router, so a and b
// are two hops apart.
type routed struct {
	lan2   *lab.LAN
	a, b   *lab.Netns
	a4, b4 netip.Addr
	a6, b6 netip.Addr
}

func newRouted(t *testing.T) routed {
	t.Helper()
	ctx := labtest.Context(t, time.Minute)
	pfx := netip.MustParsePrefix
	l, _ := labtest.LAN(t,
		lab.HostSpec{Name: "a", Addrs: []netip.Prefix{pfx("198.51.100.21/24"), pfx("2001:db8:1::21/64")}},
		lab.HostSpec{Name: "r", Addrs: []netip.Prefix{pfx("198.51.100.1/24"), pfx("2001:db8:1::1/64")}})
	lan2, err := l.AddLAN(ctx, "lan2",
		lab.HostSpec{Name: "r", Ifname: "eth1", Addrs: []netip.Prefix{pfx("203.0.113.1/24"), pfx("2001:db8:2::1/64")}},
		lab.HostSpec{Name: "b", Addrs: []netip.Prefix{pfx("203.0.113.22/24"), pfx("2001:db8:2::22/64")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Host("r").EnableForwarding(ctx, true, true); err != nil {
		t.Fatal(err)
	}
	a, b := l.Host("a"), l.Host("b")
	for _, rt := range []struct {
		ns  *lab.Netns
		dst string
		via string
	}{
		{a, "203.0.113.0/24", "198.51.100.1"}, {a, "2001:db8:2::/64", "2001:db8:1::1"},
		{b, "198.51.100.0/24", "203.0.113.1"}, {b, "2001:db8:1::/64", "2001:db8:2::1"},
	} {
		if err := rt.ns.AddRoute(ctx, pfx(rt.dst), netip.MustParseAddr(rt.via)); err != nil {
			t.Fatal(err)
		}
	}
	return routed{lan2: lan2, a: a, b: b,
		a4: netip.MustParseAddr("198.51.100.21"), b4: netip.MustParseAddr("203.0.113.22"),
		a6: netip.MustParseAddr("2001:db8:1::21"), b6: netip.MustParseAddr("2001:db8:2::22")}
}

func (r routed) addrs(fam int) (a, b netip.Addr) {
	if fam == 6 {
		return r.a6, r.b6
	}
	return r.a4, r.b4
}

func addMultihop(t *testing.T, m *bfd.Manager, local, peer netip.Addr) bfd.Key {
	t.Helper()
	k := bfd.Key{Peer: peer, Local: local, Multihop: true}
	if err := m.Add(bfd.SessionConfig{Key: k, Config: fastCfg()}); err != nil {
		t.Fatal(err)
	}
	return k
}

// TestMultihop: RFC 5883 sessions across a router come Up between two
// bgplb endpoints and with FRR's bfdd, and go Down when the far link is
// cut; a single-hop session across the router never comes Up, because
// its packets arrive with TTL 254 (RFC 5881 §5).
func TestMultihop(t *testing.T) {
	for _, fam := range []int{4, 6} {
		t.Run(fmt.Sprintf("bgplb/ipv%d", fam), func(t *testing.T) {
			r := newRouted(t)
			la, lb := r.addrs(fam)
			ma, mb := manager(t, r.a), manager(t, r.b)
			ka := addMultihop(t, ma, la, lb)
			addMultihop(t, mb, lb, la)
			multihopUpDown(t, r, ma, ka, nil, la)
		})
		t.Run(fmt.Sprintf("frr/ipv%d", fam), func(t *testing.T) {
			labtest.RequireBinaries(t, "/usr/lib/frr/bfdd", "/usr/lib/frr/zebra", "vtysh")
			r := newRouted(t)
			la, lb := r.addrs(fam)
			ctx := labtest.Context(t, time.Minute)
			d, err := daemons.StartFRRBFD(ctx, r.b, []daemons.BFDPeer{{Peer: la, Local: lb, Multihop: true, Interval: 50 * ms}})
			labtest.SkipIfNotInstalled(t, err)
			t.Cleanup(func() { d.Stop() })
			ma := manager(t, r.a)
			ka := addMultihop(t, ma, la, lb)
			multihopUpDown(t, r, ma, ka, d, la)
		})
	}
	t.Run("single hop across a router", func(t *testing.T) {
		r := newRouted(t)
		ma, mb := manager(t, r.a), manager(t, r.b)
		ka := add(t, ma, r.a4, r.b4, fastCfg())
		add(t, mb, r.b4, r.a4, fastCfg())
		ctx := labtest.Context(t, 30*time.Second)
		if err := lab.Poll(ctx, 10*ms, func() (bool, error) {
			s, _ := ma.Status(ka)
			return s.DroppedTTL >= 2, nil
		}); err != nil {
			s, _ := ma.Status(ka)
			t.Fatalf("no TTL drops: %v; %+v", err, s)
		}
		if s, _ := ma.Status(ka); s.State != bfd.Down || s.PacketsIn != 0 {
			t.Errorf("single hop across a router: %+v", s)
		}
	})
}

func multihopUpDown(t *testing.T, r routed, m *bfd.Manager, k bfd.Key, d daemons.BFDDaemon, peer netip.Addr) {
	t.Helper()
	ctx := labtest.Context(t, time.Minute)
	ev := subscribe(t, m, k)
	if _, err := waitState(ev, bfd.Up, 5*time.Second); err != nil {
		s, _ := m.Status(k)
		t.Fatalf("%v; %+v", err, s)
	}
	if d != nil {
		if err := daemons.WaitBFD(ctx, d, peer, "up"); err != nil {
			t.Fatal(err)
		}
	}
	cut := time.Now()
	if err := r.lan2.SetLink(ctx, "b", false); err != nil {
		t.Fatal(err)
	}
	down, err := waitState(ev, bfd.Down, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Down %v after the cut", down.At.Sub(cut))
	if took := down.At.Sub(cut); took >= detectionBound {
		t.Errorf("Down after %v, want well under %v (detection 150 ms)", took, detectionBound)
	}
	if d != nil {
		if err := daemons.WaitBFD(ctx, d, peer, "down"); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.lan2.SetLink(ctx, "b", true); err != nil {
		t.Fatal(err)
	}
	if _, err := waitState(ev, bfd.Up, 5*time.Second); err != nil {
		t.Fatalf("after heal: %v", err)
	}
}
