package lbmodel

import (
	"errors"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// What bgplb does not implement yet, said in one place: the controller
// puts these texts in the objects' Supported condition and the speakers
// may log them, so that neither stays silent and both say the same.

// PeerUnsupported names the settings of a BGPRouter spec that are not
// implemented yet, and what happens instead; none when all are.
func PeerUnsupported(*v1alpha1.BGPRouterSpec) []string {
	// BFD and graceful restart are honoured now; the next setting not
	// implemented goes here.
	return nil
}

// L2Unsupported is said of every L2AnnouncementPolicy.
const L2Unsupported = "L2 announcements are not implemented yet: no node answers ARP or NDP for the addresses " +
	"of the pools this selects; they are reachable only where a BGPAnnouncementPolicy announces them"

// CheckL2AnnouncementPolicy reports what the API server lets through in an
// L2AnnouncementPolicy but the model refuses (its label selectors).
func CheckL2AnnouncementPolicy(a *v1alpha1.L2AnnouncementPolicy) error {
	_, err1 := Selectors("spec.ipPoolSelectors", a.Spec.IPPoolSelectors)
	_, err2 := Selectors("spec.nodeSelectors", a.Spec.NodeSelectors)
	return errors.Join(err1, err2)
}
