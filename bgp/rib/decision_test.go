package rib

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/bgplb/bgplb/bgp/wire"
)

// offer is one peer announcing vip4 with some attributes.
type offer struct {
	peer  Peer
	attrs *wire.Attrs
	id    uint32 // ADD-PATH identifier
}

func (o offer) String() string { return fmt.Sprintf("peer %d id %d", o.peer.ID, o.id) }

// TestTieBreakers has one case per step of the decision process: two paths
// that differ only in what that step looks at. Each is announced in both
// orders; the same path must win, for the stated reason, and the ECMP set
// must be as stated.
func TestTieBreakers(t *testing.T) {
	for _, tc := range tieBreakers {
		t.Run(tc.name, func(t *testing.T) {
			for _, order := range [][2]offer{{tc.win, tc.lose}, {tc.lose, tc.win}} {
				checkTieBreaker(t, tc.policy, order, tc.win, tc.why, tc.ecmp)
			}
		})
	}
}

// sameRID is an iBGP peer with the router ID every sameRID peer has.
func sameRID(n byte, addr string) Peer {
	p := node(n)
	p.Addr = netip.MustParseAddr(addr)
	p.RouterID = netip.MustParseAddr("198.51.100.100")
	return p
}

var tieBreakers = []struct {
	name   string
	policy Policy
	win    offer
	lose   offer
	why    Reason
	ecmp   bool
}{
	{name: "higher local-pref", why: ReasonLocalPref,
		win: offer{peer: node(12), attrs: attrs(withLocalPref(200))}, lose: offer{peer: node(11), attrs: attrs(withLocalPref(100))}},
	{name: "missing local-pref is 100", why: ReasonLocalPref,
		win: offer{peer: node(12), attrs: attrs()}, lose: offer{peer: node(11), attrs: attrs(withLocalPref(99))}},
	{name: "missing local-pref is the policy's default", policy: Policy{DefaultLocalPref: 50}, why: ReasonLocalPref,
		win: offer{peer: node(12), attrs: attrs(withLocalPref(60))}, lose: offer{peer: node(11), attrs: attrs()}},
	{name: "graceful shutdown makes local-pref 0", why: ReasonLocalPref,
		win:  offer{peer: node(12), attrs: attrs(withLocalPref(1))},
		lose: offer{peer: node(11), attrs: attrs(withLocalPref(500), withCommunities(wire.CommunityGracefulShutdown))}},
	{name: "shorter AS path", why: ReasonASPathLen,
		win:  offer{peer: ebgp(22, 65002), attrs: attrs(withPath(65002))},
		lose: offer{peer: ebgp(21, 65001), attrs: attrs(withPath(65001, 65010))}},
	{name: "an AS set counts one", why: ReasonASPathLen,
		win: offer{peer: ebgp(22, 65002), attrs: attrs(withSegments(
			wire.ASSegment{Type: wire.ASSequence, ASNs: []uint32{65002}},
			wire.ASSegment{Type: wire.ASSet, ASNs: []uint32{65010, 65011, 65012}}))},
		lose: offer{peer: ebgp(21, 65001), attrs: attrs(withPath(65001, 65010, 65011))}},
	{name: "confederation segments count nothing", why: ReasonASPathLen,
		win: offer{peer: node(12), attrs: attrs(withSegments(
			wire.ASSegment{Type: wire.ASConfedSequence, ASNs: []uint32{65200, 65201, 65202}},
			wire.ASSegment{Type: wire.ASSequence, ASNs: []uint32{65010}}))},
		lose: offer{peer: node(11), attrs: attrs(withPath(65010, 65011))}},
	{name: "lower origin", why: ReasonOrigin,
		win: offer{peer: node(12), attrs: attrs(withOrigin(wire.OriginEGP))}, lose: offer{peer: node(11), attrs: attrs(withOrigin(wire.OriginIncomplete))}},
	{name: "lower MED from the same neighbour AS", why: ReasonMED,
		win:  offer{peer: ebgp(23, 65001), attrs: attrs(withPath(65001), withMED(10))},
		lose: offer{peer: ebgp(21, 65001), attrs: attrs(withPath(65001), withMED(20))}},
	{name: "missing MED is 0", why: ReasonMED,
		win:  offer{peer: ebgp(23, 65001), attrs: attrs(withPath(65001))},
		lose: offer{peer: ebgp(21, 65001), attrs: attrs(withPath(65001), withMED(1))}},
	{name: "missing MED is the worst when asked", policy: Policy{MissingMEDWorst: true}, why: ReasonMED,
		win:  offer{peer: ebgp(23, 65001), attrs: attrs(withPath(65001), withMED(1000))},
		lose: offer{peer: ebgp(21, 65001), attrs: attrs(withPath(65001))}},
	{name: "MED ignored across neighbour ASes", why: ReasonRouterID, ecmp: true,
		win:  offer{peer: ebgp(21, 65001), attrs: attrs(withPath(65001), withMED(500))},
		lose: offer{peer: ebgp(22, 65002), attrs: attrs(withPath(65002), withMED(1))}},
	{name: "MED across neighbour ASes when always compared", policy: Policy{AlwaysCompareMED: true}, why: ReasonMED,
		win:  offer{peer: ebgp(22, 65002), attrs: attrs(withPath(65002), withMED(1))},
		lose: offer{peer: ebgp(21, 65001), attrs: attrs(withPath(65001), withMED(500))}},
	{name: "MED of paths originated next door scoped to the peer AS", why: ReasonMED,
		win:  offer{peer: node(12), attrs: attrs(withMED(1))},
		lose: offer{peer: node(11), attrs: attrs(withMED(2))}},
	{name: "eBGP over iBGP", why: ReasonExternal,
		win:  offer{peer: ebgp(22, 65001), attrs: attrs(withPath(65001))},
		lose: offer{peer: node(11), attrs: attrs(withPath(65001))}},
	{name: "lower router ID", why: ReasonRouterID, ecmp: true,
		win: offer{peer: node(11), attrs: attrs()}, lose: offer{peer: node(12), attrs: attrs()}},
	{name: "originator ID stands for the router ID", why: ReasonRouterID, ecmp: true,
		win:  offer{peer: node(12), attrs: attrs()},
		lose: offer{peer: node(11), attrs: attrs(withOriginator("198.51.100.200"))}},
	{name: "shorter cluster list", why: ReasonClusterList, ecmp: true,
		win:  offer{peer: sameRID(12, "198.51.100.12"), attrs: attrs(withClusters("198.51.100.7"))},
		lose: offer{peer: sameRID(11, "198.51.100.11"), attrs: attrs(withClusters("198.51.100.7", "198.51.100.8"))}},
	{name: "lower peer address", why: ReasonPeerAddr, ecmp: true,
		win: offer{peer: sameRID(12, "198.51.100.12")}, lose: offer{peer: sameRID(11, "198.51.100.13")}},
	{name: "IPv4 peer address below IPv6", why: ReasonPeerAddr, ecmp: true,
		win: offer{peer: sameRID(12, "198.51.100.12")}, lose: offer{peer: sameRID(11, "2001:db8::1")}},
	{name: "lower ADD-PATH identifier", why: ReasonPathID, ecmp: true,
		win: offer{peer: node(11), id: 1}, lose: offer{peer: node(11), id: 2}},
}

// checkTieBreaker announces the offers in order and checks the outcome.
func checkTieBreaker(t *testing.T, pol Policy, order [2]offer, win offer, why Reason, wantECMP bool) {
	t.Helper()
	r := newRIB(t, Config{Policy: pol})
	for i, o := range order {
		if o.attrs == nil {
			o.attrs = attrs()
		}
		if i == 0 || o.peer.ID != order[0].peer.ID {
			if err := r.AddPeer(o.peer); err != nil {
				t.Fatal(err)
			}
		}
		n := []wire.NLRI{{Prefix: vip4, PathID: o.id}}
		if err := r.Update(o.peer.ID, wire.IPv4Unicast, o.attrs, o.peer.Addr, n, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	vs := r.Lookup(vip4)
	if len(vs) != 2 {
		t.Fatalf("%d paths", len(vs))
	}
	best, other := vs[0], vs[1]
	if !best.Best || best.Peer != win.peer.ID || best.PathID != win.id {
		t.Fatalf("announced %v: best is %s, want %v", order, describe(vs), win)
	}
	if best.Reason != why || other.Reason != why {
		t.Errorf("announced %v: reasons %v, %v; want %v", order, best.Reason, other.Reason, why)
	}
	if !best.ECMP || other.ECMP != wantECMP || other.Best {
		t.Errorf("announced %v: flags %s, want ECMP %v", order, describe(vs), wantECMP)
	}
}

// TestSteps checks each step function's sense on plain ranks.
func TestSteps(t *testing.T) {
	lo, hi := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	tests := []struct {
		step        func(a, b *rank) int
		better, not rank
	}{
		{byLocalPref, rank{localPref: 200}, rank{localPref: 100}},
		{byASPathLen, rank{asPathLen: 1}, rank{asPathLen: 2}},
		{byOrigin, rank{origin: wire.OriginIGP}, rank{origin: wire.OriginEGP}},
		{byMED, rank{med: 0}, rank{med: 1}},
		{byExternal, rank{external: true}, rank{external: false}},
		{byRouterID, rank{routerID: lo}, rank{routerID: hi}},
		{byClusterLen, rank{clusterLen: 0}, rank{clusterLen: 1}},
		{byPeerAddr, rank{peerAddr: lo}, rank{peerAddr: hi}},
		{byPeer, rank{peer: 1}, rank{peer: 2}},
	}
	for i, tc := range tests {
		if tc.step(&tc.better, &tc.not) >= 0 || tc.step(&tc.not, &tc.better) <= 0 || tc.step(&tc.better, &tc.better) != 0 {
			t.Errorf("step %d has the wrong sense", i)
		}
	}
	// The table is in the order of the Reason values, which equalCost
	// relies on.
	for i := 1; i < len(steps); i++ {
		if steps[i].reason <= steps[i-1].reason {
			t.Errorf("step %v after %v", steps[i].reason, steps[i-1].reason)
		}
	}
}

// TestClusterLoadShares is the seed's case: every node announces the
// service's /32 over iBGP with identical attributes but its own next hop.
// They must form one ECMP set sharing one attribute set, and the set must
// follow nodes coming and going.
func TestClusterLoadShares(t *testing.T) {
	n1, n2, n3 := node(11), node(12), node(13)
	r := newRIB(t, Config{}, n1, n2, n3)
	steps := []struct {
		do   func() []Change
		want []netip.Addr
	}{
		{func() []Change { return announce(t, r, n2, vip4, seedAttrs()) }, []netip.Addr{n2.Addr}},
		{func() []Change { return announce(t, r, n3, vip4, seedAttrs()) }, []netip.Addr{n2.Addr, n3.Addr}},
		{func() []Change { return announce(t, r, n1, vip4, seedAttrs()) }, []netip.Addr{n1.Addr, n2.Addr, n3.Addr}},
		{func() []Change { return withdraw(t, r, n1, vip4) }, []netip.Addr{n2.Addr, n3.Addr}},
		{func() []Change { return removePeer(t, r, n2.ID) }, []netip.Addr{n3.Addr}},
		{func() []Change { return withdraw(t, r, n3, vip4) }, nil},
	}
	for i, s := range steps {
		got := s.do()
		if len(got) != 1 || got[0].Prefix != vip4 || !slices.Equal(nextHops(got[0].Paths), s.want) {
			t.Fatalf("step %d: changes %v, want %v via %v", i, got, vip4, s.want)
		}
		if !slices.Equal(nextHops(ecmp(r, vip4)), s.want) {
			t.Fatalf("step %d: RIB has %s", i, describe(r.Lookup(vip4)))
		}
		if st := r.Stats(); i < 3 && st.AttrSets != 1 {
			t.Fatalf("step %d: %d attribute sets, want 1 shared", i, st.AttrSets)
		}
		checkInvariants(t, r)
	}
}

func TestMaxPaths(t *testing.T) {
	for _, tc := range []struct{ max, want int }{{0, 5}, {1, 1}, {2, 2}, {5, 5}, {6, 5}} {
		r := newRIB(t, Config{MaxPaths: tc.max})
		var last []Change
		for n := byte(15); n >= 11; n-- {
			if err := r.AddPeer(node(n)); err != nil {
				t.Fatal(err)
			}
			last = announce(t, r, node(n), vip4, seedAttrs())
		}
		got := ecmp(r, vip4)
		if len(got) != tc.want {
			t.Fatalf("MaxPaths %d: %d paths in the ECMP set, want %d", tc.max, len(got), tc.want)
		}
		// The lowest router IDs make the cut.
		for i, v := range got {
			if v.Peer != PeerID(11+i) {
				t.Fatalf("MaxPaths %d: ECMP set %s", tc.max, describe(got))
			}
		}
		if len(last) != 1 || len(last[0].Paths) != tc.want {
			t.Fatalf("MaxPaths %d: last change %v", tc.max, last)
		}
	}
}

// TestDeterministicMED: MED compared pairwise is not transitive. With
//
//	A: AS 65001, MED 200, router ID .1
//	B: AS 65002, MED 100, router ID .2
//	C: AS 65001, MED 150, router ID .3
//
// A beats B (router ID), B beats C (router ID), C beats A (MED): the
// outcome must not depend on arrival order. Grouping by neighbour AS makes
// C the winner of 65001, which loses to B by router ID; C still ties with B
// down to the router ID, so the ECMP set is B, C.
func TestDeterministicMED(t *testing.T) {
	peer := func(n byte, as uint32) Peer {
		p := ebgp(n, as)
		p.RouterID = netip.AddrFrom4([4]byte{198, 51, 100, n - 20})
		return p
	}
	offers := []offer{
		{peer: peer(21, 65001), attrs: attrs(withPath(65001), withMED(200))},
		{peer: peer(22, 65002), attrs: attrs(withPath(65002), withMED(100))},
		{peer: peer(23, 65001), attrs: attrs(withPath(65001), withMED(150))},
	}
	for _, perm := range [][]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}} {
		r := newRIB(t, Config{})
		for _, i := range perm {
			o := offers[i]
			if err := r.AddPeer(o.peer); err != nil {
				t.Fatal(err)
			}
			announce(t, r, o.peer, vip4, o.attrs)
		}
		vs := r.Lookup(vip4)
		var order []PeerID
		for _, v := range vs {
			order = append(order, v.Peer)
		}
		if !slices.Equal(order, []PeerID{22, 23, 21}) || !vs[0].Best || !vs[1].ECMP || vs[2].ECMP {
			t.Fatalf("arrival %v: %s", perm, describe(vs))
		}
		if vs[1].Reason != ReasonRouterID || vs[2].Reason != ReasonRouterID {
			// A loses to B (different AS) at the router ID.
			t.Fatalf("arrival %v: reasons %v %v", perm, vs[1].Reason, vs[2].Reason)
		}
	}
}

// TestECMPAcrossGroups: equal-cost winners of several neighbour ASes share,
// and a group's runner-up joins only when it ties with its own winner.
func TestECMPAcrossGroups(t *testing.T) {
	r := newRIB(t, Config{})
	offers := []offer{
		{peer: ebgp(21, 65001), attrs: attrs(withPath(65001), withMED(10))},
		{peer: ebgp(23, 65001), attrs: attrs(withPath(65001), withMED(10))},
		{peer: ebgp(24, 65001), attrs: attrs(withPath(65001), withMED(20))},
		{peer: ebgp(22, 65002), attrs: attrs(withPath(65002), withMED(99))},
		{peer: ebgp(25, 65003), attrs: attrs(withPath(65003, 65010))}, // longer
	}
	for _, o := range offers {
		if err := r.AddPeer(o.peer); err != nil {
			t.Fatal(err)
		}
		announce(t, r, o.peer, vip4, o.attrs)
	}
	var got []PeerID
	for _, v := range ecmp(r, vip4) {
		got = append(got, v.Peer)
	}
	if !slices.Equal(got, []PeerID{21, 22, 23}) {
		t.Fatalf("ECMP set %v, want 21 22 23: %s", got, describe(r.Lookup(vip4)))
	}
}

func TestInvalidPaths(t *testing.T) {
	n1, n2 := node(11), node(12)
	tests := []struct {
		name  string
		attrs *wire.Attrs
		nh    netip.Addr
		want  Invalid
	}{
		{"no next hop", attrs(), netip.Addr{}, InvalidNextHop},
		{"unspecified next hop", attrs(), netip.IPv4Unspecified(), InvalidNextHop},
		{"local AS in the path", attrs(withPath(65001, localAS)), n1.Addr, InvalidASLoop},
		{"local AS in a set", attrs(withSegments(wire.ASSegment{Type: wire.ASSet, ASNs: []uint32{localAS}})), n1.Addr, InvalidASLoop},
		{"our router ID as originator", attrs(withOriginator(ourID.String())), n1.Addr, InvalidOriginatorID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRIB(t, Config{}, n1, n2)
			if got := announceVia(t, r, n1, vip4, tc.attrs, tc.nh); len(got) != 0 {
				t.Fatalf("an invalid path changed the ECMP set: %v", got)
			}
			vs := r.Lookup(vip4)
			if len(vs) != 1 || vs[0].Invalid != tc.want || vs[0].Best || vs[0].ECMP || vs[0].Reason != ReasonInvalid {
				t.Fatalf("%s", describe(vs))
			}
			// A worse valid path still wins.
			if got := announce(t, r, n2, vip4, attrs(withLocalPref(1), withPath(1, 2, 3))); len(got) != 1 || got[0].Paths[0].Peer != n2.ID {
				t.Fatalf("changes %v", got)
			}
			if s, _ := r.PeerStats(n1.ID); s.IPv4 != (Counts{Received: 1}) {
				t.Fatalf("counts %+v", s.IPv4)
			}
			if s, _ := r.PeerStats(n2.ID); s.IPv4 != (Counts{Received: 1, Accepted: 1, Selected: 1}) {
				t.Fatalf("counts %+v", s.IPv4)
			}
		})
	}
}

// TestConfedConfirmsNoLoop: our own AS in a confederation segment is not
// a loop.
func TestConfedConfirmsNoLoop(t *testing.T) {
	r := newRIB(t, Config{}, node(11))
	announce(t, r, node(11), vip4, attrs(withSegments(wire.ASSegment{Type: wire.ASConfedSequence, ASNs: []uint32{localAS}})))
	if vs := r.Lookup(vip4); len(vs) != 1 || vs[0].Invalid != Valid {
		t.Fatalf("%s", describe(vs))
	}
}

func TestLinkBandwidth(t *testing.T) {
	r := newRIB(t, Config{}, node(11), node(12))
	announce(t, r, node(11), vip4, attrs(withLinkBandwidth(1.25e9)))
	ch := announce(t, r, node(12), vip4, attrs(withLinkBandwidth(2.5e9)))
	if len(ch) != 1 || len(ch[0].Paths) != 2 {
		t.Fatalf("changes %v", ch)
	}
	if a, b := ch[0].Paths[0].LinkBandwidth, ch[0].Paths[1].LinkBandwidth; a != 1.25e9 || b != 2.5e9 {
		t.Fatalf("link bandwidths %v %v", a, b)
	}
	announce(t, r, node(12), vip4, attrs())
	if vs := r.Lookup(vip4); vs[1].LinkBandwidth != 0 {
		t.Fatalf("no community, bandwidth %v", vs[1].LinkBandwidth)
	}
}
