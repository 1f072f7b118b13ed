package rib

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/bgplb/bgplb/bgp/wire"
)

// Policy holds the knobs of the decision process. It is fixed for the life
// of a RIB: every path's rank is computed once, when its attribute set and
// source are first seen.
type Policy struct {
	// DefaultLocalPref is the LOCAL_PREF of a path that carries none
	// (eBGP paths, whose LOCAL_PREF the codec discards, and iBGP paths
	// without one). Zero means 100.
	DefaultLocalPref uint32
	// AlwaysCompareMED compares MED between paths from different
	// neighbour ASes too (Cisco's "always-compare-med").
	AlwaysCompareMED bool
	// MissingMEDWorst makes a missing MED the worst value instead of 0
	// (RFC 4271 §9.1.2.2 says 0).
	MissingMEDWorst bool
}

func (p Policy) defaultLocalPref() uint32 {
	if p.DefaultLocalPref == 0 {
		return 100
	}
	return p.DefaultLocalPref
}

// Reason names the step of the decision process that ranked one path ahead
// of another. The values follow the order of the steps.
type Reason uint8

// Decision steps, in the order they are applied.
const (
	// ReasonOnly: there was no other usable path to compare with.
	ReasonOnly Reason = iota
	ReasonLocalPref
	ReasonASPathLen
	ReasonOrigin
	ReasonMED
	ReasonExternal
	// Paths that tie on every step above are equal-cost: the steps below
	// only pick the best among them.
	ReasonRouterID
	ReasonClusterList
	ReasonPeerAddr
	// ReasonPathID orders two ADD-PATH paths of one peer.
	ReasonPathID
	// ReasonPeer orders two peers that share an address (which only a
	// misconfiguration gives), so that the order is total.
	ReasonPeer
	// ReasonInvalid: the other path cannot be used at all (see Invalid).
	ReasonInvalid
)

var reasonNames = [...]string{
	ReasonOnly: "only path", ReasonLocalPref: "local-pref", ReasonASPathLen: "as-path length",
	ReasonOrigin: "origin", ReasonMED: "med", ReasonExternal: "ebgp over ibgp",
	ReasonRouterID: "router-id", ReasonClusterList: "cluster-list length", ReasonPeerAddr: "peer address",
	ReasonPathID: "path-id", ReasonPeer: "peer id", ReasonInvalid: "invalid",
}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "reason(?)"
}

// Invalid says why a path cannot be used; such a path stays in the
// Adj-RIB-In (it is shown and counted as received) but never in an ECMP set.
type Invalid uint8

// Reasons for a path to be unusable.
const (
	Valid Invalid = iota
	// InvalidNextHop: no next hop, or the unspecified address.
	InvalidNextHop
	// InvalidASLoop: the AS_PATH holds the local AS (RFC 4271 §9.1.2).
	InvalidASLoop
	// InvalidOriginatorID: ORIGINATOR_ID is our own router ID (RFC 4456 §8).
	InvalidOriginatorID
	// InvalidUnreachable: Config.NextHop refused the next hop (see
	// PathView.NextHopVerdict for its reason).
	InvalidUnreachable
)

var invalidNames = [...]string{
	Valid: "valid", InvalidNextHop: "unusable next hop", InvalidASLoop: "AS loop", InvalidOriginatorID: "originator is us",
	InvalidUnreachable: "unreachable next hop",
}

func (v Invalid) String() string {
	if int(v) < len(invalidNames) {
		return invalidNames[v]
	}
	return "invalid(?)"
}

// rank is everything the decision process looks at, for one source (a peer,
// an attribute set and a next hop), with policy already applied. It is
// computed once when the source is created, so comparing two paths reads two
// small structs and nothing else.
type rank struct {
	localPref  uint32 // effective: default applied, GRACEFUL_SHUTDOWN → 0
	asPathLen  uint32
	med        uint32 // effective: missing MED → 0 or worst
	neighborAS uint32 // the AS MED is scoped to
	clusterLen uint32
	origin     wire.Origin
	external   bool
	invalid    Invalid
	routerID   netip.Addr // ORIGINATOR_ID when present, else the peer's
	peerAddr   netip.Addr
	peer       PeerID
}

// Each step compares a and b and returns a negative number when a is
// better, positive when b is better, 0 when the step does not decide.

func byLocalPref(a, b *rank) int  { return cmp.Compare(b.localPref, a.localPref) }
func byASPathLen(a, b *rank) int  { return cmp.Compare(a.asPathLen, b.asPathLen) }
func byOrigin(a, b *rank) int     { return cmp.Compare(a.origin, b.origin) }
func byMED(a, b *rank) int        { return cmp.Compare(a.med, b.med) }
func byRouterID(a, b *rank) int   { return a.routerID.Compare(b.routerID) }
func byClusterLen(a, b *rank) int { return cmp.Compare(a.clusterLen, b.clusterLen) }
func byPeerAddr(a, b *rank) int   { return a.peerAddr.Compare(b.peerAddr) }
func byPeer(a, b *rank) int       { return cmp.Compare(a.peer, b.peer) }

func byExternal(a, b *rank) int {
	switch {
	case a.external == b.external:
		return 0
	case a.external:
		return -1
	}
	return 1
}

// steps is the decision process of RFC 4271 §9.1.2.2 with the usual
// tie-breakers. The IGP cost to the next hop (step e) is left out: the
// router learns its next hops on connected LANs, where every cost is equal.
var steps = [...]struct {
	reason Reason
	cmp    func(a, b *rank) int
}{
	{ReasonLocalPref, byLocalPref},
	{ReasonASPathLen, byASPathLen},
	{ReasonOrigin, byOrigin},
	{ReasonMED, byMED},
	{ReasonExternal, byExternal},
	{ReasonRouterID, byRouterID},
	{ReasonClusterList, byClusterLen},
	{ReasonPeerAddr, byPeerAddr},
}

// medGroup is the neighbour AS that scopes MED comparison.
func medGroup(r *rank, pol *Policy) uint32 {
	if pol.AlwaysCompareMED {
		return 0
	}
	return r.neighborAS
}

// compareRanks applies the steps in order. MED only counts between paths
// of one neighbour AS (unless the policy says always).
func compareRanks(a, b *rank, pol *Policy) (int, Reason) {
	sameAS := medGroup(a, pol) == medGroup(b, pol)
	for _, s := range steps {
		if s.reason == ReasonMED && !sameAS {
			continue
		}
		if c := s.cmp(a, b); c != 0 {
			return c, s.reason
		}
	}
	return 0, ReasonOnly
}

// cand is a path with its source looked up, for the decision process.
type cand struct {
	p path
	s *source
}

// comparePaths orders two valid paths totally: the ranks, then the ADD-PATH
// identifier, then the peer. A zero result means the same path.
func comparePaths(a, b cand, pol *Policy) (int, Reason) {
	ra, rb := &a.s.rank, &b.s.rank
	if c, why := compareRanks(ra, rb, pol); c != 0 {
		return c, why
	}
	if c := cmp.Compare(a.s.pathID, b.s.pathID); c != 0 {
		return c, ReasonPathID
	}
	return byPeer(ra, rb), ReasonPeer
}

// equalCost reports whether a and b tie on every step before the router ID:
// they may share the traffic.
func equalCost(a, b cand, pol *Policy) bool {
	c, why := comparePaths(a, b, pol)
	return c == 0 || why >= ReasonRouterID
}

// compareInvalid orders paths that cannot be used: by peer address, peer
// and path ID, only so that the order is stable.
func compareInvalid(a, b cand) int {
	ra, rb := &a.s.rank, &b.s.rank
	if c := byPeerAddr(ra, rb); c != 0 {
		return c
	}
	if c := byPeer(ra, rb); c != 0 {
		return c
	}
	return cmp.Compare(a.s.pathID, b.s.pathID)
}

// span is one neighbour-AS group of candidates: cs[lo:hi].
type span struct{ lo, hi int }

// orderer ranks the paths of one prefix. Its scratch buffers belong to the
// goroutine that owns the orderer (one per peer, used under the peer lock).
type orderer struct {
	pol      *Policy
	maxPaths int
	srcs     *sourceTable
	gen      uint8 // of the next-hop verdicts (see source.reach)
	cands    []cand
	buf      []cand
	groups   []span
}

// order sorts ps in place and flags its ECMP set, which comes first, best
// first. The layout of ps after it is:
//
//	ECMP set | equal-cost paths over MaxPaths | other valid paths | invalid paths
//
// MED is not transitive (it only orders paths of one neighbour AS), so the
// result is made independent of arrival order the way "deterministic-med"
// does it: paths are grouped by neighbour AS, each group is sorted with MED,
// and the groups are ordered by their winners, which differ in neighbour AS
// and so are compared without MED. A path joins the ECMP set when it ties
// with its group's winner down to (not including) the router ID, and that
// winner ties in the same way with the overall best. The AS paths themselves
// may differ (only their length counts), as may the neighbour AS.
func (o *orderer) order(ps []path) {
	cs := o.cands[:0]
	for _, p := range ps {
		cs = append(cs, cand{p, o.srcs.get(p.src)})
	}
	n := o.rank(cs)
	for i, c := range cs {
		m := c.p.meta &^ ecmpBit
		if i < n {
			m |= ecmpBit
		}
		ps[i] = path{c.p.src, m}
	}
	clear(cs)
	o.cands = cs[:0]
}

// rank sorts cs as order describes and returns the size of the ECMP set.
func (o *orderer) rank(cs []cand) int {
	nv := 0
	for i := range cs {
		if cs[i].s.usable(o.gen) {
			cs[nv], cs[i] = cs[i], cs[nv]
			nv++
		}
	}
	if len(cs)-nv > 1 {
		slices.SortFunc(cs[nv:], compareInvalid)
	}
	valid := cs[:nv]
	switch {
	case nv <= 1:
		return nv
	case nv == 2 && medGroup(&valid[0].s.rank, o.pol) == medGroup(&valid[1].s.rank, o.pol):
		// The common multi-path case, two nodes announcing one address.
		if c, _ := comparePaths(valid[0], valid[1], o.pol); c > 0 {
			valid[0], valid[1] = valid[1], valid[0]
		}
		if equalCost(valid[0], valid[1], o.pol) {
			return min(2, o.maxPaths)
		}
		return 1
	case o.oneGroup(valid):
		slices.SortFunc(valid, o.compare)
		n := 1
		for n < nv && equalCost(valid[0], valid[n], o.pol) {
			n++
		}
		return min(n, o.maxPaths)
	}
	return o.rankGroups(valid)
}

func (o *orderer) compare(a, b cand) int {
	c, _ := comparePaths(a, b, o.pol)
	return c
}

func (o *orderer) group(c cand) uint32 { return medGroup(&c.s.rank, o.pol) }

func (o *orderer) oneGroup(cs []cand) bool {
	g := o.group(cs[0])
	for _, c := range cs[1:] {
		if o.group(c) != g {
			return false
		}
	}
	return true
}

// rankGroups is rank for valid paths from several neighbour ASes.
func (o *orderer) rankGroups(cs []cand) int {
	slices.SortFunc(cs, func(a, b cand) int {
		if c := cmp.Compare(o.group(a), o.group(b)); c != 0 {
			return c
		}
		return o.compare(a, b)
	})
	gs := o.groups[:0]
	for lo := 0; lo < len(cs); {
		hi := lo + 1
		for hi < len(cs) && o.group(cs[hi]) == o.group(cs[lo]) {
			hi++
		}
		gs = append(gs, span{lo, hi})
		lo = hi
	}
	slices.SortFunc(gs, func(x, y span) int { return o.compare(cs[x.lo], cs[y.lo]) })
	o.groups = gs

	// The equal-cost paths, group by group, then everything else.
	buf := o.buf[:0]
	best := cs[gs[0].lo]
	for gi, g := range gs {
		w := cs[g.lo]
		if !equalCost(w, best, o.pol) {
			break
		}
		i := g.lo
		for i < g.hi && equalCost(cs[i], w, o.pol) {
			buf = append(buf, cs[i])
			i++
		}
		gs[gi].lo = i // what is left of the group
	}
	// Members of one ECMP set tie down to the router ID (MED included
	// within a group, skipped across), so compare orders them totally.
	n := len(buf)
	slices.SortFunc(buf, o.compare)
	for _, g := range gs {
		buf = append(buf, cs[g.lo:g.hi]...)
	}
	copy(cs, buf)
	clear(buf)
	o.buf = buf[:0]
	return min(n, o.maxPaths)
}
