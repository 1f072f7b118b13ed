package lbmodel

import (
	"maps"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestUsable(t *testing.T) {
	yes, no := true, false
	for _, tc := range []struct {
		name       string
		c          discoveryv1.EndpointConditions
		usable, st bool
	}{
		{"nothing said", discoveryv1.EndpointConditions{}, true, false},
		{"ready", discoveryv1.EndpointConditions{Ready: &yes}, true, false},
		{"not ready", discoveryv1.EndpointConditions{Ready: &no}, false, false},
		{"ready, not serving", discoveryv1.EndpointConditions{Ready: &yes, Serving: &no}, false, false},
		{"not ready but serving", discoveryv1.EndpointConditions{Ready: &no, Serving: &yes}, false, false},
		{"terminating, serving", discoveryv1.EndpointConditions{Ready: &no, Serving: &yes, Terminating: &yes}, false, true},
		{"terminating, not serving", discoveryv1.EndpointConditions{Ready: &no, Serving: &no, Terminating: &yes}, false, false},
		{"not terminating", discoveryv1.EndpointConditions{Ready: &yes, Serving: &yes, Terminating: &no}, true, false},
	} {
		if got := Usable(tc.c); got != tc.usable {
			t.Errorf("%s: Usable %v, want %v", tc.name, got, tc.usable)
		}
		if got := ServingTerminating(tc.c); got != tc.st {
			t.Errorf("%s: ServingTerminating %v, want %v", tc.name, got, tc.st)
		}
	}
}

// ep is an endpoint of pod name on node (node "": on none) with address a
// and the given state: "ready", "terminating" (serving), "gone" (not
// serving), "notready".
func ep(pod, node, a, state string) discoveryv1.Endpoint {
	yes, no := true, false
	e := discoveryv1.Endpoint{Addresses: []string{a}}
	if pod != "" {
		e.TargetRef = &corev1.ObjectReference{Kind: "Pod", Namespace: "dns", Name: pod, UID: types.UID("uid-" + pod)}
	}
	if node != "" {
		e.NodeName = &node
	}
	switch state {
	case "ready":
		e.Conditions = discoveryv1.EndpointConditions{Ready: &yes, Serving: &yes, Terminating: &no}
	case "terminating":
		e.Conditions = discoveryv1.EndpointConditions{Ready: &no, Serving: &yes, Terminating: &yes}
	case "gone":
		e.Conditions = discoveryv1.EndpointConditions{Ready: &no, Serving: &no, Terminating: &yes}
	case "notready":
		e.Conditions = discoveryv1.EndpointConditions{Ready: &no, Serving: &no, Terminating: &no}
	}
	return e
}

func epSlice(svc string, fam discoveryv1.AddressType, eps ...discoveryv1.Endpoint) discoveryv1.EndpointSlice {
	s := discoveryv1.EndpointSlice{AddressType: fam, Endpoints: eps}
	s.Namespace, s.Labels = "dns", map[string]string{discoveryv1.LabelServiceName: svc}
	return s
}

const v4, v6, fqdn = discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, discoveryv1.AddressTypeFQDN

func TestEndpointsOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		ss   []discoveryv1.EndpointSlice
		want NodeEndpoints
	}{
		{"ready ones count", []discoveryv1.EndpointSlice{epSlice("s", v4,
			ep("a", "n1", "10.0.0.1", "ready"), ep("b", "n1", "10.0.0.2", "ready"), ep("c", "n2", "10.0.0.3", "notready"))},
			NodeEndpoints{"n1": {IPv4: 2}}},
		{"terminating ignored while one is ready", []discoveryv1.EndpointSlice{epSlice("s", v4,
			ep("old", "n1", "10.0.0.1", "terminating"), ep("new", "n2", "10.0.0.2", "ready"))},
			NodeEndpoints{"n2": {IPv4: 1}}},
		{"rolling update of one replica: the terminating one counts", []discoveryv1.EndpointSlice{epSlice("s", v4,
			ep("old", "n1", "10.0.0.1", "terminating"), ep("new", "n2", "10.0.0.2", "notready"))},
			NodeEndpoints{"n1": {IPv4: 1}}},
		{"terminating and no longer serving: nothing", []discoveryv1.EndpointSlice{epSlice("s", v4,
			ep("old", "n1", "10.0.0.1", "gone"))},
			NodeEndpoints{}},
		{"dual stack: each family counts its own, each pod once", []discoveryv1.EndpointSlice{
			epSlice("s", v4, ep("a", "n1", "10.0.0.1", "ready"), ep("b", "n2", "10.0.0.2", "ready")),
			epSlice("s", v6, ep("a", "n1", "fd00::1", "ready"), ep("b", "n2", "fd00::2", "ready"))},
			NodeEndpoints{"n1": {1, 1}, "n2": {1, 1}}},
		{"dual stack, fallback per family", []discoveryv1.EndpointSlice{
			epSlice("s", v4, ep("a", "n1", "10.0.0.1", "ready")),
			epSlice("s", v6, ep("a", "n1", "fd00::1", "notready"), ep("b", "n2", "fd00::2", "terminating"))},
			NodeEndpoints{"n1": {IPv4: 1}, "n2": {IPv6: 1}}},
		{"a pod listed by two slices counts once, at its best", []discoveryv1.EndpointSlice{
			epSlice("s", v4, ep("a", "n1", "10.0.0.1", "notready")),
			epSlice("s", v4, ep("a", "n1", "10.0.0.1", "ready"), ep("b", "n1", "10.0.0.2", "ready")),
			epSlice("s", v4, ep("b", "n1", "10.0.0.2", "ready"))},
			NodeEndpoints{"n1": {IPv4: 2}}},
		{"no targetRef: the node and addresses name it", []discoveryv1.EndpointSlice{
			epSlice("s", v4, ep("", "n1", "10.0.0.1", "ready"), ep("", "n2", "10.0.0.1", "ready")),
			epSlice("s", v4, ep("", "n1", "10.0.0.1", "ready"))},
			NodeEndpoints{"n1": {IPv4: 1}, "n2": {IPv4: 1}}},
		{"on no node: counted under \"\"", []discoveryv1.EndpointSlice{epSlice("s", v4, ep("", "", "192.0.2.1", "ready"))},
			NodeEndpoints{"": {IPv4: 1}}},
		{"FQDN counts for nothing", []discoveryv1.EndpointSlice{epSlice("s", fqdn, ep("a", "n1", "example.com", "ready"))},
			NodeEndpoints{}},
		{"no addressType: the address says", []discoveryv1.EndpointSlice{epSlice("s", "", ep("a", "n1", "fd00::1", "ready"))},
			NodeEndpoints{"n1": {IPv6: 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := EndpointsOf(tc.ss); !maps.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// The fallback flag tells, per family, that the counts are serving
// terminating endpoints: what kube-proxy's health check does not count.
// LocalFallback is the same per node: a node's serving-terminating
// endpoints while it has no usable one of the family.
func TestCountEndpointsFallback(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ss    []discoveryv1.EndpointSlice
		want  Fallback
		local NodeEndpoints
	}{
		{"ready", []discoveryv1.EndpointSlice{epSlice("s", v4, ep("a", "n1", "10.0.0.1", "ready"))}, Fallback{}, NodeEndpoints{}},
		{"rolling update of one replica", []discoveryv1.EndpointSlice{epSlice("s", v4,
			ep("old", "n1", "10.0.0.1", "terminating"), ep("new", "n1", "10.0.0.2", "notready"))},
			Fallback{IPv4: true}, NodeEndpoints{"n1": {IPv4: 1}}},
		{"terminating beside a ready one elsewhere", []discoveryv1.EndpointSlice{epSlice("s", v4,
			ep("old", "n1", "10.0.0.1", "terminating"), ep("new", "n2", "10.0.0.2", "ready"))},
			Fallback{}, NodeEndpoints{"n1": {IPv4: 1}}},
		{"terminating beside a ready one on the same node", []discoveryv1.EndpointSlice{epSlice("s", v4,
			ep("old", "n1", "10.0.0.1", "terminating"), ep("new", "n1", "10.0.0.2", "ready"))},
			Fallback{}, NodeEndpoints{}},
		{"a pod listed twice counts at its best state", []discoveryv1.EndpointSlice{
			epSlice("s", v4, ep("a", "n1", "10.0.0.1", "terminating"), ep("b", "n1", "10.0.0.3", "terminating")),
			epSlice("s", v4, ep("a", "n1", "10.0.0.1", "ready"), ep("c", "n2", "10.0.0.2", "ready"))},
			Fallback{}, NodeEndpoints{}},
		{"nothing serving: no fallback", []discoveryv1.EndpointSlice{epSlice("s", v4, ep("old", "n1", "10.0.0.1", "gone"))}, Fallback{}, NodeEndpoints{}},
		{"per family", []discoveryv1.EndpointSlice{
			epSlice("s", v4, ep("a", "n1", "10.0.0.1", "ready"), ep("b", "n2", "10.0.0.2", "terminating")),
			epSlice("s", v6, ep("a", "n1", "fd00::1", "notready"), ep("b", "n2", "fd00::2", "terminating"))},
			Fallback{IPv6: true}, NodeEndpoints{"n2": {IPv4: 1, IPv6: 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := CountEndpoints(tc.ss)
			if got.Fallback != tc.want {
				t.Errorf("got %+v, want %+v", got.Fallback, tc.want)
			}
			if !maps.Equal(got.LocalFallback, tc.local) {
				t.Errorf("LocalFallback %v, want %v", got.LocalFallback, tc.local)
			}
			bySvc := CountByService(tc.ss)
			if got := bySvc[Key{Namespace: "dns", Name: "s"}]; got.Fallback != tc.want || !maps.Equal(got.LocalFallback, tc.local) {
				t.Errorf("by Service: %+v", bySvc)
			}
		})
	}
	if !(Fallback{IPv6: true}).Of(netip.MustParseAddr("2001:db8::1")) || (Fallback{IPv6: true}).Of(netip.MustParseAddr("203.0.113.1")) {
		t.Error("Fallback.Of")
	}
}

func TestCounts(t *testing.T) {
	e := NodeEndpoints{"n1": {2, 2}, "n2": {IPv4: 1}, "": {IPv6: 3}}
	if e.On("n1") != (Counts{2, 2}) || e.On("") != (Counts{}) || e.On("n9") != (Counts{}) {
		t.Errorf("On: %v %v %v", e.On("n1"), e.On(""), e.On("n9"))
	}
	if e.Total() != (Counts{3, 5}) {
		t.Errorf("Total %v", e.Total())
	}
	c := Counts{IPv4: 2, IPv6: 5}
	if c.Of(netip.MustParseAddr("203.0.113.1")) != 2 || c.Of(netip.MustParseAddr("::ffff:203.0.113.1")) != 2 ||
		c.Of(netip.MustParseAddr("2001:db8::1")) != 5 || c.Pods() != 5 {
		t.Errorf("Counts %v", c)
	}
}

func TestEndpointsByNode(t *testing.T) {
	ss := []discoveryv1.EndpointSlice{
		epSlice("pihole", v4, ep("a", "n1", "10.0.0.1", "ready"), ep("b", "n2", "10.0.0.2", "ready")),
		epSlice("pihole", v6, ep("a", "n1", "fd00::1", "ready"), ep("b", "n2", "fd00::2", "ready")),
		epSlice("pihole", v4, ep("c", "n1", "10.0.0.3", "ready"), ep("d", "n1", "10.0.0.4", "notready")),
		epSlice("", v4, ep("e", "n1", "10.0.0.5", "ready")), // no Service: skipped
		epSlice("empty", v4, ep("", "", "192.0.2.1", "ready")),
	}
	web := epSlice("pihole", v4, ep("w", "n1", "10.0.1.1", "ready"))
	web.Namespace = "web"
	ss = append(ss, web)
	got := EndpointsByNode(ss)
	pihole := Key{Namespace: "dns", Name: "pihole"}
	if len(got) != 2 || got[pihole]["n1"] != 2 || got[pihole]["n2"] != 1 || got[Key{Namespace: "web", Name: "pihole"}]["n1"] != 1 {
		t.Errorf("EndpointsByNode: %v", got)
	}
	if n := ReadyEndpoints(ss[:3]); n != 3 {
		t.Errorf("ReadyEndpoints: %d, want 3 (dual stack counts each pod once)", n)
	}
	if ReadyEndpoints(ss[4:5]) != 0 || !HasEndpoints(ss[4:5]) {
		t.Error("an endpoint on no node serves Cluster traffic but is no node's")
	}
	if HasEndpoints([]discoveryv1.EndpointSlice{epSlice("s", v4, ep("a", "n1", "10.0.0.1", "gone"))}) {
		t.Error("HasEndpoints with nothing serving")
	}
}
