package lbmodel

import discoveryv1 "k8s.io/api/discovery/v1"

// Usable reports whether an endpoint may receive traffic: ready (unset
// counts as ready), serving (unset follows ready), and not terminating.
// The speakers announce from it and the controller explains with it: were
// the two to differ, the explanation would not match what is announced.
func Usable(c discoveryv1.EndpointConditions) bool {
	ready := c.Ready == nil || *c.Ready
	serving := ready
	if c.Serving != nil {
		serving = *c.Serving
	}
	terminating := c.Terminating != nil && *c.Terminating
	return ready && serving && !terminating
}

// EndpointNode is the node an endpoint is a backend on: its node name,
// when it names one and is usable. An endpoint on no node is no node's to
// announce.
func EndpointNode(e discoveryv1.Endpoint) (string, bool) {
	if e.NodeName == nil || *e.NodeName == "" || !Usable(e.Conditions) {
		return "", false
	}
	return *e.NodeName, true
}

// EndpointsByNode counts, per Service and node, the usable endpoints of
// EndpointSlices (a slice names its Service by the
// kubernetes.io/service-name label; one without it is skipped).
func EndpointsByNode(ss []discoveryv1.EndpointSlice) map[Key]map[string]int {
	out := map[Key]map[string]int{}
	for i := range ss {
		s := &ss[i]
		svc := s.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		key := Key{Namespace: s.Namespace, Name: svc}
		for _, e := range s.Endpoints {
			node, ok := EndpointNode(e)
			if !ok {
				continue
			}
			m := out[key]
			if m == nil {
				m = map[string]int{}
				out[key] = m
			}
			m[node]++
		}
	}
	return out
}

// ReadyEndpoints counts the usable endpoints of slices that are on a node,
// summed over nodes: what EndpointsByNode counts for one Service.
func ReadyEndpoints(ss []discoveryv1.EndpointSlice) int {
	n := 0
	for i := range ss {
		for _, e := range ss[i].Endpoints {
			if _, ok := EndpointNode(e); ok {
				n++
			}
		}
	}
	return n
}
