package rib

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
)

// PathView is a copy of one path for readers outside the RIB.
type PathView struct {
	Peer     PeerID
	PathID   uint32 // ADD-PATH identifier, 0 without ADD-PATH
	PeerAddr netip.Addr
	NextHop  netip.Addr
	// Attrs is the interned attribute set, shared with every path that
	// carries the same attributes: read only. It holds neither NEXT_HOP
	// nor the MP attributes.
	Attrs *wire.Attrs
	// Since is when the path last changed (was announced with other
	// attributes or next hop); a repeated announcement does not reset it.
	Since time.Time
	// LinkBandwidth is the bandwidth of the first link-bandwidth extended
	// community, in bytes per second, for weighting ECMP; 0 without one.
	LinkBandwidth float32
	Best          bool // the best path (also in the ECMP set)
	ECMP          bool // in the ECMP set
	// Reason is, for the best path, the step that put it ahead of the next
	// path; for another valid path, the step at which the best path beat
	// it; ReasonInvalid for an invalid path. Filled by Lookup, Walk and
	// AdjRIBIn; zero in a Change.
	Reason Reason
	// Invalid says why the path cannot be used, Valid when it can.
	Invalid Invalid
	// NextHopVerdict is Config.NextHop's code for NextHop when it made the
	// path unusable (Invalid is then InvalidUnreachable), 0 otherwise.
	NextHopVerdict uint8
}

// Change is a prefix whose ECMP set changed.
type Change struct {
	Prefix netip.Prefix
	// Seq orders the Changes of one prefix: of two, the one with the
	// larger Seq is newer. Peers update in parallel, so Changes made in
	// one order by two goroutines may reach a consumer in the other; Seq
	// is only meaningful between Changes of the same prefix.
	Seq uint64
	// Paths is the new ECMP set, best first, empty when the prefix has
	// no usable path left. It aliases the Changes' buffer.
	Paths []PathView
}

// Changes collects the Changes of one or more calls. Its buffers are reused
// after Reset: a consumer batching the changes of several UPDATEs (to write
// the FIB in large batches) keeps appending and resets after the batch.
// A prefix may appear more than once; the last one is current.
type Changes struct {
	List  []Change
	views []PathView
}

// Reset empties c, keeping its buffers: the Change.Paths slices of the
// previous contents are overwritten by the next calls.
func (c *Changes) Reset() {
	clear(c.List)
	clear(c.views)
	c.List, c.views = c.List[:0], c.views[:0]
}

func (c *Changes) add(r *RIB, pfx netip.Prefix, seq uint64, ecmp []path, gen uint8) {
	if c == nil {
		return
	}
	start := len(c.views)
	for i, p := range ecmp {
		v := r.view(p, gen)
		v.Best, v.ECMP = i == 0, true
		c.views = append(c.views, v)
	}
	c.List = append(c.List, Change{Prefix: pfx, Seq: seq, Paths: c.views[start:len(c.views):len(c.views)]})
}

// view copies path p as a shard in generation gen sees it.
func (r *RIB) view(p path, gen uint8) PathView {
	s := r.intern.srcs.get(p.src)
	v := PathView{
		Peer:          s.rank.peer,
		PathID:        s.pathID,
		PeerAddr:      s.rank.peerAddr,
		NextHop:       s.nextHop,
		Attrs:         s.set.attrs,
		Since:         r.epoch.Add(time.Duration(p.since()) * time.Second),
		LinkBandwidth: s.set.linkBandwidth,
		Invalid:       s.invalid(gen),
	}
	if v.Invalid == InvalidUnreachable {
		v.NextHopVerdict = s.reach[gen]
	}
	return v
}

// appendViews appends the views of a prefix's ranked paths, in generation
// gen. The caller holds the prefix's shard lock.
func (r *RIB) appendViews(dst []PathView, ps []path, necmp int, gen uint8) []PathView {
	var best cand
	for i, p := range ps {
		c := cand{p, r.intern.srcs.get(p.src)}
		v := r.view(p, gen)
		v.ECMP = i < necmp
		v.Best = i == 0 && necmp > 0
		switch {
		case !c.s.usable(gen):
			v.Reason = ReasonInvalid
		case i > 0:
			_, v.Reason = comparePaths(best, c, &r.cfg.Policy)
		case len(ps) > 1:
			if next := (cand{ps[1], r.intern.srcs.get(ps[1].src)}); next.s.usable(gen) {
				_, v.Reason = comparePaths(c, next, &r.cfg.Policy)
			}
		}
		if i == 0 {
			best = c
		}
		dst = append(dst, v)
	}
	return dst
}

// entry returns the ranked paths of k and the size of its ECMP set. For
// one or two paths it points into buf. The caller holds sh.mu.
func (sh *shard[K]) entry(r *RIB, k K, buf *pair) ([]path, int) {
	if p, ok := sh.one.get(k); ok {
		return sh.single(r, p, buf)
	}
	if ps, ok := sh.multi(k, buf); ok {
		return ps, ecmpLen(ps)
	}
	return nil, 0
}

// single is entry for a prefix whose one path is p.
func (sh *shard[K]) single(r *RIB, p path, buf *pair) ([]path, int) {
	buf[0] = p
	if r.intern.srcs.get(p.src).usable(sh.gen) {
		return buf[:1], 1
	}
	return buf[:1], 0
}

// Lookup returns every path of exactly prefix p (of either family), best
// first, with flags and reasons; nil when there is none.
func (r *RIB) Lookup(p netip.Prefix) []PathView {
	if !p.IsValid() {
		return nil
	}
	p = p.Masked()
	if p.Addr().Is4() {
		return lookup(r, &r.v4, makeKey4(p))
	}
	return lookup(r, &r.v6, makeKey6(p))
}

func lookup[K prefixKey](r *RIB, t *table[K], k K) []PathView {
	sh := t.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var buf pair
	ps, necmp := sh.entry(r, k, &buf)
	if len(ps) == 0 {
		return nil
	}
	return r.appendViews(make([]PathView, 0, len(ps)), ps, necmp, sh.gen)
}

// walkEntry is one prefix collected from a shard, with its views' range.
type walkEntry struct {
	prefix netip.Prefix
	lo, hi int
}

// walker copies a shard at a time out of the Loc-RIB, so that fn runs with
// no lock held and a slow reader never stalls the peers.
type walker struct {
	ents  []walkEntry
	views []PathView
}

func (w *walker) collect(r *RIB, pfx netip.Prefix, ps []path, necmp int, gen uint8, only *peerState) {
	lo := len(w.views)
	if only == nil {
		w.views = r.appendViews(w.views, ps, necmp, gen)
	} else {
		all := r.appendViews(w.views, ps, necmp, gen)
		w.views = all[:lo]
		for i, p := range ps {
			if r.intern.srcs.get(p.src).peer == only {
				w.views = append(w.views, all[lo+i])
			}
		}
	}
	if len(w.views) > lo {
		w.ents = append(w.ents, walkEntry{pfx, lo, len(w.views)})
	}
}

func walk[K prefixKey](r *RIB, t *table[K], only *peerState, fn func(netip.Prefix, []PathView) bool) bool {
	var w walker
	for i := range t.shards {
		sh := &t.shards[i]
		w.ents, w.views = w.ents[:0], w.views[:0]
		sh.mu.Lock()
		if only == nil || (only.slot < len(sh.counts) && sh.counts[only.slot].received > 0) {
			var buf pair
			for k, p := range sh.one.all() {
				ps, n := sh.single(r, p, &buf)
				w.collect(r, k.prefix(), ps, n, sh.gen, only)
			}
			for k, pr := range sh.two.all() {
				buf = pr
				w.collect(r, k.prefix(), buf[:], ecmpLen(buf[:]), sh.gen, only)
			}
			for k, ps := range sh.many {
				w.collect(r, k.prefix(), ps, ecmpLen(ps), sh.gen, only)
			}
		}
		sh.mu.Unlock()
		for _, e := range w.ents {
			if !fn(e.prefix, w.views[e.lo:e.hi:e.hi]) {
				return false
			}
		}
	}
	return true
}

// Walk calls fn for every prefix of family fam with its paths (as Lookup
// gives them) until fn returns false. The order is unspecified. The slice
// passed to fn is reused: copy what must be kept. Each shard is copied
// under its lock, so the walk is consistent per prefix, not as a whole.
func (r *RIB) Walk(fam wire.Family, fn func(netip.Prefix, []PathView) bool) {
	switch fam {
	case wire.IPv4Unicast:
		walk(r, &r.v4, nil, fn)
	case wire.IPv6Unicast:
		walk(r, &r.v6, nil, fn)
	}
}

// AdjRIBIn calls fn for every path of family fam that peer id announced,
// until fn returns false. Flags and reasons are those of the Loc-RIB.
func (r *RIB) AdjRIBIn(id PeerID, fam wire.Family, fn func(netip.Prefix, PathView) bool) error {
	r.mu.RLock()
	ps := r.peers[id]
	r.mu.RUnlock()
	if ps == nil {
		return ErrUnknownPeer
	}
	each := func(p netip.Prefix, vs []PathView) bool {
		for _, v := range vs {
			if !fn(p, v) {
				return false
			}
		}
		return true
	}
	switch fam {
	case wire.IPv4Unicast:
		walk(r, &r.v4, ps, each)
	case wire.IPv6Unicast:
		walk(r, &r.v6, ps, each)
	default:
		return ErrFamily
	}
	return nil
}

// Counts are one peer's paths in one family.
type Counts struct {
	Received int // paths held in its Adj-RIB-In
	Accepted int // of which valid (see Invalid)
	Selected int // of which in an ECMP set
}

// PeerStats are one peer's counters.
type PeerStats struct {
	Peer       Peer
	IPv4, IPv6 Counts
}

// Stats is a summary of the RIB.
type Stats struct {
	IPv4Prefixes, IPv6Prefixes int
	IPv4Paths, IPv6Paths       int
	// AttrSets is the number of distinct interned attribute sets.
	AttrSets int
	// UnknownAttrBytes is what the sets' unknown attributes take (see
	// Config.UnknownAttrBytes).
	UnknownAttrBytes int
	// Peers are sorted by ID.
	Peers []PeerStats
}

// Stats returns the RIB's counters, each shard read under its lock.
func (r *RIB) Stats() Stats {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var s Stats
	byslot := make(map[int]int, len(r.peers))
	for _, ps := range r.peers {
		byslot[ps.slot] = len(s.Peers)
		s.Peers = append(s.Peers, PeerStats{Peer: ps.peer})
	}
	s.IPv4Prefixes, s.IPv4Paths = sum(&r.v4, byslot, s.Peers, func(p *PeerStats) *Counts { return &p.IPv4 })
	s.IPv6Prefixes, s.IPv6Paths = sum(&r.v6, byslot, s.Peers, func(p *PeerStats) *Counts { return &p.IPv6 })
	slices.SortFunc(s.Peers, func(a, b PeerStats) int { return cmp.Compare(a.Peer.ID, b.Peer.ID) })
	r.intern.mu.Lock()
	s.AttrSets = len(r.intern.sets)
	s.UnknownAttrBytes = r.intern.unknown
	r.intern.mu.Unlock()
	return s
}

func sum[K prefixKey](t *table[K], byslot map[int]int, peers []PeerStats, fam func(*PeerStats) *Counts) (prefixes, paths int) {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		prefixes += sh.one.len() + sh.two.len() + len(sh.many)
		for slot, c := range sh.counts {
			paths += int(c.received)
			if j, ok := byslot[slot]; ok {
				f := fam(&peers[j])
				f.Received += int(c.received)
				f.Accepted += int(c.accepted)
				f.Selected += int(c.selected)
			}
		}
		sh.mu.Unlock()
	}
	return prefixes, paths
}

// PeerTotals is a peer's received and accepted paths over both families,
// read without visiting the shards: cheap enough to check after every UPDATE.
func (r *RIB) PeerTotals(id PeerID) (received, accepted int, ok bool) {
	r.mu.RLock()
	ps, ok := r.peers[id]
	r.mu.RUnlock()
	if !ok {
		return 0, 0, false
	}
	return int(ps.received.Load()), int(ps.accepted.Load()), true
}

// PeerStats returns the counters of one peer.
func (r *RIB) PeerStats(id PeerID) (PeerStats, bool) {
	for _, p := range r.Stats().Peers {
		if p.Peer.ID == id {
			return p, true
		}
	}
	return PeerStats{}, false
}
