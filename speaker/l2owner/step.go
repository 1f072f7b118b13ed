package l2owner

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// view is one step's snapshot of the shared state.
type view struct {
	now         time.Time
	live        map[string][]string
	want        map[netip.Addr]Want
	wantSet     bool
	leases      map[netip.Addr]*addrSeen // entries are never mutated once stored
	transitions []Transition
	pending     bool      // a candidate whose first renewal has not succeeded yet
	next        time.Time // when the view changes by the clock alone
}

// write is one lease write a step decided.
type write struct {
	addr   netip.Addr
	action Action
	to     string
	lease  *addrSeen // nil: none yet
	want   Want
}

func (e *Elector) snapshot(now time.Time) view {
	e.mu.Lock()
	defer e.mu.Unlock()
	v := view{
		now: now, live: map[string][]string{}, want: e.want, wantSet: e.wantSet,
		leases: maps.Clone(e.st.leases), transitions: e.st.transitions,
		next: now.Add(time.Minute),
	}
	e.st.transitions = nil
	for n, s := range e.st.nodes {
		if exp := s.observed.Add(s.duration); now.Before(exp) {
			v.live[n] = s.policies
			v.next = earlier(v.next, exp)
		}
	}
	if e.candidate() {
		v.pending = e.renewedAt.IsZero()
		// The fence: live for its own decisions only until fenceMargin
		// before the earliest moment an observer may see the lease expire.
		fence := e.renewedAt.Add(e.c.LeaseDuration - e.c.fenceMargin())
		if !v.pending && now.Before(fence) {
			v.live[e.c.Node] = e.policies
			v.next = earlier(v.next, fence)
		}
	}
	return v
}

// candidate: this node heartbeats. Called with mu held.
func (e *Elector) candidate() bool {
	return e.ready && len(e.policies) > 0 && !e.stopping
}

func (e *Elector) step(ctx context.Context, now time.Time) time.Time {
	return e.stepWith(ctx, now, false)
}

// stepWith decides every address, stops answering what it must before
// writing anything, then writes. force (graceful stop) skips the write
// rate limit. It returns when to step again if nothing else happens.
func (e *Elector) stepWith(ctx context.Context, now time.Time, force bool) time.Time {
	v := e.snapshot(now)
	if e.c.OnTransition != nil {
		for _, t := range v.transitions {
			e.c.OnTransition(t)
		}
	}
	answer, writes, status := e.plan(&v)
	if !maps.Equal(answer, e.owned) {
		e.owned = answer
		e.announce()
	}
	e.mu.Lock()
	e.status = status
	e.mu.Unlock()
	// All the step's writes share one budget, so that a hanging API server
	// cannot keep the loop from its next look at the fence.
	budget := e.c.writeBudget()
	if force {
		budget = e.c.LeaseDuration
	}
	wctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	alive := e.confirmDead(wctx, v, writes)
	for _, w := range writes {
		if w.lease != nil && alive[w.lease.holder] {
			continue
		}
		if wctx.Err() != nil {
			v.next = now // the rest next step
			break
		}
		if v.pending && w.action == Handover && !force {
			continue // not live yet only because the first renewal is under way
		}
		if last, ok := e.lastWrite[w.addr]; ok && !force && now.Sub(last) < e.c.RenewInterval {
			// Views may briefly disagree: at most one write per address
			// per interval, so that disagreement cannot become a storm.
			v.next = earlier(v.next, last.Add(e.c.RenewInterval))
			continue
		}
		e.lastWrite[w.addr] = now
		e.write(wctx, w, now)
	}
	for a, t := range e.lastWrite {
		if now.Sub(t) > e.c.RenewInterval {
			delete(e.lastWrite, a)
		}
	}
	return v.next
}

// confirmDead reads the heartbeat of every holder an Acquire would take
// from for being dead in this view, and returns those that renewed after
// all: this node's watch had stalled, not they. Without it a node whose
// watch stalls would see every other node die and take all addresses.
func (e *Elector) confirmDead(ctx context.Context, v view, writes []write) map[string]bool {
	alive := map[string]bool{}
	checked := map[string]bool{}
	api := e.client.CoordinationV1().Leases(e.c.Namespace)
	for _, w := range writes {
		if w.action != Acquire || w.lease == nil {
			continue
		}
		holder := w.lease.holder
		if _, live := v.live[holder]; live || holder == "" || checked[holder] {
			continue
		}
		checked[holder] = true
		e.mu.Lock()
		var seenRV string
		if s := e.st.nodes[holder]; s != nil {
			seenRV = s.rv
		}
		e.mu.Unlock()
		l, err := api.Get(ctx, NodeLeaseName(holder), metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			alive[holder] = true // unknown: do not take from it this step
		case l.ResourceVersion != seenRV:
			alive[holder] = true
			e.observe(l, false)
		}
	}
	return alive
}

// plan runs Decide over every wanted address and finds the leases to
// release.
func (e *Elector) plan(v *view) (map[netip.Addr]bool, []write, []AddressStatus) {
	answer := map[netip.Addr]bool{}
	var writes []write
	status := make([]AddressStatus, 0, len(v.want))
	for addr, w := range v.want {
		l := v.leases[addr]
		in := Input{Self: e.c.Node, Want: w, Live: v.live}
		st := AddressStatus{Addr: addr, Services: w.Services}
		if l != nil {
			in.Holder, st.Holder = l.holder, l.holder
			st.Transitions = ptrValue(l.lease.Spec.LeaseTransitions)
			if t := l.lease.Spec.AcquireTime; t != nil {
				st.Since = t.Time
			}
		}
		d := Decide(in)
		if e.holderOut(v, addr, in.Holder, d.Ranked) {
			in.Overdue = true
			d = Decide(in)
		}
		st.Candidates, st.Owned = d.Ranked, d.Answer
		status = append(status, st)
		if d.Answer {
			answer[addr] = true
		}
		if d.Action != None {
			writes = append(writes, write{addr: addr, action: d.Action, to: d.To, lease: l, want: w})
		}
	}
	for addr, l := range v.leases {
		if _, ok := v.want[addr]; ok {
			continue
		}
		delete(e.outSince, addr)
		if l.holder == e.c.Node || e.orphan(v, l) {
			writes = append(writes, write{addr: addr, action: Release, lease: l})
		}
	}
	slices.SortFunc(status, func(a, b AddressStatus) int { return a.Addr.Compare(b.Addr) })
	return answer, writes, status
}

// holderOut tracks how long another live holder has not been a candidate
// in this view, and says when that is long enough (LeaseDuration) that it
// should have handed over and has not.
func (e *Elector) holderOut(v *view, addr netip.Addr, holder string, ranked []string) bool {
	_, live := v.live[holder]
	if holder == "" || holder == e.c.Node || !live || slices.Contains(ranked, holder) {
		delete(e.outSince, addr)
		return false
	}
	since, ok := e.outSince[addr]
	if !ok {
		since = v.now
		e.outSince[addr] = since
	}
	due := since.Add(e.c.LeaseDuration)
	if v.now.Before(due) {
		v.next = earlier(v.next, due)
		return false
	}
	return true
}

// orphan: a lease nobody wants, whose holder is not live and which has not
// changed for two lease durations. A view that lags (this node has not yet
// seen the Service) sees a fresh lease or a live holder, and leaves it;
// the delete is conditional on the version seen.
func (e *Elector) orphan(v *view, l *addrSeen) bool {
	if !v.wantSet {
		return false
	}
	if _, live := v.live[l.holder]; live {
		return false
	}
	due := l.changed.Add(2 * e.c.LeaseDuration)
	if v.now.Before(due) {
		v.next = earlier(v.next, due)
		return false
	}
	return true
}

// write carries out one decision with a compare-and-swap on the version
// seen, and feeds the result back as if the watch had delivered it.
func (e *Elector) write(ctx context.Context, w write, now time.Time) {
	api := e.client.CoordinationV1().Leases(e.c.Namespace)
	var (
		got *coordinationv1.Lease
		err error
	)
	switch w.action {
	case Release:
		rv := w.lease.lease.ResourceVersion
		err = api.Delete(ctx, w.lease.lease.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
		if err == nil {
			e.observe(w.lease.lease, true)
		}
	case Acquire, Handover:
		to := w.to
		if w.action == Acquire {
			to = e.c.Node
		}
		if w.lease == nil {
			got, err = api.Create(ctx, e.addressLease(nil, w.want, to, now), metav1.CreateOptions{})
		} else {
			got, err = api.Update(ctx, e.addressLease(w.lease.lease, w.want, to, now), metav1.UpdateOptions{})
		}
	}
	if got != nil && err == nil {
		e.observe(got, false)
	}
	log := e.c.Log.With("address", w.addr, "action", w.action, "to", w.to)
	switch {
	case err == nil:
		log.Debug("l2owner: wrote address lease")
	case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) || apierrors.IsNotFound(err):
		log.Debug("l2owner: address lease changed meanwhile", "err", err) // the watch brings the news
	default:
		log.Warn("l2owner: writing address lease", "err", err)
	}
}

// addressLease is old (nil: a new lease) with holder to.
func (e *Elector) addressLease(old *coordinationv1.Lease, w Want, to string, now time.Time) *coordinationv1.Lease {
	var l *coordinationv1.Lease
	if old == nil {
		l = e.newLease(AddressLeaseName(w.Addr), kindAddress)
	} else {
		l = old.DeepCopy()
		if l.Annotations == nil {
			l.Annotations = map[string]string{}
		}
	}
	l.Annotations[annAddress] = w.Addr.String()
	if w.Services != nil {
		l.Annotations[annServices] = joinList(w.Services)
	}
	if holderOf(l) != to {
		if holderOf(l) != "" || old != nil {
			n := ptrValue(l.Spec.LeaseTransitions) + 1
			l.Spec.LeaseTransitions = &n
		}
		l.Spec.AcquireTime = &metav1.MicroTime{Time: now}
	}
	l.Spec.HolderIdentity = nil
	if to != "" {
		l.Spec.HolderIdentity = &to
	}
	return l
}

func ptrValue[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
