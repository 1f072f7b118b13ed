package l2owner

import (
	"context"
	"net/netip"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// maxParallelWrites bounds one batch's concurrent requests: a failover
// moves many addresses at once, and against a slow API server one request
// after the other would take their number times its latency.
const maxParallelWrites = 8

// DefaultReapAfter is how long a heartbeat must have stayed unchanged, in
// a node's view, before that node deletes it: the heartbeat of a node
// that vanished without a graceful stop.
const DefaultReapAfter = 10 * time.Minute

// staleBeat is a heartbeat unchanged for reapAfter, at version rv.
type staleBeat struct{ node, rv string }

// batch is what one step hands the writer.
type batch struct {
	live   map[string][]string // the step's view: never mutated
	writes []write
	list   bool // LIST the address leases first
	reap   []staleBeat
}

// runBatch carries out one step's writes, on a goroutine of the writers
// group, the LIST first when asked. Every request may take up to
// writeTimeout: the deciding loop does not wait for them, so a slow API
// server delays ownership changes but never the fence.
func (e *Elector) runBatch(ctx context.Context, b batch) {
	if b.list {
		e.list(ctx)
	}
	for _, s := range b.reap {
		e.reapBeat(ctx, s)
	}
	if len(b.writes) == 0 {
		return
	}
	alive := e.confirmDead(ctx, b.live, b.writes)
	sem := make(chan struct{}, maxParallelWrites)
	var wg sync.WaitGroup
	for _, w := range b.writes {
		if w.lease != nil && w.action == Acquire && alive[w.lease.holder] {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			e.write(ctx, w)
		})
	}
	wg.Wait()
}

// list reads every address lease and records them as fresh from the
// moment the request was made.
func (e *Elector) list(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, e.c.writeTimeout())
	defer cancel()
	start := time.Now()
	l, err := e.client.CoordinationV1().Leases(e.c.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labelKind + "=" + kindAddress})
	if err != nil {
		e.c.Log.Warn("l2owner: listing address leases", "err", err)
		e.needList.Store(true)
		// The loop dispatches the next attempt as soon as this batch ends.
		select {
		case <-ctx.Done():
		case <-time.After(e.c.retryDelay()):
		}
		return
	}
	e.observeList(l.Items, l.ResourceVersion, start)
}

// reapBeat deletes a heartbeat left by a node that vanished, on the
// condition that it is still the version seen long ago.
func (e *Elector) reapBeat(ctx context.Context, s staleBeat) {
	ctx, cancel := context.WithTimeout(ctx, e.c.writeTimeout())
	defer cancel()
	name := NodeLeaseName(s.node)
	err := e.client.CoordinationV1().Leases(e.c.Namespace).Delete(ctx, name,
		metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &s.rv}})
	switch {
	case err == nil || apierrors.IsNotFound(err):
		e.c.Log.Info("l2owner: deleted the heartbeat of a vanished node", "node", s.node)
		e.mu.Lock()
		if cur := e.st.nodes[s.node]; cur != nil && cur.rv == s.rv {
			delete(e.st.nodes, s.node)
		}
		e.mu.Unlock()
	case apierrors.IsConflict(err):
	default:
		e.c.Log.Warn("l2owner: deleting a stale heartbeat", "node", s.node, "err", err)
	}
}

// confirmDead reads the heartbeat of every holder an Acquire would take
// from for being dead in this view, and returns those that renewed after
// all: this node's watch had stalled, not they. Without it a node whose
// watch stalls would see every other node die and take all addresses.
func (e *Elector) confirmDead(ctx context.Context, live map[string][]string, writes []write) map[string]bool {
	alive := map[string]bool{}
	checked := map[string]bool{}
	api := e.client.CoordinationV1().Leases(e.c.Namespace)
	for _, w := range writes {
		if w.action != Acquire || w.lease == nil {
			continue
		}
		holder := w.lease.holder
		if _, ok := live[holder]; ok || holder == "" || checked[holder] {
			continue
		}
		checked[holder] = true
		e.mu.Lock()
		var seenRV string
		if s := e.st.nodes[holder]; s != nil {
			seenRV = s.rv
		}
		e.mu.Unlock()
		gctx, cancel := context.WithTimeout(ctx, e.c.writeTimeout())
		l, err := api.Get(gctx, NodeLeaseName(holder), metav1.GetOptions{})
		cancel()
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			alive[holder] = true // unknown: do not take from it this time
		case l.ResourceVersion != seenRV:
			alive[holder] = true
			e.observe(l, obs{})
		}
	}
	return alive
}

// write carries out one decision with a compare-and-swap on the version
// seen, and feeds the result back as if the watch had delivered it.
func (e *Elector) write(ctx context.Context, w write) {
	ctx, cancel := context.WithTimeout(ctx, e.c.writeTimeout())
	defer cancel()
	api := e.client.CoordinationV1().Leases(e.c.Namespace)
	now := time.Now()
	var (
		got *coordinationv1.Lease
		err error
	)
	switch w.action {
	case Release:
		rv := w.lease.lease.ResourceVersion
		err = api.Delete(ctx, w.lease.lease.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
		if err == nil {
			e.observe(w.lease.lease, obs{deleted: true})
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
		e.observe(got, obs{})
	}
	log := e.c.Log.With("address", w.addr, "action", w.action, "to", w.to)
	switch {
	case err == nil:
		log.Debug("l2owner: wrote address lease")
	case apierrors.IsNotFound(err):
		// Gone, though this node's view still has it (a deletion the
		// watch has not delivered, or one it missed): forget it, or every
		// later write would fail the same way.
		log.Debug("l2owner: address lease gone meanwhile", "err", err)
		if w.lease != nil {
			e.forget(w.addr, w.lease.lease.ResourceVersion)
		}
	case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err):
		log.Debug("l2owner: address lease changed meanwhile", "err", err)
		e.reread(ctx, w)
	default:
		log.Warn("l2owner: writing address lease", "err", err)
	}
}

// reread reads a lease a write found changed, so that the next decision
// is made on its current version rather than waiting for the watch.
func (e *Elector) reread(ctx context.Context, w write) {
	l, err := e.client.CoordinationV1().Leases(e.c.Namespace).Get(ctx, AddressLeaseName(w.addr), metav1.GetOptions{})
	switch {
	case err == nil:
		e.observe(l, obs{})
	case apierrors.IsNotFound(err) && w.lease != nil:
		e.forget(w.addr, w.lease.lease.ResourceVersion)
	}
}

// forget drops the stored lease of addr unless what is stored is newer
// than rv (then the watch has brought the news already).
func (e *Elector) forget(addr netip.Addr, rv string) {
	e.mu.Lock()
	s := e.st.leases[addr]
	if s != nil && !olderRV(rv, s.lease.ResourceVersion) {
		e.observeAddress(s.lease, obs{deleted: true, forced: true}, time.Now())
	}
	e.mu.Unlock()
	e.kick()
}
