package controller

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/controller/allocator"
)

// ConditionAllocated is the Service condition bgplb owns: True when the
// Service holds the addresses it asked for, False with the allocator's
// reason when it does not.
const ConditionAllocated = "bgplb.io/IPAllocated"

// Reasons of ConditionAllocated besides the allocator's failure reasons
// (allocator.Reason's names).
const (
	ReasonAllocated = "Allocated"
	// ReasonOutsidePools: the Service keeps an address that no pool covers
	// any more (the pool shrank or went away); it is not moved silently.
	ReasonOutsidePools = "OutsidePools"
)

// Event reasons on Services.
const (
	EventAllocated       = "IPAllocated"
	EventFailed          = "AllocationFailed"
	EventReleased        = "IPReleased"
	EventOutsidePools    = "AddressOutsidePools"
	EventRestoreConflict = "AddressConflict"
)

// outcome is what one reconcile decided for a handled Service: the
// addresses it holds now (possibly none) and, when the request was not met,
// why.
type outcome struct {
	held []allocator.Address
	err  error
	// why says, per orphaned address, why no pool covers it.
	orphans map[netip.Addr]string
}

// desired is the status bgplb wants a Service to show, and the event the
// change deserves, if any.
type desired struct {
	ingress   []corev1.LoadBalancerIngress
	condition metav1.Condition
	// eventType and eventReason are empty when nothing worth an event
	// changed; note is the event's message.
	eventType, eventReason, note string
}

// decide is the pure heart of the Service reconciler: from what the
// Service shows and the allocation outcome, the status to write and the
// event to record.
func decide(svc *corev1.Service, out outcome) desired {
	d := desired{ingress: Ingress(addrsOf(out.held))}
	c := metav1.Condition{Type: ConditionAllocated, ObservedGeneration: svc.Generation}
	switch {
	case out.err != nil:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, reasonOf(out.err), errMessage(out.err)
		if len(out.held) > 0 {
			c.Message += "; keeping " + describe(out.held)
		}
	case len(out.orphans) > 0:
		c.Status, c.Reason = metav1.ConditionTrue, ReasonOutsidePools
		var parts []string
		for _, a := range out.held {
			if why, ok := out.orphans[a.Addr]; ok {
				parts = append(parts, fmt.Sprintf("%s is outside every pool (%s)", a.Addr, why))
			}
		}
		c.Message = strings.Join(parts, "; ") + "; it stays assigned until the Service gives it up or a pool covers it again"
	default:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, ReasonAllocated, describe(out.held)
	}
	d.condition = c

	prev := meta.FindStatusCondition(svc.Status.Conditions, ConditionAllocated)
	sameCond := prev != nil && prev.Status == c.Status && prev.Reason == c.Reason && prev.Message == c.Message
	switch {
	case c.Status == metav1.ConditionFalse && !sameCond:
		d.eventType, d.eventReason, d.note = corev1.EventTypeWarning, EventFailed, c.Message
	case c.Reason == ReasonOutsidePools && !sameCond:
		d.eventType, d.eventReason, d.note = corev1.EventTypeWarning, EventOutsidePools, c.Message
	case !sameIngress(svc.Status.LoadBalancer.Ingress, d.ingress) && len(d.ingress) > 0:
		d.eventType, d.eventReason, d.note = corev1.EventTypeNormal, EventAllocated, "Assigned "+describe(out.held)
	}
	return d
}

// apply writes d into svc's status and reports whether anything changed.
func (d desired) apply(svc *corev1.Service, now metav1.Time) bool {
	changed := false
	if !sameIngress(svc.Status.LoadBalancer.Ingress, d.ingress) {
		svc.Status.LoadBalancer.Ingress = d.ingress
		changed = true
	}
	c := d.condition
	c.LastTransitionTime = now // kept by SetStatusCondition unless the status changes
	return meta.SetStatusCondition(&svc.Status.Conditions, c) || changed
}

// clearStatus removes what bgplb wrote on a Service it no longer serves:
// the ingress addresses it gave (only those) and its conditions.
func clearStatus(svc *corev1.Service, ours []netip.Addr) bool {
	changed := false
	in := slices.DeleteFunc(slices.Clone(svc.Status.LoadBalancer.Ingress), func(i corev1.LoadBalancerIngress) bool {
		a, err := netip.ParseAddr(i.IP)
		return err == nil && slices.Contains(ours, a.Unmap())
	})
	if len(in) != len(svc.Status.LoadBalancer.Ingress) {
		svc.Status.LoadBalancer.Ingress = in
		changed = true
	}
	if meta.FindStatusCondition(svc.Status.Conditions, ConditionAllocated) != nil || meta.FindStatusCondition(svc.Status.Conditions, ConditionAnnounced) != nil {
		svc.Status.Conditions = slices.DeleteFunc(svc.Status.Conditions, func(c metav1.Condition) bool {
			return c.Type == ConditionAllocated || c.Type == ConditionAnnounced
		})
		changed = true
	}
	return changed
}

func reasonOf(err error) string {
	if ae := (*allocator.Error)(nil); errors.As(err, &ae) {
		return ae.Reason.String()
	}
	return allocator.InvalidRequest.String()
}

func errMessage(err error) string {
	if ae := (*allocator.Error)(nil); errors.As(err, &ae) {
		return ae.Msg
	}
	return err.Error()
}

func addrsOf(held []allocator.Address) []netip.Addr {
	out := make([]netip.Addr, len(held))
	for i, a := range held {
		out[i] = a.Addr
	}
	return out
}

// describe is "203.0.113.10 from pool lan" or, for several addresses,
// "203.0.113.10 (pool lan), 2001:db8::10 (pool lan6)".
func describe(held []allocator.Address) string {
	pool := func(a allocator.Address) string {
		if a.Pool == "" {
			return "outside every pool"
		}
		return "pool " + a.Pool
	}
	switch len(held) {
	case 0:
		return "no address"
	case 1:
		if held[0].Pool == "" {
			return held[0].Addr.String() + " (outside every pool)"
		}
		return held[0].Addr.String() + " from pool " + held[0].Pool
	}
	parts := make([]string, len(held))
	for i, a := range held {
		parts[i] = fmt.Sprintf("%s (%s)", a.Addr, pool(a))
	}
	return strings.Join(parts, ", ")
}

func sameIngress(a, b []corev1.LoadBalancerIngress) bool {
	return slices.EqualFunc(a, b, func(x, y corev1.LoadBalancerIngress) bool {
		return x.IP == y.IP && x.Hostname == y.Hostname &&
			(x.IPMode == nil) == (y.IPMode == nil) && (x.IPMode == nil || *x.IPMode == *y.IPMode) &&
			len(x.Ports) == 0 && len(y.Ports) == 0
	})
}
