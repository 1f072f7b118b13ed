// Package endpoint holds the one rule for whether an EndpointSlice endpoint
// counts as a backend, shared by the speaker (which announces from it) and
// the controller (which explains why nobody does): were they to differ, the
// explanation would not match what is announced.
package endpoint

import discoveryv1 "k8s.io/api/discovery/v1"

// Usable reports whether an endpoint may receive traffic: ready (unset
// counts as ready), serving, and not terminating.
func Usable(c discoveryv1.EndpointConditions) bool {
	ready := c.Ready == nil || *c.Ready
	serving := ready
	if c.Serving != nil {
		serving = *c.Serving
	}
	terminating := c.Terminating != nil && *c.Terminating
	return ready && serving && !terminating
}

// Node is the node an endpoint is a backend on: its node name, when it
// names one and is usable. An endpoint on no node is no node's to announce.
func Node(e discoveryv1.Endpoint) (string, bool) {
	if e.NodeName == nil || *e.NodeName == "" || !Usable(e.Conditions) {
		return "", false
	}
	return *e.NodeName, true
}
