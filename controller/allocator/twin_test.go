package allocator

import (
	"cmp"
	"errors"
	"net/netip"
	"slices"
	"time"

	klabels "k8s.io/apimachinery/pkg/labels"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

// twin is the slow, obviously correct allocator the real one is compared
// with: a map of Services and a map of hold-down records, and every question
// answered by scanning them and by walking pool ranges address by address.
// No watermarks, heaps, holder or sharing indexes, counters or expiry queue.
// It shares only the pure validation (CheckPools, prepare) with the real
// one; those have their own table tests.
type twin struct {
	hold     time.Duration
	now      time.Time
	pools    []lbmodel.Pool // accepted, normalised
	problems []lbmodel.PoolProblem
	svcs     map[lbmodel.Key]*tsvc
	released map[netip.Addr]release // may include expired records: see heldDown
}

type tsvc struct {
	req   Request
	addrs []netip.Addr
}

func newTwin(cfg Config, pools []lbmodel.Pool) *twin {
	t := &twin{hold: cfg.HoldDown, svcs: map[lbmodel.Key]*tsvc{}, released: map[netip.Addr]release{}}
	t.setPools(pools)
	return t
}

func (t *twin) setPools(pools []lbmodel.Pool) { t.pools, t.problems = lbmodel.CheckPools(pools) }

func (t *twin) clock(now time.Time) time.Time {
	if now.After(t.now) {
		t.now = now
	}
	return t.now
}

// poolOf scans every range of every pool.
func (t *twin) poolOf(x netip.Addr) *lbmodel.Pool {
	for i := range t.pools {
		p := &t.pools[i]
		for _, r := range p.Ranges {
			if r.Contains(x) && !(p.AvoidBuggyIPs && buggy(x)) {
				return p
			}
		}
	}
	return nil
}

func (t *twin) poolName(x netip.Addr) string {
	if p := t.poolOf(x); p != nil {
		return p.Name
	}
	return ""
}

func (t *twin) holders(x netip.Addr) []*tsvc {
	var out []*tsvc
	for _, s := range t.svcs {
		if slices.Contains(s.addrs, x) {
			out = append(out, s)
		}
	}
	return out
}

func (t *twin) heldDown(x netip.Addr) (release, bool) {
	r, ok := t.released[x]
	return r, ok && t.now.Before(r.at.Add(t.hold))
}

func twinShare(a, b Request) bool {
	if a.SharingKey == "" || a.SharingKey != b.SharingKey || a.TrafficPolicy != b.TrafficPolicy {
		return false
	}
	if a.TrafficPolicy == lbmodel.Local && (a.Selector == "" || a.Selector != b.Selector) {
		return false
	}
	for _, p := range a.Ports {
		if slices.Contains(b.Ports, p) {
			return false
		}
	}
	return true
}

// free: no other Service holding x forbids req from it.
func (t *twin) mayHold(req Request, x netip.Addr) bool {
	for _, h := range t.holders(x) {
		if h.req.Key != req.Key && !twinShare(req, h.req) {
			return false
		}
	}
	return true
}

func (t *twin) admits(p *lbmodel.Pool, req Request) bool {
	sa := p.Allocation
	if sa == nil {
		return true
	}
	nsOK := len(sa.Namespaces) == 0 && len(sa.NamespaceSelectors) == 0
	for _, n := range sa.Namespaces {
		nsOK = nsOK || n == req.Key.Namespace
	}
	for _, s := range sa.NamespaceSelectors {
		nsOK = nsOK || s.Matches(klabels.Set(req.NamespaceLabels))
	}
	svcOK := len(sa.ServiceSelectors) == 0
	for _, s := range sa.ServiceSelectors {
		svcOK = svcOK || s.Matches(klabels.Set(req.Labels))
	}
	return nsOK && svcOK
}

func (t *twin) allocate(req Request, now time.Time) (Allocation, error) {
	t.clock(now)
	q, err := prepare(&req)
	if err != nil {
		return Allocation{}, err
	}
	cur := t.svcs[req.Key]
	var addrs []netip.Addr
	var reason Reason
	var retry time.Time
	if len(req.Addresses) > 0 {
		addrs, reason = t.explicit(q, cur)
	} else {
		addrs, reason, retry = t.automatic(q, cur)
	}
	if reason != 0 {
		return Allocation{}, &Error{Reason: reason, RetryAt: retry}
	}
	return t.commit(req, addrs), nil
}

func (t *twin) explicit(q *query, cur *tsvc) ([]netip.Addr, Reason) {
	var out []netip.Addr
	for _, f := range q.fams {
		for _, x := range q.Addresses {
			if FamilyOf(x) != f {
				continue
			}
			self := cur != nil && slices.Contains(cur.addrs, x)
			p := t.poolOf(x)
			if q.Pool != "" && !(self && p == nil) {
				if !slices.ContainsFunc(t.pools, func(p lbmodel.Pool) bool { return p.Name == q.Pool }) {
					return nil, PoolNotFound
				}
				if p == nil || p.Name != q.Pool {
					return nil, NotInPool
				}
			}
			if !self && p == nil {
				return nil, NotInPool
			}
			if !self && !t.admits(p, *q.Request) {
				return nil, PoolNotAllowed
			}
			if !t.mayHold(*q.Request, x) {
				return nil, InUse
			}
			out = append(out, x)
		}
	}
	return out, 0
}

func (t *twin) candidates(q *query) ([]*lbmodel.Pool, Reason) {
	var out []*lbmodel.Pool
	for i := range t.pools {
		p := &t.pools[i]
		switch {
		case q.Pool != "" && p.Name == q.Pool:
			if !t.admits(p, *q.Request) {
				return nil, PoolNotAllowed
			}
			return []*lbmodel.Pool{p}, 0
		case q.Pool == "" && p.AutoAssign && t.admits(p, *q.Request):
			out = append(out, p)
		}
	}
	if q.Pool != "" {
		return nil, PoolNotFound
	}
	if len(out) == 0 {
		return nil, NoPool
	}
	rankOf := func(p *lbmodel.Pool) int {
		if p.Allocation == nil || p.Allocation.Priority == 0 {
			return 1 << 62
		}
		return p.Allocation.Priority
	}
	slices.SortFunc(out, func(a, b *lbmodel.Pool) int {
		return cmp.Or(cmp.Compare(rankOf(a), rankOf(b)), cmp.Compare(a.Name, b.Name))
	})
	return out, 0
}

func (t *twin) automatic(q *query, cur *tsvc) ([]netip.Addr, Reason, time.Time) {
	var kept []netip.Addr
	if cur != nil {
		for _, f := range q.fams {
			for _, x := range cur.addrs {
				p := t.poolOf(x)
				if FamilyOf(x) == f && (q.Pool == "" || p == nil || p.Name == q.Pool) && t.mayHold(*q.Request, x) {
					kept = append(kept, x)
				}
			}
		}
	}
	cands, why := t.candidates(q)
	if len(kept) == len(q.fams) {
		return kept, 0, time.Time{}
	}
	if len(kept) == 1 {
		p := t.poolOf(kept[0])
		if p != nil && slices.Contains(cands, p) {
			if x, ok := t.pick(q, p, FamilyOf(kept[0]).other()); ok {
				return inFamilyOrder(q.fams, []netip.Addr{kept[0], x}), 0, time.Time{}
			}
		}
		if q.Policy == PreferDualStack {
			return kept, 0, time.Time{}
		}
	}
	if why != 0 {
		return nil, why, time.Time{}
	}
	var plans [][]Family
	switch {
	case q.Policy == PreferDualStack && len(q.fams) == 2:
		plans = [][]Family{q.fams, q.fams[:1], q.fams[1:]}
	default:
		plans = [][]Family{q.fams}
	}
	for _, plan := range plans {
		for _, p := range cands {
			var got []netip.Addr
			for _, f := range plan {
				if x, ok := t.pick(q, p, f); ok {
					got = append(got, x)
				}
			}
			if len(got) == len(plan) {
				return got, 0, time.Time{}
			}
		}
	}
	why, retry := t.failure(q, cands)
	return nil, why, retry
}

func hasFamily(p *lbmodel.Pool, f Family) bool {
	return slices.ContainsFunc(p.Ranges, func(r lbmodel.Range) bool { return FamilyOf(r.First) == f })
}

func (t *twin) failure(q *query, cands []*lbmodel.Pool) (Reason, time.Time) {
	fits := false
	for _, p := range cands {
		switch q.Policy {
		case RequireDualStack:
			fits = fits || hasFamily(p, IPv4) && hasFamily(p, IPv6)
		case PreferDualStack:
			for _, f := range q.fams {
				fits = fits || hasFamily(p, f)
			}
		default:
			fits = fits || hasFamily(p, q.fams[0])
		}
	}
	if !fits {
		return FamilyUnavailable, time.Time{}
	}
	var retry time.Time
	for x := range t.released {
		r, ok := t.heldDown(x)
		if ok && slices.Contains(q.fams, FamilyOf(x)) && slices.Contains(cands, t.poolOf(x)) {
			if at := r.at.Add(t.hold); retry.IsZero() || at.Before(retry) {
				retry = at
			}
		}
	}
	return PoolExhausted, retry
}

// pick walks every candidate address in order.
func (t *twin) pick(q *query, p *lbmodel.Pool, f Family) (netip.Addr, bool) {
	var own, share netip.Addr
	lower := func(best, x netip.Addr) bool { return !best.IsValid() || x.Less(best) }
	for x := range t.released {
		if r, ok := t.heldDown(x); ok && r.key == q.Key && FamilyOf(x) == f && t.poolOf(x) == p && lower(own, x) {
			own = x
		}
	}
	if own.IsValid() {
		return own, true
	}
	for _, s := range t.svcs {
		for _, x := range s.addrs {
			if s.req.Key != q.Key && q.SharingKey != "" && FamilyOf(x) == f && t.poolOf(x) == p && lower(share, x) &&
				!slices.ContainsFunc(t.holders(x), func(h *tsvc) bool { return h.req.Key == q.Key }) && t.mayHold(*q.Request, x) {
				share = x
			}
		}
	}
	if share.IsValid() {
		return share, true
	}
	for _, r := range p.Ranges {
		if FamilyOf(r.First) != f {
			continue
		}
		for x := r.First; x.IsValid() && !r.Last.Less(x); x = x.Next() {
			if _, down := t.heldDown(x); t.poolOf(x) == p && len(t.holders(x)) == 0 && !down {
				return x, true
			}
		}
	}
	return netip.Addr{}, false
}

func (t *twin) commit(req Request, addrs []netip.Addr) Allocation {
	var released []netip.Addr
	if cur := t.svcs[req.Key]; cur != nil {
		for _, x := range cur.addrs {
			if !slices.Contains(addrs, x) {
				released = append(released, x)
			}
		}
	}
	delete(t.svcs, req.Key)
	for _, x := range released {
		if len(t.holders(x)) == 0 && t.hold > 0 {
			t.released[x] = release{key: req.Key, at: t.now}
		}
	}
	for _, x := range addrs {
		delete(t.released, x)
	}
	if len(addrs) > 0 {
		req.Ports = slices.Clone(req.Ports)
		t.svcs[req.Key] = &tsvc{req: req, addrs: slices.Clone(addrs)}
	}
	out := Allocation{Released: released}
	for _, x := range addrs {
		out.Addresses = append(out.Addresses, Address{Addr: x, Pool: t.poolName(x)})
	}
	return out
}

func (t *twin) release(key lbmodel.Key, now time.Time) []netip.Addr {
	t.clock(now)
	if t.svcs[key] == nil {
		return nil
	}
	return t.commit(Request{Key: key}, nil).Released
}

func (t *twin) restore(req Request, addrs []netip.Addr, now time.Time) (Allocation, error) {
	t.clock(now)
	if err := checkAddrs(addrs); err != nil {
		return Allocation{}, err
	}
	for _, x := range addrs {
		if !t.mayHold(req, x) {
			return Allocation{}, &Error{Reason: InUse}
		}
	}
	return t.commit(req, addrs), nil
}

func (t *twin) assignments() []Assignment {
	var out []Assignment
	for _, s := range t.svcs {
		as := Assignment{Key: s.req.Key, SharingKey: s.req.SharingKey, Ports: s.req.Ports, TrafficPolicy: s.req.TrafficPolicy, Selector: s.req.Selector}
		for _, x := range s.addrs {
			as.Addresses = append(as.Addresses, Address{Addr: x, Pool: t.poolName(x)})
		}
		out = append(out, as)
	}
	slices.SortFunc(out, func(a, b Assignment) int {
		return cmp.Or(cmp.Compare(a.Key.Namespace, b.Key.Namespace), cmp.Compare(a.Key.Name, b.Key.Name))
	})
	return out
}

// stats counts address by address, so pools in twin tests stay small.
func (t *twin) stats(now time.Time) []Stats {
	t.clock(now)
	var out []Stats
	for i := range t.pools {
		p := &t.pools[i]
		for _, f := range []Family{IPv4, IPv6} {
			if !hasFamily(p, f) {
				continue
			}
			st := Stats{Pool: p.Name, Family: f}
			for _, r := range p.Ranges {
				for x := r.First; FamilyOf(r.First) == f && x.IsValid() && !r.Last.Less(x); x = x.Next() {
					if t.poolOf(x) != p {
						continue
					}
					st.Size++
					_, down := t.heldDown(x)
					switch {
					case len(t.holders(x)) > 0:
						st.Assigned++
					case down:
						st.HoldDown++
					default:
						st.Available++
					}
				}
			}
			out = append(out, st)
		}
	}
	slices.SortFunc(out, func(a, b Stats) int { return cmp.Or(cmp.Compare(a.Pool, b.Pool), cmp.Compare(a.Family, b.Family)) })
	return out
}

func reasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return 0
}
