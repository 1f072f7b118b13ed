package plan

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

// Plan decides what this node (s.Node) announces to each peer, and says why
// for every Service. See the package documentation for the rules.
func Plan(s Snapshot) Result {
	p := &planner{
		node:       s.Node,
		drain:      s.Drain,
		nodeLabels: labels.Set(s.Node.Labels),
		attrsByKey: map[string]*Attrs{},
	}
	p.selectPeers(s.Peers)
	p.indexPools(s.Pools)
	p.prepareAdvertisements(s.Advertisements)
	p.decideServices(s.Services)
	res := p.result()
	p.markDraining(&res)
	return res
}

// planner holds one run of Plan. Indices (int32 to keep the contribution
// records small) point into its sorted slices: peers, pools, advs, svcKeys.
type planner struct {
	node       lbmodel.Node
	drain      Drain
	nodeLabels labels.Set
	problems   []string

	peers     []string         // names of the peers that select this node, sorted
	peerIndex map[string]int32 // index in peers
	allPeers  map[string]bool  // every peer name in the snapshot

	pools []pool // the accepted pools (lbmodel.CheckPools), oldest first

	advs    []adv  // sorted by name; only usable ones that select this node
	advPeer []bool // advPeer[a*len(peers)+i]: advertisement a sends to peer i

	svcKeys   []lbmodel.Key     // Services in key order; a contribution's svc indexes it
	weights   [][2]int          // per Service: its share of a route's bandwidth, IPv4 and IPv6
	leaving   [][2]bool         // per Service and family: served here by terminating pods only
	decisions []ServiceDecision // per Service
	contrib   []contr           // one per (prefix, Service, advertisement) announced
	keys      []lbmodel.Key     // backing store of every Route.Services

	attrsByKey map[string]*Attrs   // interned attributes, by content
	attrsBySet map[string]*Attrs   // merged attributes, by set of advertisements
	gshut      map[*Attrs]*Attrs   // attributes with GRACEFUL_SHUTDOWN added, by the attributes without
	peerSets   map[string][]string // interned ServiceDecision.Peers, by peer mask
	conflicts  map[[2]int32]bool   // LOCAL_PREF disagreements already reported
	scratch    []byte              // for map keys built per lookup
	mask       []byte              // per peer: 1 when the current Service reaches it
	advSet     []int32             // advertisements of the route being built

	// reasons that apply to many Services alike, formatted once
	reasons struct{ node, local, cluster, none string }
}

type pool struct {
	name   string
	labels labels.Set
	ranges []lbmodel.Range
	advs   []int32 // advertisements that select this pool and this node
}

type adv struct {
	name   string
	v4, v6 int    // aggregation lengths, defaults applied
	attrs  *Attrs // interned, canonical
	sends  bool   // sends to at least one peer of this node
}

// contr is one advertisement announcing one Service's address as a
// prefix. The prefix is held as integers rather than a netip.Prefix:
// sorting these records is most of Plan's work, and integers compare faster
// and carry no pointer for the garbage collector to trace on every swap.
type contr struct {
	hi, lo uint64 // the masked address; IPv4 in the low 32 bits of lo
	v6     bool
	bits   uint8
	svc    int32
	adv    int32
}

// newContr masks a to bits (1..32 or 1..128, checked by aggregation).
func newContr(a netip.Addr, bits int, svc, adv int32) contr {
	c := contr{v6: a.Is6(), bits: uint8(bits), svc: svc, adv: adv}
	if !c.v6 {
		b := a.As4()
		c.lo = uint64(binary.BigEndian.Uint32(b[:]) & (^uint32(0) << (32 - bits)))
		return c
	}
	b := a.As16()
	c.hi, c.lo = binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	if bits <= 64 {
		c.hi &= ^uint64(0) << (64 - bits)
		c.lo = 0
	} else {
		c.lo &= ^uint64(0) << (128 - bits)
	}
	return c
}

func (c *contr) prefix() netip.Prefix {
	if !c.v6 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(c.lo))
		return netip.PrefixFrom(netip.AddrFrom4(b), int(c.bits))
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], c.hi)
	binary.BigEndian.PutUint64(b[8:], c.lo)
	return netip.PrefixFrom(netip.AddrFrom16(b), int(c.bits))
}

func (c *contr) samePrefix(o *contr) bool {
	return c.lo == o.lo && c.hi == o.hi && c.bits == o.bits && c.v6 == o.v6
}

// compareContr orders by prefix as netip.Prefix.Compare does (family,
// masked address, length), then Service, then advertisement. Written out
// rather than with cmp.Or, which evaluates every comparison: this runs a
// few hundred thousand times per plan.
func compareContr(a, b contr) int {
	switch {
	case a.v6 != b.v6:
		if b.v6 {
			return -1
		}
		return 1
	case a.hi != b.hi:
		return cmp.Compare(a.hi, b.hi)
	case a.lo != b.lo:
		return cmp.Compare(a.lo, b.lo)
	case a.bits != b.bits:
		return cmp.Compare(a.bits, b.bits)
	case a.svc != b.svc:
		return cmp.Compare(a.svc, b.svc)
	}
	return cmp.Compare(a.adv, b.adv)
}

func (p *planner) problemf(format string, args ...any) {
	p.problems = append(p.problems, fmt.Sprintf(format, args...))
}

// sortedUnique returns the indices of items in key order, reporting and
// dropping repeated keys (all but the first in input order): sorting first
// is what makes the result independent of the order of the input. It sorts
// (key, index) records rather than indices, so that comparisons read keys
// directly; the index breaks ties, which keeps the sort stable.
func sortedUnique[T, K any](p *planner, items []T, keyOf func(*T) K, compare func(a, b K) int, describe func(K) string) []int {
	type rec struct {
		k K
		i int
	}
	recs := make([]rec, len(items))
	for i := range items {
		recs[i] = rec{keyOf(&items[i]), i}
	}
	slices.SortFunc(recs, func(a, b rec) int {
		if c := compare(a.k, b.k); c != 0 {
			return c
		}
		return cmp.Compare(a.i, b.i)
	})
	idx := make([]int, 0, len(recs))
	for j, r := range recs {
		if j > 0 && compare(recs[j-1].k, r.k) == 0 {
			p.problemf("%s is listed more than once; all but the first are ignored", describe(r.k))
			continue
		}
		idx = append(idx, r.i)
	}
	return idx
}

// byName is sortedUnique for named objects of a kind.
func byName[T any](p *planner, items []T, name func(*T) string, kind string) []int {
	return sortedUnique(p, items, name, strings.Compare, func(n string) string { return fmt.Sprintf("%s %q", kind, n) })
}

func (p *planner) selectPeers(peers []lbmodel.Peer) {
	p.peerIndex = map[string]int32{}
	p.allPeers = map[string]bool{}
	for _, i := range byName(p, peers, func(x *lbmodel.Peer) string { return x.Name }, "BGPRouter") {
		pr := &peers[i]
		p.allPeers[pr.Name] = true
		if pr.SelectsNode(p.nodeLabels) {
			p.peerIndex[pr.Name] = int32(len(p.peers))
			p.peers = append(p.peers, pr.Name)
		}
	}
}

// indexPools applies the pool rule the controller applies
// (lbmodel.CheckPools: of two overlapping pools the older keeps the
// addresses, and an invalid pool is not used), on its own rather than
// trusting the controller's verdict on the pools' status, so that it holds
// while the controller is down and a pool created meanwhile cannot take
// addresses from an older one. Refused pools are reported.
func (p *planner) indexPools(pools []lbmodel.Pool) {
	accepted, problems := lbmodel.CheckPools(pools)
	for _, pr := range problems {
		if oe := (*lbmodel.OverlapError)(nil); errors.As(pr.Err, &oe) {
			p.problemf("LoadBalancerPool %q overlaps the older LoadBalancerPool %q (%s); it is not used", pr.Pool, oe.Pool, oe.Range)
			continue
		}
		p.problemf("LoadBalancerPool %q: %v; it is not used", pr.Pool, pr.Err)
	}
	for i := range accepted {
		src := &accepted[i]
		p.pools = append(p.pools, pool{name: src.Name, labels: labels.Set(src.Labels), ranges: src.Ranges})
	}
}

// poolOf is the index of the pool holding a, or -1. A linear scan: an
// LoadBalancerPool has at most 32 entries and a cluster a handful of pools, and
// accepted pools do not overlap.
func (p *planner) poolOf(a netip.Addr) int {
	for i := range p.pools {
		for _, r := range p.pools[i].ranges {
			if r.Contains(a) {
				return i
			}
		}
	}
	return -1
}
