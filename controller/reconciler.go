package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controller/allocator"
	"github.com/bgplb/bgplb/internal/lbmodel"
)

// Options tune the controller.
type Options struct {
	// HandleUnclassed makes bgplb serve LoadBalancer Services with no
	// loadBalancerClass, as the cluster's default load balancer.
	HandleUnclassed bool
	// HoldDown keeps a released address from other Services for this long.
	HoldDown time.Duration
	// Workers is how many Services are reconciled at once (status writes
	// overlap; allocation itself is serialised).
	Workers int
	// SweepInterval is how often the reports (ServiceAnnouncements,
	// BGPSessionStatuses) of nodes that are gone are looked for besides
	// on every Node deletion; zero means DefaultSweepInterval.
	SweepInterval time.Duration
	// L2LeaseNamespace is the speakers' namespace, where they elect each
	// L2 address's owner with a Lease; empty means
	// DefaultL2LeaseNamespace.
	L2LeaseNamespace string
	Log              *slog.Logger
}

type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]

// Reconciler owns the allocator and keeps Services' and LoadBalancerPools'
// status in step with it. Allocation decisions are made under one lock by the
// pure allocator; everything around them is reading the cache and writing
// status.
type Reconciler struct {
	c client.Client
	// live reads the API server directly, past the cache.
	live   client.Reader
	events events.EventRecorder
	opts   Options
	log    *slog.Logger
	m      *metrics

	mu       sync.Mutex
	alloc    *allocator.Allocator
	restored bool
	// poolsSeen fingerprints the LoadBalancerPools last given to the allocator.
	poolsSeen string
	poolNames []string
	problems  map[string]error
	// waiting are Services whose request failed; a release or a pool change
	// may satisfy them.
	waiting map[lbmodel.Key]bool
	// conflicts are Services whose status at start-up claimed an address
	// another Service already held; they are told once.
	conflicts map[lbmodel.Key]string
	// ads keeps the BGPAnnouncementPolicies in force, as every speaker keeps
	// them, so that the Announced condition explains what the speakers do
	// while one is broken (safe for concurrent reconciles on its own).
	ads lbmodel.LastGood[lbmodel.Advertisement]
	// l2s keeps the L2AnnouncementPolicies in force the same way, for
	// their status and the Announced condition alike.
	l2s lbmodel.LastGood[lbmodel.L2Advertisement]
	// peers keeps the same for the status of BGPRouters.
	peers lbmodel.LastGood[lbmodel.Peer]
	// leases reads the speakers' address Leases (newLeaseCache).
	leases client.Reader
	svcQ   queue
	poolQ  queue
}

func newReconciler(c client.Client, rec events.EventRecorder, opts Options) *Reconciler {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	a, _ := allocator.New(allocator.Config{HoldDown: opts.HoldDown}, nil)
	return &Reconciler{
		c: c, events: rec, opts: opts, log: opts.Log, m: newMetrics(),
		alloc:     a,
		problems:  map[string]error{},
		waiting:   map[lbmodel.Key]bool{},
		conflicts: map[lbmodel.Key]string{},
	}
}

// Restored reports whether the start-up rebuild is done: until then nothing
// is assigned.
func (r *Reconciler) Restored() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.restored
}

// restore rebuilds the allocator from the pools and from every Service's
// status before anything new is assigned, so that a restart neither moves
// nor duplicates an address. Services are restored oldest first: if two
// claim one address that cannot be shared, the older keeps it.
func (r *Reconciler) restore(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.restored {
		return nil
	}
	start := time.Now()
	if err := r.syncPoolsLocked(ctx); err != nil {
		return err
	}
	nsLabels, err := r.namespaceLabels(ctx)
	if err != nil {
		return err
	}
	var svcs corev1.ServiceList
	if err := r.c.List(ctx, &svcs); err != nil {
		return fmt.Errorf("listing Services: %w", err)
	}
	items := svcs.Items
	slices.SortFunc(items, func(a, b corev1.Service) int {
		return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time),
			cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	n := 0
	for i := range items {
		svc := &items[i]
		addrs := lbmodel.Assigned(svc)
		if !lbmodel.Handles(svc, r.opts.HandleUnclassed) || len(addrs) == 0 {
			continue
		}
		req, _ := RequestFor(svc, nsLabels[svc.Namespace])
		if _, err := r.alloc.Restore(req, addrs, start); err != nil {
			r.conflicts[req.Key] = err.Error()
			r.log.Warn("a Service's address cannot be restored", "service", req.Key, "err", err)
			continue
		}
		n++
	}
	held, err := r.restoreHoldDowns(ctx, start)
	if err != nil {
		return err
	}
	r.restored = true
	r.log.Info("restored assignments", "services", n, "conflicts", len(r.conflicts), "heldDown", held, "took", time.Since(start))
	return nil
}

// restoreHoldDowns takes up the hold-downs the pools' status lists, after
// the Services are restored (an address a Service holds again is not held
// down): a released address stays held for its full time across a restart
// or a change of leader.
func (r *Reconciler) restoreHoldDowns(ctx context.Context, now time.Time) (int, error) {
	var list v1alpha1.LoadBalancerPoolList
	if err := r.c.List(ctx, &list); err != nil {
		return 0, fmt.Errorf("listing IPPools: %w", err)
	}
	n := 0
	for _, h := range persistedHoldDowns(list.Items) {
		if r.alloc.RestoreHoldDown(h.addr, h.service, h.until, now) {
			n++
		}
	}
	return n, nil
}

func (r *Reconciler) namespaceLabels(ctx context.Context) (map[string]map[string]string, error) {
	var nss corev1.NamespaceList
	if err := r.c.List(ctx, &nss); err != nil {
		return nil, fmt.Errorf("listing namespaces: %w", err)
	}
	out := make(map[string]map[string]string, len(nss.Items))
	for _, ns := range nss.Items {
		out[ns.Name] = ns.Labels
	}
	return out, nil
}

// syncPoolsLocked gives the allocator the current LoadBalancerPools when they
// changed since last time, and then has every Service and pool looked at
// again.
func (r *Reconciler) syncPoolsLocked(ctx context.Context) error {
	var list v1alpha1.LoadBalancerPoolList
	if err := r.c.List(ctx, &list); err != nil {
		return fmt.Errorf("listing IPPools: %w", err)
	}
	var fp strings.Builder
	names := make([]string, 0, len(list.Items))
	for _, p := range list.Items {
		fmt.Fprintf(&fp, "%s/%s/%d/%d;", p.Name, p.UID, p.Generation, p.CreationTimestamp.Unix())
		names = append(names, p.Name)
	}
	if fp.String() == r.poolsSeen && r.restored {
		return nil
	}
	pools, problems := lbmodel.PoolsFrom(list.Items)
	problems = append(problems, r.alloc.SetPools(pools)...)
	r.problems = map[string]error{}
	for _, p := range problems {
		r.problems[p.Pool] = p.Err
		r.log.Warn("LoadBalancerPool refused", "pool", p.Pool, "err", p.Err)
	}
	r.poolsSeen, r.poolNames = fp.String(), names
	if r.restored {
		r.log.Info("LoadBalancerPools changed", "pools", len(pools), "refused", len(problems))
		if err := r.requeueServices(ctx); err != nil {
			return err
		}
	}
	r.requeuePools(0)
	return nil
}

func (r *Reconciler) requeueServices(ctx context.Context) error {
	if r.svcQ == nil {
		return nil
	}
	var svcs corev1.ServiceList
	if err := r.c.List(ctx, &svcs); err != nil {
		return fmt.Errorf("listing Services: %w", err)
	}
	for _, s := range svcs.Items {
		if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
			r.svcQ.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: s.Namespace, Name: s.Name}})
		}
	}
	return nil
}

// requeuePools has every pool's status recomputed after delay; repeated
// calls within the delay coalesce, so a burst of allocations costs a few
// status writes, not one per Service.
func (r *Reconciler) requeuePools(delay time.Duration) {
	if r.poolQ == nil {
		return
	}
	for _, n := range r.poolNames {
		r.poolQ.AddAfter(reconcile.Request{NamespacedName: types.NamespacedName{Name: n}}, delay)
	}
}

// wakeWaitingLocked requeues the Services whose request failed: an address
// was just released.
func (r *Reconciler) wakeWaitingLocked() {
	if r.svcQ == nil {
		return
	}
	for k := range r.waiting {
		r.svcQ.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: k.Namespace, Name: k.Name}})
	}
}

// poolStatusDelay is how long pool status updates wait to coalesce.
const poolStatusDelay = 500 * time.Millisecond

// Reconcile handles one Service.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	if err := r.restore(ctx); err != nil {
		return reconcile.Result{}, err
	}
	key := lbmodel.Key{Namespace: req.Namespace, Name: req.Name}
	var svc corev1.Service
	if err := r.c.Get(ctx, req.NamespacedName, &svc); err != nil {
		if apierrors.IsNotFound(err) {
			r.release(key)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	if !lbmodel.Handles(&svc, r.opts.HandleUnclassed) {
		return r.relinquish(ctx, &svc)
	}
	var ns corev1.Namespace
	if err := r.c.Get(ctx, types.NamespacedName{Name: svc.Namespace}, &ns); err != nil && !apierrors.IsNotFound(err) {
		return reconcile.Result{}, err
	}
	out, retryAt, conflict := r.allocate(&svc, ns.Labels)
	if conflict != "" {
		r.events.Eventf(&svc, nil, corev1.EventTypeWarning, EventRestoreConflict, "Restore",
			"at start-up this Service's status claimed an address it may not hold: %s", conflict)
	}

	d := decide(&svc, out)
	ann, err := r.announcement(ctx, &svc, out.held)
	if err != nil {
		return reconcile.Result{}, err
	}
	upd, now := svc.DeepCopy(), metav1.Now()
	// Both conditions go out in one write.
	allocChanged := d.apply(upd, now)
	if annChanged := ann.apply(upd, now); allocChanged || annChanged {
		if err := r.c.Status().Update(ctx, upd); err != nil {
			if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
				return reconcile.Result{Requeue: true}, nil
			}
			return reconcile.Result{}, fmt.Errorf("writing the status of Service %s: %w", key, err)
		}
	}
	if d.eventReason != "" {
		r.events.Eventf(&svc, nil, d.eventType, d.eventReason, "Allocate", "%s", d.note)
		r.log.Info(d.note, "service", key, "event", d.eventReason)
	}
	r.recordAnnounced(&svc, ann)
	if !retryAt.IsZero() {
		return reconcile.Result{RequeueAfter: time.Until(retryAt) + time.Millisecond}, nil
	}
	return reconcile.Result{}, nil
}

// allocate runs the allocator for a handled Service and keeps the books:
// who waits, which pools' counts moved, the metrics.
func (r *Reconciler) allocate(svc *corev1.Service, nsLabels map[string]string) (out outcome, retryAt time.Time, conflict string) {
	key := lbmodel.Key{Namespace: svc.Namespace, Name: svc.Name}
	req, err := RequestFor(svc, nsLabels)
	r.mu.Lock()
	defer r.mu.Unlock()
	conflict = r.conflicts[key]
	delete(r.conflicts, key)
	before, _ := r.alloc.Lookup(key)
	var released []netip.Addr
	if err == nil {
		var a allocator.Allocation
		a, err = r.alloc.Allocate(req, time.Now())
		out.held, released = a.Addresses, a.Released
		if ae := (*allocator.Error)(nil); errors.As(err, &ae) {
			retryAt = ae.RetryAt
		}
	}
	if err != nil {
		out.err = err
		after, _ := r.alloc.Lookup(key)
		out.held = after.Addresses
		r.waiting[key] = true
		r.m.allocErrors.WithLabelValues(reasonOf(err)).Inc()
	} else {
		delete(r.waiting, key)
	}
	for _, a := range out.held {
		if why := r.alloc.Outside(a.Addr); why != "" {
			if out.orphans == nil {
				out.orphans = map[netip.Addr]string{}
			}
			out.orphans[a.Addr] = why
		}
	}
	if !slices.Equal(before.Addresses, out.held) {
		r.m.allocations.Add(float64(len(out.held)))
		r.requeuePools(poolStatusDelay)
	}
	if len(released) > 0 {
		r.wakeWaitingLocked()
	}
	return out, retryAt, conflict
}

// release gives up a deleted Service's addresses.
func (r *Reconciler) release(key lbmodel.Key) []netip.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.waiting, key)
	delete(r.conflicts, key)
	released := r.alloc.Release(key, time.Now())
	if len(released) > 0 {
		r.m.releases.Add(float64(len(released)))
		r.log.Info("released", "service", key, "addresses", released)
		r.wakeWaitingLocked()
		r.requeuePools(poolStatusDelay)
	}
	return released
}

// relinquish handles a Service bgplb no longer serves (its type or class
// changed): its addresses are released and what bgplb wrote in its status
// is removed.
func (r *Reconciler) relinquish(ctx context.Context, svc *corev1.Service) (reconcile.Result, error) {
	key := lbmodel.Key{Namespace: svc.Namespace, Name: svc.Name}
	ours := r.release(key)
	if len(ours) == 0 && meta.FindStatusCondition(svc.Status.Conditions, ConditionAllocated) != nil &&
		svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		// Released before a restart: the condition says the addresses were ours.
		ours = lbmodel.Assigned(svc)
	}
	upd := svc.DeepCopy()
	if !clearStatus(upd, ours) {
		return reconcile.Result{}, nil
	}
	if err := r.c.Status().Update(ctx, upd); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return reconcile.Result{Requeue: true}, nil
		}
		return reconcile.Result{}, fmt.Errorf("clearing the status of Service %s: %w", key, err)
	}
	if len(ours) > 0 {
		r.events.Eventf(svc, nil, corev1.EventTypeNormal, EventReleased, "Release",
			"Released %s: the Service is no longer a LoadBalancer served by bgplb", joinAddrs(ours))
	}
	return reconcile.Result{}, nil
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}
