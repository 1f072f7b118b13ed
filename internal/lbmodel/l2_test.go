package lbmodel

import (
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

func l2Policy(name string, spec v1alpha1.L2AnnouncementPolicySpec) *v1alpha1.L2AnnouncementPolicy {
	return &v1alpha1.L2AnnouncementPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
}

func TestL2AdvertisementFromErrors(t *testing.T) {
	_, err := L2AdvertisementFrom(l2Policy("bad", v1alpha1.L2AnnouncementPolicySpec{
		Interfaces:    []string{"eth0", "en[p"},
		NodeSelectors: []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "in"}}}},
	}))
	if err == nil {
		t.Fatal("bad pattern and selector accepted")
	}
	for _, want := range []string{"spec.interfaces[1]", "spec.nodeSelectors"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	a, err := L2AdvertisementFrom(l2Policy("good", v1alpha1.L2AnnouncementPolicySpec{Interfaces: []string{"eth*", "enp?s0"}}))
	if err != nil || a.Name != "good" || !slices.Equal(a.Interfaces, []string{"eth*", "enp?s0"}) {
		t.Fatalf("good policy: %+v, %v", a, err)
	}
}

func TestL2Selection(t *testing.T) {
	mk := func(name string, spec v1alpha1.L2AnnouncementPolicySpec) L2Advertisement {
		a, err := L2AdvertisementFrom(l2Policy(name, spec))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	rack := []metav1.LabelSelector{{MatchLabels: map[string]string{"rack": "a"}}}
	advs := []L2Advertisement{
		mk("lan", v1alpha1.L2AnnouncementPolicySpec{IPPools: []string{"lan"}, Interfaces: []string{"eth0"}, NodeSelectors: rack}),
		mk("lan-b", v1alpha1.L2AnnouncementPolicySpec{IPPools: []string{"lan"}, Interfaces: []string{"eth1", "eth0"}}),
		mk("open", v1alpha1.L2AnnouncementPolicySpec{IPPoolSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"l2": "open"}}}}),
	}
	rackA, rackB := labels.Set{"rack": "a"}, labels.Set{"rack": "b"}
	for _, c := range []struct {
		name               string
		pool               string
		poolLabels, node   labels.Set
		policies, patterns []string
		ok                 bool
	}{
		{"both policies, patterns merged", "lan", nil, rackA, []string{"lan", "lan-b"}, []string{"eth0", "eth1"}, true},
		{"node selector leaves one", "lan", nil, rackB, []string{"lan", "lan-b"}, []string{"eth0", "eth1"}, true},
		{"open wins", "other", labels.Set{"l2": "open"}, rackA, []string{"open"}, nil, true},
		{"no policy", "bgp-only", nil, rackA, nil, nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := L2Policies(advs, c.pool, c.poolLabels); !slices.Equal(got, c.policies) {
				t.Errorf("L2Policies = %v, want %v", got, c.policies)
			}
			got, ok := L2Interfaces(advs, c.pool, c.poolLabels, c.node)
			if ok != c.ok || !slices.Equal(got, c.patterns) {
				t.Errorf("L2Interfaces = %v, %v, want %v, %v", got, ok, c.patterns, c.ok)
			}
		})
	}
	if got := L2NodePolicies(advs, rackB); !slices.Equal(got, []string{"lan-b", "open"}) {
		t.Errorf("L2NodePolicies(rack b) = %v", got)
	}
	// An open policy and a narrowing one both selecting the node: open.
	advs = append(advs, mk("narrow", v1alpha1.L2AnnouncementPolicySpec{IPPools: []string{"other"}, Interfaces: []string{"eth9"}}))
	if got, ok := L2Interfaces(advs, "other", labels.Set{"l2": "open"}, rackA); !ok || got != nil {
		t.Errorf("open and narrow: %v, %v; want nil, true", got, ok)
	}
}
