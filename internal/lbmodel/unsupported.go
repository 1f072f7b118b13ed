package lbmodel

import (
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
