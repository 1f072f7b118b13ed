// Package controller is `bgplb controller`: it gives Services of type
// LoadBalancer an address from the LoadBalancerPools (the pure allocator in
// controller/allocator) and reports the outcome on the Service.
package controller

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"

	"github.com/bgplb/bgplb/controller/allocator"
	"github.com/bgplb/bgplb/internal/lbmodel"
)

// Class is the loadBalancerClass bgplb answers to (lbmodel.Class, the one
// rule the speakers share).
const Class = lbmodel.Class

// RequestFor turns a Service into an allocation request. An unparsable
// request is an error naming the field, for the Service's event and
// condition; the request returned with it has no addresses but every other
// field.
func RequestFor(svc *corev1.Service, nsLabels map[string]string) (allocator.Request, error) {
	r := allocator.Request{
		Key:             lbmodel.KeyOf(svc),
		Labels:          svc.Labels,
		NamespaceLabels: nsLabels,
	}
	r.Pool, _, _ = lbmodel.Annotation(svc, lbmodel.AnnotationPool)
	r.SharingKey, _, _ = lbmodel.Annotation(svc, lbmodel.AnnotationSharedIP)
	for _, f := range svc.Spec.IPFamilies {
		switch f {
		case corev1.IPv4Protocol:
			r.Families = append(r.Families, allocator.IPv4)
		case corev1.IPv6Protocol:
			r.Families = append(r.Families, allocator.IPv6)
		}
	}
	if p := svc.Spec.IPFamilyPolicy; p != nil {
		switch *p {
		case corev1.IPFamilyPolicyPreferDualStack:
			r.Policy = allocator.PreferDualStack
		case corev1.IPFamilyPolicyRequireDualStack:
			r.Policy = allocator.RequireDualStack
		}
	}
	for _, p := range svc.Spec.Ports {
		proto := allocator.TCP
		switch p.Protocol {
		case corev1.ProtocolUDP:
			proto = allocator.UDP
		case corev1.ProtocolSCTP:
			proto = allocator.SCTP
		}
		r.Ports = append(r.Ports, allocator.Port{Protocol: proto, Port: uint16(p.Port)})
	}
	r.TrafficPolicy = lbmodel.TrafficPolicyOf(svc)
	r.Selector = lbmodel.PodSelector(svc)
	// On a parse error every other field is still filled in: restoring a
	// Service's holding at start-up needs its sharing key and ports even
	// when its request has since gone bad.
	var err error
	r.Addresses, err = lbmodel.Requested(svc)
	return r, err
}

// Ingress is the status.loadBalancer.ingress for addrs, with ipMode VIP:
// traffic arrives addressed to the VIP itself.
func Ingress(addrs []netip.Addr) []corev1.LoadBalancerIngress {
	vip := corev1.LoadBalancerIPModeVIP
	out := make([]corev1.LoadBalancerIngress, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, corev1.LoadBalancerIngress{IP: a.String(), IPMode: &vip})
	}
	return out
}
