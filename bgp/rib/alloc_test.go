package rib

import (
	"net/netip"
	"testing"

	"github.com/bgplb/bgplb/bgp/wire"
)

// TestUpdateAllocs: once the RIB holds the attribute sets in use and the
// maps have grown, the UPDATEs of a running session allocate nothing, per
// prefix or per message, with one exception: a prefix that gains a third
// path gets its path slice (two are held inline).
func TestUpdateAllocs(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("instrumented builds allocate")
	}
	n1, n2, n3 := node(11), node(12), node(13)
	r := newRIB(t, Config{}, n1, n2, n3)
	routes := hostRoutes(4000)
	msg := routes[:800]
	other := netip.MustParseAddr("198.51.100.99")
	a1, a2 := seedAttrs(), attrs(withMED(5))
	var out Changes
	update := func(p Peer, a *wire.Attrs, nh netip.Addr, ann, wd []wire.NLRI) {
		out.Reset()
		if err := r.Update(p.ID, wire.IPv4Unicast, a, nh, ann, wd, &out); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range chunks(routes, 800) {
		update(n1, a1, n1.Addr, m, nil)
	}
	update(n2, a1, n2.Addr, routes[800:1600], nil) // two-path prefixes
	// Keep the other attributes and next hop in use, so that switching to
	// them finds them interned.
	update(n1, a2, other, routes[3999:], nil)
	update(n2, a1, n2.Addr, routes[3998:3999], nil)

	tests := []struct {
		name string
		run  func()
	}{
		{"same routes again", func() { update(n1, a1, n1.Addr, msg, nil) }},
		{"withdraw and announce again", func() {
			update(n1, nil, netip.Addr{}, nil, msg)
			update(n1, a1, n1.Addr, msg, nil)
		}},
		{"change attributes and back", func() {
			update(n1, a2, other, msg, nil)
			update(n1, a1, n1.Addr, msg, nil)
		}},
		{"ECMP sets change", func() {
			update(n1, a2, other, routes[800:1600], nil)
			update(n1, a1, n1.Addr, routes[800:1600], nil)
		}},
	}
	for _, tc := range tests {
		if n := testing.AllocsPerRun(20, tc.run); n != 0 {
			t.Errorf("%s: %v allocations", tc.name, n)
		}
	}
	// Gaining a second path costs nothing; the exception, exactly: one
	// slice per prefix that gains a third.
	for _, p := range []Peer{n1, n2, n3} {
		want := 0.0
		if p == n3 {
			// A three-path prefix that stays keeps the multi-path map
			// from being rebuilt when the others leave it.
			want = 800
			update(n3, a1, n3.Addr, routes[3998:3999], nil)
			update(n3, a1, n3.Addr, routes[800:1600], nil)
		}
		again := func() {
			update(p, nil, netip.Addr{}, nil, routes[800:1600])
			update(p, a1, p.Addr, routes[800:1600], nil)
		}
		if n := testing.AllocsPerRun(20, again); n != want {
			t.Errorf("800 prefixes losing and gaining a path (peer %d): %v allocations, want %v", p.ID, n, want)
		}
	}
	checkInvariants(t, r)
}
