package lbmodel

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bfd"
)

func TestBFDConfig(t *testing.T) {
	i32 := func(v int32) *int32 { return &v }
	ms := time.Millisecond
	def := bfd.Config{DesiredMinTx: 300 * ms, RequiredMinRx: 300 * ms, DetectMult: 3}
	for _, tc := range []struct {
		name     string
		spec     v1alpha1.BFDPolicySpec
		want     bfd.Config
		problems []string
	}{
		{"defaults", v1alpha1.BFDPolicySpec{}, def, nil},
		{"all set", v1alpha1.BFDPolicySpec{ReceiveInterval: i32(100), TransmitInterval: i32(50), DetectMultiplier: i32(5), PassiveMode: true},
			bfd.Config{DesiredMinTx: 50 * ms, RequiredMinRx: 100 * ms, DetectMult: 5, Passive: true}, nil},
		{"bounds", v1alpha1.BFDPolicySpec{ReceiveInterval: i32(10), TransmitInterval: i32(60000), DetectMultiplier: i32(255)},
			bfd.Config{DesiredMinTx: 60000 * ms, RequiredMinRx: 10 * ms, DetectMult: 255}, nil},
		{"out of range falls back", v1alpha1.BFDPolicySpec{ReceiveInterval: i32(9), TransmitInterval: i32(60001), DetectMultiplier: i32(256)}, def, nil},
		{"multiplier 1 falls back", v1alpha1.BFDPolicySpec{DetectMultiplier: i32(1)}, def, nil},
		{"echo", v1alpha1.BFDPolicySpec{EchoMode: true}, def, []string{BFDEchoUnsupported}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, problems := BFDConfig(&tc.spec)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("config = %+v, want %+v", got, tc.want)
			}
			if !reflect.DeepEqual(problems, tc.problems) {
				t.Errorf("problems = %q, want %q", problems, tc.problems)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestPeerUnresolved(t *testing.T) {
	exists := func(name string) bool { return name == "fast" }
	for _, tc := range []struct {
		name string
		spec v1alpha1.BGPRouterSpec
		want []string
	}{
		{"no bfdPolicy", v1alpha1.BGPRouterSpec{}, nil},
		{"bfdPolicy exists", v1alpha1.BGPRouterSpec{BFDPolicy: "fast"}, nil},
		{"bfdPolicy missing", v1alpha1.BGPRouterSpec{BFDPolicy: "slow"}, []string{BFDPolicyMissing("slow")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PeerUnresolved(&tc.spec, exists); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
