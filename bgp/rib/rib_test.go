package rib

import (
	"errors"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
)

func TestErrors(t *testing.T) {
	r := newRIB(t, Config{}, node(11))
	nh := node(11).Addr
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"unknown peer", r.Update(99, wire.IPv4Unicast, attrs(), nh, nlri(vip4), nil, nil), ErrUnknownPeer},
		{"IPv6 prefix as IPv4", r.Update(11, wire.IPv4Unicast, attrs(), nh, nlri(vip6), nil, nil), ErrFamily},
		{"IPv4 withdrawal as IPv6", r.Update(11, wire.IPv6Unicast, nil, nh, nil, nlri(vip4), nil), ErrFamily},
		{"invalid prefix", r.Update(11, wire.IPv4Unicast, attrs(), nh, []wire.NLRI{{}}, nil, nil), ErrFamily},
		{"multicast", r.Update(11, wire.Family{AFI: wire.AFIIPv4, SAFI: wire.SAFIMulticast}, attrs(), nh, nlri(vip4), nil, nil), ErrFamily},
		{"no attributes", r.Update(11, wire.IPv4Unicast, nil, nh, nlri(vip4), nil, nil), ErrNoAttrs},
		{"peer added twice", r.AddPeer(node(11)), ErrPeerExists},
		{"peer without address", r.AddPeer(Peer{ID: 1, AS: 1, RouterID: ourID}), ErrBadPeer},
		{"peer with IPv6 router ID", r.AddPeer(Peer{ID: 1, AS: 1, Addr: ourID, RouterID: netip.MustParseAddr("2001:db8::1")}), ErrBadPeer},
		{"peer in AS 0", r.AddPeer(Peer{ID: 1, Addr: ourID, RouterID: ourID}), ErrBadPeer},
		{"unknown peer removed", r.RemovePeer(99, nil), ErrUnknownPeer},
		{"unknown peer's Adj-RIB-In", r.AdjRIBIn(99, wire.IPv4Unicast, nil), ErrUnknownPeer},
	}
	for _, tc := range tests {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	// A refused call changes nothing, even in part.
	if err := r.Update(11, wire.IPv4Unicast, attrs(), nh, nlri(vip4, vip6), nil, nil); !errors.Is(err, ErrFamily) {
		t.Fatal(err)
	}
	if vs := r.Lookup(vip4); vs != nil {
		t.Fatalf("half of a refused update applied: %s", describe(vs))
	}
	if err := r.RemovePeer(11, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Update(11, wire.IPv4Unicast, attrs(), nh, nlri(vip4), nil, nil); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("update after removal: %v", err)
	}
	if err := r.AddPeer(node(11)); err != nil {
		t.Fatalf("peer added again: %v", err)
	}
}

// TestReplaceAndAge: re-announcing a route unchanged changes nothing, not
// even its age; changing its attributes or next hop replaces it.
func TestReplaceAndAge(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	start := now
	r := newRIB(t, Config{Now: func() time.Time { return now }}, node(11), node(12))
	n1 := node(11)
	since := func() time.Time { return r.Lookup(vip4)[0].Since }

	announce(t, r, n1, vip4, seedAttrs())
	now = now.Add(90 * time.Second)
	if got := announce(t, r, n1, vip4, seedAttrs()); len(got) != 0 {
		t.Fatalf("unchanged re-announcement: %v", got)
	}
	if !since().Equal(start) {
		t.Fatalf("age reset by an unchanged re-announcement: %v", since())
	}
	if got := announce(t, r, n1, vip4, attrs(withMED(3))); len(got) != 1 || got[0].Paths[0].Attrs.MED != 3 {
		t.Fatalf("new attributes: %v", got)
	}
	if !since().Equal(start.Add(90 * time.Second)) {
		t.Fatalf("age %v after a change", since())
	}
	other := netip.MustParseAddr("198.51.100.99")
	if got := announceVia(t, r, n1, vip4, attrs(withMED(3)), other); len(got) != 1 || got[0].Paths[0].NextHop != other {
		t.Fatalf("new next hop: %v", got)
	}
	// The same with two paths on the prefix.
	announce(t, r, node(12), vip4, attrs(withMED(3)))
	now = now.Add(time.Hour)
	if got := announceVia(t, r, n1, vip4, attrs(withMED(3)), other); len(got) != 0 {
		t.Fatalf("unchanged re-announcement: %v", got)
	}
	if got := announce(t, r, n1, vip4, attrs(withMED(3))); len(got) != 1 || len(got[0].Paths) != 2 {
		t.Fatalf("next hop back: %v", got)
	}
	if vs := r.Lookup(vip4); len(vs) != 2 || !vs[0].Since.Equal(now.Truncate(time.Second)) {
		t.Fatalf("%s since %v", describe(vs), vs[0].Since)
	}
	// Withdrawing what is not there is no change.
	if got := withdraw(t, r, node(12), netip.MustParsePrefix("203.0.113.99/32")); len(got) != 0 {
		t.Fatalf("withdrawing nothing: %v", got)
	}
	checkInvariants(t, r)
}

// TestIPv6AndAddPath: the IPv6 Loc-RIB, and ADD-PATH paths of one peer
// sharing an ECMP set.
func TestIPv6AndAddPath(t *testing.T) {
	p := node(11)
	r := newRIB(t, Config{}, p)
	nh := netip.MustParseAddr("2001:db8::11")
	var out Changes
	ann := []wire.NLRI{{Prefix: vip6, PathID: 1}, {Prefix: vip6, PathID: 2}, {Prefix: netip.MustParsePrefix("2001:db8:100::ff/120"), PathID: 7}}
	if err := r.Update(p.ID, wire.IPv6Unicast, seedAttrs(), nh, ann, nil, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.List) != 3 {
		t.Fatalf("changes %v", out.List)
	}
	if vs := ecmp(r, vip6); len(vs) != 2 || vs[0].PathID != 1 || vs[1].PathID != 2 {
		t.Fatalf("ECMP set %s", describe(vs))
	}
	// Host bits are cleared.
	if vs := r.Lookup(netip.MustParsePrefix("2001:db8:100::ff/120")); len(vs) != 1 || vs[0].PathID != 7 {
		t.Fatalf("%s", describe(vs))
	}
	out.Reset()
	if err := r.Update(p.ID, wire.IPv6Unicast, nil, netip.Addr{}, nil, []wire.NLRI{{Prefix: vip6, PathID: 1}}, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.List) != 1 || len(out.List[0].Paths) != 1 || out.List[0].Paths[0].PathID != 2 {
		t.Fatalf("changes %v", out.List)
	}
	if s := r.Stats(); s.IPv6Prefixes != 2 || s.IPv6Paths != 2 || s.IPv4Prefixes != 0 || s.Peers[0].IPv6.Selected != 2 {
		t.Fatalf("stats %+v", s)
	}
	checkInvariants(t, r)
}

// TestViews: Walk, AdjRIBIn and Stats agree with what was announced.
func TestViews(t *testing.T) {
	n1, n2 := node(11), node(12)
	r := newRIB(t, Config{}, n1, n2)
	var pfxs []netip.Prefix
	for i := range 200 {
		pfxs = append(pfxs, netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), 32))
	}
	var out Changes
	if err := r.Update(n1.ID, wire.IPv4Unicast, seedAttrs(), n1.Addr, nlri(pfxs...), nil, &out); err != nil {
		t.Fatal(err)
	}
	if err := r.Update(n2.ID, wire.IPv4Unicast, attrs(withLocalPref(50)), n2.Addr, nlri(pfxs[:50]...), nil, &out); err != nil {
		t.Fatal(err)
	}
	walked := 0
	r.Walk(wire.IPv4Unicast, func(p netip.Prefix, vs []PathView) bool {
		walked++
		want := 1
		if slices.Contains(pfxs[:50], p) {
			want = 2
		}
		if len(vs) != want || vs[0].Peer != n1.ID || !vs[0].Best {
			t.Fatalf("%v: %s", p, describe(vs))
		}
		return true
	})
	if walked != 200 {
		t.Fatalf("walked %d prefixes", walked)
	}
	stopped := 0
	r.Walk(wire.IPv4Unicast, func(netip.Prefix, []PathView) bool { stopped++; return stopped < 3 })
	if stopped != 3 {
		t.Fatalf("walk went on after false: %d", stopped)
	}
	r.Walk(wire.IPv6Unicast, func(p netip.Prefix, _ []PathView) bool { t.Fatalf("IPv6 walk found %v", p); return true })
	adj := 0
	if err := r.AdjRIBIn(n2.ID, wire.IPv4Unicast, func(p netip.Prefix, v PathView) bool {
		adj++
		if v.Peer != n2.ID || v.ECMP || v.Reason != ReasonLocalPref || !slices.Contains(pfxs[:50], p) {
			t.Fatalf("%v: %s", p, describe([]PathView{v}))
		}
		return true
	}); err != nil || adj != 50 {
		t.Fatalf("Adj-RIB-In of peer 12: %d paths, %v", adj, err)
	}
	s := r.Stats()
	want := []PeerStats{
		{Peer: r.peers[11].peer, IPv4: Counts{Received: 200, Accepted: 200, Selected: 200}},
		{Peer: r.peers[12].peer, IPv4: Counts{Received: 50, Accepted: 50}},
	}
	if !slices.Equal(s.Peers, want) || s.IPv4Prefixes != 200 || s.IPv4Paths != 250 || s.AttrSets != 2 {
		t.Fatalf("stats %+v", s)
	}
}

// TestRemovePeerBatches: a peer-down hands its changes over in bounded
// batches, each prefix once.
func TestRemovePeerBatches(t *testing.T) {
	p := node(11)
	r := newRIB(t, Config{}, p)
	routes := hostRoutes(50000)
	var out Changes
	for _, m := range chunks(routes, 800) {
		out.Reset()
		if err := r.Update(p.ID, wire.IPv4Unicast, seedAttrs(), p.Addr, m, nil, &out); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[netip.Prefix]bool{}
	batches := 0
	err := r.RemovePeer(p.ID, func(c *Changes) {
		batches++
		if len(c.List) > removeBatch+len(routes)/len(r.v4.shards)*2 {
			t.Errorf("batch of %d", len(c.List))
		}
		for _, ch := range c.List {
			if seen[ch.Prefix] || len(ch.Paths) != 0 {
				t.Fatalf("change %v", ch)
			}
			seen[ch.Prefix] = true
		}
	})
	if err != nil || len(seen) != len(routes) || batches < 2 {
		t.Fatalf("%d prefixes in %d batches, %v", len(seen), batches, err)
	}
	if s := r.Stats(); s.IPv4Prefixes != 0 || s.AttrSets != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestMapsShrink: maps emptied by withdrawals are rebuilt small, or a
// million withdrawn routes would stay resident.
func TestMapsShrink(t *testing.T) {
	n1, n2 := node(11), node(12)
	routes := hostRoutes(100000)
	base := heapInuse()
	r := newRIB(t, Config{}, n1, n2)
	load := func(p Peer) {
		for _, m := range chunks(routes, 800) {
			if err := r.Update(p.ID, wire.IPv4Unicast, seedAttrs(), p.Addr, m, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	high := func() (one, many int) {
		for i := range r.v4.shards {
			one += r.v4.shards[i].oneHigh
			many += r.v4.shards[i].twoHigh + r.v4.shards[i].manyHigh
		}
		return one, many
	}
	load(n1)
	if one, _ := high(); one != len(routes) {
		t.Fatalf("high-water mark %d", one)
	}
	load(n2) // every prefix moves to the multi-path map
	if one, many := high(); one > len(routes)/2 || many != len(routes) {
		t.Fatalf("single-path map not rebuilt: marks %d %d", one, many)
	}
	full := heapInuse()
	for _, m := range chunks(routes, 800) {
		if err := r.Update(n1.ID, wire.IPv4Unicast, nil, netip.Addr{}, nil, m, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, many := high(); many > len(routes)/2 {
		t.Fatalf("multi-path map not rebuilt: mark %d", many)
	}
	removePeer(t, r, n2.ID)
	if one, many := high(); one > len(r.v4.shards)*shrinkFloor || many > len(r.v4.shards)*shrinkFloor {
		t.Fatalf("maps not rebuilt after peer down: marks %d %d", one, many)
	}
	checkInvariants(t, r)
	// The heap itself went back down.
	if left, loaded := int64(heapInuse())-int64(base), int64(full)-int64(base); left > loaded/20 {
		t.Fatalf("%d bytes still in use after every route went; %d when loaded", left, loaded)
	}
	runtime.KeepAlive(r)
}

// TestChangesBuffer: one Changes gathers several calls, and Reset reuses
// its buffers.
func TestChangesBuffer(t *testing.T) {
	r := newRIB(t, Config{}, node(11), node(12))
	var out Changes
	for _, n := range []Peer{node(11), node(12)} {
		if err := r.Update(n.ID, wire.IPv4Unicast, seedAttrs(), n.Addr, nlri(vip4), nil, &out); err != nil {
			t.Fatal(err)
		}
	}
	if len(out.List) != 2 || len(out.List[0].Paths) != 1 || len(out.List[1].Paths) != 2 || out.List[1].Seq <= out.List[0].Seq {
		t.Fatalf("changes %v", out.List)
	}
	first := &out.views[0]
	out.Reset()
	if len(out.List) != 0 {
		t.Fatal("not reset")
	}
	withdraw(t, r, node(12), vip4)
	if err := r.Update(11, wire.IPv4Unicast, nil, netip.Addr{}, nil, nlri(vip4), &out); err != nil {
		t.Fatal(err)
	}
	if err := r.Update(11, wire.IPv4Unicast, seedAttrs(), node(11).Addr, nlri(vip4), nil, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.List) != 2 || &out.List[1].Paths[0] != first {
		t.Fatal("buffers not reused")
	}
}
