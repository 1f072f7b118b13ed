package lbmodel

import (
	"fmt"
	"time"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bfd"
)

// The CRD's defaults (bfdpolicy_types.go), applied here too: an object
// written before the defaults existed, or built in a test, has nil fields.
const (
	bfdDefaultIntervalMS = 300
	bfdDefaultMultiplier = 3
)

// BFDEchoUnsupported is said of a BFDPolicy with echoMode set.
const BFDEchoUnsupported = "spec.echoMode is ignored: the BFD echo function is not implemented; " +
	"the sessions run with control packets only, at the policy's intervals"

// BFDPolicyMissing is said of a BGPRouter whose spec.bfdPolicy names no
// BFDPolicy: the controller on its ResolvedRefs condition, the speakers in
// their log.
func BFDPolicyMissing(name string) string {
	return fmt.Sprintf("spec.bfdPolicy %q: no such BFDPolicy; the session runs without BFD until it exists", name)
}

// PeerUnresolved names what a BGPRouter spec refers to that does not exist,
// given whether a BFDPolicy of a name does; none when all do.
func PeerUnresolved(s *v1alpha1.BGPRouterSpec, bfdPolicyExists func(string) bool) []string {
	if s.BFDPolicy != "" && !bfdPolicyExists(s.BFDPolicy) {
		return []string{BFDPolicyMissing(s.BFDPolicy)}
	}
	return nil
}

// BFDConfig is the BFD session configuration a BFDPolicy asks for, and what
// of the policy is not honoured (echo mode), for a condition or a log line.
// Out-of-range values the API server would have refused fall back to the
// defaults, so that a session never runs with timers nobody asked for.
func BFDConfig(s *v1alpha1.BFDPolicySpec) (bfd.Config, []string) {
	c := bfd.Config{
		DesiredMinTx:  bfdInterval(s.TransmitInterval),
		RequiredMinRx: bfdInterval(s.ReceiveInterval),
		DetectMult:    bfdDefaultMultiplier,
		Passive:       s.PassiveMode,
	}
	if m := s.DetectMultiplier; m != nil && *m >= 2 && *m <= 255 {
		c.DetectMult = uint8(*m)
	}
	var problems []string
	if s.EchoMode {
		problems = append(problems, BFDEchoUnsupported)
	}
	return c, problems
}

func bfdInterval(ms *int32) time.Duration {
	if ms == nil || *ms < 10 || *ms > 60000 {
		return bfdDefaultIntervalMS * time.Millisecond
	}
	return time.Duration(*ms) * time.Millisecond
}
