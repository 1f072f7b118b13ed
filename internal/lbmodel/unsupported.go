package lbmodel

import (
	"errors"
	"fmt"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// What bgplb does not implement yet, said in one place: the controller
// puts these texts in the objects' Supported condition and the speakers
// may log them, so that neither stays silent and both say the same.

// PeerUnsupported names the settings of a BGPRouter spec that are not
// implemented yet, and what happens instead; none when all are.
func PeerUnsupported(s *v1alpha1.BGPRouterSpec) []string {
	var out []string
	if s.BFDPolicy != "" {
		out = append(out, fmt.Sprintf("spec.bfdPolicy %q is ignored: BFD is not implemented yet, "+
			"so a dead link is noticed only when the hold time runs out", s.BFDPolicy))
	}
	return out
}

// L2Unsupported is said of every L2AnnouncementPolicy.
const L2Unsupported = "L2 announcements are not implemented yet: no node answers ARP or NDP for the addresses " +
	"of the pools this selects; they are reachable only where a BGPAnnouncementPolicy announces them"

// BFDUnsupported is said of every BFDPolicy.
const BFDUnsupported = "BFD is not implemented yet: no BFD session runs with this policy; " +
	"the BGPRouters naming it notice a dead link only when their hold time runs out"

// CheckL2AnnouncementPolicy reports what the API server lets through in an
// L2AnnouncementPolicy but the model refuses (its label selectors).
func CheckL2AnnouncementPolicy(a *v1alpha1.L2AnnouncementPolicy) error {
	_, err1 := Selectors("spec.ipPoolSelectors", a.Spec.IPPoolSelectors)
	_, err2 := Selectors("spec.nodeSelectors", a.Spec.NodeSelectors)
	return errors.Join(err1, err2)
}
