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
)

func ippool(name string, created int, addrs ...string) v1alpha1.IPPool {
	return v1alpha1.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: name,
			CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, created, 0, time.UTC))},
		Spec: v1alpha1.IPPoolSpec{Addresses: addrs},
	}
}

func TestPoolsFrom(t *testing.T) {
	no := false
	older := ippool("zz-old", 1, "203.0.113.0/28")
	newer := ippool("aa-new", 2, "203.0.113.8-203.0.113.20")
	manual := ippool("manual", 3, "198.51.100.7", "2001:db8::/126")
	manual.Spec.AutoAssign = &no
	manual.Spec.AvoidBuggyIPs = true
	manual.Spec.ServiceAllocation = &v1alpha1.ServiceAllocation{
		Priority:   2,
		Namespaces: []string{"dns"},
		ServiceSelectors: []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"pihole"}}}}},
	}
	broken := ippool("broken", 4, "203.0.113.1/24")
	badSel := ippool("badsel", 5, "198.51.100.64/28")
	badSel.Spec.ServiceAllocation = &v1alpha1.ServiceAllocation{NamespaceSelectors: []metav1.LabelSelector{
		{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: "Near"}}}}}

	pools, problems := poolsFrom([]v1alpha1.IPPool{newer, broken, manual, badSel, older})
	var names []string
	for _, p := range pools {
		names = append(names, p.Name)
	}
	// Oldest first, whatever the list order: the allocator keeps the
	// earlier of two overlapping pools.
	if got := strings.Join(names, ","); got != "zz-old,aa-new,manual" {
		t.Fatalf("pools %s, want zz-old,aa-new,manual", got)
	}
	if len(problems) != 2 || problems[0].Pool != "broken" || !strings.Contains(problems[0].Err.Error(), "spec.addresses[0]") ||
		problems[1].Pool != "badsel" || !strings.Contains(problems[1].Err.Error(), "spec.serviceAllocation.namespaceSelectors[0]") {
		t.Fatalf("problems %v", problems)
	}
	m := pools[2]
	if m.AutoAssign || !m.AvoidBuggyIPs || len(m.Ranges) != 2 || m.Allocation == nil || m.Allocation.Priority != 2 ||
		m.Allocation.ServiceSelectors[0].MatchExpressions[0].Operator != allocator.OpIn {
		t.Errorf("manual pool converted to %+v", m)
	}
	if !pools[0].AutoAssign {
		t.Error("autoAssign unset must default to true")
	}
	_, refused := allocator.CheckPools(pools)
	if len(refused) != 1 || refused[0].Pool != "aa-new" {
		t.Errorf("the newer overlapping pool should be refused, got %v", refused)
	}
}

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

	overlap := &allocator.OverlapError{Range: allocator.Range{}, Pool: "lan"}
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
