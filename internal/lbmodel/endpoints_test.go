package lbmodel

import (
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
)

func TestUsable(t *testing.T) {
	yes, no := true, false
	for _, tc := range []struct {
		name string
		c    discoveryv1.EndpointConditions
		want bool
	}{
		{"nothing said", discoveryv1.EndpointConditions{}, true},
		{"ready", discoveryv1.EndpointConditions{Ready: &yes}, true},
		{"not ready", discoveryv1.EndpointConditions{Ready: &no}, false},
		{"ready, not serving", discoveryv1.EndpointConditions{Ready: &yes, Serving: &no}, false},
		{"not ready but serving", discoveryv1.EndpointConditions{Ready: &no, Serving: &yes}, false},
		{"terminating", discoveryv1.EndpointConditions{Ready: &yes, Terminating: &yes}, false},
		{"not terminating", discoveryv1.EndpointConditions{Ready: &yes, Serving: &yes, Terminating: &no}, true},
	} {
		if got := Usable(tc.c); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestEndpointNode(t *testing.T) {
	name := func(s string) *string { return &s }
	no := false
	for _, tc := range []struct {
		name string
		e    discoveryv1.Endpoint
		want string
		ok   bool
	}{
		{"on node1", discoveryv1.Endpoint{NodeName: name("node1")}, "node1", true},
		{"on no node", discoveryv1.Endpoint{}, "", false},
		{"empty node name", discoveryv1.Endpoint{NodeName: name("")}, "", false},
		{"not ready", discoveryv1.Endpoint{NodeName: name("node1"), Conditions: discoveryv1.EndpointConditions{Ready: &no}}, "", false},
	} {
		if got, ok := EndpointNode(tc.e); got != tc.want || ok != tc.ok {
			t.Errorf("%s: %q %v, want %q %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestEndpointsByNode(t *testing.T) {
	node := func(s string) *string { return &s }
	no := false
	slice := func(ns, svc string, eps ...discoveryv1.Endpoint) discoveryv1.EndpointSlice {
		s := discoveryv1.EndpointSlice{Endpoints: eps}
		s.Namespace, s.Labels = ns, map[string]string{discoveryv1.LabelServiceName: svc}
		return s
	}
	ss := []discoveryv1.EndpointSlice{
		slice("dns", "pihole", discoveryv1.Endpoint{NodeName: node("n1")}, discoveryv1.Endpoint{NodeName: node("n2")}),
		slice("dns", "pihole", discoveryv1.Endpoint{NodeName: node("n1")},
			discoveryv1.Endpoint{NodeName: node("n1"), Conditions: discoveryv1.EndpointConditions{Ready: &no}}),
		slice("web", "pihole", discoveryv1.Endpoint{NodeName: node("n1")}),
		slice("dns", "", discoveryv1.Endpoint{NodeName: node("n1")}), // no Service: skipped
		slice("dns", "empty", discoveryv1.Endpoint{}),                // on no node
	}
	got := EndpointsByNode(ss)
	if len(got) != 2 || got[Key{Namespace: "dns", Name: "pihole"}]["n1"] != 2 || got[Key{Namespace: "dns", Name: "pihole"}]["n2"] != 1 ||
		got[Key{Namespace: "web", Name: "pihole"}]["n1"] != 1 {
		t.Errorf("EndpointsByNode: %v", got)
	}
	if n := ReadyEndpoints(ss[:2]); n != 3 {
		t.Errorf("ReadyEndpoints: %d, want 3", n)
	}
}
