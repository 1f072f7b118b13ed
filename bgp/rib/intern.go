package rib

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/bgplb/bgplb/bgp/wire"
)

// attrSet is one interned attribute set, shared by every path that carries
// the same attributes, from any peer and with any next hop. The next hop is
// kept out so that the nodes of a cluster, which announce one /32 with
// identical attributes and their own next hops, share one set.
//
// Everything but refs is immutable once the set is in the interner.
type attrSet struct {
	key   string      // canonical encoding, the interner's map key
	attrs *wire.Attrs // canonical copy: read only, no NEXT_HOP or MP attributes
	refs  int         // sources using the set; guarded by interner.mu
	// unknown is what the set's unknown attributes count against
	// Config.UnknownAttrBytes.
	unknown int

	// Inputs of the decision process, with policy applied.
	localPref     uint32
	med           uint32
	asPathLen     uint32
	firstAS       uint32
	clusterLen    uint32
	linkBandwidth float32
}

// source is what the paths of one peer with one attribute set, one next
// hop and one ADD-PATH identifier have in common. A path is then the
// source's index plus its age, which is what keeps a path at 8 bytes.
//
// A source belongs to its peer: only that peer's goroutine (holding
// peerState.mu) creates it, counts its references and frees it. Other
// goroutines read its immutable fields through the paths they find in the
// Loc-RIB, under that prefix's shard lock, which is what makes reusing a
// freed index safe: no path holds it any more.
type source struct {
	id      srcID
	peer    *peerState
	set     *attrSet
	nextHop netip.Addr
	pathID  uint32
	rank    rank
	refs    int // paths (and pins) using the source; owned by the peer
	// reach is Config.NextHop's verdict on nextHop (0: usable) in two
	// generations. A shard reads reach[shard.gen] under its lock; Revalidate
	// writes the generation no shard reads, then moves the shards over to
	// it one at a time, so that each shard's rankings and counters always
	// agree with the verdicts it reads. A new source gets the same verdict
	// in both.
	reach [2]uint8
}

// usable reports whether the source's paths may be selected, as seen by a
// shard in generation gen.
func (s *source) usable(gen uint8) bool { return s.rank.invalid == Valid && s.reach[gen] == 0 }

// invalid says why the source's paths cannot be used in generation gen.
func (s *source) invalid(gen uint8) Invalid {
	if s.rank.invalid == Valid && s.reach[gen] != 0 {
		return InvalidUnreachable
	}
	return s.rank.invalid
}

// flipped reports whether a Revalidate in progress changes the source's
// usability.
func (s *source) flipped() bool { return (s.reach[0] == 0) != (s.reach[1] == 0) }

type sourceKey struct {
	set     *attrSet
	nextHop netip.Addr
	pathID  uint32
}

// srcID indexes the RIB's source table.
type srcID uint32

// srcChunk is the number of sources per chunk of the source table.
const srcChunk = 1024

// sourceTable maps srcIDs to sources. It grows by chunks that never move,
// published through an atomic pointer, so readers need no lock: they hold a
// path, found under a shard lock, whose source was stored before the path.
type sourceTable struct {
	chunks atomic.Pointer[[]*[srcChunk]*source]
	// Guarded by interner.mu.
	free []srcID
	n    srcID
}

func (t *sourceTable) get(id srcID) *source { return (*t.chunks.Load())[id/srcChunk][id%srcChunk] }

// put gives s an index. The caller holds interner.mu.
func (t *sourceTable) put(s *source) {
	if n := len(t.free); n > 0 {
		s.id, t.free = t.free[n-1], t.free[:n-1]
	} else {
		s.id = t.n
		t.n++
	}
	cs := *t.chunks.Load()
	if int(s.id/srcChunk) == len(cs) {
		grown := append(slices.Clip(cs), new([srcChunk]*source))
		t.chunks.Store(&grown)
		cs = grown
	}
	cs[s.id/srcChunk][s.id%srcChunk] = s
}

// drop frees s's index. The caller holds interner.mu.
func (t *sourceTable) drop(s *source) {
	(*t.chunks.Load())[s.id/srcChunk][s.id%srcChunk] = nil
	t.free = append(t.free, s.id)
}

// interner holds the attribute sets and sources of one RIB. Peers look a
// set up once per UPDATE (and not even that when the attributes repeat the
// previous UPDATE's), so its lock is never taken per prefix.
type interner struct {
	mu   sync.Mutex
	sets map[string]*attrSet
	srcs sourceTable
	// unknown totals attrSet.unknown over sets.
	unknown int
}

func (in *interner) init() {
	in.sets = make(map[string]*attrSet)
	in.srcs.chunks.Store(new([]*[srcChunk]*source))
}

// attrKeyed lists, in key order, the attribute types whose presence the key
// records. NEXT_HOP, MP_REACH_NLRI and MP_UNREACH_NLRI are not part of an
// attribute set, and the AS4 attributes are merged away by the codec.
var attrKeyed = [...]uint8{
	wire.AttrOrigin, wire.AttrASPath, wire.AttrMED, wire.AttrLocalPref, wire.AttrAtomicAggregate,
	wire.AttrAggregator, wire.AttrCommunities, wire.AttrOriginatorID, wire.AttrClusterList,
	wire.AttrExtCommunities, wire.AttrLargeCommunity, wire.AttrOTC,
}

// appendAttrKey appends the canonical encoding of a, with its unknown
// attributes or without: equal keys mean equal attribute sets. Values of
// absent attributes are ignored, variable parts carry their length, so the
// encoding is injective.
func appendAttrKey(b []byte, a *wire.Attrs, unknown bool) []byte {
	var mask uint16
	for i, t := range attrKeyed {
		if a.Has(t) {
			mask |= 1 << i
		}
	}
	b = binary.BigEndian.AppendUint16(b, mask)
	if a.Has(wire.AttrOrigin) {
		b = append(b, byte(a.Origin))
	}
	if a.Has(wire.AttrASPath) {
		b = binary.AppendUvarint(b, uint64(len(a.ASPath)))
		for _, s := range a.ASPath {
			b = append(b, s.Type)
			b = binary.AppendUvarint(b, uint64(len(s.ASNs)))
			for _, as := range s.ASNs {
				b = binary.BigEndian.AppendUint32(b, as)
			}
		}
	}
	if a.Has(wire.AttrMED) {
		b = binary.BigEndian.AppendUint32(b, a.MED)
	}
	if a.Has(wire.AttrLocalPref) {
		b = binary.BigEndian.AppendUint32(b, a.LocalPref)
	}
	if a.Has(wire.AttrAggregator) {
		b = binary.BigEndian.AppendUint32(b, a.Aggregator.AS)
		b = appendAddr(b, a.Aggregator.Addr)
	}
	if a.Has(wire.AttrCommunities) {
		b = binary.AppendUvarint(b, uint64(len(a.Communities)))
		for _, c := range a.Communities {
			b = binary.BigEndian.AppendUint32(b, uint32(c))
		}
	}
	if a.Has(wire.AttrOriginatorID) {
		b = appendAddr(b, a.OriginatorID)
	}
	if a.Has(wire.AttrClusterList) {
		b = binary.AppendUvarint(b, uint64(len(a.ClusterList)))
		for _, c := range a.ClusterList {
			b = appendAddr(b, c)
		}
	}
	if a.Has(wire.AttrExtCommunities) {
		b = binary.AppendUvarint(b, uint64(len(a.ExtCommunities)))
		for _, c := range a.ExtCommunities {
			b = append(b, c[:]...)
		}
	}
	if a.Has(wire.AttrLargeCommunity) {
		b = binary.AppendUvarint(b, uint64(len(a.LargeCommunities)))
		for _, c := range a.LargeCommunities {
			b = binary.BigEndian.AppendUint32(b, c.Global)
			b = binary.BigEndian.AppendUint32(b, c.Local1)
			b = binary.BigEndian.AppendUint32(b, c.Local2)
		}
	}
	if a.Has(wire.AttrOTC) {
		b = binary.BigEndian.AppendUint32(b, a.OTC)
	}
	if !unknown {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(a.Unknown)))
	for _, u := range a.Unknown {
		b = append(b, u.Flags, u.Type)
		b = binary.AppendUvarint(b, uint64(len(u.Value)))
		b = append(b, u.Value...)
	}
	return b
}

// appendAddr encodes an address with its length, so that an IPv4, an IPv6
// and no address never look alike.
func appendAddr(b []byte, a netip.Addr) []byte {
	switch {
	case !a.IsValid():
		return append(b, 0)
	case a.Is4():
		x := a.As4()
		return append(append(b, 4), x[:]...)
	}
	x := a.As16()
	return append(append(b, 16), x[:]...)
}

// canonicalAttrs copies the attributes an attribute set keeps, and only
// those: absent attributes are zero, and nothing aliases a decode buffer.
// The unknown attributes are copied only when asked for.
func canonicalAttrs(a *wire.Attrs, unknown bool) *wire.Attrs {
	c := &wire.Attrs{}
	for _, t := range attrKeyed {
		if a.Has(t) {
			c.Set(t)
		}
	}
	if a.Has(wire.AttrOrigin) {
		c.Origin = a.Origin
	}
	if a.Has(wire.AttrASPath) {
		c.ASPath = a.ASPath.Clone()
	}
	if a.Has(wire.AttrMED) {
		c.MED = a.MED
	}
	if a.Has(wire.AttrLocalPref) {
		c.LocalPref = a.LocalPref
	}
	if a.Has(wire.AttrAggregator) {
		c.Aggregator = a.Aggregator
	}
	if a.Has(wire.AttrCommunities) {
		c.Communities = slices.Clone(a.Communities)
	}
	if a.Has(wire.AttrOriginatorID) {
		c.OriginatorID = a.OriginatorID
	}
	if a.Has(wire.AttrClusterList) {
		c.ClusterList = slices.Clone(a.ClusterList)
	}
	if a.Has(wire.AttrExtCommunities) {
		c.ExtCommunities = slices.Clone(a.ExtCommunities)
	}
	if a.Has(wire.AttrLargeCommunity) {
		c.LargeCommunities = slices.Clone(a.LargeCommunities)
	}
	if a.Has(wire.AttrOTC) {
		c.OTC = a.OTC
	}
	if unknown && len(a.Unknown) > 0 {
		c.Unknown = make([]wire.RawAttr, len(a.Unknown))
		for i, u := range a.Unknown {
			c.Unknown[i] = wire.RawAttr{Flags: u.Flags, Type: u.Type, Value: slices.Clone(u.Value)}
		}
	}
	return c
}

func newAttrSet(key []byte, a *wire.Attrs, unknown bool, pol *Policy) *attrSet {
	c := canonicalAttrs(a, unknown)
	s := &attrSet{
		key:        string(key),
		attrs:      c,
		unknown:    unknownSize(c.Unknown),
		localPref:  pol.defaultLocalPref(),
		asPathLen:  uint32(c.ASPath.Len()),
		firstAS:    c.ASPath.NeighborAS(),
		clusterLen: uint32(len(c.ClusterList)),
	}
	if c.Has(wire.AttrLocalPref) {
		s.localPref = c.LocalPref
	}
	if c.HasCommunity(wire.CommunityGracefulShutdown) {
		s.localPref = 0 // RFC 8326 §4.2
	}
	switch {
	case c.Has(wire.AttrMED):
		s.med = c.MED
	case pol.MissingMEDWorst:
		s.med = ^uint32(0)
	}
	for _, e := range c.ExtCommunities {
		if _, bw, ok := e.LinkBandwidth(); ok {
			s.linkBandwidth = bw
			break
		}
	}
	return s
}

// unknownSize is what unknown attributes cost: their values and headers.
func unknownSize(us []wire.RawAttr) int {
	n := 0
	for _, u := range us {
		n += len(u.Value) + 4
	}
	return n
}

// keepsUnknown reports whether the key of attributes a includes their
// unknown attributes: only when some are kept at all.
func (r *RIB) keepsUnknown(a *wire.Attrs) bool {
	return r.cfg.UnknownAttrBytes > 0 && len(a.Unknown) > 0
}

// acquire returns peer ps's source for attributes a (whose canonical key is
// key, *key being scratch space), next hop nh and path ID id, creating the
// attribute set and the source as needed. A new set whose unknown
// attributes would take the RIB over Config.UnknownAttrBytes is interned
// without them. The caller holds ps.mu.
func (in *interner) acquire(r *RIB, ps *peerState, key *[]byte, a *wire.Attrs, nh netip.Addr, id uint32) *source {
	in.mu.Lock()
	defer in.mu.Unlock()
	unknown := r.keepsUnknown(a)
	set := in.sets[string(*key)]
	if set == nil && unknown && in.unknown+unknownSize(a.Unknown) > r.cfg.UnknownAttrBytes {
		unknown = false
		*key = appendAttrKey((*key)[:0], a, false)
		set = in.sets[string(*key)]
	}
	if set == nil {
		set = newAttrSet(*key, a, unknown, &r.cfg.Policy)
		in.sets[set.key] = set
		in.unknown += set.unknown
	}
	return in.sourceLocked(r, ps, sourceKey{set, nh, id})
}

// sibling returns the source that differs from s only in its path ID.
func (in *interner) sibling(r *RIB, s *source, id uint32) *source {
	if src := s.peer.sources[sourceKey{s.set, s.nextHop, id}]; src != nil {
		return src
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.sourceLocked(r, s.peer, sourceKey{s.set, s.nextHop, id})
}

func (in *interner) sourceLocked(r *RIB, ps *peerState, sk sourceKey) *source {
	if src := ps.sources[sk]; src != nil {
		return src
	}
	sk.set.refs++
	src := &source{peer: ps, set: sk.set, nextHop: sk.nextHop, pathID: sk.pathID, rank: r.rankOf(ps, sk.set, sk.nextHop)}
	v := r.checkNextHop(src)
	src.reach = [2]uint8{v, v}
	in.srcs.put(src)
	ps.sources[sk] = src
	return src
}

// release drops a source no path uses any more, and its attribute set with
// it when no other source uses that. The caller holds src.peer.mu.
func (in *interner) release(src *source) {
	delete(src.peer.sources, sourceKey{src.set, src.nextHop, src.pathID})
	in.mu.Lock()
	defer in.mu.Unlock()
	in.srcs.drop(src)
	if src.set.refs--; src.set.refs == 0 {
		delete(in.sets, src.set.key)
		in.unknown -= src.set.unknown
	}
}

// rankOf computes the decision inputs of paths from ps with set and nh.
func (r *RIB) rankOf(ps *peerState, set *attrSet, nh netip.Addr) rank {
	a := set.attrs
	rk := rank{
		localPref:  set.localPref,
		asPathLen:  set.asPathLen,
		med:        set.med,
		neighborAS: set.firstAS,
		clusterLen: set.clusterLen,
		origin:     a.Origin,
		external:   ps.external,
		routerID:   ps.peer.RouterID,
		peerAddr:   ps.peer.Addr,
		peer:       ps.peer.ID,
	}
	if rk.neighborAS == 0 {
		// An empty path (or one opening with a set) was originated or
		// aggregated next door: RFC 4271 §9.1.2.2 (c) scopes its MED to
		// the peer's AS for eBGP and to the local AS for iBGP.
		rk.neighborAS = ps.peer.AS
	}
	if a.Has(wire.AttrOriginatorID) {
		rk.routerID = a.OriginatorID
	}
	switch {
	case !nh.IsValid() || nh.IsUnspecified():
		rk.invalid = InvalidNextHop
	case hasAS(a.ASPath, ps.peer.LocalAS):
		rk.invalid = InvalidASLoop
	case a.Has(wire.AttrOriginatorID) && a.OriginatorID == r.cfg.RouterID:
		rk.invalid = InvalidOriginatorID
	}
	return rk
}

// hasAS reports whether as appears in the path's sequences or sets.
// Confederation segments hold our own confederation's members and are
// not loops.
func hasAS(p wire.ASPath, as uint32) bool {
	for _, s := range p {
		if (s.Type == wire.ASSequence || s.Type == wire.ASSet) && slices.Contains(s.ASNs, as) {
			return true
		}
	}
	return false
}
