package plan

import (
	"net/netip"
	"slices"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

// HealthCheck is what this node's probe of a Service's healthCheckNodePort
// (kube-proxy's health check for externalTrafficPolicy Local, see
// speaker/healthcheck) says, per family of the probed address; the zero
// value objects to nothing (no probe, a pass, or a target trusted until it
// fails).
//
// A Local Service's address is announced only when this node has an
// endpoint of its family and the probe of that family does not object: the
// endpoints say where the pods are, the probe whether this node's data
// plane forwards to them. Cluster Services are not probed: kube-proxy
// serves no health check for them.
type HealthCheck struct {
	IPv4, IPv6 Verdict
}

// Verdict is one family's probe verdict (speaker/healthcheck.Verdict).
type Verdict struct {
	// Reason says why the probe objects, "" when it does not.
	Reason string
	// Waiting: the only objection is a new probe with no answer yet. The
	// address is withheld, but the reason is no failure
	// (ServiceDecision.HealthCheck leaves it out).
	Waiting bool
	// NoReadyLocal: the latest answer is a healthy kube-proxy counting no
	// ready local endpoint. While the family's endpoints are the
	// serving-terminating fallback (Service.Fallback) that is what a
	// serving node answers: kube-proxy forwards to the terminating pods but
	// its health check counts only ready ones. The objection is then
	// ignored, so that a single replica's rolling update keeps its route.
	NoReadyLocal bool
}

// Families says something per address family (lbmodel's, with Of and Set).
type Families = lbmodel.Families

// family indexes per-family pairs: 0 for IPv4, 1 for IPv6.
func family(a netip.Addr) int {
	if a.Is4() {
		return 0
	}
	return 1
}

// of is the verdict for address a's family.
func (h HealthCheck) of(a netip.Addr) Verdict {
	if a.Is4() {
		return h.IPv4
	}
	return h.IPv6
}

// healthObjection is the probe's objection to announcing address a of
// Service s: the zero Verdict when there is none. Only Local Services are
// held back, and not on a "0 local endpoints" while their endpoints of a's
// family are the fallback, the Service's or this node's (leaving): that
// is what kube-proxy answers where it forwards to terminating pods.
func healthObjection(s *Service, a netip.Addr, leaving bool) Verdict {
	if s.TrafficPolicy != lbmodel.Local {
		return Verdict{}
	}
	v := s.HealthCheck.of(a)
	if v.NoReadyLocal && (leaving || s.Fallback.Of(a)) {
		return Verdict{}
	}
	return v
}

// appendReason adds r to rs unless it is empty or there already.
func appendReason(rs []string, r string) []string {
	if r == "" || slices.Contains(rs, r) {
		return rs
	}
	return append(rs, r)
}
