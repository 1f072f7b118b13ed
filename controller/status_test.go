package controller

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/controller/allocator"
)

func held(pairs ...string) []allocator.Address {
	var out []allocator.Address
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, allocator.Address{Addr: netip.MustParseAddr(pairs[i]), Pool: pairs[i+1]})
	}
	return out
}

// withStatus is a Service already showing addresses and a condition.
func withStatus(ips []string, cond *metav1.Condition) *corev1.Service {
	s := lb(nil)
	s.Generation = 3
	s.Status.LoadBalancer.Ingress = Ingress(addrs(ips...))
	if cond != nil {
		s.Status.Conditions = []metav1.Condition{*cond}
	}
	return s
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestDecide(t *testing.T) {
	allocatedCond := &metav1.Condition{Type: ConditionAllocated, Status: metav1.ConditionTrue,
		Reason: ReasonAllocated, Message: "203.0.113.10 from pool lan"}
	inUse := &allocator.Error{Reason: allocator.InUse, Msg: "203.0.113.9 is held by dns/other"}
	tests := []struct {
		name       string
		svc        *corev1.Service
		out        outcome
		wantIPs    []string
		wantStatus metav1.ConditionStatus
		wantReason string
		wantMsg    string // substring
		wantEvent  string // reason, "" for none
	}{
		{
			name: "first allocation", svc: withStatus(nil, nil),
			out:     outcome{held: held("203.0.113.10", "lan")},
			wantIPs: []string{"203.0.113.10"}, wantStatus: metav1.ConditionTrue, wantReason: ReasonAllocated,
			wantMsg: "203.0.113.10 from pool lan", wantEvent: EventAllocated,
		},
		{
			name: "nothing changed: no event", svc: withStatus([]string{"203.0.113.10"}, allocatedCond),
			out:     outcome{held: held("203.0.113.10", "lan")},
			wantIPs: []string{"203.0.113.10"}, wantStatus: metav1.ConditionTrue, wantReason: ReasonAllocated,
		},
		{
			name: "dual stack", svc: withStatus(nil, nil),
			out:     outcome{held: held("203.0.113.10", "lan", "2001:db8::10", "lan6")},
			wantIPs: []string{"203.0.113.10", "2001:db8::10"}, wantStatus: metav1.ConditionTrue,
			wantReason: ReasonAllocated, wantMsg: "203.0.113.10 (pool lan), 2001:db8::10 (pool lan6)", wantEvent: EventAllocated,
		},
		{
			name: "refused, holding nothing", svc: withStatus(nil, nil),
			out:        outcome{err: inUse},
			wantStatus: metav1.ConditionFalse, wantReason: "InUse", wantMsg: "held by dns/other", wantEvent: EventFailed,
		},
		{
			name: "refused, keeping the old address", svc: withStatus([]string{"203.0.113.10"}, allocatedCond),
			out:        outcome{held: held("203.0.113.10", "lan"), err: inUse},
			wantIPs:    []string{"203.0.113.10"},
			wantStatus: metav1.ConditionFalse, wantReason: "InUse", wantMsg: "; keeping 203.0.113.10 from pool lan", wantEvent: EventFailed,
		},
		{
			name: "same refusal again: no second event",
			svc: withStatus(nil, &metav1.Condition{Type: ConditionAllocated, Status: metav1.ConditionFalse,
				Reason: "InUse", Message: "203.0.113.9 is held by dns/other"}),
			out:        outcome{err: inUse},
			wantStatus: metav1.ConditionFalse, wantReason: "InUse",
		},
		{
			name: "unparsable request", svc: withStatus(nil, nil),
			out:        outcome{err: errors.New(`spec.loadBalancerIP: "x" is not an IP address`)},
			wantStatus: metav1.ConditionFalse, wantReason: "InvalidRequest", wantMsg: "spec.loadBalancerIP", wantEvent: EventFailed,
		},
		{
			name: "pool shrank under the Service", svc: withStatus([]string{"203.0.113.10"}, allocatedCond),
			out: outcome{held: held("203.0.113.10", ""),
				orphans: map[netip.Addr]string{netip.MustParseAddr("203.0.113.10"): "it lies outside every pool"}},
			wantIPs:    []string{"203.0.113.10"},
			wantStatus: metav1.ConditionTrue, wantReason: ReasonOutsidePools,
			wantMsg: "203.0.113.10 is outside every pool (it lies outside every pool)", wantEvent: EventOutsidePools,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := decide(tc.svc, tc.out)
			var gotIPs []string
			for _, in := range d.ingress {
				gotIPs = append(gotIPs, in.IP)
				if in.IPMode == nil || *in.IPMode != corev1.LoadBalancerIPModeVIP {
					t.Errorf("ingress %s: ipMode %v, want VIP", in.IP, in.IPMode)
				}
			}
			if strings.Join(gotIPs, ",") != strings.Join(tc.wantIPs, ",") {
				t.Errorf("ingress %v, want %v", gotIPs, tc.wantIPs)
			}
			c := d.condition
			if c.Type != ConditionAllocated || c.Status != tc.wantStatus || c.Reason != tc.wantReason ||
				!strings.Contains(c.Message, tc.wantMsg) || c.ObservedGeneration != tc.svc.Generation {
				t.Errorf("condition %+v, want %s/%s containing %q", c, tc.wantStatus, tc.wantReason, tc.wantMsg)
			}
			if d.eventReason != tc.wantEvent {
				t.Errorf("event %q (%s), want %q", d.eventReason, d.note, tc.wantEvent)
			}
			if tc.wantEvent == EventFailed && d.eventType != corev1.EventTypeWarning {
				t.Errorf("event type %s, want Warning", d.eventType)
			}
		})
	}
}

func TestApplyKeepsTransitionTime(t *testing.T) {
	then := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	now := metav1.NewTime(then.Add(time.Hour))
	cond := metav1.Condition{Type: ConditionAllocated, Status: metav1.ConditionTrue, Reason: ReasonAllocated,
		Message: "203.0.113.10 from pool lan", ObservedGeneration: 3, LastTransitionTime: then}
	svc := withStatus([]string{"203.0.113.10"}, &cond)
	other := metav1.Condition{Type: "example.com/Other", Status: metav1.ConditionTrue, Reason: "X", LastTransitionTime: then}
	svc.Status.Conditions = append(svc.Status.Conditions, other)

	d := decide(svc, outcome{held: held("203.0.113.10", "lan")})
	if d.apply(svc, now) {
		t.Fatal("apply reported a change for an unchanged status")
	}
	// Same status, new message: the transition time stays.
	d = decide(svc, outcome{held: held("203.0.113.10", "lan2")})
	if !d.apply(svc, now) {
		t.Fatal("apply missed a changed message")
	}
	c := meta.FindStatusCondition(svc.Status.Conditions, ConditionAllocated)
	if !c.LastTransitionTime.Equal(&then) {
		t.Errorf("transition time %v, want %v (status did not change)", c.LastTransitionTime, then)
	}
	// Status flips: the transition time moves; other conditions are kept.
	d = decide(svc, outcome{held: held("203.0.113.10", "lan"), err: &allocator.Error{Reason: allocator.InUse, Msg: "x"}})
	d.apply(svc, now)
	c = meta.FindStatusCondition(svc.Status.Conditions, ConditionAllocated)
	if !c.LastTransitionTime.Equal(&now) || c.Status != metav1.ConditionFalse {
		t.Errorf("condition %+v, want False since %v", c, now)
	}
	if o := meta.FindStatusCondition(svc.Status.Conditions, "example.com/Other"); o == nil || !o.LastTransitionTime.Equal(&then) {
		t.Errorf("another controller's condition was disturbed: %+v", svc.Status.Conditions)
	}
}

func TestClearStatus(t *testing.T) {
	cond := metav1.Condition{Type: ConditionAllocated, Status: metav1.ConditionTrue, Reason: ReasonAllocated}
	svc := withStatus([]string{"203.0.113.10", "198.51.100.7"}, &cond)
	if !clearStatus(svc, addrs("203.0.113.10")) {
		t.Fatal("clearStatus changed nothing")
	}
	if got := strings.Join(ingressIPs(svc), ","); got != "198.51.100.7" {
		t.Errorf("ingress %q: only bgplb's address should go", got)
	}
	if meta.FindStatusCondition(svc.Status.Conditions, ConditionAllocated) != nil {
		t.Error("condition kept")
	}
	if clearStatus(svc, addrs("203.0.113.10")) {
		t.Error("second clearStatus reported a change")
	}
}
