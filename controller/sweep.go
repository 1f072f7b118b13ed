package controller

// The sweep of stale reports: ServiceAnnouncements and BGPSessionStatuses
// written by the speaker of a node that no longer exists. Their speaker
// is gone and will never remove them, and the Announced condition would
// go on naming the dead node. The speakers set ownerReferences to their
// Node where they can; the sweep covers objects written before that, or
// without it, and runs on every Node deletion and every SweepInterval.

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// DefaultSweepInterval is how often stale reports are looked for when no
// Node deletion prompts it (a Node deleted while no controller ran).
const DefaultSweepInterval = 5 * time.Minute

// sweepKey is the one request of the sweep controller: every trigger
// coalesces into it.
var sweepKey = reconcile.Request{NamespacedName: types.NamespacedName{Name: "sweep"}}

// reportNode is the node a report is about: spec.node, else the node
// label (both are set by the speakers today); "" when neither.
func reportNode(specNode string, labels map[string]string) string {
	if specNode != "" {
		return specNode
	}
	return labels[v1alpha1.LabelNode]
}

// staleNodes are the nodes, sorted, that reports name and that do not
// exist.
func staleNodes(exists map[string]bool, reported []string) []string {
	var out []string
	for _, n := range reported {
		if n != "" && !exists[n] {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// sweep deletes the reports of nodes that do not exist. A node missing
// from the cache is confirmed missing by the API server before its
// reports go, so that a node the cache has not seen yet keeps them.
func (r *Reconciler) sweep(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	var nodes metav1.PartialObjectMetadataList
	nodes.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NodeList"))
	if err := r.c.List(ctx, &nodes); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing Nodes: %w", err)
	}
	exists := make(map[string]bool, len(nodes.Items))
	for _, n := range nodes.Items {
		exists[n.Name] = true
	}
	var anns v1alpha1.ServiceAnnouncementList
	if err := r.c.List(ctx, &anns); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing ServiceAnnouncements: %w", err)
	}
	var sess v1alpha1.BGPSessionStatusList
	if err := r.c.List(ctx, &sess); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing BGPSessionStatuses: %w", err)
	}
	byNode := map[string][]client.Object{}
	var reported []string
	for i := range anns.Items {
		a := &anns.Items[i]
		n := reportNode(a.Spec.Node, a.Labels)
		byNode[n] = append(byNode[n], a)
		reported = append(reported, n)
	}
	for i := range sess.Items {
		s := &sess.Items[i]
		n := reportNode(s.Spec.Node, s.Labels)
		byNode[n] = append(byNode[n], s)
		reported = append(reported, n)
	}
	for _, n := range staleNodes(exists, reported) {
		if err := r.live.Get(ctx, client.ObjectKey{Name: n}, &corev1.Node{}); !apierrors.IsNotFound(err) {
			if err != nil {
				return reconcile.Result{}, fmt.Errorf("reading Node %s: %w", n, err)
			}
			continue // it exists: the cache lags
		}
		deleted := 0
		for _, o := range byNode[n] {
			uid := o.GetUID()
			err := r.c.Delete(ctx, o, client.Preconditions{UID: &uid})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				return reconcile.Result{}, fmt.Errorf("deleting %T %s: %w", o, o.GetName(), err)
			}
			deleted++
		}
		r.log.Info("removed the reports of a node that is gone", "node", n, "objects", deleted)
	}
	return reconcile.Result{}, nil
}

// setupSweep adds the sweep controller: it runs once at start (the Nodes
// listed then), on every Node deletion, and every interval.
func (r *Reconciler) setupSweep(mgr manager.Manager, interval time.Duration) error {
	if interval <= 0 {
		interval = DefaultSweepInterval
	}
	r.live = mgr.GetAPIReader()
	skip := true
	toSweep := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{sweepKey}
	})
	startOrDelete := predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return e.IsInInitialList },
		UpdateFunc:  func(event.UpdateEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
	ticker := source.Func(func(ctx context.Context, q queue) error {
		go func() {
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					q.Add(sweepKey)
				}
			}
		}()
		return nil
	})
	return builder.ControllerManagedBy(mgr).
		Named("report-sweep").
		WatchesMetadata(&corev1.Node{}, toSweep, builder.WithPredicates(startOrDelete)).
		WatchesRawSource(ticker).
		WithOptions(ctrlcontroller.Options{SkipNameValidation: &skip}).
		Complete(reconcile.Func(r.sweep))
}
