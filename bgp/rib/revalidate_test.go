package rib

import (
	"net/netip"
	"slices"
	"testing"
)

// reachMap is a Config.NextHop over a map the test edits between
// Revalidates.
type reachMap map[netip.Addr]uint8

func (m reachMap) check(_ *Peer, nh netip.Addr) uint8 { return m[nh] }

func revalidate(r *RIB) (int, []Change) {
	var got []Change
	n := r.Revalidate(func(c *Changes) {
		for _, ch := range c.List {
			ch.Paths = slices.Clone(ch.Paths)
			got = append(got, ch)
		}
	})
	return n, got
}

// TestRevalidate: a path whose next hop the daemon finds unreachable stays
// in the RIB, shown with the daemon's reason, but leaves its ECMP set, and
// comes back when the next hop does.
func TestRevalidate(t *testing.T) {
	n1, n2 := node(11), node(12)
	reach := reachMap{}
	r := newRIB(t, Config{NextHop: reach.check}, n1, n2)
	lone := netip.MustParsePrefix("203.0.113.20/32")
	announce(t, r, n1, vip4, seedAttrs())
	announce(t, r, n2, vip4, seedAttrs())
	announce(t, r, n2, lone, seedAttrs())

	type step struct {
		name    string
		edit    func()
		flipped int
		changes map[netip.Prefix][]netip.Addr // next hops of the new ECMP sets
	}
	for _, s := range []step{
		{"nothing changed", func() {}, 0, nil},
		{"node 12 unreachable", func() { reach[n2.Addr] = 7 }, 1, map[netip.Prefix][]netip.Addr{
			vip4: {n1.Addr}, lone: nil}},
		{"another reason, still unreachable", func() { reach[n2.Addr] = 8 }, 0, nil},
		{"an unused next hop", func() { reach[netip.MustParseAddr("198.51.100.99")] = 7 }, 0, nil},
		{"node 12 back", func() { delete(reach, n2.Addr) }, 1, map[netip.Prefix][]netip.Addr{
			vip4: {n1.Addr, n2.Addr}, lone: {n2.Addr}}},
	} {
		s.edit()
		n, got := revalidate(r)
		if n != s.flipped || len(got) != len(s.changes) {
			t.Fatalf("%s: %d sources flipped, changes %v; want %d, %v", s.name, n, got, s.flipped, s.changes)
		}
		for _, c := range got {
			want, ok := s.changes[c.Prefix]
			if !ok || !slices.Equal(nextHops(c.Paths), want) {
				t.Fatalf("%s: change %v via %v, want %v", s.name, c.Prefix, nextHops(c.Paths), want)
			}
		}
		checkInvariants(t, r)
	}

	// Unreachable from the start: a new source (peer, attributes, next
	// hop) asks at once.
	via := netip.MustParseAddr("198.51.100.50")
	reach[via] = 9
	p := netip.MustParsePrefix("203.0.113.21/32")
	if cs := announceVia(t, r, n1, p, seedAttrs(), via); len(cs) != 0 {
		t.Fatalf("a path via an unreachable next hop was selected: %v", cs)
	}
	vs := r.Lookup(p)
	if len(vs) != 1 || vs[0].ECMP || vs[0].Invalid != InvalidUnreachable || vs[0].NextHopVerdict != 9 || vs[0].Reason != ReasonInvalid {
		t.Fatalf("unreachable path shown as %+v", vs)
	}
	if got := vs[0].Invalid.String(); got != "unreachable next hop" {
		t.Fatalf("Invalid %q", got)
	}
	st, _ := r.PeerStats(n1.ID)
	if st.IPv4 != (Counts{Received: 2, Accepted: 1, Selected: 1}) {
		t.Fatalf("peer 11 counts %+v", st.IPv4)
	}
	if rcv, acc, _ := r.PeerTotals(n1.ID); rcv != 2 || acc != 1 {
		t.Fatalf("peer 11 totals %d/%d", rcv, acc)
	}
	// And the reason shown follows the daemon's newest verdict.
	reach[via] = 10
	revalidate(r)
	if vs := r.Lookup(p); vs[0].NextHopVerdict != 10 {
		t.Fatalf("verdict %d after revalidation, want 10", vs[0].NextHopVerdict)
	}
	checkInvariants(t, r)
}
