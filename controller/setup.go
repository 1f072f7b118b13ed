package controller

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controller/allocator"
	"github.com/bgplb/bgplb/internal/lbmodel"
)

// Setup adds the Service and LoadBalancerPool controllers, and those writing
// the status of BGPRouters, BGPAnnouncementPolicies, L2AnnouncementPolicies
// and BFDPolicies, to mgr. The manager's scheme must know core/v1,
// discovery/v1 and bgplb.io/v1alpha1. The speakers' address Leases are
// read through a cache of their own (opts.L2LeaseNamespace only), added to
// mgr.
func Setup(mgr manager.Manager, opts Options) (*Reconciler, error) {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.L2LeaseNamespace == "" {
		opts.L2LeaseNamespace = DefaultL2LeaseNamespace
	}
	// Controller names are checked for uniqueness per process; tests run
	// several controllers in one.
	skip := true
	r := newReconciler(mgr.GetClient(), mgr.GetEventRecorder("bgplb-controller"), opts)

	b := builder.ControllerManagedBy(mgr).
		Named("service").
		For(&corev1.Service{}).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.servicesIn),
			builder.WithPredicates(predicate.LabelChangedPredicate{})).
		WatchesRawSource(source.Func(func(_ context.Context, q queue) error {
			r.mu.Lock()
			r.svcQ = q
			r.mu.Unlock()
			return nil
		}))
	b, err := r.announcedWatches(context.Background(), mgr, b)
	if err == nil {
		b, err = r.leaseWatches(context.Background(), mgr, b)
	}
	if err != nil {
		return nil, fmt.Errorf("service controller: %w", err)
	}
	err = b.WithOptions(ctrlcontroller.Options{MaxConcurrentReconciles: opts.Workers, SkipNameValidation: &skip}).
		Complete(r)
	if err != nil {
		return nil, fmt.Errorf("service controller: %w", err)
	}
	err = builder.ControllerManagedBy(mgr).
		Named("loadbalancerpool").
		For(&v1alpha1.LoadBalancerPool{}).
		WatchesRawSource(source.Func(func(_ context.Context, q queue) error {
			r.mu.Lock()
			r.poolQ = q
			r.mu.Unlock()
			return nil
		})).
		WithOptions(ctrlcontroller.Options{SkipNameValidation: &skip}).
		Complete(reconcile.Func(r.reconcilePool))
	if err != nil {
		return nil, fmt.Errorf("loadbalancerpool controller: %w", err)
	}
	if err := r.setupConfigStatus(mgr); err != nil {
		return nil, err
	}
	if err := r.setupSweep(mgr, opts.SweepInterval); err != nil {
		return nil, fmt.Errorf("report-sweep controller: %w", err)
	}
	return r, nil
}

// servicesIn maps a namespace whose labels changed to its LoadBalancer
// Services: pools may select by namespace labels.
func (r *Reconciler) servicesIn(ctx context.Context, o client.Object) []reconcile.Request {
	var svcs corev1.ServiceList
	if err := r.c.List(ctx, &svcs, client.InNamespace(o.GetName())); err != nil {
		r.log.Error("listing Services", "namespace", o.GetName(), "err", err)
		return nil
	}
	var out []reconcile.Request
	for _, s := range svcs.Items {
		if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: s.Namespace, Name: s.Name}})
		}
	}
	return out
}

// reconcilePool brings the allocator's pools up to date (any pool event may
// change them) and writes one pool's status.
func (r *Reconciler) reconcilePool(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	if err := r.restore(ctx); err != nil {
		return reconcile.Result{}, err
	}
	r.mu.Lock()
	err := r.syncPoolsLocked(ctx)
	r.mu.Unlock()
	if err != nil {
		return reconcile.Result{}, err
	}
	var p v1alpha1.LoadBalancerPool
	if err := r.c.Get(ctx, req.NamespacedName, &p); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	r.mu.Lock()
	now := time.Now()
	stats := r.alloc.Stats(now)
	held := r.alloc.HeldDown(now)
	problem := r.problems[p.Name]
	r.mu.Unlock()

	st := poolStatus(p.Name, p.Generation, stats, problem, p.Status.Conditions, metav1.Now())
	st.HeldDown = heldDownStatus(p.Name, held)
	if !equality.Semantic.DeepEqual(st, p.Status) {
		upd := p.DeepCopy()
		upd.Status = st
		if err := r.c.Status().Update(ctx, upd); err != nil {
			if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
				return reconcile.Result{Requeue: true}, nil
			}
			return reconcile.Result{}, fmt.Errorf("writing the status of LoadBalancerPool %s: %w", p.Name, err)
		}
	}
	// Held-down addresses come free by the clock, not by an event: look
	// again when the first does, so that the counts and the list are true.
	var first time.Time
	for _, h := range held {
		if h.Pool == p.Name && (first.IsZero() || h.Until.Before(first)) {
			first = h.Until
		}
	}
	if !first.IsZero() {
		return reconcile.Result{RequeueAfter: time.Until(first) + 10*time.Millisecond}, nil
	}
	return reconcile.Result{}, nil
}

// ReadyCheck is a readyz check: a leader is ready once it has rebuilt its
// assignments; a standby is ready once it runs (it has nothing to rebuild).
func (r *Reconciler) ReadyCheck(elected <-chan struct{}) func(*http.Request) error {
	return func(*http.Request) error {
		select {
		case <-elected:
			if !r.Restored() {
				return errors.New("rebuilding assignments from Service status")
			}
		default:
		}
		return nil
	}
}

// Assignment returns what a Service holds, for tests and views.
func (r *Reconciler) Assignment(namespace, name string) (allocator.Assignment, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.alloc.Lookup(lbmodel.Key{Namespace: namespace, Name: name})
}
