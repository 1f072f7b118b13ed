package rib

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/bgplb/bgplb/bgp/wire"
)

const localAS = 64512

var (
	ourID = netip.MustParseAddr("198.51.100.1")
	vip4  = netip.MustParsePrefix("203.0.113.10/32")
	vip6  = netip.MustParsePrefix("2001:db8:100::10/128")
)

// node is an iBGP peer like the seed's cluster nodes: 198.51.100.<n>.
func node(n byte) Peer {
	a := netip.AddrFrom4([4]byte{198, 51, 100, n})
	return Peer{ID: PeerID(n), Addr: a, AS: localAS, RouterID: a}
}

// ebgp is an eBGP peer in AS as: 198.51.100.<n>.
func ebgp(n byte, as uint32) Peer {
	p := node(n)
	p.AS = as
	return p
}

func newRIB(t testing.TB, cfg Config, peers ...Peer) *RIB {
	t.Helper()
	if cfg.LocalAS == 0 {
		cfg.LocalAS = localAS
	}
	if !cfg.RouterID.IsValid() {
		cfg.RouterID = ourID
	}
	r := New(cfg)
	for _, p := range peers {
		if err := r.AddPeer(p); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// attrs builds an attribute set with ORIGIN IGP, then applies the edits.
func attrs(edits ...func(*wire.Attrs)) *wire.Attrs {
	a := &wire.Attrs{}
	a.Set(wire.AttrOrigin)
	a.Set(wire.AttrASPath)
	for _, e := range edits {
		e(a)
	}
	return a
}

func withLocalPref(v uint32) func(*wire.Attrs) {
	return func(a *wire.Attrs) { a.LocalPref = v; a.Set(wire.AttrLocalPref) }
}

func withMED(v uint32) func(*wire.Attrs) {
	return func(a *wire.Attrs) { a.MED = v; a.Set(wire.AttrMED) }
}

func withOrigin(o wire.Origin) func(*wire.Attrs) {
	return func(a *wire.Attrs) { a.Origin = o }
}

func withPath(asns ...uint32) func(*wire.Attrs) {
	return func(a *wire.Attrs) {
		a.ASPath = wire.ASPath{{Type: wire.ASSequence, ASNs: asns}}
	}
}

func withSegments(segs ...wire.ASSegment) func(*wire.Attrs) {
	return func(a *wire.Attrs) { a.ASPath = segs }
}

func withCommunities(cs ...wire.Community) func(*wire.Attrs) {
	return func(a *wire.Attrs) { a.Communities = cs; a.Set(wire.AttrCommunities) }
}

func withOriginator(id string) func(*wire.Attrs) {
	return func(a *wire.Attrs) { a.OriginatorID = netip.MustParseAddr(id); a.Set(wire.AttrOriginatorID) }
}

func withClusters(ids ...string) func(*wire.Attrs) {
	return func(a *wire.Attrs) {
		for _, id := range ids {
			a.ClusterList = append(a.ClusterList, netip.MustParseAddr(id))
		}
		a.Set(wire.AttrClusterList)
	}
}

func withLinkBandwidth(bw float32) func(*wire.Attrs) {
	return func(a *wire.Attrs) {
		a.ExtCommunities = append(a.ExtCommunities, wire.NewLinkBandwidth(64512, bw, false))
		a.Set(wire.AttrExtCommunities)
	}
}

func nlri(ps ...netip.Prefix) []wire.NLRI {
	out := make([]wire.NLRI, len(ps))
	for i, p := range ps {
		out[i] = wire.NLRI{Prefix: p}
	}
	return out
}

func familyOf(p netip.Prefix) wire.Family {
	if p.Addr().Is4() {
		return wire.IPv4Unicast
	}
	return wire.IPv6Unicast
}

// announce sends one prefix from one peer with its own address as next hop.
func announce(t testing.TB, r *RIB, p Peer, pfx netip.Prefix, a *wire.Attrs) []Change {
	t.Helper()
	return announceVia(t, r, p, pfx, a, p.Addr)
}

func announceVia(t testing.TB, r *RIB, p Peer, pfx netip.Prefix, a *wire.Attrs, nh netip.Addr) []Change {
	t.Helper()
	var out Changes
	if err := r.Update(p.ID, familyOf(pfx), a, nh, nlri(pfx), nil, &out); err != nil {
		t.Fatal(err)
	}
	return out.List
}

func withdraw(t testing.TB, r *RIB, p Peer, pfx netip.Prefix) []Change {
	t.Helper()
	var out Changes
	if err := r.Update(p.ID, familyOf(pfx), nil, netip.Addr{}, nil, nlri(pfx), &out); err != nil {
		t.Fatal(err)
	}
	return out.List
}

func removePeer(t testing.TB, r *RIB, id PeerID) []Change {
	t.Helper()
	var got []Change
	err := r.RemovePeer(id, func(c *Changes) {
		for _, ch := range c.List {
			ch.Paths = append([]PathView(nil), ch.Paths...)
			got = append(got, ch)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// nextHops lists the next hops of an ECMP set, best first.
func nextHops(vs []PathView) []netip.Addr {
	var out []netip.Addr
	for _, v := range vs {
		out = append(out, v.NextHop)
	}
	return out
}

// ecmp returns the ECMP set of pfx as Lookup shows it.
func ecmp(r *RIB, pfx netip.Prefix) []PathView {
	var out []PathView
	for _, v := range r.Lookup(pfx) {
		if v.ECMP {
			out = append(out, v)
		}
	}
	return out
}

// checkInvariants verifies the RIB's internal bookkeeping: counters, ranked
// entries, source and attribute-set reference counts. Only call it while no
// other call runs.
func checkInvariants(t testing.TB, r *RIB) {
	t.Helper()
	r.mu.RLock()
	defer r.mu.RUnlock()
	srcRefs := map[*source]int{}
	counts := map[*peerState]peerCounts{}
	check := func(ps []path, necmp int, gen uint8) {
		for i, p := range ps {
			s := r.intern.srcs.get(p.src)
			if s == nil || s.id != p.src {
				t.Fatalf("path with a freed source %d", p.src)
			}
			srcRefs[s]++
			c := counts[s.peer]
			c.received++
			if s.usable(gen) {
				c.accepted++
			}
			if i < necmp {
				c.selected++
			}
			counts[s.peer] = c
		}
	}
	checkTable(t, r, &r.v4, check)
	checkTable(t, r, &r.v6, check)
	setRefs := map[*attrSet]int{}
	for _, ps := range r.peers {
		for k, s := range ps.sources {
			if k.set != s.set || k.nextHop != s.nextHop || k.pathID != s.pathID || s.peer != ps {
				t.Errorf("peer %d: source filed under the wrong key", ps.peer.ID)
			}
			if s.refs != srcRefs[s] {
				t.Errorf("peer %d: source refs %d, paths %d", ps.peer.ID, s.refs, srcRefs[s])
			}
			delete(srcRefs, s)
			setRefs[s.set]++
		}
		sum := peerSum(&r.v4, ps.slot)
		s6 := peerSum(&r.v6, ps.slot)
		sum.received += s6.received
		sum.accepted += s6.accepted
		sum.selected += s6.selected
		if sum != counts[ps] {
			t.Errorf("peer %d: counters %+v, paths say %+v", ps.peer.ID, sum, counts[ps])
		}
	}
	for s := range srcRefs {
		t.Errorf("path points to a source its peer %d does not hold", s.peer.peer.ID)
	}
	r.intern.mu.Lock()
	defer r.intern.mu.Unlock()
	live := 0
	for _, c := range *r.intern.srcs.chunks.Load() {
		for _, s := range c {
			if s != nil {
				live++
			}
		}
	}
	if want := int(r.intern.srcs.n) - len(r.intern.srcs.free); live != want {
		t.Errorf("%d sources in the table, %d allocated", live, want)
	}
	for k, s := range r.intern.sets {
		if k != s.key {
			t.Errorf("attribute set filed under the wrong key")
		}
		if s.refs != setRefs[s] || s.refs == 0 {
			t.Errorf("attribute set refs %d, sources %d", s.refs, setRefs[s])
		}
		delete(setRefs, s)
	}
	for range setRefs {
		t.Errorf("source points to an attribute set the interner does not hold")
	}
}

func checkTable[K prefixKey](t testing.TB, r *RIB, tb *table[K], check func([]path, int, uint8)) {
	t.Helper()
	for i := range tb.shards {
		sh := &tb.shards[i]
		sh.mu.Lock()
		for k, p := range sh.one.all() {
			if tb.shard(k) != sh {
				t.Errorf("%v in the wrong shard", k.prefix())
			}
			if p.inECMP() {
				t.Errorf("%v: single path flagged", k.prefix())
			}
			n := 0
			if r.intern.srcs.get(p.src).usable(sh.gen) {
				n = 1
			}
			check([]path{p}, n, sh.gen)
		}
		multi := func(k K, ps []path, lo, hi int) {
			if tb.shard(k) != sh {
				t.Errorf("%v in the wrong shard", k.prefix())
			}
			if _, dup := sh.one.get(k); dup {
				t.Errorf("%v in two tables", k.prefix())
			}
			if len(ps) < lo || len(ps) > hi {
				t.Errorf("%v: %d paths filed for %d to %d", k.prefix(), len(ps), lo, hi)
			}
			n := ecmpLen(ps)
			for _, p := range ps[n:] {
				if p.inECMP() {
					t.Errorf("%v: ECMP flags not leading", k.prefix())
				}
			}
			ord := r.newOrderer()
			ord.gen = sh.gen
			again := slices.Clone(ps)
			if ord.order(again); !slices.Equal(again, ps) {
				t.Errorf("%v: paths not ranked as the decision process ranks them", k.prefix())
			}
			check(ps, n, sh.gen)
		}
		for k, pr := range sh.two.all() {
			if _, dup := sh.many[k]; dup {
				t.Errorf("%v in two tables", k.prefix())
			}
			multi(k, pr[:], 2, 2)
		}
		for k, ps := range sh.many {
			multi(k, ps, 3, 1<<30)
		}
		sh.mu.Unlock()
	}
}

func peerSum[K prefixKey](tb *table[K], slot int) peerCounts {
	var sum peerCounts
	for i := range tb.shards {
		if sh := &tb.shards[i]; slot < len(sh.counts) {
			c := sh.counts[slot]
			sum.received += c.received
			sum.accepted += c.accepted
			sum.selected += c.selected
		}
	}
	return sum
}
