package controller

// The speakers' address Leases, read for the Announced condition: a
// ServiceAnnouncement's L2 claim counts only when its node holds the
// address's Lease, so that the claim of a node cut off from the API
// server (which cannot take it back) never names a dead owner.

import (
	"context"
	"fmt"
	"net/netip"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

// DefaultL2LeaseNamespace is where the speakers' Leases are looked for
// when neither Options.L2LeaseNamespace nor a leader election namespace
// says: the namespace of the manifests.
const DefaultL2LeaseNamespace = "bgplb-system"

// Cache indexes: address Leases by the address they elect the owner of,
// and Services by the addresses in their status.
const (
	indexLeaseAddress   = "bgplb.io/lease-address"
	indexServiceAddress = "bgplb.io/service-address"
)

// leaseAddress is the address l elects the owner of, unmapped and without
// zone as holders are keyed; false when it names none.
func leaseAddress(l *coordinationv1.Lease) (netip.Addr, bool) {
	if l.Labels[lbmodel.L2LeaseLabel] != lbmodel.L2LeaseKindAddress {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(l.Annotations[lbmodel.L2LeaseAddressAnnotation])
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

// leaseHolder is the node holding l; "" for none.
func leaseHolder(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// holdersOf decides each address's holder from its Leases: one Lease per
// address is what the speakers write, and several (a hand-made copy)
// that disagree name nobody rather than a guess.
func holdersOf(leases []coordinationv1.Lease) map[netip.Addr]string {
	out := map[netip.Addr]string{}
	disagree := map[netip.Addr]bool{}
	for i := range leases {
		a, ok := leaseAddress(&leases[i])
		if !ok {
			continue
		}
		h := leaseHolder(&leases[i])
		if was, seen := out[a]; seen && was != h {
			disagree[a] = true
		}
		out[a] = h
	}
	for a := range disagree {
		out[a] = ""
	}
	return out
}

// newLeaseCache is a cache of the speakers' address Leases alone, in their
// namespace: the controller's Role lets it read Leases there only, and
// other Leases (node heartbeats, renewed every half second) would wake it
// for nothing.
func newLeaseCache(mgr manager.Manager, ns string) (cache.Cache, error) {
	scheme := runtime.NewScheme()
	if err := coordinationv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c, err := cache.New(mgr.GetConfig(), cache.Options{
		HTTPClient:           mgr.GetHTTPClient(),
		Scheme:               scheme,
		Mapper:               mgr.GetRESTMapper(),
		DefaultNamespaces:    map[string]cache.Config{ns: {}},
		DefaultLabelSelector: labels.SelectorFromSet(labels.Set{lbmodel.L2LeaseLabel: lbmodel.L2LeaseKindAddress}),
		DefaultTransform:     cache.TransformStripManagedFields(),
	})
	if err != nil {
		return nil, fmt.Errorf("address Lease cache: %w", err)
	}
	err = c.IndexField(context.Background(), &coordinationv1.Lease{}, indexLeaseAddress, func(o client.Object) []string {
		if a, ok := leaseAddress(o.(*coordinationv1.Lease)); ok {
			return []string{a.String()}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("indexing address Leases: %w", err)
	}
	if err := mgr.Add(c); err != nil {
		return nil, fmt.Errorf("address Lease cache: %w", err)
	}
	return c, nil
}

// holders reads the holders of the addresses anns claim in L2 mode; nil
// when they claim none (the common BGP-only case costs nothing).
func (r *Reconciler) holders(ctx context.Context, anns []nodeAnnouncement) (map[netip.Addr]string, error) {
	var out map[netip.Addr]string
	for _, a := range anns {
		for _, l := range a.L2 {
			addr := l.Addr.Unmap().WithZone("")
			if _, done := out[addr]; done || !addr.IsValid() {
				continue
			}
			var leases coordinationv1.LeaseList
			if err := r.leases.List(ctx, &leases, client.MatchingFields{indexLeaseAddress: addr.String()},
				client.UnsafeDisableDeepCopy); err != nil {
				return nil, fmt.Errorf("listing the Leases of %s: %w", addr, err)
			}
			if out == nil {
				out = map[netip.Addr]string{}
			}
			out[addr] = holdersOf(leases.Items)[addr]
		}
	}
	return out, nil
}

// leaseWatches indexes Services by address and adds to the Service
// controller b a watch of the address Leases: when one changes hands (or
// comes or goes), the Services holding its address are looked at again.
// Leases listed at start-up are skipped: every Service is reconciled then
// anyway.
func (r *Reconciler) leaseWatches(ctx context.Context, mgr manager.Manager, b *builder.Builder) (*builder.Builder, error) {
	err := mgr.GetFieldIndexer().IndexField(ctx, &corev1.Service{}, indexServiceAddress, func(o client.Object) []string {
		var out []string
		for _, in := range o.(*corev1.Service).Status.LoadBalancer.Ingress {
			if a, err := netip.ParseAddr(in.IP); err == nil {
				out = append(out, a.Unmap().WithZone("").String())
			}
		}
		return out
	})
	if err != nil {
		return nil, fmt.Errorf("indexing Services by address: %w", err)
	}
	leases, err := newLeaseCache(mgr, r.opts.L2LeaseNamespace)
	if err != nil {
		return nil, err
	}
	r.leases = leases
	changed := predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return !e.IsInInitialList },
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld.(*coordinationv1.Lease), e.ObjectNew.(*coordinationv1.Lease)
			oa, _ := leaseAddress(o)
			na, _ := leaseAddress(n)
			return leaseHolder(o) != leaseHolder(n) || oa != na
		},
	}
	return b.WatchesRawSource(source.Kind[client.Object](leases, &coordinationv1.Lease{},
		handler.EnqueueRequestsFromMapFunc(r.servicesOfLease), changed)), nil
}

// servicesOfLease maps an address Lease to the Services holding its
// address.
func (r *Reconciler) servicesOfLease(ctx context.Context, o client.Object) []reconcile.Request {
	l, ok := o.(*coordinationv1.Lease)
	if !ok {
		return nil
	}
	addr, ok := leaseAddress(l)
	if !ok {
		return nil
	}
	var svcs corev1.ServiceList
	if err := r.c.List(ctx, &svcs, client.MatchingFields{indexServiceAddress: addr.String()}, client.UnsafeDisableDeepCopy); err != nil {
		r.log.Error("listing Services by address", "address", addr, "err", err)
		return nil
	}
	out := make([]reconcile.Request, 0, len(svcs.Items))
	for _, s := range svcs.Items {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: s.Namespace, Name: s.Name}})
	}
	return out
}
