package l2owner

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// view is one step's snapshot of the shared state.
type view struct {
	now         time.Time
	live        map[string][]string // never mutated once built: the writer reads it too
	want        map[netip.Addr]Want
	wantSet     bool
	leases      map[netip.Addr]*addrSeen // entries are never mutated once stored
	transitions []Transition
	gen         uint64 // candGen
	policies    []string
	// writable: Set and SetCandidacy have both been called. Before that
	// this node knows neither what is wanted nor whether it may answer,
	// and a write would move addresses for nothing.
	writable bool
	// stopping: Stop was called; its own path writes, after deleting the
	// heartbeat, so that the next holders do not hand addresses back.
	stopping bool
	// fenced: a candidate that is not live in its own eyes (its first
	// renewal is under way, or its fence lapsed). Others still see it live
	// for a while; it answers nothing and hands nothing over.
	fenced  bool
	freshAt time.Time
	fresh   bool // the address leases were listed after this node last became live
	stale   []staleBeat
	next    time.Time // when the view changes by the clock alone
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
		gen: e.candGen, policies: e.policies, writable: e.wantSet && e.candSet, stopping: e.stopping,
		freshAt: e.freshAt, next: now.Add(time.Minute),
	}
	e.st.transitions = nil
	for n, s := range e.st.nodes {
		if exp := s.observed.Add(s.duration); now.Before(exp) {
			v.live[n] = s.policies
			v.next = earlier(v.next, exp)
		} else if reap := s.observed.Add(e.reapAfter); !now.Before(reap) {
			v.stale = append(v.stale, staleBeat{n, s.rv})
		} else {
			v.next = earlier(v.next, reap)
		}
	}
	if e.candidate() {
		// The fence: live for its own decisions only until fenceMargin
		// before the earliest moment an observer may see the lease expire.
		fence := e.renewedAt.Add(e.c.LeaseDuration - e.c.fenceMargin())
		if !e.renewedAt.IsZero() && now.Before(fence) {
			v.live[e.c.Node] = e.policies
			v.next = earlier(v.next, fence)
		} else {
			v.fenced = true
		}
	}
	return v
}

// candidate: this node heartbeats. Called with mu held.
func (e *Elector) candidate() bool {
	return e.ready && len(e.policies) > 0 && !e.stopping
}

// step decides every address, stops answering what it must, and only then
// hands the writes to the writer: no API call ever runs on this
// goroutine, so that the fence is looked at on time however slow the API
// server. It returns when to step again if nothing else happens.
func (e *Elector) step(ctx context.Context, now time.Time) time.Time {
	v := e.snapshot(now)
	e.trackLive(&v)
	answer, writes, status := e.plan(&v)
	if !maps.Equal(answer, e.owned) {
		e.owned = answer
		e.announce()
	}
	e.mu.Lock()
	e.status = status
	applied := e.appliedGen != v.gen
	e.appliedGen = v.gen
	e.mu.Unlock()
	if applied {
		e.wakeBeat() // it may delete the heartbeat now that the answers stopped
	}
	if e.c.OnTransition != nil {
		for _, t := range v.transitions {
			e.c.OnTransition(t)
		}
	}
	e.dispatch(ctx, &v, writes)
	e.mu.Lock()
	e.stepAt = time.Now()
	e.mu.Unlock()
	return v.next
}

// trackLive notes when this node becomes live in its own eyes: what it
// saw of the address leases before may be stale (a cut that healed, with
// the watch not yet relisted), so it answers again only after a LIST
// begun since.
func (e *Elector) trackLive(v *view) {
	_, live := v.live[e.c.Node]
	if live && !e.wasLive {
		e.liveSince = v.now
		e.needList.Store(true)
	}
	e.wasLive = live
	v.fresh = !v.freshAt.Before(e.liveSince)
}

// dispatch hands the step's writes to the writer unless it is busy (it
// steps the loop again when done), at most one write per address per
// interval.
func (e *Elector) dispatch(ctx context.Context, v *view, writes []write) {
	if e.writing.Load() || e.writers == nil {
		return
	}
	b := batch{live: v.live, list: e.needList.Load()}
	if v.writable && !v.stopping {
		b.writes = e.rateLimit(v, writes, false)
		b.reap = e.reapDue(v.stale)
	}
	if len(b.writes) == 0 && len(b.reap) == 0 && !b.list {
		return
	}
	e.needList.Store(false)
	e.writing.Store(true)
	e.writers.Go(func() {
		defer e.kick()
		defer e.writing.Store(false)
		e.runBatch(ctx, b)
	})
}

// reapDue are the stale heartbeats not yet tried at their version.
func (e *Elector) reapDue(stale []staleBeat) []staleBeat {
	var out []staleBeat
	keep := map[string]string{}
	for _, s := range stale {
		keep[s.node] = s.rv
		if e.reaped[s.node] != s.rv {
			out = append(out, s)
		}
	}
	e.reaped = keep
	return out
}

// rateLimit keeps the writes due: views may briefly disagree, and at most
// one write per address per interval keeps that from becoming a storm.
// force (graceful stop) keeps all.
func (e *Elector) rateLimit(v *view, writes []write, force bool) []write {
	var out []write
	for _, w := range writes {
		if last, ok := e.lastWrite[w.addr]; ok && !force && v.now.Sub(last) < e.c.RenewInterval {
			v.next = earlier(v.next, last.Add(e.c.RenewInterval))
			continue
		}
		e.lastWrite[w.addr] = v.now
		out = append(out, w)
	}
	for a, t := range e.lastWrite {
		if v.now.Sub(t) > e.c.RenewInterval {
			delete(e.lastWrite, a)
		}
	}
	return out
}

// plan runs Decide over every wanted address and finds the leases to
// release.
func (e *Elector) plan(v *view) (map[netip.Addr]bool, []write, []AddressStatus) {
	answer := map[netip.Addr]bool{}
	var writes []write
	status := make([]AddressStatus, 0, len(v.want))
	for addr, w := range v.want {
		l := v.leases[addr]
		in := Input{Self: e.c.Node, Want: w, Live: v.live, Fenced: v.fenced, SelfPolicies: v.policies}
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
		d.Answer = d.Answer && v.fresh
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
