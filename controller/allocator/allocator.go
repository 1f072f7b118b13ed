package allocator

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

// Config tunes an Allocator.
type Config struct {
	// HoldDown is how long an address nobody holds any more stays out of
	// automatic assignment to other Services, so that stale ARP/NDP and DNS
	// caches pointing at the old Service expire first. Zero disables it.
	HoldDown time.Duration
}

// Allocator is the allocation state: the pools, which Service holds which
// addresses, and which addresses are held down. It is a plain data
// structure, deterministic and clock-free (every call that may change state
// takes now), and not safe for concurrent use: the reconciler owns it from
// one goroutine.
type Allocator struct {
	cfg Config
	now time.Time // the latest now seen: time never runs backwards here
	ix  *index

	services map[lbmodel.Key]*service
	holders  map[netip.Addr][]*service
	// shared counts, per sharing key, the holders of each address held
	// under that key: the candidates a Service with that key may share.
	shared map[string]map[netip.Addr]int

	// released are the held-down addresses (held by nobody), each with the
	// Service that let it go and when; releasedBy indexes them by Service.
	released   map[netip.Addr]release
	releasedBy map[lbmodel.Key][]netip.Addr
	// queue holds every hold-down in release order (times never decrease;
	// see enqueue), stale entries included; expire pops from qhead.
	queue []queued
	qhead int
}

type service struct {
	key        lbmodel.Key
	sharingKey string
	ports      []Port
	etp        lbmodel.TrafficPolicy
	selector   string
	addrs      []netip.Addr // at most one per family
}

type release struct {
	key lbmodel.Key
	at  time.Time
}

type queued struct {
	addr netip.Addr
	at   time.Time
}

// New returns an allocator with the given pools; the problems are the pools
// it refused (see CheckPools).
func New(cfg Config, pools []lbmodel.Pool) (*Allocator, []lbmodel.PoolProblem) {
	a := &Allocator{
		cfg:        cfg,
		services:   map[lbmodel.Key]*service{},
		holders:    map[netip.Addr][]*service{},
		shared:     map[string]map[netip.Addr]int{},
		released:   map[netip.Addr]release{},
		releasedBy: map[lbmodel.Key][]netip.Addr{},
	}
	return a, a.SetPools(pools)
}

// SetPools replaces the pools. Nothing held moves: addresses no pool covers
// any more stay with their Services and show up in Orphans. The earlier of
// two overlapping pools wins (see CheckPools).
func (a *Allocator) SetPools(pools []lbmodel.Pool) []lbmodel.PoolProblem {
	a.ix = buildIndex(pools)
	for x := range a.holders {
		if p := a.ix.poolOf(x); p != nil {
			p.assigned[fi(FamilyOf(x))]++
		}
	}
	for x := range a.released {
		if p := a.ix.poolOf(x); p != nil {
			p.holdDown[fi(FamilyOf(x))]++
		}
	}
	return slices.Clone(a.ix.problems)
}

// Problems are the pools the last SetPools refused.
func (a *Allocator) Problems() []lbmodel.PoolProblem { return slices.Clone(a.ix.problems) }

// clock takes now as the latest time seen and expires hold-downs.
func (a *Allocator) clock(now time.Time) time.Time {
	if now.Before(a.now) {
		now = a.now
	}
	a.now = now
	for a.qhead < len(a.queue) {
		e := a.queue[a.qhead]
		if now.Before(e.at.Add(a.cfg.HoldDown)) {
			break
		}
		a.qhead++
		if r, ok := a.released[e.addr]; ok && r.at.Equal(e.at) {
			a.endHoldDown(e.addr, r)
			a.unblock(e.addr)
		}
	}
	if a.qhead > 64 && a.qhead > len(a.queue)/2 {
		a.queue = append(a.queue[:0], a.queue[a.qhead:]...)
		a.qhead = 0
	}
	return now
}

// Allocate gives the Service its addresses, or says why it cannot; on error
// nothing changes (the Service keeps what it held). The rules are in the
// package documentation.
func (a *Allocator) Allocate(req Request, now time.Time) (Allocation, error) {
	now = a.clock(now)
	q, err := prepare(&req)
	if err != nil {
		return Allocation{}, err
	}
	cur := a.services[req.Key]
	var addrs []netip.Addr
	if len(req.Addresses) > 0 {
		addrs, err = a.explicit(q, cur)
	} else {
		addrs, err = a.automatic(q, cur)
	}
	if err != nil {
		return Allocation{}, err
	}
	released := a.commit(q, cur, addrs, now)
	return Allocation{Addresses: a.describe(addrs), Released: released}, nil
}

// Release gives up everything the Service holds (it was deleted, or is no
// longer a LoadBalancer of ours) and returns what it held.
func (a *Allocator) Release(key lbmodel.Key, now time.Time) []netip.Addr {
	now = a.clock(now)
	s := a.services[key]
	if s == nil {
		return nil
	}
	return a.commit(&query{Request: &Request{Key: key}}, s, nil, now)
}

// Restore records what a Service already holds according to its status, so
// that a restarted controller rebuilds its state before assigning anything
// new; call it after SetPools. It checks only that the addresses are well
// formed and that no other Service holds one it may not share: whether they
// still suit the Service's request is for the next Allocate to judge (and it
// keeps them if they do). Addresses outside every pool are kept as orphans.
// It replaces whatever the Service held before.
func (a *Allocator) Restore(req Request, addrs []netip.Addr, now time.Time) (Allocation, error) {
	now = a.clock(now)
	if req.Key.Name == "" {
		return Allocation{}, fail(InvalidRequest, "the Service has no name")
	}
	if err := checkAddrs(addrs); err != nil {
		return Allocation{}, err
	}
	q := &query{Request: &req}
	for _, x := range addrs {
		if err := a.inUse(q, x); err != nil {
			return Allocation{}, err
		}
	}
	released := a.commit(q, a.services[req.Key], addrs, now)
	return Allocation{Addresses: a.describe(addrs), Released: released}, nil
}

// Lookup returns what a Service holds.
func (a *Allocator) Lookup(key lbmodel.Key) (Assignment, bool) {
	s := a.services[key]
	if s == nil {
		return Assignment{}, false
	}
	return a.assignment(s), true
}

// Len is how many Services hold addresses: len(Assignments()) without
// building and sorting them.
func (a *Allocator) Len() int { return len(a.services) }

// Assignments returns every Service's holding, ordered by key.
func (a *Allocator) Assignments() []Assignment {
	out := make([]Assignment, 0, len(a.services))
	for _, s := range a.services {
		out = append(out, a.assignment(s))
	}
	slices.SortFunc(out, func(x, y Assignment) int {
		return cmp.Or(cmp.Compare(x.Key.Namespace, y.Key.Namespace), cmp.Compare(x.Key.Name, y.Key.Name))
	})
	return out
}

func (a *Allocator) assignment(s *service) Assignment {
	return Assignment{
		Key:           s.key,
		Addresses:     a.describe(s.addrs),
		SharingKey:    s.sharingKey,
		Ports:         slices.Clone(s.ports),
		TrafficPolicy: s.etp,
		Selector:      s.selector,
	}
}

// Orphans lists held addresses that no pool may hand out any more, ordered
// by Service key.
func (a *Allocator) Orphans() []Orphan { return a.ix.orphans(a.Assignments()) }

// Stats is one pool's count for one family.
type Stats struct {
	Pool   string
	Family Family
	// Size is how many addresses the pool may hand out; Assigned are held by
	// Services, HoldDown wait after release, Available are the rest. The
	// counts saturate at math.MaxUint64: an IPv6 /64 or larger has Size and
	// Available MaxUint64 however many are assigned.
	Size, Assigned, HoldDown, Available uint64
}

// Stats counts every pool's addresses per family it has, ordered by pool
// name then family. It expires hold-downs up to now first.
func (a *Allocator) Stats(now time.Time) []Stats {
	a.clock(now)
	var out []Stats
	for _, p := range a.ix.pools {
		for _, f := range [2]Family{IPv4, IPv6} {
			i := fi(f)
			if !p.has[i] {
				continue
			}
			st := Stats{Pool: p.Name, Family: f, Size: p.size[i], Assigned: p.assigned[i], HoldDown: p.holdDown[i]}
			st.Available = st.Size
			if st.Size != ^uint64(0) {
				st.Available = st.Size - st.Assigned - st.HoldDown
			}
			out = append(out, st)
		}
	}
	slices.SortFunc(out, func(x, y Stats) int { return cmp.Or(cmp.Compare(x.Pool, y.Pool), cmp.Compare(x.Family, y.Family)) })
	return out
}

func (a *Allocator) describe(addrs []netip.Addr) []Address {
	out := make([]Address, len(addrs))
	for i, x := range addrs {
		out[i].Addr = x
		if p := a.ix.poolOf(x); p != nil {
			out[i].Pool = p.Name
		}
	}
	return out
}

// blocked reports whether x may not be handed out fresh: someone holds it or
// it is held down.
func (a *Allocator) blocked(x netip.Addr) bool {
	if len(a.holders[x]) > 0 {
		return true
	}
	_, ok := a.released[x]
	return ok
}

func (a *Allocator) unblock(x netip.Addr) {
	if s := a.ix.spanOf(x); s != nil {
		s.unblock(x)
	}
}

func (s *service) holds(x netip.Addr) bool { return s != nil && slices.Contains(s.addrs, x) }

// commit makes addrs the Service's holding and returns what it gave up.
func (a *Allocator) commit(q *query, s *service, addrs []netip.Addr, now time.Time) []netip.Addr {
	var old []netip.Addr
	var fresh []netip.Addr // held by nobody until now
	for _, x := range addrs {
		if !s.holds(x) && len(a.holders[x]) == 0 {
			fresh = append(fresh, x)
		}
	}
	if s == nil {
		s = &service{key: q.Key}
	} else {
		old = s.addrs
		for _, x := range old {
			a.detach(x, s)
		}
	}
	s.sharingKey, s.ports, s.etp, s.selector = q.SharingKey, slices.Clone(q.Ports), q.TrafficPolicy, q.Selector
	s.addrs = slices.Clone(addrs)
	for _, x := range addrs {
		a.attach(x, s)
	}
	for _, x := range fresh {
		a.startHolding(x)
	}
	var released []netip.Addr
	for _, x := range old {
		if slices.Contains(addrs, x) {
			continue
		}
		released = append(released, x)
		if len(a.holders[x]) == 0 {
			a.stopHolding(x, s.key, now)
		}
	}
	if len(addrs) == 0 {
		delete(a.services, s.key)
	} else {
		a.services[s.key] = s
	}
	return released
}

func (a *Allocator) attach(x netip.Addr, s *service) {
	a.holders[x] = append(a.holders[x], s)
	if s.sharingKey != "" {
		m := a.shared[s.sharingKey]
		if m == nil {
			m = map[netip.Addr]int{}
			a.shared[s.sharingKey] = m
		}
		m[x]++
	}
}

func (a *Allocator) detach(x netip.Addr, s *service) {
	hs := slices.DeleteFunc(a.holders[x], func(h *service) bool { return h == s })
	if len(hs) == 0 {
		delete(a.holders, x)
	} else {
		a.holders[x] = hs
	}
	if m := a.shared[s.sharingKey]; m != nil {
		if m[x]--; m[x] <= 0 {
			delete(m, x)
		}
		if len(m) == 0 {
			delete(a.shared, s.sharingKey)
		}
	}
}

// startHolding accounts for an address that nobody held becoming held.
func (a *Allocator) startHolding(x netip.Addr) {
	if r, ok := a.released[x]; ok {
		a.endHoldDown(x, r)
	}
	if p := a.ix.poolOf(x); p != nil {
		p.assigned[fi(FamilyOf(x))]++
	}
}

// stopHolding accounts for an address its last holder (key) let go.
func (a *Allocator) stopHolding(x netip.Addr, key lbmodel.Key, now time.Time) {
	p := a.ix.poolOf(x)
	if p != nil {
		p.assigned[fi(FamilyOf(x))]--
	}
	if a.cfg.HoldDown <= 0 {
		a.unblock(x)
		return
	}
	a.released[x] = release{key: key, at: now}
	a.releasedBy[key] = append(a.releasedBy[key], x)
	a.enqueue(x, now)
	if p != nil {
		p.holdDown[fi(FamilyOf(x))]++
	}
}

// endHoldDown forgets a hold-down record (expired, or the address is taken).
func (a *Allocator) endHoldDown(x netip.Addr, r release) {
	delete(a.released, x)
	rb := slices.DeleteFunc(a.releasedBy[r.key], func(y netip.Addr) bool { return y == x })
	if len(rb) == 0 {
		delete(a.releasedBy, r.key)
	} else {
		a.releasedBy[r.key] = rb
	}
	if p := a.ix.poolOf(x); p != nil {
		p.holdDown[fi(FamilyOf(x))]--
	}
}

// Outside says why no pool may hand out x (its pool shrank, went away, was
// refused or now avoids it), or "" when a pool covers it.
func (a *Allocator) Outside(x netip.Addr) string {
	if a.ix.poolOf(x) != nil {
		return ""
	}
	return a.ix.whyOutside(x)
}
