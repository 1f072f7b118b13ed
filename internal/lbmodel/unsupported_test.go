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
		spec v1alpha1.BGPPeerSpec
		want []string
	}{
		{"nothing unsupported", v1alpha1.BGPPeerSpec{}, nil},
		{"bfdProfile", v1alpha1.BGPPeerSpec{BFDProfile: "fast"}, []string{`spec.bfdProfile "fast" is ignored`}},
		{"gracefulRestart", v1alpha1.BGPPeerSpec{GracefulRestart: true}, []string{"spec.gracefulRestart is ignored"}},
		{"both", v1alpha1.BGPPeerSpec{BFDProfile: "fast", GracefulRestart: true},
			[]string{"spec.bfdProfile", "spec.gracefulRestart"}},
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

func TestCheckL2Advertisement(t *testing.T) {
	good := &v1alpha1.L2Advertisement{Spec: v1alpha1.L2AdvertisementSpec{
		IPPoolSelectors: []metav1.LabelSelector{expr("site", metav1.LabelSelectorOpIn, "a")}}}
	if err := CheckL2Advertisement(good); err != nil {
		t.Errorf("a good L2Advertisement: %v", err)
	}
	bad := &v1alpha1.L2Advertisement{Spec: v1alpha1.L2AdvertisementSpec{
		IPPoolSelectors: []metav1.LabelSelector{expr("site", "in", "a")},
		NodeSelectors:   []metav1.LabelSelector{expr("zone", "exists")}}}
	err := CheckL2Advertisement(bad)
	if err == nil || !strings.Contains(err.Error(), "spec.ipPoolSelectors[0]") || !strings.Contains(err.Error(), "spec.nodeSelectors[0]") {
		t.Errorf("a bad L2Advertisement: %v, want both selectors named", err)
	}
}
