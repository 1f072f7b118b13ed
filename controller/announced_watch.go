package controller

// The shell around decideAnnounced: what the Service reconciler reads to
// fill announceFacts, and the watches that look at a Service again when
// any of it changes.

import (
	"context"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controller/allocator"
	"github.com/bgplb/bgplb/internal/lbmodel"
)

// Cache indexes: a Service's ServiceAnnouncements (by spec.service) and
// EndpointSlices (by their kubernetes.io/service-name label), both within
// the Service's namespace, so that a reconcile reads only its own.
const (
	indexAnnouncedService = "bgplb.io/announcement-service"
	indexSliceService     = "bgplb.io/endpointslice-service"
)

// announcement decides the Announced condition of a served Service that
// holds held (the addresses about to be written to its status).
func (r *Reconciler) announcement(ctx context.Context, svc *corev1.Service, held []allocator.Address) (announced, error) {
	f, err := r.announceFacts(ctx, svc, held)
	if err != nil {
		return announced{}, err
	}
	return decideAnnounced(meta.FindStatusCondition(svc.Status.Conditions, ConditionAnnounced), f), nil
}

// recordAnnounced sends the event a decided; call it once the status that
// goes with it is written, so that a failed write does not announce a
// change the Service does not show.
func (r *Reconciler) recordAnnounced(svc *corev1.Service, a announced) {
	if a.eventReason == "" {
		return
	}
	r.events.Eventf(svc, nil, a.eventType, a.eventReason, "Announce", "%s", a.note)
	r.log.Info(a.note, "service", types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}, "event", a.eventReason)
}

// announceFacts reads from the cache what decideAnnounced needs, in the
// order whyNotAnnounced asks, and stops as soon as the answer is known:
// an announced Service costs one indexed list.
func (r *Reconciler) announceFacts(ctx context.Context, svc *corev1.Service, held []allocator.Address) (announceFacts, error) {
	f := announceFacts{
		Generation: svc.Generation,
		Local:      lbmodel.TrafficPolicyOf(svc) == lbmodel.Local,
	}
	var anns v1alpha1.ServiceAnnouncementList
	if err := r.c.List(ctx, &anns, client.InNamespace(svc.Namespace),
		client.MatchingFields{indexAnnouncedService: svc.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return f, fmt.Errorf("listing ServiceAnnouncements: %w", err)
	}
	for i := range anns.Items {
		f.Announcements = append(f.Announcements, announcementOf(&anns.Items[i]))
	}
	var err error
	if f.Holders, err = r.holders(ctx, f.Announcements); err != nil {
		return f, err
	}
	if len(announcing(f.Announcements)) > 0 || len(answering(f.Announcements, f.Holders)) > 0 || len(held) == 0 {
		return f, nil
	}
	var peers v1alpha1.BGPRouterList
	if err := r.c.List(ctx, &peers, client.UnsafeDisableDeepCopy); err != nil {
		return f, fmt.Errorf("listing BGPRouters: %w", err)
	}
	for _, p := range peers.Items {
		f.Peers = append(f.Peers, p.Name)
	}
	var advs v1alpha1.BGPAnnouncementPolicyList
	if err := r.c.List(ctx, &advs, client.UnsafeDisableDeepCopy); err != nil {
		return f, fmt.Errorf("listing BGPAnnouncementPolicies: %w", err)
	}
	for _, res := range lbmodel.ResolveAll(&r.ads, advs.Items, lbmodel.AdvertisementFrom) {
		if res.OK {
			f.Advertisements = append(f.Advertisements, res.Value)
		}
	}
	var l2s v1alpha1.L2AnnouncementPolicyList
	if err := r.c.List(ctx, &l2s, client.UnsafeDisableDeepCopy); err != nil {
		return f, fmt.Errorf("listing L2AnnouncementPolicies: %w", err)
	}
	for _, res := range lbmodel.ResolveAll(&r.l2s, l2s.Items, lbmodel.L2AdvertisementFrom) {
		if res.OK {
			f.L2Advertisements = append(f.L2Advertisements, res.Value)
		}
	}
	if f.Addresses, err = r.servedAddresses(ctx, held); err != nil {
		return f, err
	}
	var ss discoveryv1.EndpointSliceList
	if err := r.c.List(ctx, &ss, client.InNamespace(svc.Namespace),
		client.MatchingFields{indexSliceService: svc.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return f, fmt.Errorf("listing EndpointSlices: %w", err)
	}
	f.ReadyEndpoints = lbmodel.ReadyEndpoints(ss.Items)
	return f, nil
}

// announcementOf is a ServiceAnnouncement as plain values. An address a
// speaker wrote that does not parse is left out: it answers for nothing
// the controller could name.
func announcementOf(a *v1alpha1.ServiceAnnouncement) nodeAnnouncement {
	out := nodeAnnouncement{Node: a.Spec.Node, Peers: a.Status.Peers, Endpoints: a.Status.Endpoints,
		HealthCheck: a.Annotations[lbmodel.AnnotationHealthCheck], Prefixes: len(a.Status.Prefixes) > 0}
	for _, l := range a.Status.L2 {
		addr, err := netip.ParseAddr(l.Address)
		if err != nil {
			continue
		}
		out.L2 = append(out.L2, l2Answer{Addr: addr, Interfaces: l.Interfaces, LastError: l.LastError})
	}
	return out
}

// servedAddresses pairs each held address with its pool's labels.
func (r *Reconciler) servedAddresses(ctx context.Context, held []allocator.Address) ([]servedAddress, error) {
	out := make([]servedAddress, 0, len(held))
	for _, h := range held {
		a := servedAddress{Addr: h.Addr, Pool: h.Pool}
		if h.Pool != "" {
			var p v1alpha1.LoadBalancerPool
			err := r.c.Get(ctx, client.ObjectKey{Name: h.Pool}, &p)
			if err != nil && !apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("reading LoadBalancerPool %s: %w", h.Pool, err)
			}
			a.PoolLabels = p.Labels
		}
		out = append(out, a)
	}
	return out, nil
}

// announcedWatches registers the indexes and adds to the Service controller b
// the watches the Announced condition needs: a Service is looked at again
// when its ServiceAnnouncements change, when its EndpointSlices gain or lose
// their last ready endpoint, and every served Service when BGPRouters come or
// go, when a BGPAnnouncementPolicy's or an L2AnnouncementPolicy's spec
// changes, or when a LoadBalancerPool's labels (which policies select by)
// change. Objects
// listed at start-up are skipped: every Service is reconciled then anyway.
func (r *Reconciler) announcedWatches(ctx context.Context, mgr manager.Manager, b *builder.Builder) (*builder.Builder, error) {
	idx := mgr.GetFieldIndexer()
	err := idx.IndexField(ctx, &v1alpha1.ServiceAnnouncement{}, indexAnnouncedService, func(o client.Object) []string {
		return []string{o.(*v1alpha1.ServiceAnnouncement).Spec.Service}
	})
	if err != nil {
		return nil, fmt.Errorf("indexing ServiceAnnouncements: %w", err)
	}
	err = idx.IndexField(ctx, &discoveryv1.EndpointSlice{}, indexSliceService, func(o client.Object) []string {
		if n := o.GetLabels()[discoveryv1.LabelServiceName]; n != "" {
			return []string{n}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("indexing EndpointSlices: %w", err)
	}
	notInitial := predicate.Funcs{CreateFunc: func(e event.CreateEvent) bool { return !e.IsInInitialList }}
	comeOrGo := predicate.Funcs{UpdateFunc: func(event.UpdateEvent) bool { return false }}
	labelsOnly := predicate.Funcs{
		CreateFunc: func(event.CreateEvent) bool { return false },
		DeleteFunc: func(event.DeleteEvent) bool { return false },
		UpdateFunc: predicate.LabelChangedPredicate{}.Update,
	}
	all := handler.EnqueueRequestsFromMapFunc(r.allServed)
	return b.
		Watches(&v1alpha1.ServiceAnnouncement{}, handler.EnqueueRequestsFromMapFunc(announcedService),
			builder.WithPredicates(notInitial)).
		Watches(&discoveryv1.EndpointSlice{}, handler.EnqueueRequestsFromMapFunc(r.servedServiceOf),
			builder.WithPredicates(notInitial, readinessChanged())).
		Watches(&v1alpha1.BGPRouter{}, all, builder.WithPredicates(notInitial, comeOrGo)).
		Watches(&v1alpha1.BGPAnnouncementPolicy{}, all, builder.WithPredicates(notInitial, predicate.GenerationChangedPredicate{})).
		Watches(&v1alpha1.L2AnnouncementPolicy{}, all, builder.WithPredicates(notInitial, predicate.GenerationChangedPredicate{})).
		Watches(&v1alpha1.LoadBalancerPool{}, all, builder.WithPredicates(labelsOnly)), nil
}

// announcedService maps a ServiceAnnouncement to its Service.
func announcedService(_ context.Context, o client.Object) []reconcile.Request {
	a, ok := o.(*v1alpha1.ServiceAnnouncement)
	if !ok || a.Spec.Service == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: a.Namespace, Name: a.Spec.Service}}}
}

// servedServiceOf maps an EndpointSlice to its Service when bgplb serves
// it: with no ready endpoint a Service of either policy is withdrawn.
func (r *Reconciler) servedServiceOf(ctx context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[discoveryv1.LabelServiceName]
	if name == "" {
		return nil
	}
	key := types.NamespacedName{Namespace: o.GetNamespace(), Name: name}
	var svc corev1.Service
	if err := r.c.Get(ctx, key, &svc); err != nil {
		return nil
	}
	if !lbmodel.Handles(&svc, r.opts.HandleUnclassed) {
		return nil
	}
	return []reconcile.Request{{NamespacedName: key}}
}

// readinessChanged passes the EndpointSlice events that can move a
// Service's count of ready endpoints between none and some: the count
// crosses zero only when some slice's does.
func readinessChanged() predicate.Funcs {
	hasReady := func(o client.Object) bool {
		s, ok := o.(*discoveryv1.EndpointSlice)
		return ok && lbmodel.ReadyEndpoints([]discoveryv1.EndpointSlice{*s}) > 0
	}
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return hasReady(e.Object) },
		DeleteFunc: func(e event.DeleteEvent) bool { return hasReady(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool {
			return hasReady(e.ObjectOld) != hasReady(e.ObjectNew) ||
				e.ObjectOld.GetLabels()[discoveryv1.LabelServiceName] != e.ObjectNew.GetLabels()[discoveryv1.LabelServiceName]
		},
	}
}

// allServed maps any object to every Service bgplb serves.
func (r *Reconciler) allServed(ctx context.Context, _ client.Object) []reconcile.Request {
	var svcs corev1.ServiceList
	if err := r.c.List(ctx, &svcs, client.UnsafeDisableDeepCopy); err != nil {
		r.log.Error("listing Services", "err", err)
		return nil
	}
	var out []reconcile.Request
	for i := range svcs.Items {
		if s := &svcs.Items[i]; lbmodel.Handles(s, r.opts.HandleUnclassed) {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: s.Namespace, Name: s.Name}})
		}
	}
	return out
}

// endpointSliceCache keeps in the cache only the EndpointSlices of Services,
// and of each only what lbmodel's endpoint rule reads: which node each
// endpoint is on, its conditions, and what names its pod (the target and the
// addresses, so a pod listed by two slices counts once). Slices are the
// largest objects the controller watches, and it needs little of them.
func endpointSliceCache() cache.ByObject {
	req, err := labels.NewRequirement(discoveryv1.LabelServiceName, selection.Exists, nil)
	if err != nil {
		panic(err) // a constant requirement
	}
	return cache.ByObject{
		Label: labels.NewSelector().Add(*req),
		Transform: func(in any) (any, error) {
			s, ok := in.(*discoveryv1.EndpointSlice)
			if !ok {
				return in, nil
			}
			s.ManagedFields, s.Annotations, s.Ports = nil, nil, nil
			for i, e := range s.Endpoints {
				ep := discoveryv1.Endpoint{NodeName: e.NodeName, Conditions: e.Conditions, Addresses: e.Addresses}
				if e.TargetRef != nil {
					ep.TargetRef = &corev1.ObjectReference{Kind: e.TargetRef.Kind, Namespace: e.TargetRef.Namespace, Name: e.TargetRef.Name, UID: e.TargetRef.UID}
				}
				s.Endpoints[i] = ep
			}
			return s, nil
		},
	}
}
