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
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
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
	// unresolved names the objects it refers to that do not exist.
	unresolved []string
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
	changed = setFalseWhile(&out, v1alpha1.ConfigConditionSupported, v1alpha1.ConfigReasonNotSupportedYet, v.unsupported, v.generation, now) || changed
	changed = setFalseWhile(&out, v1alpha1.ConfigConditionResolvedRefs, v1alpha1.ConfigReasonRefNotFound, v.unresolved, v.generation, now) || changed
	return out, changed
}

// setFalseWhile sets a condition False with the sentences as its message,
// or removes it when there are none: these conditions speak only of a
// problem.
func setFalseWhile(conds *[]metav1.Condition, typ, reason string, sentences []string, gen int64, now metav1.Time) bool {
	if len(sentences) == 0 {
		return meta.RemoveStatusCondition(conds, typ)
	}
	return meta.SetStatusCondition(conds, metav1.Condition{Type: typ, Status: metav1.ConditionFalse, Reason: reason,
		Message: joinSentences(sentences), ObservedGeneration: gen, LastTransitionTime: now})
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
	// the whole list to forget deleted objects); c reads the objects they
	// refer to.
	resolve func(ctx context.Context, c client.Client, items []T) ([]configVerdict, error)
	status  func(P) *v1alpha1.ConfigStatus
}

// reconcile writes one object's conditions.
func (k configKind[T, P, L]) reconcile(ctx context.Context, c client.Client, req reconcile.Request) (reconcile.Result, error) {
	list := k.newList()
	if err := c.List(ctx, list); err != nil {
		return reconcile.Result{}, err
	}
	items := k.items(list)
	verdicts, err := k.resolve(ctx, c, items)
	if err != nil {
		return reconcile.Result{}, err
	}
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
	add := func(name string, obj client.Object, rec reconcile.Func, also func(*builder.Builder) *builder.Builder) error {
		b := builder.ControllerManagedBy(mgr).Named(name).
			For(obj, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
			WithOptions(ctrlcontroller.Options{SkipNameValidation: &skip})
		if also != nil {
			b = also(b)
		}
		return b.Complete(rec)
	}
	peers := configKind[v1alpha1.BGPRouter, *v1alpha1.BGPRouter, *v1alpha1.BGPRouterList]{
		newList: func() *v1alpha1.BGPRouterList { return &v1alpha1.BGPRouterList{} },
		items:   func(l *v1alpha1.BGPRouterList) []v1alpha1.BGPRouter { return l.Items },
		resolve: func(ctx context.Context, c client.Client, items []v1alpha1.BGPRouter) ([]configVerdict, error) {
			var bfds v1alpha1.BFDPolicyList
			if err := c.List(ctx, &bfds); err != nil {
				return nil, err
			}
			bfdExists := func(name string) bool {
				return slices.ContainsFunc(bfds.Items, func(b v1alpha1.BFDPolicy) bool { return b.Name == name })
			}
			out := verdicts(lbmodel.ResolveAll(&r.peers, items, lbmodel.PeerFrom), generations(items),
				func(i int) []string { return lbmodel.PeerUnsupported(&items[i].Spec) })
			for i := range out {
				out[i].unresolved = lbmodel.PeerUnresolved(&items[i].Spec, bfdExists)
			}
			return out, nil
		},
		status: func(p *v1alpha1.BGPRouter) *v1alpha1.ConfigStatus { return &p.Status },
	}
	ads := configKind[v1alpha1.BGPAnnouncementPolicy, *v1alpha1.BGPAnnouncementPolicy, *v1alpha1.BGPAnnouncementPolicyList]{
		newList: func() *v1alpha1.BGPAnnouncementPolicyList { return &v1alpha1.BGPAnnouncementPolicyList{} },
		items:   func(l *v1alpha1.BGPAnnouncementPolicyList) []v1alpha1.BGPAnnouncementPolicy { return l.Items },
		resolve: func(_ context.Context, _ client.Client, items []v1alpha1.BGPAnnouncementPolicy) ([]configVerdict, error) {
			return verdicts(lbmodel.ResolveAll(&r.ads, items, lbmodel.AdvertisementFrom), generations(items), none), nil
		},
		status: func(a *v1alpha1.BGPAnnouncementPolicy) *v1alpha1.ConfigStatus { return &a.Status },
	}
	l2 := configKind[v1alpha1.L2AnnouncementPolicy, *v1alpha1.L2AnnouncementPolicy, *v1alpha1.L2AnnouncementPolicyList]{
		newList: func() *v1alpha1.L2AnnouncementPolicyList { return &v1alpha1.L2AnnouncementPolicyList{} },
		items:   func(l *v1alpha1.L2AnnouncementPolicyList) []v1alpha1.L2AnnouncementPolicy { return l.Items },
		resolve: func(_ context.Context, _ client.Client, items []v1alpha1.L2AnnouncementPolicy) ([]configVerdict, error) {
			return verdicts(lbmodel.ResolveAll(&r.l2s, items, lbmodel.L2AdvertisementFrom), generations(items), none), nil
		},
		status: func(a *v1alpha1.L2AnnouncementPolicy) *v1alpha1.ConfigStatus { return &a.Status },
	}
	bfd := configKind[v1alpha1.BFDPolicy, *v1alpha1.BFDPolicy, *v1alpha1.BFDPolicyList]{
		newList: func() *v1alpha1.BFDPolicyList { return &v1alpha1.BFDPolicyList{} },
		items:   func(l *v1alpha1.BFDPolicyList) []v1alpha1.BFDPolicy { return l.Items },
		resolve: func(_ context.Context, _ client.Client, items []v1alpha1.BFDPolicy) ([]configVerdict, error) {
			out := make([]configVerdict, len(items))
			for i := range items {
				_, unsupported := lbmodel.BFDConfig(&items[i].Spec)
				out[i] = configVerdict{generation: items[i].Generation, unsupported: unsupported}
			}
			return out, nil
		},
		status: func(b *v1alpha1.BFDPolicy) *v1alpha1.ConfigStatus { return &b.Status },
	}
	for _, c := range []struct {
		name string
		obj  client.Object
		rec  reconcile.Func
		also func(*builder.Builder) *builder.Builder
	}{
		{"bgprouter-status", &v1alpha1.BGPRouter{}, func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
			return peers.reconcile(ctx, r.c, req)
		}, r.watchBFDPolicies},
		{"bgpannouncementpolicy-status", &v1alpha1.BGPAnnouncementPolicy{}, func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
			return ads.reconcile(ctx, r.c, req)
		}, nil},
		{"l2announcementpolicy-status", &v1alpha1.L2AnnouncementPolicy{}, func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
			return l2.reconcile(ctx, r.c, req)
		}, nil},
		{"bfdpolicy-status", &v1alpha1.BFDPolicy{}, func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
			return bfd.reconcile(ctx, r.c, req)
		}, nil},
	} {
		if err := add(c.name, c.obj, c.rec, c.also); err != nil {
			return fmt.Errorf("%s controller: %w", c.name, err)
		}
	}
	return nil
}

// watchBFDPolicies wakes the BGPRouters naming a BFDPolicy when it comes
// or goes: whether their reference resolves changes then, not their
// generation.
func (r *Reconciler) watchBFDPolicies(b *builder.Builder) *builder.Builder {
	comeOrGo := predicate.Funcs{UpdateFunc: func(event.UpdateEvent) bool { return false }}
	return b.Watches(&v1alpha1.BFDPolicy{}, handler.EnqueueRequestsFromMapFunc(r.routersNaming), builder.WithPredicates(comeOrGo))
}

// routersNaming maps a BFDPolicy to the BGPRouters whose bfdPolicy names it.
func (r *Reconciler) routersNaming(ctx context.Context, o client.Object) []reconcile.Request {
	var routers v1alpha1.BGPRouterList
	if err := r.c.List(ctx, &routers); err != nil {
		r.log.Error("listing BGPRouters", "err", err)
		return nil
	}
	var out []reconcile.Request
	for _, p := range routers.Items {
		if p.Spec.BFDPolicy == o.GetName() {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: p.Name}})
		}
	}
	return out
}
