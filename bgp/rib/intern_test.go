package rib

import (
	"net/netip"
	"testing"

	"github.com/bgplb/bgplb/bgp/wire"
)

// fullAttrs has every attribute an attribute set keeps.
func fullAttrs() *wire.Attrs {
	a := attrs(withLocalPref(100), withMED(5), withPath(65001, 65002), withCommunities(1, 2),
		withOriginator("198.51.100.5"), withClusters("198.51.100.7"), withLinkBandwidth(1e9))
	a.Set(wire.AttrAtomicAggregate)
	a.Aggregator = wire.Aggregator{AS: 65001, Addr: netip.MustParseAddr("198.51.100.9")}
	a.Set(wire.AttrAggregator)
	a.LargeCommunities = []wire.LargeCommunity{{Global: 1, Local1: 2, Local2: 3}}
	a.Set(wire.AttrLargeCommunity)
	a.OTC = 65001
	a.Set(wire.AttrOTC)
	a.Unknown = []wire.RawAttr{{Flags: wire.FlagOptional | wire.FlagTransitive, Type: 99, Value: []byte{1, 2}}}
	return a
}

// TestAttrKeyDistinguishes: changing any one thing an attribute set keeps
// gives another key, and no two variants collide.
func TestAttrKeyDistinguishes(t *testing.T) {
	variants := map[string]func(*wire.Attrs){
		"origin":          func(a *wire.Attrs) { a.Origin = wire.OriginEGP },
		"no origin":       func(a *wire.Attrs) { a.Clear(wire.AttrOrigin) },
		"as path":         func(a *wire.Attrs) { a.ASPath[0].ASNs[1] = 65003 },
		"as path segment": func(a *wire.Attrs) { a.ASPath[0].Type = wire.ASSet },
		"as path split": func(a *wire.Attrs) {
			a.ASPath = wire.ASPath{{Type: 2, ASNs: []uint32{65001}}, {Type: 2, ASNs: []uint32{65002}}}
		},
		"empty as path":      func(a *wire.Attrs) { a.ASPath = nil },
		"no as path":         func(a *wire.Attrs) { a.Clear(wire.AttrASPath) },
		"med":                func(a *wire.Attrs) { a.MED = 6 },
		"no med":             func(a *wire.Attrs) { a.Clear(wire.AttrMED) },
		"local pref":         func(a *wire.Attrs) { a.LocalPref = 101 },
		"no local pref":      func(a *wire.Attrs) { a.Clear(wire.AttrLocalPref) },
		"no atomic":          func(a *wire.Attrs) { a.Clear(wire.AttrAtomicAggregate) },
		"aggregator as":      func(a *wire.Attrs) { a.Aggregator.AS++ },
		"aggregator addr":    func(a *wire.Attrs) { a.Aggregator.Addr = netip.MustParseAddr("198.51.100.10") },
		"aggregator v6":      func(a *wire.Attrs) { a.Aggregator.Addr = netip.MustParseAddr("::ffff:198.51.100.9") },
		"communities":        func(a *wire.Attrs) { a.Communities = []wire.Community{2, 1} },
		"no communities":     func(a *wire.Attrs) { a.Clear(wire.AttrCommunities) },
		"empty communities":  func(a *wire.Attrs) { a.Communities = nil },
		"originator":         func(a *wire.Attrs) { a.OriginatorID = netip.MustParseAddr("198.51.100.6") },
		"no originator":      func(a *wire.Attrs) { a.Clear(wire.AttrOriginatorID) },
		"cluster list":       func(a *wire.Attrs) { a.ClusterList = append(a.ClusterList, a.ClusterList[0]) },
		"no cluster list":    func(a *wire.Attrs) { a.Clear(wire.AttrClusterList) },
		"ext communities":    func(a *wire.Attrs) { a.ExtCommunities[0][7]++ },
		"no ext communities": func(a *wire.Attrs) { a.Clear(wire.AttrExtCommunities) },
		"large community":    func(a *wire.Attrs) { a.LargeCommunities[0].Local2++ },
		"no large":           func(a *wire.Attrs) { a.Clear(wire.AttrLargeCommunity) },
		"otc":                func(a *wire.Attrs) { a.OTC++ },
		"no otc":             func(a *wire.Attrs) { a.Clear(wire.AttrOTC) },
		"unknown value":      func(a *wire.Attrs) { a.Unknown[0].Value = []byte{1, 3} },
		"unknown type":       func(a *wire.Attrs) { a.Unknown[0].Type = 98 },
		"unknown flags":      func(a *wire.Attrs) { a.Unknown[0].Flags |= wire.FlagPartial },
		"no unknown":         func(a *wire.Attrs) { a.Unknown = nil },
		"two unknown": func(a *wire.Attrs) {
			a.Unknown = []wire.RawAttr{{Type: 99, Value: []byte{1}}, {Type: 99, Value: []byte{2}}}
		},
	}
	seen := map[string]string{string(appendAttrKey(nil, fullAttrs(), true)): "base"}
	for name, edit := range variants {
		a := fullAttrs()
		edit(a)
		k := string(appendAttrKey(nil, a, true))
		if other, dup := seen[k]; dup {
			t.Errorf("%s has the key of %s", name, other)
		}
		seen[k] = name
	}
}

// TestAttrKeyIgnores: what is not part of an attribute set does not change
// the key.
func TestAttrKeyIgnores(t *testing.T) {
	base := string(appendAttrKey(nil, fullAttrs(), true))
	for name, edit := range map[string]func(*wire.Attrs){
		"next hop": func(a *wire.Attrs) { a.NextHop = netip.MustParseAddr("198.51.100.50"); a.Set(wire.AttrNextHop) },
		"mp reach": func(a *wire.Attrs) {
			a.MPReach = wire.MPReach{Family: wire.IPv6Unicast, NextHop: netip.MustParseAddr("2001:db8::1")}
			a.Set(wire.AttrMPReach)
		},
		"mp unreach": func(a *wire.Attrs) { a.MPUnreach.Family = wire.IPv6Unicast; a.Set(wire.AttrMPUnreach) },
		"absent med value": func(a *wire.Attrs) {
			a.Clear(wire.AttrMED)
			a.MED = 77
		},
	} {
		a := fullAttrs()
		edit(a)
		if name == "absent med value" {
			b := fullAttrs()
			b.Clear(wire.AttrMED)
			if string(appendAttrKey(nil, a, true)) != string(appendAttrKey(nil, b, true)) {
				t.Errorf("%s changes the key", name)
			}
			continue
		}
		if string(appendAttrKey(nil, a, true)) != base {
			t.Errorf("%s changes the key", name)
		}
	}
}

// TestCanonicalAttrs: the stored copy has the same key, keeps nothing it
// should not, and shares no memory with the original.
func TestCanonicalAttrs(t *testing.T) {
	a := fullAttrs()
	a.NextHop = netip.MustParseAddr("198.51.100.50")
	a.Set(wire.AttrNextHop)
	a.MED = 5
	c := canonicalAttrs(a, true)
	if string(appendAttrKey(nil, a, true)) != string(appendAttrKey(nil, c, true)) {
		t.Fatal("canonical copy has another key")
	}
	if c.Has(wire.AttrNextHop) || c.NextHop.IsValid() {
		t.Fatal("next hop kept")
	}
	scribble(a)
	if !sameAttrs(c, fullAttrs()) {
		t.Fatal("the copy shares memory with the original")
	}
	b := fullAttrs()
	b.Clear(wire.AttrMED)
	b.MED = 99
	if c := canonicalAttrs(b, true); c.MED != 0 {
		t.Fatalf("absent MED kept its value %d", c.MED)
	}
}

// TestInterningRefCounts: identical attributes are stored once across
// peers and next hops, and every set and source goes when its last path
// does.
func TestInterningRefCounts(t *testing.T) {
	n1, n2 := node(11), node(12)
	r := newRIB(t, Config{}, n1, n2)
	v4 := []netip.Prefix{vip4, netip.MustParsePrefix("203.0.113.11/32"), netip.MustParsePrefix("203.0.113.12/32")}
	sets := func() int { return r.Stats().AttrSets }
	for _, p := range v4 {
		announce(t, r, n1, p, seedAttrs())
		announce(t, r, n2, p, seedAttrs())
	}
	announce(t, r, n1, vip6, seedAttrs())
	if n := sets(); n != 1 {
		t.Fatalf("%d attribute sets for identical attributes, want 1", n)
	}
	if len(r.peers[11].sources) != 1 || len(r.peers[12].sources) != 1 {
		t.Fatalf("sources: %d and %d, want one each", len(r.peers[11].sources), len(r.peers[12].sources))
	}
	// Another next hop: a new source, the same set.
	announceVia(t, r, n1, v4[0], seedAttrs(), netip.MustParseAddr("198.51.100.99"))
	if n := sets(); n != 1 || len(r.peers[11].sources) != 2 {
		t.Fatalf("%d sets, %d sources", n, len(r.peers[11].sources))
	}
	// Other attributes: a new set; replacing the last path that used it
	// frees it.
	announce(t, r, n2, v4[1], attrs(withMED(7)))
	if n := sets(); n != 2 {
		t.Fatalf("%d sets, want 2", n)
	}
	announce(t, r, n2, v4[1], seedAttrs())
	if n := sets(); n != 1 {
		t.Fatalf("%d sets after the MED path was replaced, want 1", n)
	}
	checkInvariants(t, r)
	for _, p := range v4 {
		withdraw(t, r, n1, p)
	}
	withdraw(t, r, n1, vip6)
	if len(r.peers[11].sources) != 0 || r.peers[11].last != nil {
		t.Fatalf("peer 11 keeps %d sources after withdrawing everything", len(r.peers[11].sources))
	}
	if n := sets(); n != 1 {
		t.Fatalf("%d sets, want 1 (peer 12's)", n)
	}
	checkInvariants(t, r)
	removePeer(t, r, n2.ID)
	if n := sets(); n != 0 {
		t.Fatalf("%d sets after every path went", n)
	}
	if n := int(r.intern.srcs.n) - len(r.intern.srcs.free); n != 0 {
		t.Fatalf("%d sources after every path went", n)
	}
	// Freed indexes are reused.
	n := r.intern.srcs.n
	announce(t, r, n1, vip4, seedAttrs())
	if r.intern.srcs.n != n {
		t.Fatalf("source table grew from %d to %d", n, r.intern.srcs.n)
	}
	checkInvariants(t, r)
}

// TestAttrsCopied: the caller may reuse its attributes (as the decoder
// does) once Update returned.
func TestAttrsCopied(t *testing.T) {
	r := newRIB(t, Config{UnknownAttrBytes: 1 << 10}, node(11))
	a := fullAttrs()
	announce(t, r, node(11), vip4, a)
	scribble(a)
	if vs := r.Lookup(vip4); !sameAttrs(vs[0].Attrs, fullAttrs()) {
		t.Fatalf("stored attributes changed with the caller's: %+v", vs[0].Attrs)
	}
}
