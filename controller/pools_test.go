package controller

import (
	"errors"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
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
	c := meta.FindStatusCondition(st.Conditions, v1alpha1.LoadBalancerPoolConditionReady)
	if c == nil || c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.LoadBalancerPoolReasonAccepted || c.ObservedGeneration != 7 {
		t.Errorf("ready condition %+v", c)
	}

	overlap := &lbmodel.OverlapError{Pool: "lan"}
	later := metav1.NewTime(now.Add(time.Minute))
	st = poolStatus("lan2", 8, stats, overlap, st.Conditions, later)
	c = meta.FindStatusCondition(st.Conditions, v1alpha1.LoadBalancerPoolConditionReady)
	if c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.LoadBalancerPoolReasonOverlap || !strings.Contains(c.Message, "pool lan") ||
		!c.LastTransitionTime.Equal(&later) {
		t.Errorf("overlap condition %+v", c)
	}
	st = poolStatus("lan2", 8, stats, errInvalid, st.Conditions, later)
	if c = meta.FindStatusCondition(st.Conditions, v1alpha1.LoadBalancerPoolConditionReady); c.Reason != v1alpha1.LoadBalancerPoolReasonInvalid {
		t.Errorf("invalid condition %+v", c)
	}
}

var errInvalid = errors.New("spec.addresses[0]: nonsense")

func TestHeldDownStatus(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	key := lbmodel.Key{Namespace: "dns", Name: "pihole"}
	held := []allocator.Held{
		{Addr: netip.MustParseAddr("203.0.113.11"), Pool: "lan", Service: key, Until: t0.Add(1500 * time.Millisecond)},
		{Addr: netip.MustParseAddr("203.0.113.10"), Pool: "lan", Service: key, Until: t0.Add(3 * time.Second)},
		{Addr: netip.MustParseAddr("198.51.100.1"), Pool: "other", Service: key, Until: t0},
	}
	got := heldDownStatus("lan", held)
	want := []v1alpha1.HeldAddress{
		{Address: "203.0.113.10", Service: "dns/pihole", Until: metav1.NewTime(t0.Add(3 * time.Second))},
		// Rounded up: a restart must not free it early.
		{Address: "203.0.113.11", Service: "dns/pihole", Until: metav1.NewTime(t0.Add(2 * time.Second))},
	}
	if !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("heldDownStatus %+v, want %+v", got, want)
	}
	// Read back, as a restarted controller does.
	back := persistedHoldDowns([]v1alpha1.LoadBalancerPool{{Status: v1alpha1.LoadBalancerPoolStatus{HeldDown: append(got,
		v1alpha1.HeldAddress{Address: "not an address", Until: metav1.NewTime(t0)})}}})
	if len(back) != 2 || back[1].addr != netip.MustParseAddr("203.0.113.11") || back[1].service != key ||
		!back[1].until.Equal(t0.Add(2*time.Second)) {
		t.Errorf("persistedHoldDowns %+v", back)
	}
	if heldDownStatus("none", held) != nil {
		t.Error("a pool without hold-downs lists some")
	}

	// Bounded: the ones ending last are kept, in address order.
	var many []allocator.Held
	base := netip.MustParseAddr("2001:db8::")
	for i := range v1alpha1.MaxHeldDownPerPool + 10 {
		many = append(many, allocator.Held{Addr: base, Pool: "v6", Service: key, Until: t0.Add(time.Duration(i) * time.Second)})
		base = base.Next()
	}
	got = heldDownStatus("v6", many)
	if len(got) != v1alpha1.MaxHeldDownPerPool || got[0].Address != "2001:db8::a" || !got[0].Until.Time.Equal(t0.Add(10*time.Second)) {
		t.Errorf("bounded list: %d entries, first %+v", len(got), got[0])
	}
}
