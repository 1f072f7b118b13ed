package plan

import (
	"net/netip"
	"slices"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

// HealthCheck is what this node's probe of a Service's healthCheckNodePort
// (kube-proxy's health check for externalTrafficPolicy Local, see
// speaker/healthcheck) says, per family of the probed address: why it says
// this node does not serve the Service, or "" when it does not object
// (it passes, is not made, or has no answer yet and is trusted).
//
// A Local Service's address is announced only when this node has an
// endpoint of its family and the probe of that family does not object: the
// endpoints say where the pods are, the probe whether this node's data
// plane forwards to them. Cluster Services are not probed: kube-proxy
// serves no health check for them.
type HealthCheck struct {
	IPv4, IPv6 string
}

// of is the objection for address a's family.
func (h HealthCheck) of(a netip.Addr) string {
	if a.Is4() {
		return h.IPv4
	}
	return h.IPv6
}

// healthReason is why the health check keeps address a of Service s from
// being announced, or "". Only Local Services are held back, and only
// once their endpoints would let the address go (policyReason first).
func healthReason(s *Service, a netip.Addr) string {
	if s.TrafficPolicy != lbmodel.Local {
		return ""
	}
	return s.HealthCheck.of(a)
}

// appendReason adds r to rs unless it is empty or there already.
func appendReason(rs []string, r string) []string {
	if r == "" || slices.Contains(rs, r) {
		return rs
	}
	return append(rs, r)
}
