package lbmodel

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Class is the loadBalancerClass bgplb answers to.
const Class = "bgplb.io/bgplb"

// Annotations a Service may carry. MetalLB's spellings (metallb.io/ and
// metallb.universe.tf/ with the same suffix) are accepted as aliases, so
// Services written for MetalLB move over unchanged.
const (
	AnnotationPool     = "bgplb.io/address-pool"
	AnnotationIPs      = "bgplb.io/loadBalancerIPs"
	AnnotationSharedIP = "bgplb.io/allow-shared-ip"
)

const (
	metallbUniversePrefix = "metallb.universe.tf/"
	metallbIOPrefix       = "metallb.io/"
)

// Annotation returns the value of the first of bgplb's name and MetalLB's
// two aliases that is set (bgplb's, then metallb.io's, then
// metallb.universe.tf's), and which one it is, for errors naming what the
// user wrote.
func Annotation(svc *corev1.Service, bgplbName string) (value, name string, ok bool) {
	suffix := strings.TrimPrefix(bgplbName, "bgplb.io/")
	for _, k := range [3]string{bgplbName, metallbIOPrefix + suffix, metallbUniversePrefix + suffix} {
		if v, ok := svc.Annotations[k]; ok {
			return v, k, true
		}
	}
	return "", "", false
}

// Handles reports whether bgplb serves svc: a LoadBalancer whose class is
// ours, or unset when handleUnclassed (bgplb is the cluster's load
// balancer). The controller and the speakers must be given the same
// handleUnclassed.
func Handles(svc *corev1.Service, handleUnclassed bool) bool {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return false
	}
	if c := svc.Spec.LoadBalancerClass; c != nil {
		return *c == Class
	}
	return handleUnclassed
}

// Assigned are the addresses a Service's status holds
// (status.loadBalancer.ingress[].ip), in order; entries that are not
// addresses are skipped and IPv4-mapped IPv6 addresses read as IPv4. The
// controller rebuilds its state from them and the speakers announce them.
func Assigned(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(in.IP); err == nil {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// Requested are the addresses a Service asks for: the loadBalancerIPs
// annotation (comma-separated, any of its spellings), else
// spec.loadBalancerIP; none when it asks for none. An entry that is not an
// address is an error naming the field as the user wrote it.
func Requested(svc *corev1.Service) ([]netip.Addr, error) {
	if ips, name, ok := Annotation(svc, AnnotationIPs); ok {
		var out []netip.Addr
		for _, s := range strings.Split(ips, ",") {
			a, err := netip.ParseAddr(strings.TrimSpace(s))
			if err != nil {
				return nil, fmt.Errorf("annotation %s: %q is not an IP address", name, s)
			}
			out = append(out, a.Unmap())
		}
		return out, nil
	}
	if s := svc.Spec.LoadBalancerIP; s != "" {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("spec.loadBalancerIP: %q is not an IP address", s)
		}
		return []netip.Addr{a.Unmap()}, nil
	}
	return nil, nil
}

// Key names a Service.
type Key struct {
	Namespace, Name string
}

// KeyOf is the key of a Service (or any namespaced object).
func KeyOf(svc *corev1.Service) Key { return Key{Namespace: svc.Namespace, Name: svc.Name} }

func (k Key) String() string { return k.Namespace + "/" + k.Name }

// Compare orders keys by namespace, then name.
func (k Key) Compare(o Key) int {
	if c := strings.Compare(k.Namespace, o.Namespace); c != 0 {
		return c
	}
	return strings.Compare(k.Name, o.Name)
}

// PodSelector is a Service's spec.selector in one canonical spelling
// (keys sorted: "app=web,tier=front"), "" when it has none (its endpoints
// are written by hand).
func PodSelector(svc *corev1.Service) string {
	if len(svc.Spec.Selector) == 0 {
		return ""
	}
	return labels.SelectorFromSet(svc.Spec.Selector).String()
}

// SamePods is MetalLB's condition for two Services with
// externalTrafficPolicy Local to share an address: they select the same
// pods (equal PodSelectors). Each node announces a Local address only
// where the Service's pods run; were two sharers' pods on different nodes,
// a node with only one's pods would attract the other's traffic and drop
// it. Services without a selector never qualify: nothing says their
// hand-written endpoints agree.
func SamePods(a, b string) bool { return a != "" && a == b }

// TrafficPolicy is a Service's spec.externalTrafficPolicy. The zero value
// is Cluster, the Kubernetes default.
type TrafficPolicy uint8

const (
	Cluster TrafficPolicy = iota
	Local
)

// TrafficPolicyOf reads spec.externalTrafficPolicy; anything but Local
// (the empty value included) is Cluster, as Kubernetes defaults it.
func TrafficPolicyOf(svc *corev1.Service) TrafficPolicy {
	if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		return Local
	}
	return Cluster
}

func (p TrafficPolicy) String() string {
	switch p {
	case Cluster:
		return "Cluster"
	case Local:
		return "Local"
	}
	return fmt.Sprintf("TrafficPolicy(%d)", uint8(p))
}
