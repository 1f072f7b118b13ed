package fib

import (
	"errors"
	"strings"
	"testing"
)

// Namespace tests of link-local gateways with an interface: two LANs, d0
// and e0, each with fe80::/64 and a node at fe80::2 (the same address on
// both), so that only the zone says which LAN a route goes to. ipRoutes
// reads link-local gateways with their device as the zone: a route on the
// wrong device does not compare equal.

// twoLANs adds the second LAN, e0 (peer e1), to a test namespace, with the
// router at fe80::1 and a node at fe80::2 on both LANs.
func twoLANs(tb testing.TB) *testNS {
	tb.Helper()
	ns := newNS(tb)
	ns.addLAN(tb, "e0", "e1")
	for _, dev := range []string{"d0", "e0"} {
		ns.ip(tb, "addr", "add", "fe80::1/64", "dev", dev, "nodad")
	}
	ns.ip(tb, "addr", "add", "fe80::2/64", "dev", "d1", "nodad")
	return ns
}

// addLAN adds a veth pair, up, and the node's fe80::2 on its far end.
func (ns *testNS) addLAN(tb testing.TB, dev, peer string) {
	tb.Helper()
	ns.ip(tb, "link", "add", dev, "type", "veth", "peer", "name", peer)
	for _, d := range []string{dev, peer} {
		ns.ip(tb, "link", "set", d, "addrgenmode", "none")
		ns.ip(tb, "link", "set", d, "up")
	}
	ns.waitUp(tb, dev, peer)
	ns.ip(tb, "addr", "add", "fe80::2/64", "dev", peer, "nodad")
}

// renameLink renames a link (it must be down for that) and brings it up.
func (ns *testNS) renameLink(tb testing.TB, from, to string) {
	tb.Helper()
	ns.ip(tb, "link", "set", from, "down")
	ns.ip(tb, "link", "set", from, "name", to)
	ns.ip(tb, "link", "set", to, "up")
	ns.waitUp(tb, to)
}

func (ns *testNS) ifindex(tb testing.TB, dev string) string {
	tb.Helper()
	i, _, ok := strings.Cut(ns.ip(tb, "-o", "link", "show", dev), ":")
	if !ok {
		tb.Fatalf("no index for %s", dev)
	}
	return i
}

// linkLocalRoutes mixes gateways on both LANs, IPv4 over link-local (RFC
// 8950), and ECMP sets of link-local and global gateways.
var linkLocalRoutes = []Route{
	route("2001:db8:200::1/128", "fe80::2%d0"),
	route("2001:db8:200::2/128", "fe80::2%e0"),
	route("2001:db8:200::3/128", "fe80::3%e0"),
	route("203.0.113.10/32", "fe80::2%e0"),
	route("2001:db8:200::4/128", "fe80::2%d0", "fe80::2%e0", "2001:db8::2"),
	route("203.0.113.11/32", "fe80::2%d0*1", "fe80::3%e0*2", "198.51.100.2*1"),
}

// checkEqual holds Check to an exact match with unusable desired routes.
func checkEqual(t *testing.T, f *FIB, unusable int) {
	t.Helper()
	r, err := f.Check(testCtx(t))
	if err != nil || !r.Equal() || r.Unusable != unusable {
		t.Errorf("Check: %+v %v, want equal with %d unusable", r, err, unusable)
	}
}

// TestLinkLocalGateways installs routes through the same link-local
// address on two LANs and checks that each lands on its zone's device, that
// the kernel read back equals the desired state (Check, and Sync writes
// nothing), and that a restart adopts the routes as they are.
func TestLinkLocalGateways(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ns := twoLANs(t)
			f := ns.open(t, Config{NextHopObjects: m.mode})
			res := setTo(t, f, linkLocalRoutes)
			if res.Added != len(linkLocalRoutes) || len(res.Failed) > 0 || len(res.Degraded) > 0 {
				t.Fatalf("Apply: %+v", res)
			}
			checkKernel(t, ns, f, linkLocalRoutes)
			if out := ns.ip(t, "-6", "route", "get", "2001:db8:200::2"); !strings.Contains(out, "dev e0") {
				t.Errorf("ip route get 2001:db8:200::2: %s", out)
			}
			checkEqual(t, f, 0)

			// Read back, the kernel equals the desired state: nothing to
			// repair, nothing written.
			before := f.Stats()
			if _, err := f.Sync(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Apply(testCtx(t), Diff(nil, linkLocalRoutes)); err != nil {
				t.Fatal(err)
			}
			if after := f.Stats(); after.Writes != before.Writes || after.Repairs != before.Repairs {
				t.Errorf("a Sync and the same Apply wrote %d routes, repaired %d",
					after.Writes-before.Writes, after.Repairs-before.Repairs)
			}

			// A restart adopts them under the same gateways: the peers'
			// routes coming back write nothing.
			f.Close()
			f = ns.open(t, Config{NextHopObjects: m.mode})
			if res, err := f.Apply(testCtx(t), Diff(nil, linkLocalRoutes)); err != nil || res.Replaced != len(linkLocalRoutes) {
				t.Fatalf("Apply after restart: %+v %v", res, err)
			}
			if _, err := f.EndGrace(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			if w := f.Stats().Writes; w != 0 {
				t.Errorf("restart wrote %d routes", w)
			}
			checkKernel(t, ns, f, linkLocalRoutes)
			checkEqual(t, f, 0)
		})
	}
}

// TestLinkLocalInterfaceChanges deletes routes, moves one to the other LAN,
// renames and deletes a gateway's interface under Maintain: routes come
// back on their interface, and while it is gone they are not in the
// kernel, nor ever on another interface (the renamed one).
func TestLinkLocalInterfaceChanges(t *testing.T) {
	all := []Route{
		route("2001:db8:200::1/128", "fe80::2%e0"),
		route("2001:db8:200::2/128", "fe80::2%d0", "fe80::3%e0"),
		route("203.0.113.10/32", "fe80::2%d0", "fe80::2%e0"),
		route("2001:db8:200::3/128", "fe80::2%d0"),
	}
	withoutE0 := []Route{
		route("2001:db8:200::2/128", "fe80::2%d0"),
		route("203.0.113.10/32", "fe80::2%d0"),
		route("2001:db8:200::3/128", "fe80::2%d0"),
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ns := twoLANs(t)
			f := ns.open(t, Config{NextHopObjects: m.mode})
			maintain(t, f, MaintainOptions{})
			if _, err := f.Apply(testCtx(t), Diff(nil, all)); err != nil {
				t.Fatal(err)
			}
			// Until the kernel has what is wanted and the FIB agrees: the
			// kernel flushes the routes of a link that goes down before
			// the FIB sees it. Objects are checked only with every
			// gateway usable: a degraded group keeps its other members.
			waitKernel := func(want []Route, unusable int) {
				t.Helper()
				want = canonicalRoutes(want)
				waitFor(t, repairBound, func() bool {
					r, err := f.Check(testCtx(t))
					return err == nil && r.Equal() && r.Unusable == unusable &&
						routesEqual(ns.ipRoutes(t, 254, "bgp", 20), want)
				})
				checkRoutes(t, ns, f, want)
				if unusable == 0 {
					checkObjects(t, ns, f, want)
				}
			}
			waitKernel(all, 0)

			ns.ip(t, "-6", "route", "del", "2001:db8:200::1/128", "proto", "bgp", "metric", "20")
			ns.ip(t, "route", "del", "203.0.113.10/32", "proto", "bgp", "metric", "20")
			waitKernel(all, 0)

			// Moved to the other LAN behind our back: moved back.
			ns.ip(t, "-6", "route", "replace", "2001:db8:200::3/128", "via", "fe80::2", "dev", "e0", "proto", "bgp", "metric", "20")
			waitKernel(all, 0)

			ns.renameLink(t, "e0", "e9")
			waitKernel(withoutE0, 1)
			if out := ns.ip(t, "route", "show", "table", "all", "dev", "e9"); strings.Contains(out, "bgp") {
				t.Errorf("routes on the renamed interface:\n%s", out)
			}
			ns.renameLink(t, "e9", "e0")
			waitKernel(all, 0)

			ns.ip(t, "link", "del", "e0")
			waitKernel(withoutE0, 1)
			ns.addLAN(t, "e0", "e1")
			waitKernel(all, 0)
		})
	}
}

// TestLinkLocalBadZones gives link-local gateways no interface, one that
// does not exist, and one by its index: the first is refused, the second
// unusable until an interface of that name appears, the third installed.
func TestLinkLocalBadZones(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ns := twoLANs(t)
			f := ns.open(t, Config{NextHopObjects: m.mode})
			maintain(t, f, MaintainOptions{})
			d0 := ns.ifindex(t, "d0")
			res, err := f.Apply(testCtx(t), []Change{
				change("2001:db8:200::1/128", "fe80::2"),
				change("2001:db8:200::2/128", "fe80::2%lan7"),
				change("2001:db8:200::3/128", "fe80::2%lan7", "2001:db8::2"),
				change("2001:db8:200::4/128", "fe80::2", "fe80::3%e0"),
				change("2001:db8:200::5/128", "fe80::4%"+d0),
			})
			if !errors.Is(err, ErrPartial) || len(res.Failed) != 2 ||
				!errors.Is(res.Failed[0].Err, ErrInvalidRoute) || !errors.Is(res.Failed[1].Err, ErrGatewayNotOnLink) ||
				!strings.Contains(res.Failed[1].Err.Error(), "lan7") {
				t.Fatalf("Apply: %+v %v", res, err)
			}
			if len(res.Degraded) != 2 || res.Degraded[0].Addr != mustAddr("fe80::2") ||
				res.Degraded[1].Addr != mustAddr("fe80::2%lan7") {
				t.Errorf("Degraded: %+v", res.Degraded)
			}
			want := []Route{
				route("2001:db8:200::3/128", "2001:db8::2"),
				route("2001:db8:200::4/128", "fe80::3%e0"),
				route("2001:db8:200::5/128", "fe80::4%d0"),
			}
			checkRoutes(t, ns, f, want)
			checkEqual(t, f, 1)
			before := f.Stats()
			if _, err := f.Sync(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			if after := f.Stats(); after.Writes != before.Writes {
				t.Errorf("Sync wrote %d routes", after.Writes-before.Writes)
			}

			ns.addLAN(t, "lan7", "lan7p")
			want = []Route{
				route("2001:db8:200::2/128", "fe80::2%lan7"),
				route("2001:db8:200::3/128", "fe80::2%lan7", "2001:db8::2"),
				route("2001:db8:200::4/128", "fe80::3%e0"),
				route("2001:db8:200::5/128", "fe80::4%d0"),
			}
			waitFor(t, repairBound, func() bool {
				return routesEqual(ns.ipRoutes(t, 254, "bgp", 20), canonicalRoutes(want))
			})
			checkRoutes(t, ns, f, want)
			checkEqual(t, f, 0)
		})
	}
}
