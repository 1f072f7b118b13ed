package controller

// The verdict on the configuration objects (BGPRouter, BGPAnnouncementPolicy,
// L2AnnouncementPolicy, BFDPolicy), written on their status by the leader
// controller alone: whether the current version is accepted or which
// version stays in force instead (lbmodel.LastGood, the speakers' policy),
// and what they ask for that bgplb does not do yet.

import (
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/lbmodel"
)

// configVerdict is what the controller decided about one object.
type configVerdict struct {
	generation int64
	// err is why the current generation is not used; then inForce is the
	// generation used instead (0: none).
	err         error
	inForce     int64
	unsupported []string
}

// configConditions is the pure heart: the conditions an object should
// show, from its verdict and the conditions it shows now, and whether they
// differ. Transition times are kept unless a status changes.
func configConditions(prev []metav1.Condition, v configVerdict, now metav1.Time) ([]metav1.Condition, bool) {
	out := slices.Clone(prev)
	acc := metav1.Condition{Type: v1alpha1.ConfigConditionAccepted, Status: metav1.ConditionTrue,
		Reason: v1alpha1.ConfigReasonValid, Message: "in force", ObservedGeneration: v.generation, LastTransitionTime: now}
	if v.err != nil {
		acc.Status, acc.Reason = metav1.ConditionFalse, v1alpha1.ConfigReasonInvalid
		if v.inForce > 0 {
			acc.Message = fmt.Sprintf("%v; generation %d, the last valid one, stays in force on every node", v.err, v.inForce)
		} else {
			acc.Message = fmt.Sprintf("%v; no valid version of it is in force (a speaker that saw one before it "+
				"restarted keeps it until it restarts)", v.err)
		}
	}
	changed := meta.SetStatusCondition(&out, acc)
	if len(v.unsupported) == 0 {
		return out, meta.RemoveStatusCondition(&out, v1alpha1.ConfigConditionSupported) || changed
	}
	sup := metav1.Condition{Type: v1alpha1.ConfigConditionSupported, Status: metav1.ConditionFalse,
		Reason: v1alpha1.ConfigReasonNotSupportedYet, Message: joinSentences(v.unsupported),
		ObservedGeneration: v.generation, LastTransitionTime: now}
	return out, meta.SetStatusCondition(&out, sup) || changed
}

func joinSentences(ss []string) string {
	out := ss[0]
	for _, s := range ss[1:] {
		out += "; " + s
	}
	return out
}

// configKind is one kind of configuration object, for reconcileConfig.
type configKind[T any, P interface {
	*T
	client.Object
}, L client.ObjectList] struct {
	newList func() L
	items   func(L) []T
	// resolve decides every object of the list at once (LastGood needs
	// the whole list to forget deleted objects).
	resolve func([]T) []configVerdict
	status  func(P) *v1alpha1.ConfigStatus
}

// reconcile writes one object's conditions.
func (k configKind[T, P, L]) reconcile(ctx context.Context, c client.Client, req reconcile.Request) (reconcile.Result, error) {
	list := k.newList()
	if err := c.List(ctx, list); err != nil {
		return reconcile.Result{}, err
	}
	items := k.items(list)
	verdicts := k.resolve(items)
	for i := range items {
		obj := P(&items[i])
		if obj.GetName() != req.Name {
			continue
		}
		st := k.status(obj)
		conds, changed := configConditions(st.Conditions, verdicts[i], metav1.Now())
		if !changed {
			return reconcile.Result{}, nil
		}
		st.Conditions = conds
		if err := c.Status().Update(ctx, obj); err != nil {
			if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
				return reconcile.Result{Requeue: true}, nil
			}
			return reconcile.Result{}, fmt.Errorf("writing the status of %s: %w", obj.GetName(), err)
		}
	}
	return reconcile.Result{}, nil
}

// verdicts turns LastGood's decisions into verdicts.
func verdicts[T any](res []lbmodel.Resolved[T], gens []int64, unsupported func(i int) []string) []configVerdict {
	out := make([]configVerdict, len(res))
	for i, r := range res {
		out[i] = configVerdict{generation: gens[i], err: r.Err, unsupported: unsupported(i)}
		if r.Err != nil && r.OK {
			out[i].inForce = r.Generation
		}
	}
	return out
}

func generations[T any, P interface {
	*T
	client.Object
}](items []T) []int64 {
	out := make([]int64, len(items))
	for i := range items {
		out[i] = P(&items[i]).GetGeneration()
	}
	return out
}

func none(int) []string { return nil }

// setupConfigStatus adds one small controller per kind. Status writes do
// not change the generation, so the controller does not wake itself.
func (r *Reconciler) setupConfigStatus(mgr manager.Manager) error {
	skip := true
	add := func(name string, obj client.Object, rec reconcile.Func) error {
		return builder.ControllerManagedBy(mgr).Named(name).
			For(obj, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
			WithOptions(ctrlcontroller.Options{SkipNameValidation: &skip}).
			Complete(rec)
	}
	peers := configKind[v1alpha1.BGPRouter, *v1alpha1.BGPRouter, *v1alpha1.BGPRouterList]{
		newList: func() *v1alpha1.BGPRouterList { return &v1alpha1.BGPRouterList{} },
		items:   func(l *v1alpha1.BGPRouterList) []v1alpha1.BGPRouter { return l.Items },
		resolve: func(items []v1alpha1.BGPRouter) []configVerdict {
			return verdicts(lbmodel.ResolveAll(&r.peers, items, lbmodel.PeerFrom), generations(items),
				func(i int) []string { return lbmodel.PeerUnsupported(&items[i].Spec) })
		},
		status: func(p *v1alpha1.BGPRouter) *v1alpha1.ConfigStatus { return &p.Status },
	}
	ads := configKind[v1alpha1.BGPAnnouncementPolicy, *v1alpha1.BGPAnnouncementPolicy, *v1alpha1.BGPAnnouncementPolicyList]{
		newList: func() *v1alpha1.BGPAnnouncementPolicyList { return &v1alpha1.BGPAnnouncementPolicyList{} },
		items:   func(l *v1alpha1.BGPAnnouncementPolicyList) []v1alpha1.BGPAnnouncementPolicy { return l.Items },
		resolve: func(items []v1alpha1.BGPAnnouncementPolicy) []configVerdict {
			return verdicts(lbmodel.ResolveAll(&r.ads, items, lbmodel.AdvertisementFrom), generations(items), none)
		},
		status: func(a *v1alpha1.BGPAnnouncementPolicy) *v1alpha1.ConfigStatus { return &a.Status },
	}
	l2 := configKind[v1alpha1.L2AnnouncementPolicy, *v1alpha1.L2AnnouncementPolicy, *v1alpha1.L2AnnouncementPolicyList]{
		newList: func() *v1alpha1.L2AnnouncementPolicyList { return &v1alpha1.L2AnnouncementPolicyList{} },
		items:   func(l *v1alpha1.L2AnnouncementPolicyList) []v1alpha1.L2AnnouncementPolicy { return l.Items },
		resolve: func(items []v1alpha1.L2AnnouncementPolicy) []configVerdict {
			check := func(a *v1alpha1.L2AnnouncementPolicy) (struct{}, error) {
				return struct{}{}, lbmodel.CheckL2AnnouncementPolicy(a)
			}
			return verdicts(lbmodel.ResolveAll(&r.l2s, items, check), generations(items),
				func(int) []string { return []string{lbmodel.L2Unsupported} })
		},
		status: func(a *v1alpha1.L2AnnouncementPolicy) *v1alpha1.ConfigStatus { return &a.Status },
	}
	bfd := configKind[v1alpha1.BFDPolicy, *v1alpha1.BFDPolicy, *v1alpha1.BFDPolicyList]{
		newList: func() *v1alpha1.BFDPolicyList { return &v1alpha1.BFDPolicyList{} },
		items:   func(l *v1alpha1.BFDPolicyList) []v1alpha1.BFDPolicy { return l.Items },
		resolve: func(items []v1alpha1.BFDPolicy) []configVerdict {
			out := make([]configVerdict, len(items))
			for i := range items {
				out[i] = configVerdict{generation: items[i].Generation, unsupported: []string{lbmodel.BFDUnsupported}}
			}
			return out
		},
		status: func(b *v1alpha1.BFDPolicy) *v1alpha1.ConfigStatus { return &b.Status },
	}
	for _, c := range []struct {
		name string
		obj  client.Object
		rec  reconcile.Func
	}{
		{"bgprouter-status", &v1alpha1.BGPRouter{}, func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
			return peers.reconcile(ctx, r.c, req)
		}},
		{"bgpannouncementpolicy-status", &v1alpha1.BGPAnnouncementPolicy{}, func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
			return ads.reconcile(ctx, r.c, req)
		}},
		{"l2announcementpolicy-status", &v1alpha1.L2AnnouncementPolicy{}, func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
			return l2.reconcile(ctx, r.c, req)
		}},
		{"bfdpolicy-status", &v1alpha1.BFDPolicy{}, func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
			return bfd.reconcile(ctx, r.c, req)
		}},
	} {
		if err := add(c.name, c.obj, c.rec); err != nil {
			return fmt.Errorf("%s controller: %w", c.name, err)
		}
	}
	return nil
}
