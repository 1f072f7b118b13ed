package allocator

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sort"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

// autoOrder is the order pools are tried in for automatic assignment: set
// priorities, lowest first, then unset ones; then by name.
func autoOrder(a, b lbmodel.Pool) int {
	return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a.Name, b.Name))
}

// rank is the priority with unset (0) after every set one.
func rank(p lbmodel.Pool) uint64 {
	if p.Allocation == nil || p.Allocation.Priority == 0 {
		return math.MaxUint64
	}
	return uint64(p.Allocation.Priority)
}

// fi indexes per-family arrays.
func fi(f Family) int {
	if f == IPv4 {
		return 0
	}
	return 1
}

// poolState is an accepted pool with its spans and counters.
type poolState struct {
	lbmodel.Pool
	spans []*span // in address order, IPv4 first
	size  [2]uint64
	has   [2]bool
	// assigned and holdDown count the pool's addresses that are held, and
	// held down, per family.
	assigned, holdDown [2]uint64
}

func (p *poolState) admits(req *Request) bool {
	return p.Allocation.Admits(req.Key.Namespace, req.NamespaceLabels, req.Labels)
}

// index maps addresses to the accepted pools; it is rebuilt whole when the
// pools change.
type index struct {
	pools    []*poolState // accepted, in autoOrder
	byName   map[string]*poolState
	spans    []*span        // every pool's spans, sorted by First (they never overlap)
	raw      []lbmodel.Pool // as given, to explain why an address is outside
	problems []lbmodel.PoolProblem
}

func buildIndex(pools []lbmodel.Pool) *index {
	accepted, problems := lbmodel.CheckPools(pools)
	ix := &index{byName: map[string]*poolState{}, raw: slices.Clone(pools), problems: problems}
	for _, p := range accepted {
		ps := &poolState{Pool: p}
		for _, r := range p.Ranges {
			s := newSpan(r, ps)
			ps.spans = append(ps.spans, s)
			ix.spans = append(ix.spans, s)
			f := fi(FamilyOf(r.First))
			ps.has[f] = true
			ps.size[f] = addSat(ps.size[f], size(r, p.AvoidBuggyIPs))
		}
		ix.pools = append(ix.pools, ps)
		ix.byName[p.Name] = ps
	}
	slices.SortFunc(ix.pools, func(a, b *poolState) int { return autoOrder(a.Pool, b.Pool) })
	slices.SortFunc(ix.spans, func(a, b *span) int {
		return cmp.Or(cmp.Compare(a.First.BitLen(), b.First.BitLen()), a.First.Compare(b.First))
	})
	return ix
}

// spanOf is the span whose range contains a, avoided addresses included.
func (ix *index) spanOf(a netip.Addr) *span {
	bits := a.BitLen()
	i := sort.Search(len(ix.spans), func(i int) bool {
		s := ix.spans[i]
		return s.Last.BitLen() > bits || s.Last.BitLen() == bits && a.Compare(s.Last) <= 0
	})
	if i < len(ix.spans) && ix.spans[i].Contains(a) {
		return ix.spans[i]
	}
	return nil
}

// poolOf is the pool that may hand out a, or nil.
func (ix *index) poolOf(a netip.Addr) *poolState {
	s := ix.spanOf(a)
	if s == nil || s.pool.AvoidBuggyIPs && buggy(a) {
		return nil
	}
	return s.pool
}

// whyOutside explains an address that no pool may hand out.
func (ix *index) whyOutside(a netip.Addr) string {
	if s := ix.spanOf(a); s != nil {
		return fmt.Sprintf("pool %s avoids addresses ending in .0 and .255 (avoidBuggyIPs)", s.pool.Name)
	}
	for _, pr := range ix.problems {
		for _, p := range ix.raw {
			if p.Name != pr.Pool {
				continue
			}
			for _, r := range p.Ranges {
				if r.Validate() == nil && r.Contains(a) {
					return fmt.Sprintf("it lies in pool %s, which is refused: %v", p.Name, pr.Err)
				}
			}
		}
	}
	return "it lies outside every pool"
}

// Orphan is a held address that no pool may hand out any more: its pool
// shrank, went away, was refused or now avoids it. The Service keeps it
// until its own request changes or it is released.
type Orphan struct {
	Key  lbmodel.Key
	Addr netip.Addr
	Why  string
}

// Orphans lists the addresses of assignments that no pool in pools may hand
// out, in the order given. It is what Allocator.Orphans computes, over plain
// values.
func Orphans(pools []lbmodel.Pool, assignments []Assignment) []Orphan {
	return buildIndex(pools).orphans(assignments)
}

func (ix *index) orphans(assignments []Assignment) []Orphan {
	var out []Orphan
	for _, as := range assignments {
		for _, x := range as.Addresses {
			if ix.poolOf(x.Addr) == nil {
				out = append(out, Orphan{Key: as.Key, Addr: x.Addr, Why: ix.whyOutside(x.Addr)})
			}
		}
	}
	return out
}
