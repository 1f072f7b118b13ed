package controller

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/controller/allocator"
	"github.com/bgplb/bgplb/internal/lbmodel"
)

func lb(mod func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "dns", Name: "pihole", Labels: map[string]string{"app": "pihole"}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{
			{Protocol: corev1.ProtocolUDP, Port: 53}, {Protocol: corev1.ProtocolTCP, Port: 53}}},
	}
	if mod != nil {
		mod(s)
	}
	return s
}

func ptr[T any](v T) *T { return &v }

func TestRequestFor(t *testing.T) {
	a := netip.MustParseAddr
	tests := []struct {
		name string
		svc  *corev1.Service
		want func(*allocator.Request)
		err  string
	}{
		{"plain", lb(nil), func(r *allocator.Request) {}, ""},
		{"the seed's Pi-hole, written for MetalLB", lb(func(s *corev1.Service) {
			s.Annotations = map[string]string{"metallb.universe.tf/address-pool": "pool1", "metallb.universe.tf/allow-shared-ip": "dns"}
			s.Spec.LoadBalancerIP = "203.0.113.53"
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}), func(r *allocator.Request) {
			r.Pool, r.SharingKey, r.Addresses, r.TrafficPolicy = "pool1", "dns", []netip.Addr{a("203.0.113.53")}, lbmodel.Local
		}, ""},
		{"metallb.io aliases", lb(func(s *corev1.Service) {
			s.Annotations = map[string]string{"metallb.io/address-pool": "p", "metallb.io/loadBalancerIPs": "203.0.113.5, 2001:db8:100::5"}
		}), func(r *allocator.Request) {
			r.Pool, r.Addresses = "p", []netip.Addr{a("203.0.113.5"), a("2001:db8:100::5")}
		}, ""},
		{"bgplb annotation wins over the alias and over spec.loadBalancerIP", lb(func(s *corev1.Service) {
			s.Annotations = map[string]string{lbmodel.AnnotationIPs: "203.0.113.7", "metallb.io/loadBalancerIPs": "203.0.113.8"}
			s.Spec.LoadBalancerIP = "203.0.113.9"
		}), func(r *allocator.Request) { r.Addresses = []netip.Addr{a("203.0.113.7")} }, ""},
		{"dual stack", lb(func(s *corev1.Service) {
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol, corev1.IPv4Protocol}
			s.Spec.IPFamilyPolicy = ptr(corev1.IPFamilyPolicyRequireDualStack)
		}), func(r *allocator.Request) {
			r.Families, r.Policy = []allocator.Family{allocator.IPv6, allocator.IPv4}, allocator.RequireDualStack
		}, ""},
		{"bad loadBalancerIP", lb(func(s *corev1.Service) { s.Spec.LoadBalancerIP = "203.0.113.300" }), nil, `spec.loadBalancerIP: "203.0.113.300" is not an IP address`},
		{"bad annotation", lb(func(s *corev1.Service) { s.Annotations = map[string]string{lbmodel.AnnotationIPs: "x"} }), nil, "annotation bgplb.io/loadBalancerIPs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RequestFor(tc.svc, map[string]string{"team": "home"})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := allocator.Request{Key: lbmodel.Key{Namespace: "dns", Name: "pihole"}, Labels: map[string]string{"app": "pihole"},
				NamespaceLabels: map[string]string{"team": "home"},
				Ports:           []allocator.Port{{Protocol: allocator.UDP, Port: 53}, {Protocol: allocator.TCP, Port: 53}}}
			tc.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestIngressAndAssigned(t *testing.T) {
	addrs := []netip.Addr{netip.MustParseAddr("203.0.113.53"), netip.MustParseAddr("2001:db8:100::53")}
	svc := lb(nil)
	svc.Status.LoadBalancer.Ingress = Ingress(addrs)
	if *svc.Status.LoadBalancer.Ingress[0].IPMode != corev1.LoadBalancerIPModeVIP {
		t.Fatal("ipMode is not VIP")
	}
	if got := lbmodel.Assigned(svc); !reflect.DeepEqual(got, addrs) {
		t.Fatalf("got %v", got)
	}
}
