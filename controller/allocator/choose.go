package allocator

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// explicit serves a request that names its addresses: it gets exactly those
// or an error. Hold-down does not apply (the user asked for the address by
// name). An address the Service already holds is kept even when no pool
// admits it any more, as long as it does not contradict the named pool.
func (a *Allocator) explicit(q *query, cur *service) ([]netip.Addr, *Error) {
	out := inFamilyOrder(q.fams, q.Addresses)
	for _, x := range out {
		if err := a.checkRequested(q, x, cur.holds(x)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (a *Allocator) checkRequested(q *query, x netip.Addr, self bool) *Error {
	p := a.ix.poolOf(x)
	if q.Pool != "" {
		named := a.ix.byName[q.Pool]
		switch {
		case self && p == nil:
			// an orphan the Service already holds stays with it
		case named == nil:
			return a.poolNotFound(q.Pool)
		case p != named:
			return fail(NotInPool, "requested address %s is outside pool %s (%s)", x, q.Pool, a.where(x, p))
		}
	}
	if p == nil && !self {
		return fail(NotInPool, "requested address %s cannot be assigned: %s", x, a.ix.whyOutside(x))
	}
	if p != nil && !self && !p.admits(q.Request) {
		return fail(PoolNotAllowed, "requested address %s is in pool %s, whose serviceAllocation does not admit Service %s", x, p.Name, q.Key)
	}
	return a.inUse(q, x)
}

func (a *Allocator) where(x netip.Addr, p *poolState) string {
	if p != nil {
		return "it is in pool " + p.Name
	}
	return a.ix.whyOutside(x)
}

// inUse says whether another holder of x keeps the Service from it.
func (a *Allocator) inUse(q *query, x netip.Addr) *Error {
	for _, h := range a.holders[x] {
		if h.key == q.Key {
			continue
		}
		if why := q.shareProblem(h); why != "" {
			return fail(InUse, "%s is held by Service %s and may not be shared: %s", x, h.key, why)
		}
	}
	return nil
}

// automatic serves a request without addresses: keep what still fits,
// complete it from its own pool if it can, otherwise allocate afresh.
func (a *Allocator) automatic(q *query, cur *service) ([]netip.Addr, *Error) {
	kept := a.keep(q, cur)
	cands, cerr := a.candidates(q)
	if len(kept) > 0 {
		if out, ok := a.complete(q, kept, cands); ok {
			return out, nil
		}
	}
	if cerr != nil {
		return nil, cerr
	}
	for _, plan := range q.plans {
		for _, p := range cands {
			if out, ok := a.pickAll(q, p, plan); ok {
				return out, nil
			}
		}
	}
	return nil, a.exhausted(q, cands)
}

// keep returns the held addresses that still suit the request, in family
// order. Pool changes (shrinking, serviceAllocation, autoAssign,
// avoidBuggyIPs) never disqualify an address; the request's own terms do:
// its families, the pool it names (an address now in another pool), and
// sharing with the address's other holders.
func (a *Allocator) keep(q *query, cur *service) []netip.Addr {
	if cur == nil {
		return nil
	}
	var out []netip.Addr
	for _, x := range inFamilyOrder(q.fams, cur.addrs) {
		if p := a.ix.poolOf(x); q.Pool != "" && p != nil && p.Name != q.Pool {
			continue
		}
		if a.inUse(q, x) != nil {
			continue
		}
		out = append(out, x)
	}
	return out
}

// complete returns the kept addresses when they satisfy the policy, adding
// the missing family from the same pool when it can: a dual-stack Service
// holding one address never moves it to gain the other.
func (a *Allocator) complete(q *query, kept []netip.Addr, cands []*poolState) ([]netip.Addr, bool) {
	if len(kept) == len(q.fams) {
		return kept, true
	}
	// One address kept, two families wanted.
	if p := a.ix.poolOf(kept[0]); p != nil && slices.Contains(cands, p) {
		if x, ok := a.pick(q, p, FamilyOf(kept[0]).other()); ok {
			return inFamilyOrder(q.fams, []netip.Addr{kept[0], x}), true
		}
	}
	return kept, q.Policy == PreferDualStack
}

// candidates are the pools an automatic request may draw from, in order.
func (a *Allocator) candidates(q *query) ([]*poolState, *Error) {
	if q.Pool != "" {
		p := a.ix.byName[q.Pool]
		switch {
		case p == nil:
			return nil, a.poolNotFound(q.Pool)
		case !p.admits(q.Request):
			return nil, fail(PoolNotAllowed, "pool %s's serviceAllocation does not admit Service %s", p.Name, q.Key)
		}
		return []*poolState{p}, nil
	}
	var out []*poolState
	for _, p := range a.ix.pools {
		if p.AutoAssign && p.admits(q.Request) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fail(NoPool, "no pool with autoAssign admits Service %s", q.Key)
	}
	return out, nil
}

func (a *Allocator) poolNotFound(name string) *Error {
	for _, pr := range a.ix.problems {
		if pr.Pool == name {
			return fail(PoolNotFound, "pool %s is refused: %v", name, pr.Err)
		}
	}
	return fail(PoolNotFound, "pool %s does not exist", name)
}

// pickAll picks one address per family of plan, all from pool p.
func (a *Allocator) pickAll(q *query, p *poolState, plan []Family) ([]netip.Addr, bool) {
	out := make([]netip.Addr, 0, len(plan))
	for _, f := range plan {
		x, ok := a.pick(q, p, f)
		if !ok {
			return nil, false
		}
		out = append(out, x)
	}
	return out, true
}

// pick chooses the Service's address of family f in pool p: first the lowest
// one it released itself and is still held down (a Service re-created or
// switched back gets its old address, which stale caches point at anyway),
// then the lowest one held by Services it may share with (Services given a
// common sharing key mean to share), then the lowest free one. Addresses the
// Service holds now are not candidates: it is here because they do not suit
// it (held ones count as blocked for the free pick).
func (a *Allocator) pick(q *query, p *poolState, f Family) (netip.Addr, bool) {
	if !p.has[fi(f)] {
		return netip.Addr{}, false
	}
	var best netip.Addr
	better := func(x netip.Addr) bool {
		return FamilyOf(x) == f && (!best.IsValid() || x.Less(best)) && a.ix.poolOf(x) == p
	}
	for _, x := range a.releasedBy[q.Key] {
		if better(x) {
			best = x
		}
	}
	if best.IsValid() {
		return best, true
	}
	if q.SharingKey != "" {
		for x := range a.shared[q.SharingKey] {
			// The Service's own addresses need no exclusion here: one
			// keep dropped is of another family, outside the named pool
			// or no longer shareable, all ruled out by these checks; one
			// it kept got here only because its pool could not complete
			// a RequireDualStack pair, and that pool fails again anyway.
			if better(x) && a.inUse(q, x) == nil {
				best = x
			}
		}
		if best.IsValid() {
			return best, true
		}
	}
	for _, s := range p.spans {
		if FamilyOf(s.First) != f {
			continue
		}
		if x, ok := s.lowest(a.blocked); ok {
			return x, true
		}
	}
	return netip.Addr{}, false
}

// exhausted explains an automatic request no candidate pool could serve.
func (a *Allocator) exhausted(q *query, cands []*poolState) *Error {
	fits := func(p *poolState) bool {
		switch q.Policy {
		case RequireDualStack:
			return p.has[0] && p.has[1]
		case PreferDualStack:
			return slices.ContainsFunc(q.fams, func(f Family) bool { return p.has[fi(f)] })
		}
		return p.has[fi(q.fams[0])]
	}
	names := make([]string, len(cands))
	for i, p := range cands {
		names[i] = p.Name
	}
	if !slices.ContainsFunc(cands, fits) {
		what := q.fams[0].String()
		switch {
		case q.Policy == RequireDualStack:
			what = "both IPv4 and IPv6"
		case len(q.fams) == 2:
			what = "IPv4 or IPv6"
		}
		return fail(FamilyUnavailable, "no pool for Service %s has %s addresses (%s; candidates: %s)",
			q.Key, what, q.Policy, strings.Join(names, ", "))
	}
	err := fail(PoolExhausted, "no free address for Service %s in pool %s", q.Key, strings.Join(names, ", "))
	var n int
	for x, r := range a.released {
		if !slices.Contains(q.fams, FamilyOf(x)) || !slices.Contains(cands, a.ix.poolOf(x)) {
			continue
		}
		n++
		if t := r.at.Add(a.cfg.HoldDown); err.RetryAt.IsZero() || t.Before(err.RetryAt) {
			err.RetryAt = t
		}
	}
	if n > 0 {
		err.Msg += fmt.Sprintf("; %d released address(es) are held down, the first until %s",
			n, err.RetryAt.UTC().Format(time.RFC3339))
	}
	return err
}
