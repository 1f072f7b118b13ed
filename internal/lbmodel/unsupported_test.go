package lbmodel

import (
	"strings"
	"testing"

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
