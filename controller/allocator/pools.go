package allocator

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sort"
)

// Pool is an IPPool as plain values.
type Pool struct {
	Name   string
	Ranges []Range
	// AutoAssign lets the pool serve Services that name neither it nor one
	// of its addresses. (The CRD defaults it to true; the zero value here is
	// false so that a test's pool says what it means.)
	AutoAssign bool
	// AvoidBuggyIPs keeps IPv4 addresses ending in .0 or .255 out of the
	// pool: see buggy.
	AvoidBuggyIPs bool
	// Allocation, when set, narrows and ranks the pool.
	Allocation *ServiceAllocation
}

// PoolProblem is why a pool was refused. A refused pool takes no part in
// allocation; Services already holding its addresses keep them (Orphans
// lists them).
type PoolProblem struct {
	Pool string
	Err  error
}

func (p PoolProblem) Error() string { return "pool " + p.Pool + ": " + p.Err.Error() }

// CheckPools validates pools and returns the accepted ones, normalised (each
// pool's ranges sorted by family and address, overlapping or adjacent ones
// merged), in input order. A pool is refused as a whole when it is invalid,
// when its name was already used, or when it overlaps a pool accepted before
// it: the caller decides precedence by the order it passes (the reconciler
// passes the oldest pool first, so a new pool cannot take addresses from an
// existing one).
func CheckPools(pools []Pool) (accepted []Pool, problems []PoolProblem) {
	names := map[string]bool{}
	for _, p := range pools {
		n, err := normalize(p)
		if err == nil && names[p.Name] {
			err = errors.New("name used by an earlier pool")
		}
		if err == nil {
			err = overlap(n, accepted)
		}
		if err != nil {
			problems = append(problems, PoolProblem{Pool: p.Name, Err: err})
			continue
		}
		names[p.Name] = true
		accepted = append(accepted, n)
	}
	return accepted, problems
}

func normalize(p Pool) (Pool, error) {
	if p.Name == "" {
		return Pool{}, errors.New("empty name")
	}
	for i, r := range p.Ranges {
		if err := r.Validate(); err != nil {
			return Pool{}, fmt.Errorf("ranges[%d]: %w", i, err)
		}
	}
	if p.Allocation != nil {
		if err := p.Allocation.validate(); err != nil {
			return Pool{}, err
		}
		sa := *p.Allocation
		p.Allocation = &sa
	}
	rs := slices.Clone(p.Ranges)
	slices.SortFunc(rs, func(a, b Range) int {
		return cmp.Or(cmp.Compare(a.First.BitLen(), b.First.BitLen()), a.First.Compare(b.First))
	})
	var merged []Range
	for _, r := range rs {
		if n := len(merged); n > 0 && merged[n-1].touches(r) {
			if merged[n-1].Last.Less(r.Last) {
				merged[n-1].Last = r.Last
			}
			continue
		}
		merged = append(merged, r)
	}
	p.Ranges = merged
	return p, nil
}

func overlap(p Pool, accepted []Pool) error {
	for _, q := range accepted {
		for _, r := range p.Ranges {
			for _, s := range q.Ranges {
				if r.overlaps(s) {
					return &OverlapError{Range: r, Other: s, Pool: q.Name}
				}
			}
		}
	}
	return nil
}

// OverlapError refuses a pool sharing addresses with an earlier one; the
// reconciler reports it as the pool's Overlap condition.
type OverlapError struct {
	Range, Other Range
	// Pool is the earlier pool that keeps the addresses.
	Pool string
}

func (e *OverlapError) Error() string {
	return fmt.Sprintf("%s overlaps %s of pool %s", e.Range, e.Other, e.Pool)
}

// autoOrder is the order pools are tried in for automatic assignment: set
// priorities, lowest first, then unset ones; then by name.
func autoOrder(a, b Pool) int {
	return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a.Name, b.Name))
}

// rank is the priority with unset (0) after every set one.
func rank(p Pool) uint64 {
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
	Pool
	spans []*span // in address order, IPv4 first
	size  [2]uint64
	has   [2]bool
	// assigned and holdDown count the pool's addresses that are held, and
	// held down, per family.
	assigned, holdDown [2]uint64
}

func (p *poolState) admits(req *Request) bool { return p.Allocation.admits(req) }

// index maps addresses to the accepted pools; it is rebuilt whole when the
// pools change.
type index struct {
	pools    []*poolState // accepted, in autoOrder
	byName   map[string]*poolState
	spans    []*span // every pool's spans, sorted by First (they never overlap)
	raw      []Pool  // as given, to explain why an address is outside
	problems []PoolProblem
}

func buildIndex(pools []Pool) *index {
	accepted, problems := CheckPools(pools)
	ix := &index{byName: map[string]*poolState{}, raw: slices.Clone(pools), problems: problems}
	for _, p := range accepted {
		ps := &poolState{Pool: p}
		for _, r := range p.Ranges {
			s := newSpan(r, ps)
			ps.spans = append(ps.spans, s)
			ix.spans = append(ix.spans, s)
			f := fi(r.Family())
			ps.has[f] = true
			ps.size[f] = addSat(ps.size[f], r.size(p.AvoidBuggyIPs))
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
	Key  Key
	Addr netip.Addr
	Why  string
}

// Orphans lists the addresses of assignments that no pool in pools may hand
// out, in the order given. It is what Allocator.Orphans computes, over plain
// values.
func Orphans(pools []Pool, assignments []Assignment) []Orphan {
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
