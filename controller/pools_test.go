package controller

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controller/allocator"
	"github.com/bgplb/bgplb/internal/lbmodel"
)

func TestPoolStatus(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	stats := []allocator.Stats{
		{Pool: "lan", Family: allocator.IPv4, Size: 16, Assigned: 3, HoldDown: 1, Available: 12},
		{Pool: "lan", Family: allocator.IPv6, Size: math.MaxUint64, Assigned: 2, Available: math.MaxUint64},
		{Pool: "other", Family: allocator.IPv4, Size: 4, Assigned: 4},
	}
	st := poolStatus("lan", 7, stats, nil, nil, now)
	if st.AssignedIPv4 != 3 || st.AvailableIPv4 != 12 || st.AssignedIPv6 != 2 || st.AvailableIPv6 != math.MaxInt64 {
		t.Errorf("counts %+v", st)
	}
	c := meta.FindStatusCondition(st.Conditions, v1alpha1.IPPoolConditionReady)
	if c == nil || c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.IPPoolReasonAccepted || c.ObservedGeneration != 7 {
		t.Errorf("ready condition %+v", c)
	}

	overlap := &lbmodel.OverlapError{Pool: "lan"}
	later := metav1.NewTime(now.Add(time.Minute))
	st = poolStatus("lan2", 8, stats, overlap, st.Conditions, later)
	c = meta.FindStatusCondition(st.Conditions, v1alpha1.IPPoolConditionReady)
	if c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.IPPoolReasonOverlap || !strings.Contains(c.Message, "pool lan") ||
		!c.LastTransitionTime.Equal(&later) {
		t.Errorf("overlap condition %+v", c)
	}
	st = poolStatus("lan2", 8, stats, errInvalid, st.Conditions, later)
	if c = meta.FindStatusCondition(st.Conditions, v1alpha1.IPPoolConditionReady); c.Reason != v1alpha1.IPPoolReasonInvalid {
		t.Errorf("invalid condition %+v", c)
	}
}

var errInvalid = errors.New("spec.addresses[0]: nonsense")
