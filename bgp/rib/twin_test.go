package rib

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
)

// twin is the slow, obviously correct RIB the real one is compared with:
// plain maps of plain paths, and a decision process written straight from
// the package documentation over the raw attributes, with no precomputed
// ranks, no interning, no sharding, and quadratic selection instead of
// sorting.
type twin struct {
	now   time.Time
	cfg   Config
	peers map[PeerID]Peer
	rib   map[netip.Prefix][]tpath
	// unreach are the next hops Config.NextHop refuses, with its code.
	unreach map[netip.Addr]uint8
}

type tpath struct {
	peer  Peer
	id    uint32
	attrs *wire.Attrs
	nh    netip.Addr
	since time.Time // last change
}

type tchange struct {
	prefix netip.Prefix
	paths  []tpath
}

func newTwin(cfg Config) *twin {
	if cfg.MaxPaths == 0 {
		cfg.MaxPaths = 64
	}
	return &twin{cfg: cfg, peers: map[PeerID]Peer{}, rib: map[netip.Prefix][]tpath{}, unreach: map[netip.Addr]uint8{}}
}

// setReach makes nh reachable (code 0) or not, and returns the prefixes
// whose ECMP set changed, as Revalidate must.
func (t *twin) setReach(nh netip.Addr, code uint8) []tchange {
	old := map[netip.Prefix][]tpath{}
	for pfx := range t.rib {
		old[pfx] = t.ecmp(pfx)
	}
	if code == 0 {
		delete(t.unreach, nh)
	} else {
		t.unreach[nh] = code
	}
	var out []tchange
	for pfx := range t.rib {
		out = t.note(out, pfx, old[pfx])
	}
	return out
}

func (t *twin) addPeer(p Peer) error {
	if _, ok := t.peers[p.ID]; ok {
		return ErrPeerExists
	}
	if p.LocalAS == 0 {
		p.LocalAS = t.cfg.LocalAS
	}
	t.peers[p.ID] = p
	return nil
}

func (t *twin) update(id PeerID, announce, withdraw []netip.Prefix, ids []uint32, a *wire.Attrs, nh netip.Addr) ([]tchange, error) {
	p, ok := t.peers[id]
	if !ok {
		return nil, ErrUnknownPeer
	}
	var out []tchange
	for i, pfx := range withdraw {
		old := t.ecmp(pfx)
		t.rib[pfx] = slices.DeleteFunc(t.rib[pfx], func(q tpath) bool { return q.peer.ID == id && q.id == ids[i] })
		out = t.note(out, pfx, old)
	}
	for i, pfx := range announce {
		old := t.ecmp(pfx)
		np := tpath{peer: p, id: ids[len(withdraw)+i], attrs: t.stored(a), nh: nh, since: t.now}
		j := slices.IndexFunc(t.rib[pfx], func(q tpath) bool { return q.peer.ID == id && q.id == np.id })
		switch {
		case j < 0:
			t.rib[pfx] = append(t.rib[pfx], np)
		case !sameTPath(t.rib[pfx][j], np):
			t.rib[pfx][j] = np
		}
		out = t.note(out, pfx, old)
	}
	return out, nil
}

// stored is the copy of a the RIB keeps: without unknown attributes unless
// it keeps some (the workload never reaches the cap).
func (t *twin) stored(a *wire.Attrs) *wire.Attrs {
	c := a.Clone()
	if t.cfg.UnknownAttrBytes == 0 {
		c.Unknown = nil
	}
	return c
}

func (t *twin) removePeer(id PeerID) ([]tchange, error) {
	if _, ok := t.peers[id]; !ok {
		return nil, ErrUnknownPeer
	}
	var out []tchange
	for pfx := range t.rib {
		old := t.ecmp(pfx)
		t.rib[pfx] = slices.DeleteFunc(t.rib[pfx], func(q tpath) bool { return q.peer.ID == id })
		out = t.note(out, pfx, old)
	}
	delete(t.peers, id)
	return out, nil
}

func (t *twin) note(out []tchange, pfx netip.Prefix, old []tpath) []tchange {
	if len(t.rib[pfx]) == 0 {
		delete(t.rib, pfx)
	}
	now := t.ecmp(pfx)
	if !slices.EqualFunc(old, now, sameTPath) {
		out = append(out, tchange{pfx, now})
	}
	return out
}

func sameTPath(a, b tpath) bool {
	return a.peer.ID == b.peer.ID && a.id == b.id && a.nh == b.nh && sameAttrs(a.attrs, b.attrs)
}

// The decision inputs, from the raw attributes.

func (t *twin) localPref(p tpath) uint32 {
	switch {
	case p.attrs.HasCommunity(wire.CommunityGracefulShutdown):
		return 0
	case p.attrs.Has(wire.AttrLocalPref):
		return p.attrs.LocalPref
	case t.cfg.Policy.DefaultLocalPref != 0:
		return t.cfg.Policy.DefaultLocalPref
	}
	return 100
}

func (t *twin) med(p tpath) uint32 {
	switch {
	case p.attrs.Has(wire.AttrMED):
		return p.attrs.MED
	case t.cfg.Policy.MissingMEDWorst:
		return 1<<32 - 1
	}
	return 0
}

func pathLen(p tpath) int {
	n := 0
	for _, s := range p.attrs.ASPath {
		switch s.Type {
		case wire.ASSequence:
			n += len(s.ASNs)
		case wire.ASSet:
			n++
		}
	}
	return n
}

func (t *twin) neighborAS(p tpath) uint32 {
	for _, s := range p.attrs.ASPath {
		if s.Type == wire.ASConfedSequence || s.Type == wire.ASConfedSet {
			continue
		}
		if s.Type == wire.ASSequence && len(s.ASNs) > 0 {
			return s.ASNs[0]
		}
		break
	}
	return p.peer.AS
}

func (t *twin) group(p tpath) uint32 {
	if t.cfg.Policy.AlwaysCompareMED {
		return 0
	}
	return t.neighborAS(p)
}

func routerID(p tpath) netip.Addr {
	if p.attrs.Has(wire.AttrOriginatorID) {
		return p.attrs.OriginatorID
	}
	return p.peer.RouterID
}

func (t *twin) valid(p tpath) bool {
	if !p.nh.IsValid() || p.nh.IsUnspecified() || t.unreach[p.nh] != 0 {
		return false
	}
	for _, s := range p.attrs.ASPath {
		if (s.Type == wire.ASSequence || s.Type == wire.ASSet) && slices.Contains(s.ASNs, p.peer.LocalAS) {
			return false
		}
	}
	return !(p.attrs.Has(wire.AttrOriginatorID) && p.attrs.OriginatorID == t.cfg.RouterID)
}

// compare returns <0 when a is better, and the step that decided.
func (t *twin) compare(a, b tpath) (int, Reason) {
	if c := cmp.Compare(t.localPref(b), t.localPref(a)); c != 0 {
		return c, ReasonLocalPref
	}
	if c := cmp.Compare(pathLen(a), pathLen(b)); c != 0 {
		return c, ReasonASPathLen
	}
	if c := cmp.Compare(a.attrs.Origin, b.attrs.Origin); c != 0 {
		return c, ReasonOrigin
	}
	if t.group(a) == t.group(b) {
		if c := cmp.Compare(t.med(a), t.med(b)); c != 0 {
			return c, ReasonMED
		}
	}
	ea, eb := a.peer.AS != a.peer.LocalAS, b.peer.AS != b.peer.LocalAS
	if ea != eb {
		if ea {
			return -1, ReasonExternal
		}
		return 1, ReasonExternal
	}
	if c := routerID(a).Compare(routerID(b)); c != 0 {
		return c, ReasonRouterID
	}
	if c := cmp.Compare(len(a.attrs.ClusterList), len(b.attrs.ClusterList)); c != 0 {
		return c, ReasonClusterList
	}
	if c := a.peer.Addr.Compare(b.peer.Addr); c != 0 {
		return c, ReasonPeerAddr
	}
	if c := cmp.Compare(a.id, b.id); c != 0 {
		return c, ReasonPathID
	}
	return cmp.Compare(a.peer.ID, b.peer.ID), ReasonPeer
}

func (t *twin) tie(a, b tpath) bool {
	c, why := t.compare(a, b)
	return c == 0 || why >= ReasonRouterID
}

// beatsAll reports whether p is better than every other path in ps.
func (t *twin) beatsAll(p tpath, ps []tpath) bool {
	for _, q := range ps {
		if c, _ := t.compare(p, q); c > 0 {
			return false
		}
	}
	return true
}

// ecmp selects the ECMP set of pfx, best first: every valid path that ties
// with its neighbour-AS group's winner, in a group whose winner ties with
// the best of all winners.
func (t *twin) ecmp(pfx netip.Prefix) []tpath {
	var valid []tpath
	for _, p := range t.rib[pfx] {
		if t.valid(p) {
			valid = append(valid, p)
		}
	}
	winnerOf := func(p tpath) tpath {
		var group []tpath
		for _, q := range valid {
			if t.group(q) == t.group(p) {
				group = append(group, q)
			}
		}
		for _, q := range group {
			if t.beatsAll(q, group) {
				return q
			}
		}
		panic("no winner")
	}
	var winners []tpath
	for _, p := range valid {
		if w := winnerOf(p); sameTPath(w, p) {
			winners = append(winners, p)
		}
	}
	var set []tpath
	for _, best := range winners {
		if !t.beatsAll(best, winners) {
			continue
		}
		for _, p := range valid {
			if w := winnerOf(p); t.tie(w, best) && t.tie(p, w) {
				set = append(set, p)
			}
		}
	}
	slices.SortFunc(set, func(a, b tpath) int { c, _ := t.compare(a, b); return c })
	return set[:min(len(set), t.cfg.MaxPaths)]
}

// sameAttrs compares two attribute sets field by field, ignoring NEXT_HOP
// and the MP attributes, which are not part of an attribute set.
func sameAttrs(a, b *wire.Attrs) bool {
	for _, t := range []uint8{1, 2, 4, 5, 6, 7, 8, 9, 10, 16, 32, 35} {
		if a.Has(t) != b.Has(t) {
			return false
		}
	}
	has := a.Has
	switch {
	case has(wire.AttrOrigin) && a.Origin != b.Origin,
		has(wire.AttrMED) && a.MED != b.MED,
		has(wire.AttrLocalPref) && a.LocalPref != b.LocalPref,
		has(wire.AttrAggregator) && a.Aggregator != b.Aggregator,
		has(wire.AttrCommunities) && !slices.Equal(a.Communities, b.Communities),
		has(wire.AttrOriginatorID) && a.OriginatorID != b.OriginatorID,
		has(wire.AttrClusterList) && !slices.Equal(a.ClusterList, b.ClusterList),
		has(wire.AttrExtCommunities) && !slices.Equal(a.ExtCommunities, b.ExtCommunities),
		has(wire.AttrLargeCommunity) && !slices.Equal(a.LargeCommunities, b.LargeCommunities),
		has(wire.AttrOTC) && a.OTC != b.OTC:
		return false
	}
	if has(wire.AttrASPath) && !slices.EqualFunc(a.ASPath, b.ASPath, func(x, y wire.ASSegment) bool {
		return x.Type == y.Type && slices.Equal(x.ASNs, y.ASNs)
	}) {
		return false
	}
	return slices.EqualFunc(a.Unknown, b.Unknown, func(x, y wire.RawAttr) bool {
		return x.Flags == y.Flags && x.Type == y.Type && bytes.Equal(x.Value, y.Value)
	})
}

// The random workload.

var (
	twinPeers = []Peer{
		node(11), node(12), node(13),
		ebgp(21, 65001), ebgp(22, 65002), ebgp(23, 65001),
		// Same router ID as node 11: the peer address decides, and
		// the lower one has the higher peer ID.
		{ID: 31, Addr: netip.MustParseAddr("198.51.100.3"), AS: localAS, RouterID: node(11).RouterID},
		{ID: 32, Addr: netip.MustParseAddr("2001:db8::32"), AS: localAS, RouterID: netip.MustParseAddr("198.51.100.32")},
		// Announces with ADD-PATH identifiers.
		{ID: 41, Addr: netip.MustParseAddr("198.51.100.41"), AS: 65003, RouterID: netip.MustParseAddr("198.51.100.41")},
	}
	twinPrefixes = func() []netip.Prefix {
		var ps []netip.Prefix
		for _, s := range []string{
			"203.0.113.1/32", "203.0.113.2/32", "203.0.113.3/32", "203.0.113.4/32",
			"203.0.113.0/24", "203.0.113.128/25", "198.51.100.200/32", "198.51.100.0/24",
			"2001:db8:100::1/128", "2001:db8:100::2/128", "2001:db8:100::/48", "2001:db8::/32",
		} {
			ps = append(ps, netip.MustParsePrefix(s))
		}
		return ps
	}()
)

type gen struct {
	rng  *rand.Rand
	peer Peer
	pool *[]*wire.Attrs // attribute sets drawn before, to draw again
}

func (g *gen) pick(n int) int  { return g.rng.IntN(n) }
func (g *gen) odds(n int) bool { return g.rng.IntN(n) == 0 }

// attrs draws an attribute set from a small space, so that ties are common,
// and more often than not one drawn before, so that sets are shared,
// re-announced unchanged, and differ from live ones in one detail.
func (g *gen) attrs() *wire.Attrs {
	if p := *g.pool; len(p) > 0 && !g.odds(3) {
		a := p[g.pick(len(p))].Clone()
		if g.odds(3) {
			g.tweak(a)
		}
		return a
	}
	a := g.fresh()
	if len(*g.pool) < 16 {
		*g.pool = append(*g.pool, a.Clone())
	}
	return a
}

// tweak changes one attribute the decision process may ignore.
func (g *gen) tweak(a *wire.Attrs) {
	switch g.pick(5) {
	case 0:
		a.OTC = uint32(64512 + g.pick(2))
		a.Set(wire.AttrOTC)
	case 1:
		a.Aggregator = wire.Aggregator{AS: 65001, Addr: netip.AddrFrom4([4]byte{198, 51, 100, byte(9 + g.pick(2))})}
		a.Set(wire.AttrAggregator)
	case 2:
		a.LargeCommunities = []wire.LargeCommunity{{Global: 64512, Local1: uint32(g.pick(2))}}
		a.Set(wire.AttrLargeCommunity)
	case 3:
		a.Set(wire.AttrAtomicAggregate)
	case 4:
		withClusters("198.51.100.7")(a)
	}
}

func (g *gen) fresh() *wire.Attrs {
	a := attrs()
	if !g.odds(3) {
		// What the seed's nodes send: equal-cost everywhere.
		if g.peer.AS != localAS {
			withPath(g.peer.AS)(a)
		}
		return a
	}
	if g.odds(6) {
		a.Origin = wire.Origin(1 + g.pick(2))
	}
	if g.odds(3) {
		withLocalPref([]uint32{100, 200, 50}[g.pick(3)])(a)
	}
	if g.odds(2) {
		withMED([]uint32{0, 10, 20}[g.pick(3)])(a)
	}
	var seq []uint32
	if g.peer.AS != localAS && !g.odds(8) {
		// (An eBGP path without the peer's AS is malformed, but must
		// still get the peer's AS as neighbour AS.)
		seq = append(seq, g.peer.AS)
	} else if g.odds(3) {
		seq = append(seq, []uint32{65001, 65002}[g.pick(2)])
	}
	for range g.pick(3) {
		seq = append(seq, 65100+uint32(g.pick(3)))
	}
	if g.odds(25) {
		seq = append(seq, localAS) // a loop
	}
	var path wire.ASPath
	if g.odds(15) {
		path = append(path, wire.ASSegment{Type: wire.ASConfedSequence, ASNs: []uint32{65200}})
	}
	if len(seq) > 0 {
		path = append(path, wire.ASSegment{Type: wire.ASSequence, ASNs: seq})
	}
	if g.odds(10) {
		path = append(path, wire.ASSegment{Type: wire.ASSet, ASNs: []uint32{65300, 65301}})
	}
	a.ASPath = path
	var cs []wire.Community
	if g.odds(12) {
		cs = append(cs, wire.CommunityGracefulShutdown)
	}
	if g.odds(5) {
		cs = append(cs, wire.NewCommunity(64512, uint16(g.pick(2))))
	}
	if cs != nil {
		withCommunities(cs...)(a)
	}
	if g.odds(4) {
		withOriginator([]string{"198.51.100.1", "198.51.100.5", "198.51.100.250"}[g.pick(3)])(a)
		if g.odds(2) {
			withClusters([]string{"198.51.100.7", "198.51.100.8"}[:1+g.pick(2)]...)(a)
		}
	}

	if g.odds(8) {
		withLinkBandwidth(float32(1 + g.pick(2)))(a)
	}
	if g.odds(20) {
		a.Unknown = []wire.RawAttr{{Flags: wire.FlagOptional | wire.FlagTransitive, Type: 99, Value: []byte{byte(g.pick(2))}}}
	}
	if g.odds(10) {
		// Decoded attributes may carry a NEXT_HOP; it is not part of
		// the set.
		a.NextHop = netip.MustParseAddr("198.51.100.99")
		a.Set(wire.AttrNextHop)
	}
	return a
}

func (g *gen) nextHop() netip.Addr {
	switch g.pick(20) {
	case 0:
		return netip.Addr{}
	case 1:
		return netip.IPv4Unspecified()
	case 2, 3, 4:
		return netip.MustParseAddr("198.51.100.77")
	}
	return g.peer.Addr
}

func (g *gen) prefixes(fam wire.Family, n int) []netip.Prefix {
	var ps []netip.Prefix
	for range n {
		for {
			p := twinPrefixes[g.pick(len(twinPrefixes))]
			if familyOf(p) == fam {
				ps = append(ps, p)
				break
			}
		}
	}
	return ps
}

// scribble overwrites what a decoder would reuse, to prove the RIB kept
// its own copy.
func scribble(a *wire.Attrs) {
	for i := range a.Communities {
		a.Communities[i] = 0xdeadbeef
	}
	for _, s := range a.ASPath {
		for i := range s.ASNs {
			s.ASNs[i] = 4242
		}
	}
	for _, u := range a.Unknown {
		for i := range u.Value {
			u.Value[i] = 0xee
		}
	}
	a.MED, a.LocalPref = 31337, 31337
}

func TestTwin(t *testing.T) {
	policies := []Config{
		{},
		{MaxPaths: 1},
		{MaxPaths: 2, Policy: Policy{AlwaysCompareMED: true}, UnknownAttrBytes: 1 << 20},
		{MaxPaths: 3, Policy: Policy{MissingMEDWorst: true, DefaultLocalPref: 150}},
	}
	const steps = 600
	for seed := range uint64(24) {
		cfg := policies[seed%uint64(len(policies))]
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			runTwin(t, seed, cfg, steps)
		})
	}
}

// twinRun is one randomized run of the RIB against its twin.
type twinRun struct {
	rng     *rand.Rand
	r       *RIB
	tw      *twin
	pool    []*wire.Attrs
	seqs    map[netip.Prefix]uint64
	multi   int // changes to ECMP sets of two paths or more
	refresh int // announcements repeating a route exactly
	reval   int // changes made by Revalidate
}

func runTwin(t *testing.T, seed uint64, cfg Config, steps int) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg.Now = func() time.Time { return now }
	var tw *twin
	cfg.NextHop = func(_ *Peer, nh netip.Addr) uint8 { return tw.unreach[nh] }
	r := newRIB(t, cfg)
	tw = newTwin(r.cfg)
	run := &twinRun{rng: rand.New(rand.NewPCG(seed, 42)), r: r, tw: tw, seqs: map[netip.Prefix]uint64{}}
	for step := range steps {
		now = now.Add(time.Second)
		run.tw.now = now
		run.step(t, step)
		if step%25 == 0 || step == steps-1 {
			compareState(t, fmt.Sprintf("step %d", step), r, run.tw)
		}
	}
	// The workload must reach the cases it exists for.
	if (run.multi < steps/75 && cfg.MaxPaths != 1) || run.refresh < steps/50 || run.reval < steps/100 {
		t.Fatalf("weak workload: %d multi-path ECMP changes, %d unchanged re-announcements, %d changes by Revalidate",
			run.multi, run.refresh, run.reval)
	}
	for id := range run.tw.peers {
		if err := r.RemovePeer(id, nil); err != nil {
			t.Fatal(err)
		}
	}
	if s := r.Stats(); s.IPv4Prefixes+s.IPv6Prefixes+s.IPv4Paths+s.IPv6Paths+s.AttrSets != 0 {
		t.Fatalf("RIB not empty after every peer left: %+v", s)
	}
	if n := int(r.intern.srcs.n) - len(r.intern.srcs.free); n != 0 {
		t.Fatalf("%d sources left", n)
	}
}

// step makes one random call on both RIBs and compares the outcomes.
func (run *twinRun) step(t *testing.T, step int) {
	rng, r, tw := run.rng, run.r, run.tw
	g := &gen{rng: rng, peer: twinPeers[rng.IntN(len(twinPeers))], pool: &run.pool}
	var got []Change
	var want []tchange
	var errGot, errWant error
	var what string
	switch x := rng.IntN(100); {
	case x < 6:
		what = fmt.Sprintf("remove peer %d", g.peer.ID)
		got, errGot = collectRemove(r, g.peer.ID)
		want, errWant = tw.removePeer(g.peer.ID)
		sortChanges(got, want)
	case x < 14:
		what = fmt.Sprintf("add peer %d", g.peer.ID)
		errGot, errWant = r.AddPeer(g.peer), tw.addPeer(g.peer)
	case x < 20:
		// A link or an address changed: a next hop becomes reachable
		// or not, or stays unreachable for another reason.
		// At most two are unreachable at a time, so that ECMP sets
		// of several paths stay common.
		nh := g.nextHop()
		code := uint8(1 + rng.IntN(2))
		if len(tw.unreach) >= 2 && tw.unreach[nh] == 0 {
			held := slices.SortedFunc(maps.Keys(tw.unreach), netip.Addr.Compare)
			nh = held[rng.IntN(len(held))]
		}
		switch cur := tw.unreach[nh]; {
		case cur != 0 && g.odds(3):
			code = 3 - cur // unreachable for another reason
		case cur != 0:
			code = 0
		}
		what = fmt.Sprintf("next hop %v verdict %d", nh, code)
		want = tw.setReach(nh, code)
		n := r.Revalidate(func(c *Changes) {
			for _, ch := range c.List {
				ch.Paths = slices.Clone(ch.Paths)
				got = append(got, ch)
			}
		})
		if len(want) > 0 && n == 0 {
			t.Fatalf("step %d, %s: Revalidate saw no change", step, what)
		}
		run.reval += len(got)
		sortChanges(got, want)
	default:
		fam := []wire.Family{wire.IPv4Unicast, wire.IPv6Unicast}[rng.IntN(2)]
		ann, wd := g.prefixes(fam, rng.IntN(4)), g.prefixes(fam, rng.IntN(3))
		ids := make([]uint32, len(wd)+len(ann))
		if g.peer.ID == 41 {
			for i := range ids {
				ids[i] = uint32(rng.IntN(3))
			}
		}
		a, nh := g.attrs(), g.nextHop()
		if held := tw.held(g.peer.ID); len(held) > 0 && g.odds(6) {
			// Repeat a route exactly, as a route refresh would.
			h := held[rng.IntN(len(held))]
			fam, ann, wd, ids = familyOf(h.prefix), []netip.Prefix{h.prefix}, nil, []uint32{h.id}
			a, nh = h.attrs.Clone(), h.nh
		}
		what = fmt.Sprintf("peer %d: announce %v via %v, withdraw %v, ids %v", g.peer.ID, ann, nh, wd, ids)
		run.refresh += tw.repeats(g.peer.ID, ann, ids[len(wd):], a, nh)
		var out Changes
		errGot = r.Update(g.peer.ID, fam, a, nh, withIDs(ann, ids[len(wd):]), withIDs(wd, ids), &out)
		got = out.List
		want, errWant = tw.update(g.peer.ID, ann, wd, ids, a, nh)
		scribble(a)
	}
	if !errors.Is(errGot, errWant) || (errGot == nil) != (errWant == nil) {
		t.Fatalf("step %d, %s: error %v, twin %v", step, what, errGot, errWant)
	}
	compareChanges(t, fmt.Sprintf("step %d, %s", step, what), got, want)
	for _, c := range got {
		if len(c.Paths) > 1 {
			run.multi++
		}
		if c.Seq <= run.seqs[c.Prefix] {
			t.Fatalf("step %d: %v seq %d after %d", step, c.Prefix, c.Seq, run.seqs[c.Prefix])
		}
		run.seqs[c.Prefix] = c.Seq
	}
}

type heldPath struct {
	prefix netip.Prefix
	tpath
}

// held lists the paths peer id holds, in a stable order.
func (t *twin) held(id PeerID) []heldPath {
	var out []heldPath
	for pfx, ps := range t.rib {
		for _, q := range ps {
			if q.peer.ID == id {
				out = append(out, heldPath{pfx, q})
			}
		}
	}
	slices.SortFunc(out, func(a, b heldPath) int {
		if c := a.prefix.Addr().Compare(b.prefix.Addr()); c != 0 {
			return c
		}
		if c := cmp.Compare(a.prefix.Bits(), b.prefix.Bits()); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	return out
}

// repeats counts the announcements that repeat a held route exactly.
func (t *twin) repeats(id PeerID, announce []netip.Prefix, ids []uint32, a *wire.Attrs, nh netip.Addr) int {
	n := 0
	a = t.stored(a)
	for i, pfx := range announce {
		if slices.ContainsFunc(t.rib[pfx], func(q tpath) bool {
			return q.peer.ID == id && q.id == ids[i] && q.nh == nh && sameAttrs(q.attrs, a)
		}) {
			n++
		}
	}
	return n
}

func withIDs(ps []netip.Prefix, ids []uint32) []wire.NLRI {
	out := make([]wire.NLRI, len(ps))
	for i, p := range ps {
		out[i] = wire.NLRI{Prefix: p, PathID: ids[i]}
	}
	return out
}

func collectRemove(r *RIB, id PeerID) ([]Change, error) {
	var got []Change
	err := r.RemovePeer(id, func(c *Changes) {
		for _, ch := range c.List {
			ch.Paths = slices.Clone(ch.Paths)
			got = append(got, ch)
		}
	})
	return got, err
}

func sortChanges(got []Change, want []tchange) {
	slices.SortStableFunc(got, func(a, b Change) int {
		return a.Prefix.Addr().Compare(b.Prefix.Addr())*2 + cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits())
	})
	slices.SortStableFunc(want, func(a, b tchange) int {
		return a.prefix.Addr().Compare(b.prefix.Addr())*2 + cmp.Compare(a.prefix.Bits(), b.prefix.Bits())
	})
}

func sameView(v PathView, p tpath) bool {
	return v.Peer == p.peer.ID && v.PathID == p.id && v.NextHop == p.nh && v.PeerAddr == p.peer.Addr && sameAttrs(v.Attrs, p.attrs)
}

func describe(vs []PathView) string {
	var b bytes.Buffer
	for _, v := range vs {
		fmt.Fprintf(&b, "[peer %d id %d via %v best %v ecmp %v %v] ", v.Peer, v.PathID, v.NextHop, v.Best, v.ECMP, v.Invalid)
	}
	return b.String()
}

func describeT(ps []tpath) string {
	var b bytes.Buffer
	for _, p := range ps {
		fmt.Fprintf(&b, "[peer %d id %d via %v] ", p.peer.ID, p.id, p.nh)
	}
	return b.String()
}

func compareChanges(t *testing.T, what string, got []Change, want []tchange) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d changes, twin %d:\n got %v\nwant %v", what, len(got), len(want), got, want)
	}
	for i, c := range got {
		w := want[i]
		if c.Prefix != w.prefix || !slices.EqualFunc(c.Paths, w.paths, sameView) {
			t.Fatalf("%s: change %d:\n got %v %s\nwant %v %s", what, i, c.Prefix, describe(c.Paths), w.prefix, describeT(w.paths))
		}
		for j, v := range c.Paths {
			if v.Best != (j == 0) || !v.ECMP || v.Invalid != Valid {
				t.Fatalf("%s: change %d: flags %s", what, i, describe(c.Paths))
			}
		}
	}
}

func compareState(t *testing.T, what string, r *RIB, tw *twin) {
	t.Helper()
	checkInvariants(t, r)
	seen := map[netip.Prefix]bool{}
	for _, fam := range []wire.Family{wire.IPv4Unicast, wire.IPv6Unicast} {
		r.Walk(fam, func(p netip.Prefix, vs []PathView) bool {
			seen[p] = true
			if !slices.EqualFunc(vs, r.Lookup(p), func(a, b PathView) bool { return a == b }) {
				t.Fatalf("%s: %v: Walk and Lookup differ", what, p)
			}
			return true
		})
	}
	for p := range tw.rib {
		if !seen[p] {
			t.Fatalf("%s: %v missing", what, p)
		}
	}
	type counts struct{ v4, v6 Counts }
	wantCounts := map[PeerID]*counts{}
	for id := range tw.peers {
		wantCounts[id] = &counts{}
	}
	var distinct []*wire.Attrs
	for p := range seen {
		got := r.Lookup(p)
		all := tw.rib[p]
		var ecmpGot []PathView
		for _, v := range got {
			if v.ECMP {
				ecmpGot = append(ecmpGot, v)
			}
		}
		ecmpWant := tw.ecmp(p)
		if !slices.EqualFunc(ecmpGot, ecmpWant, sameView) {
			t.Fatalf("%s: %v: ECMP set\n got %s\nwant %s", what, p, describe(got), describeT(ecmpWant))
		}
		if len(got) != len(all) {
			t.Fatalf("%s: %v: %d paths, twin %d:\n got %s\nwant %s", what, p, len(got), len(all), describe(got), describeT(all))
		}
		for _, q := range all {
			i := slices.IndexFunc(got, func(v PathView) bool { return sameView(v, q) })
			if i < 0 {
				t.Fatalf("%s: %v: path missing: %s in %s", what, p, describeT([]tpath{q}), describe(got))
			}
			if !got[i].Since.Equal(q.since) {
				t.Fatalf("%s: %v: peer %d path since %v, twin %v", what, p, q.peer.ID, got[i].Since, q.since)
			}
			if (q.nh.IsValid() && !q.nh.IsUnspecified()) && tw.valid(q) == false && slices.ContainsFunc(got, func(v PathView) bool { return sameView(v, q) && v.Invalid == Valid }) {
				t.Fatalf("%s: %v: invalid path shown valid", what, p)
			}
			c := &wantCounts[q.peer.ID].v4
			if !p.Addr().Is4() {
				c = &wantCounts[q.peer.ID].v6
			}
			c.Received++
			if tw.valid(q) {
				c.Accepted++
			}
			if slices.ContainsFunc(ecmpWant, func(e tpath) bool { return sameTPath(e, q) }) {
				c.Selected++
			}
			if !slices.ContainsFunc(distinct, func(a *wire.Attrs) bool { return sameAttrs(a, q.attrs) }) {
				distinct = append(distinct, q.attrs)
			}
		}
	}
	s := r.Stats()
	if len(s.Peers) != len(tw.peers) {
		t.Fatalf("%s: %d peers, twin %d", what, len(s.Peers), len(tw.peers))
	}
	for _, ps := range s.Peers {
		w := wantCounts[ps.Peer.ID]
		if ps.IPv4 != w.v4 || ps.IPv6 != w.v6 {
			t.Fatalf("%s: peer %d counts %+v %+v, twin %+v %+v", what, ps.Peer.ID, ps.IPv4, ps.IPv6, w.v4, w.v6)
		}
		rcv, acc, ok := r.PeerTotals(ps.Peer.ID)
		if !ok || rcv != w.v4.Received+w.v6.Received || acc != w.v4.Accepted+w.v6.Accepted {
			t.Fatalf("%s: peer %d totals %d/%d, twin %+v %+v", what, ps.Peer.ID, rcv, acc, w.v4, w.v6)
		}
	}
	if s.AttrSets != len(distinct) {
		t.Fatalf("%s: %d attribute sets, twin %d distinct", what, s.AttrSets, len(distinct))
	}
}
