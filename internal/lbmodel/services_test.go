package lbmodel

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func lb(mod func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "dns", Name: "pihole"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
	}
	if mod != nil {
		mod(s)
	}
	return s
}

func class(c string) func(*corev1.Service) {
	return func(s *corev1.Service) { s.Spec.LoadBalancerClass = &c }
}

func annotated(kv ...string) func(*corev1.Service) {
	return func(s *corev1.Service) {
		s.Annotations = map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			s.Annotations[kv[i]] = kv[i+1]
		}
	}
}

func TestHandles(t *testing.T) {
	for _, tc := range []struct {
		name      string
		svc       *corev1.Service
		unclassed bool
		want      bool
	}{
		{"unclassed LoadBalancer", lb(nil), true, true},
		{"unclassed, not configured to handle", lb(nil), false, false},
		{"our class", lb(class(Class)), false, true},
		{"our class, unclassed handled too", lb(class(Class)), true, true},
		{"another class", lb(class("other.io/lb")), true, false},
		{"MetalLB's class is not ours", lb(class("metallb.io/metallb")), true, false},
		{"ClusterIP", lb(func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP }), true, false},
		{"NodePort with our class", lb(func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort; class(Class)(s) }), true, false},
	} {
		if got := Handles(tc.svc, tc.unclassed); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// bgplb's spelling first, then metallb.io's, then metallb.universe.tf's.
func TestAnnotation(t *testing.T) {
	for _, tc := range []struct {
		name            string
		svc             *corev1.Service
		value, spelling string
	}{
		{"none", lb(nil), "", ""},
		{"bgplb", lb(annotated(AnnotationPool, "a")), "a", AnnotationPool},
		{"metallb.io", lb(annotated("metallb.io/address-pool", "b")), "b", "metallb.io/address-pool"},
		{"metallb.universe.tf", lb(annotated("metallb.universe.tf/address-pool", "c")), "c", "metallb.universe.tf/address-pool"},
		{"bgplb wins", lb(annotated("metallb.universe.tf/address-pool", "c", AnnotationPool, "a", "metallb.io/address-pool", "b")), "a", AnnotationPool},
		{"metallb.io before universe", lb(annotated("metallb.universe.tf/address-pool", "c", "metallb.io/address-pool", "b")), "b", "metallb.io/address-pool"},
		{"set but empty", lb(annotated(AnnotationPool, "")), "", AnnotationPool},
	} {
		v, name, ok := Annotation(tc.svc, AnnotationPool)
		if v != tc.value || name != tc.spelling || ok != (tc.spelling != "") {
			t.Errorf("%s: %q %q %v, want %q %q", tc.name, v, name, ok, tc.value, tc.spelling)
		}
	}
}

func TestRequested(t *testing.T) {
	for _, tc := range []struct {
		name string
		svc  *corev1.Service
		want []string
		err  string
	}{
		{"nothing asked", lb(nil), nil, ""},
		{"spec.loadBalancerIP", lb(func(s *corev1.Service) { s.Spec.LoadBalancerIP = "203.0.113.53" }), []string{"203.0.113.53"}, ""},
		{"annotation, dual stack, spaces", lb(annotated(AnnotationIPs, "203.0.113.5, 2001:db8:100::5")), []string{"203.0.113.5", "2001:db8:100::5"}, ""},
		{"MetalLB's annotation", lb(annotated("metallb.universe.tf/loadBalancerIPs", "203.0.113.6")), []string{"203.0.113.6"}, ""},
		{"the annotation wins over the field", lb(func(s *corev1.Service) {
			annotated(AnnotationIPs, "203.0.113.7")(s)
			s.Spec.LoadBalancerIP = "203.0.113.9"
		}), []string{"203.0.113.7"}, ""},
		{"IPv4-mapped reads as IPv4", lb(func(s *corev1.Service) { s.Spec.LoadBalancerIP = "::ffff:203.0.113.8" }), []string{"203.0.113.8"}, ""},
		{"bad field", lb(func(s *corev1.Service) { s.Spec.LoadBalancerIP = "203.0.113.300" }), nil, `spec.loadBalancerIP: "203.0.113.300" is not an IP address`},
		{"bad entry named with the spelling used", lb(annotated("metallb.io/loadBalancerIPs", "203.0.113.1,pihole")), nil, `annotation metallb.io/loadBalancerIPs: "pihole" is not an IP address`},
	} {
		got, err := Requested(tc.svc)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || got != nil {
				t.Errorf("%s: %v, %v; want only an error containing %q", tc.name, got, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(strs(got), tc.want) {
			t.Errorf("%s: %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

func TestAssigned(t *testing.T) {
	svc := lb(func(s *corev1.Service) {
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{
			{IP: "203.0.113.53"}, {Hostname: "lb.example"}, {IP: "::ffff:203.0.113.54"}, {IP: "2001:db8::53"}, {IP: "nonsense"},
		}
	})
	if got := strs(Assigned(svc)); !slices.Equal(got, []string{"203.0.113.53", "203.0.113.54", "2001:db8::53"}) {
		t.Errorf("Assigned: %v", got)
	}
	if Assigned(lb(nil)) != nil {
		t.Error("no ingress: want nil")
	}
}

func TestTrafficPolicyOf(t *testing.T) {
	for etp, want := range map[corev1.ServiceExternalTrafficPolicy]TrafficPolicy{
		"": Cluster, corev1.ServiceExternalTrafficPolicyCluster: Cluster, corev1.ServiceExternalTrafficPolicyLocal: Local,
	} {
		if got := TrafficPolicyOf(lb(func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = etp })); got != want {
			t.Errorf("%q: %v, want %v", etp, got, want)
		}
	}
}

func TestKey(t *testing.T) {
	keys := []Key{{Namespace: "b", Name: "a"}, {Namespace: "a", Name: "z"}, {Namespace: "a", Name: "b"}}
	slices.SortFunc(keys, Key.Compare)
	if got := []string{keys[0].String(), keys[1].String(), keys[2].String()}; !slices.Equal(got, []string{"a/b", "a/z", "b/a"}) {
		t.Errorf("sorted %v", got)
	}
	if KeyOf(lb(nil)) != (Key{Namespace: "dns", Name: "pihole"}) {
		t.Error("KeyOf")
	}
}

func strs(as []netip.Addr) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

func TestPodSelectorAndSamePods(t *testing.T) {
	withSel := func(kv ...string) *corev1.Service {
		return lb(func(s *corev1.Service) {
			if len(kv) > 0 {
				s.Spec.Selector = map[string]string{}
			}
			for i := 0; i < len(kv); i += 2 {
				s.Spec.Selector[kv[i]] = kv[i+1]
			}
		})
	}
	for _, tc := range []struct {
		name string
		a, b *corev1.Service
		same bool
	}{
		{"same selector", withSel("app", "dns"), withSel("app", "dns"), true},
		{"same selector, keys in another order", withSel("tier", "front", "app", "web"), withSel("app", "web", "tier", "front"), true},
		{"another value", withSel("app", "dns"), withSel("app", "web"), false},
		{"a subset selects other pods", withSel("app", "dns"), withSel("app", "dns", "tier", "x"), false},
		{"one without selector", withSel("app", "dns"), withSel(), false},
		{"both without selector: endpoints by hand", withSel(), withSel(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := PodSelector(tc.a), PodSelector(tc.b)
			if got := SamePods(a, b); got != tc.same {
				t.Errorf("SamePods(%q, %q) = %v, want %v", a, b, got, tc.same)
			}
			if got := SamePods(b, a); got != tc.same {
				t.Errorf("SamePods is not symmetric for %q, %q", a, b)
			}
		})
	}
	if got := PodSelector(withSel("tier", "front", "app", "web")); got != "app=web,tier=front" {
		t.Errorf("PodSelector %q, want app=web,tier=front", got)
	}
}
