package controller

import (
	"errors"
	"fmt"
	"slices"

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
		if oe := (*lbmodel.OverlapError)(nil); errors.As(problem, &oe) {
			c.Reason = v1alpha1.IPPoolReasonOverlap
			c.Message = fmt.Sprintf("%v; the older pool keeps them and this pool is not used until the overlap is removed", oe)
		}
	}
	c.LastTransitionTime = now // kept by SetStatusCondition unless the status changes
	meta.SetStatusCondition(&st.Conditions, c)
	return st
}
