// Package controller is `bgplb controller`: it gives Services of type
// LoadBalancer an address from the IPPools (the pure allocator in
// controller/allocator) and reports the outcome on the Service.
package controller

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/bgplb/bgplb/controller/allocator"
)

// Class is the loadBalancerClass bgplb answers to.
const Class = "bgplb.io/bgplb"

// Annotations a Service may carry. MetalLB's spellings are accepted as
// aliases, so Services written for MetalLB (like the seed's Pi-hole) move
// over unchanged.
const (
	AnnotationPool      = "bgplb.io/address-pool"
	AnnotationIPs       = "bgplb.io/loadBalancerIPs"
	AnnotationSharedIP  = "bgplb.io/allow-shared-ip"
	metallbUniversePref = "metallb.universe.tf/"
	metallbIOPref       = "metallb.io/"
)

// annotation returns the value of the first of bgplb's name and MetalLB's
// two aliases that is set, and which one it is (for errors naming what the
// user wrote).
func annotation(svc *corev1.Service, bgplbName string) (value, name string, ok bool) {
	suffix := strings.TrimPrefix(bgplbName, "bgplb.io/")
	for _, k := range []string{bgplbName, metallbIOPref + suffix, metallbUniversePref + suffix} {
		if v, ok := svc.Annotations[k]; ok {
			return v, k, true
		}
	}
	return "", "", false
}

// Handles reports whether bgplb should give svc an address: a LoadBalancer
// whose class is ours, or unset when handleUnclassed (the default: bgplb is
// the cluster's load balancer).
func Handles(svc *corev1.Service, handleUnclassed bool) bool {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return false
	}
	if c := svc.Spec.LoadBalancerClass; c != nil {
		return *c == Class
	}
	return handleUnclassed
}

// RequestFor turns a Service into an allocation request. An unparsable
// request is an error naming the field, for the Service's event and
// condition; the request returned with it has no addresses but every other
// field.
func RequestFor(svc *corev1.Service, nsLabels map[string]string) (allocator.Request, error) {
	r := allocator.Request{
		Key:             allocator.Key{Namespace: svc.Namespace, Name: svc.Name},
		Labels:          svc.Labels,
		NamespaceLabels: nsLabels,
	}
	r.Pool, _, _ = annotation(svc, AnnotationPool)
	r.SharingKey, _, _ = annotation(svc, AnnotationSharedIP)
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
	if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		r.TrafficPolicy = allocator.Local
	}
	// Addresses come last so that on a parse error every other field is
	// still filled in: restoring a Service's holding at start-up needs its
	// sharing key and ports even when its request has since gone bad.
	if ips, name, ok := annotation(svc, AnnotationIPs); ok {
		for _, s := range strings.Split(ips, ",") {
			a, err := netip.ParseAddr(strings.TrimSpace(s))
			if err != nil {
				r.Addresses = nil
				return r, fmt.Errorf("annotation %s: %q is not an IP address", name, s)
			}
			r.Addresses = append(r.Addresses, a.Unmap())
		}
	} else if s := svc.Spec.LoadBalancerIP; s != "" {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return r, fmt.Errorf("spec.loadBalancerIP: %q is not an IP address", s)
		}
		r.Addresses = []netip.Addr{a.Unmap()}
	}
	return r, nil
}

// Assigned reads the addresses a Service's status already holds, for
// rebuilding the allocator's state at start-up before anything new is
// assigned.
func Assigned(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(in.IP); err == nil {
			out = append(out, a.Unmap())
		}
	}
	return out
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
