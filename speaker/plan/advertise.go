package plan

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"

	"github.com/bgplb/bgplb/bgp/wire"
	"github.com/bgplb/bgplb/internal/lbmodel"
)

// prepareAdvertisements checks every advertisement, keeps those that
// select this node, and records which pools and peers each serves.
// Configuration errors are reported whether or not the advertisement
// selects this node: every speaker sees the same configuration, and the
// operator should hear about a typo before it matters.
func (p *planner) prepareAdvertisements(advs []lbmodel.Advertisement) {
	for _, i := range byName(p, advs, func(x *lbmodel.Advertisement) string { return x.Name }, "BGPAnnouncementPolicy") {
		src := &advs[i]
		p.checkNames(src)
		v4, ok4 := lbmodel.Aggregation(src.AggregationLength, 32)
		v6, ok6 := lbmodel.Aggregation(src.AggregationLengthV6, 128)
		if !ok4 {
			p.problemf("BGPAnnouncementPolicy %q: aggregationLength %d is not between 1 and 32; the policy is ignored", src.Name, src.AggregationLength)
		}
		if !ok6 {
			p.problemf("BGPAnnouncementPolicy %q: aggregationLengthV6 %d is not between 1 and 128; the policy is ignored", src.Name, src.AggregationLengthV6)
		}
		if !ok4 || !ok6 || !src.SelectsNode(p.nodeLabels) {
			continue
		}
		ai := int32(len(p.advs))
		a := adv{name: src.Name, v4: v4, v6: v6, attrs: p.intern(canonical(src))}
		for _, name := range src.Peers {
			if pi, ok := p.peerIndex[name]; ok {
				p.setAdvPeer(ai, pi)
				a.sends = true
			}
		}
		if len(src.Peers) == 0 {
			for pi := range p.peers {
				p.setAdvPeer(ai, int32(pi))
			}
			a.sends = len(p.peers) > 0
		}
		p.advs = append(p.advs, a)
		for pi := range p.pools {
			if pl := &p.pools[pi]; src.SelectsPool(pl.name, pl.labels) {
				pl.advs = append(pl.advs, ai)
			}
		}
	}
}

// checkNames reports peers and pools an advertisement names that do not
// exist (or, for pools, are not in use): MetalLB silently announces nothing
// in that case, which is the hardest kind of mistake to find.
func (p *planner) checkNames(a *lbmodel.Advertisement) {
	for _, name := range a.Peers {
		if !p.allPeers[name] {
			p.problemf("BGPAnnouncementPolicy %q names BGPRouter %q, which does not exist", a.Name, name)
		}
	}
	for _, name := range a.Pools {
		if !slices.ContainsFunc(p.pools, func(pl pool) bool { return pl.name == name }) {
			p.problemf("BGPAnnouncementPolicy %q names LoadBalancerPool %q, which does not exist or is not in use", a.Name, name)
		}
	}
}

// setAdvPeer grows advPeer as advertisements are added: it is a dense
// advertisements × peers matrix, both small.
func (p *planner) setAdvPeer(ai, pi int32) {
	n := (int(ai) + 1) * len(p.peers)
	if len(p.advPeer) < n {
		p.advPeer = append(p.advPeer, make([]bool, n-len(p.advPeer))...)
	}
	p.advPeer[int(ai)*len(p.peers)+int(pi)] = true
}

func (p *planner) sendsTo(ai int32, pi int) bool {
	i := int(ai)*len(p.peers) + pi
	return i < len(p.advPeer) && p.advPeer[i]
}

// canonical is an advertisement's attributes in the form routes carry
// them: sorted, without repeats, copied so nothing aliases the snapshot.
func canonical(a *lbmodel.Advertisement) Attrs {
	var at Attrs
	if a.LocalPref != nil {
		v := *a.LocalPref // a copy: the result must not alias the snapshot
		at.LocalPref = &v
	}
	at.Communities = sortedSet(slices.Clone(a.Communities), cmp.Compare[wire.Community])
	at.LargeCommunities = sortedSet(slices.Clone(a.LargeCommunities), compareLarge)
	return at
}

func compareLarge(a, b wire.LargeCommunity) int {
	return cmp.Or(cmp.Compare(a.Global, b.Global), cmp.Compare(a.Local1, b.Local1), cmp.Compare(a.Local2, b.Local2))
}

// sortedSet sorts s in place and drops repeats; empty becomes nil so that
// equal attributes compare equal however they were built.
func sortedSet[T comparable](s []T, compare func(a, b T) int) []T {
	if len(s) == 0 {
		return nil
	}
	slices.SortFunc(s, compare)
	return slices.Clip(slices.Compact(s))
}

// intern returns the one *Attrs of this run equal to at, so that equal
// attribute sets are one allocation and a pointer comparison tells them
// apart.
func (p *planner) intern(at Attrs) *Attrs {
	b := p.scratch[:0]
	if at.LocalPref != nil {
		b = append(b, 1)
		b = binary.BigEndian.AppendUint32(b, *at.LocalPref)
	} else {
		b = append(b, 0)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(at.Communities)))
	for _, c := range at.Communities {
		b = binary.BigEndian.AppendUint32(b, uint32(c))
	}
	for _, c := range at.LargeCommunities {
		b = binary.BigEndian.AppendUint32(b, c.Global)
		b = binary.BigEndian.AppendUint32(b, c.Local1)
		b = binary.BigEndian.AppendUint32(b, c.Local2)
	}
	p.scratch = b
	if got, ok := p.attrsByKey[string(b)]; ok {
		return got
	}
	ptr := &at
	p.attrsByKey[string(b)] = ptr
	return ptr
}

// attrsFor returns the attributes of a route the advertisements in set
// (sorted, no repeats) contribute to; prefix and peer say where, for a
// problem report. Merges are cached by set: the same few sets recur on
// thousands of routes.
func (p *planner) attrsFor(set []int32, prefix netip.Prefix, peer int) *Attrs {
	if len(set) == 1 {
		return p.advs[set[0]].attrs
	}
	b := p.scratch[:0]
	for _, a := range set {
		b = binary.BigEndian.AppendUint32(b, uint32(a))
	}
	p.scratch = b
	if got, ok := p.attrsBySet[string(b)]; ok {
		return got
	}
	key := string(b)
	var m Attrs
	for _, ai := range set {
		a := p.advs[ai].attrs
		m.Communities = append(m.Communities, a.Communities...)
		m.LargeCommunities = append(m.LargeCommunities, a.LargeCommunities...)
		if a.LocalPref != nil && (m.LocalPref == nil || *a.LocalPref > *m.LocalPref) {
			m.LocalPref = a.LocalPref
		}
	}
	m.Communities = sortedSet(m.Communities, cmp.Compare[wire.Community])
	m.LargeCommunities = sortedSet(m.LargeCommunities, compareLarge)
	p.reportConflicts(set, prefix, peer)
	if p.attrsBySet == nil {
		p.attrsBySet = map[string]*Attrs{}
	}
	got := p.intern(m)
	p.attrsBySet[key] = got
	return got
}

// reportConflicts reports each pair of advertisements that set different
// LOCAL_PREFs on one route, once per pair with the first route it was seen
// on: two advertisements of one pool to one peer with different
// preferences are a mistake, and the route can carry only one.
func (p *planner) reportConflicts(set []int32, prefix netip.Prefix, peer int) {
	for i, x := range set {
		for _, y := range set[i+1:] {
			ax, ay := p.advs[x].attrs, p.advs[y].attrs
			if ax.LocalPref == nil || ay.LocalPref == nil || *ax.LocalPref == *ay.LocalPref || p.conflicts[[2]int32{x, y}] {
				continue
			}
			if p.conflicts == nil {
				p.conflicts = map[[2]int32]bool{}
			}
			p.conflicts[[2]int32{x, y}] = true
			p.problemf("BGPAnnouncementPolicies %q (localPref %d) and %q (localPref %d) announce the same prefixes to the same peers (first %s to %s); the routes carry the higher",
				p.advs[x].name, *ax.LocalPref, p.advs[y].name, *ay.LocalPref, prefix, p.peers[peer])
		}
	}
}
