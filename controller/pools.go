package controller

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controller/allocator"
)

// poolsFrom converts IPPools for the allocator, oldest first so that a new
// pool overlapping an old one is the one refused (CheckPools keeps the
// earlier). A pool that does not even parse (the CRD's rules were bypassed)
// is returned as a problem rather than passed on.
func poolsFrom(items []v1alpha1.IPPool) ([]allocator.Pool, []allocator.PoolProblem) {
	items = slices.Clone(items)
	slices.SortFunc(items, func(a, b v1alpha1.IPPool) int {
		return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time), cmp.Compare(a.Name, b.Name))
	})
	var pools []allocator.Pool
	var problems []allocator.PoolProblem
	for i := range items {
		p, err := poolFrom(&items[i])
		if err != nil {
			problems = append(problems, allocator.PoolProblem{Pool: items[i].Name, Err: err})
			continue
		}
		pools = append(pools, p)
	}
	return pools, problems
}

func poolFrom(ip *v1alpha1.IPPool) (allocator.Pool, error) {
	rs, err := ip.Ranges()
	if err != nil {
		return allocator.Pool{}, err
	}
	p := allocator.Pool{
		Name:          ip.Name,
		AutoAssign:    ip.Spec.AutoAssignEnabled(),
		AvoidBuggyIPs: ip.Spec.AvoidBuggyIPs,
	}
	for _, r := range rs {
		p.Ranges = append(p.Ranges, allocator.Range{First: r.First, Last: r.Last})
	}
	if sa := ip.Spec.ServiceAllocation; sa != nil {
		p.Allocation = &allocator.ServiceAllocation{
			Priority:   int(sa.Priority),
			Namespaces: sa.Namespaces,
		}
		for i, s := range sa.NamespaceSelectors {
			sel, err := selectorFrom(s)
			if err != nil {
				return allocator.Pool{}, fmt.Errorf("spec.serviceAllocation.namespaceSelectors[%d]: %w", i, err)
			}
			p.Allocation.NamespaceSelectors = append(p.Allocation.NamespaceSelectors, sel)
		}
		for i, s := range sa.ServiceSelectors {
			sel, err := selectorFrom(s)
			if err != nil {
				return allocator.Pool{}, fmt.Errorf("spec.serviceAllocation.serviceSelectors[%d]: %w", i, err)
			}
			p.Allocation.ServiceSelectors = append(p.Allocation.ServiceSelectors, sel)
		}
	}
	return p, nil
}

func selectorFrom(s metav1.LabelSelector) (allocator.Selector, error) {
	out := allocator.Selector{MatchLabels: s.MatchLabels}
	for _, e := range s.MatchExpressions {
		out.MatchExpressions = append(out.MatchExpressions, allocator.Requirement{
			Key: e.Key, Operator: allocator.Operator(e.Operator), Values: e.Values,
		})
	}
	return out, out.Validate()
}

// poolStatus is the status a pool should show: its counts from the
// allocator's stats, and Ready with the reason it was refused, if it was.
// The previous conditions are kept where unchanged so that their transition
// times stay true.
func poolStatus(name string, generation int64, stats []allocator.Stats, problem error, prev []metav1.Condition, now metav1.Time) v1alpha1.IPPoolStatus {
	st := v1alpha1.IPPoolStatus{Conditions: slices.Clone(prev)}
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
		Type:               v1alpha1.IPPoolConditionReady,
		Status:             metav1.ConditionTrue,
		Reason:             v1alpha1.IPPoolReasonAccepted,
		Message:            "the pool is in use",
		ObservedGeneration: generation,
	}
	if problem != nil {
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, v1alpha1.IPPoolReasonInvalid, problem.Error()
		if oe := (*allocator.OverlapError)(nil); errors.As(problem, &oe) {
			c.Reason = v1alpha1.IPPoolReasonOverlap
			c.Message = fmt.Sprintf("%v; the older pool keeps them and this pool is not used until the overlap is removed", oe)
		}
	}
	c.LastTransitionTime = now // kept by SetStatusCondition unless the status changes
	meta.SetStatusCondition(&st.Conditions, c)
	return st
}
