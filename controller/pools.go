package controller

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controller/allocator"
	"github.com/bgplb/bgplb/internal/lbmodel"
)

// poolStatus is the status a pool should show: its counts from the
// allocator's stats, and Ready with the reason it was refused, if it was.
// The previous conditions are kept where unchanged so that their transition
// times stay true.
func poolStatus(name string, generation int64, stats []allocator.Stats, problem error, prev []metav1.Condition, now metav1.Time) v1alpha1.LoadBalancerPoolStatus {
	st := v1alpha1.LoadBalancerPoolStatus{Conditions: slices.Clone(prev)}
	for _, s := range stats {
		if s.Pool != name {
			continue
		}
		switch s.Family {
		case allocator.IPv4:
			st.AssignedIPv4, st.AvailableIPv4 = v1alpha1.ClampCount(s.Assigned), v1alpha1.ClampCount(s.Available)
		case allocator.IPv6:
			st.AssignedIPv6, st.AvailableIPv6 = v1alpha1.ClampCount(s.Assigned), v1alpha1.ClampCount(s.Available)
		}
	}
	c := metav1.Condition{
		Type:               v1alpha1.LoadBalancerPoolConditionReady,
		Status:             metav1.ConditionTrue,
		Reason:             v1alpha1.LoadBalancerPoolReasonAccepted,
		Message:            "the pool is in use",
		ObservedGeneration: generation,
	}
	if problem != nil {
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, v1alpha1.LoadBalancerPoolReasonInvalid, problem.Error()
		if oe := (*lbmodel.OverlapError)(nil); errors.As(problem, &oe) {
			c.Reason = v1alpha1.LoadBalancerPoolReasonOverlap
			c.Message = fmt.Sprintf("%v; the older pool keeps them and this pool is not used until the overlap is removed", oe)
		}
	}
	c.LastTransitionTime = now // kept by SetStatusCondition unless the status changes
	meta.SetStatusCondition(&st.Conditions, c)
	return st
}

// heldDownStatus is what a pool's status.heldDown should list: the
// hold-downs of its addresses, each ending rounded up to the second (the
// API keeps seconds; rounding down would free an address early after a
// restart). Beyond v1alpha1.MaxHeldDownPerPool the ones ending first are
// left out: they are the nearest to coming free anyway. Ordered by
// address.
func heldDownStatus(pool string, held []allocator.Held) []v1alpha1.HeldAddress {
	var mine []allocator.Held
	for _, h := range held {
		if h.Pool == pool {
			mine = append(mine, h)
		}
	}
	if len(mine) > v1alpha1.MaxHeldDownPerPool {
		slices.SortStableFunc(mine, func(a, b allocator.Held) int { return b.Until.Compare(a.Until) })
		mine = mine[:v1alpha1.MaxHeldDownPerPool]
	}
	slices.SortFunc(mine, func(a, b allocator.Held) int { return a.Addr.Compare(b.Addr) })
	var out []v1alpha1.HeldAddress
	for _, h := range mine {
		until := h.Until.Truncate(time.Second)
		if until.Before(h.Until) {
			until = until.Add(time.Second)
		}
		out = append(out, v1alpha1.HeldAddress{Address: h.Addr.String(), Service: h.Service.String(), Until: metav1.NewTime(until.UTC())})
	}
	return out
}

// persistedHoldDown is one entry of a pool's status.heldDown, parsed.
type persistedHoldDown struct {
	addr    netip.Addr
	service lbmodel.Key
	until   time.Time
}

// persistedHoldDowns reads the hold-downs the pools' status lists; entries
// that do not parse are skipped (they were not written by bgplb).
func persistedHoldDowns(pools []v1alpha1.LoadBalancerPool) []persistedHoldDown {
	var out []persistedHoldDown
	for _, p := range pools {
		for _, h := range p.Status.HeldDown {
			a, err := netip.ParseAddr(h.Address)
			if err != nil {
				continue
			}
			ns, name, _ := strings.Cut(h.Service, "/")
			out = append(out, persistedHoldDown{addr: a.Unmap(), service: lbmodel.Key{Namespace: ns, Name: name}, until: h.Until.Time})
		}
	}
	return out
}
