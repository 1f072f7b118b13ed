package lbmodel

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

func TestPeerUnsupported(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec v1alpha1.BGPRouterSpec
		want []string
	}{
		{"nothing unsupported", v1alpha1.BGPRouterSpec{}, nil},
		{"bfdPolicy is supported", v1alpha1.BGPRouterSpec{BFDPolicy: "fast"}, nil},
		{"gracefulRestart is supported", v1alpha1.BGPRouterSpec{GracefulRestart: true}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := PeerUnsupported(&tc.spec)
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %d entries", got, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) || !strings.Contains(got[i], "not implemented yet") {
					t.Errorf("entry %d %q does not start with %q and say it is not implemented yet", i, got[i], w)
				}
			}
		})
	}
}

func TestCheckL2AnnouncementPolicy(t *testing.T) {
	good := &v1alpha1.L2AnnouncementPolicy{Spec: v1alpha1.L2AnnouncementPolicySpec{
		IPPoolSelectors: []metav1.LabelSelector{expr("site", metav1.LabelSelectorOpIn, "a")}}}
	if err := CheckL2AnnouncementPolicy(good); err != nil {
		t.Errorf("a good L2AnnouncementPolicy: %v", err)
	}
	bad := &v1alpha1.L2AnnouncementPolicy{Spec: v1alpha1.L2AnnouncementPolicySpec{
		IPPoolSelectors: []metav1.LabelSelector{expr("site", "in", "a")},
		NodeSelectors:   []metav1.LabelSelector{expr("zone", "exists")}}}
	err := CheckL2AnnouncementPolicy(bad)
	if err == nil || !strings.Contains(err.Error(), "spec.ipPoolSelectors[0]") || !strings.Contains(err.Error(), "spec.nodeSelectors[0]") {
		t.Errorf("a bad L2AnnouncementPolicy: %v, want both selectors named", err)
	}
}
