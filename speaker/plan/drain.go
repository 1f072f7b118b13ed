package plan

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"github.com/bgplb/bgplb/bgp/wire"
	"github.com/bgplb/bgplb/internal/lbmodel"
)

// Drain is this node's RFC 8326 graceful shutdown, as the shell times it:
// the planner has no clock, so the shell says which phase holds now.
type Drain struct {
	Phase DrainPhase
	// Why names what takes the node away ("cordoned", "tainted ..."),
	// for the reason a drained node gives.
	Why string
}

// DrainPhase is where a node is in its drain.
type DrainPhase uint8

const (
	// NotDraining announces as the rules say.
	NotDraining DrainPhase = iota
	// Draining announces what NotDraining would, every route carrying
	// the GRACEFUL_SHUTDOWN community, so that the routers prefer any
	// other path and move new flows away while this node still forwards
	// the old ones. A node excluded from load balancers (lbmodel.
	// ExcludeLabel) announces too in this phase: the label is one of the
	// things that start a drain, and the drain is what makes it gentle.
	Draining
	// Drained announces nothing but the last resorts: an
	// externalTrafficPolicy Local address whose ready endpoints are all on
	// this node stays announced, still marked, since no other node
	// announces it and withdrawing it would cut its traffic while its pods
	// still serve here; routers use it only while nothing better exists,
	// and it goes once a pod elsewhere is ready. A node excluded from load
	// balancers keeps none: the label says not to use it at all.
	Drained
)

func (d DrainPhase) String() string {
	switch d {
	case Draining:
		return "draining"
	case Drained:
		return "drained"
	}
	return "none"
}

// drainReason says why a drained node withdraws address a of a Service
// (eps: its endpoints here, total: anywhere), or "" when it keeps it: not
// drained, or a Local address with no ready endpoint elsewhere.
func (p *planner) drainReason(policy lbmodel.TrafficPolicy, a netip.Addr, eps, total lbmodel.Counts) string {
	if p.drain.Phase != Drained || policy == lbmodel.Local && eps.Of(a) >= total.Of(a) {
		return ""
	}
	return p.reasons.drained
}

// drainedReason is a Service's reason on a drained node.
func drainedReason(node string, d Drain) string {
	why := d.Why
	if why == "" {
		why = "going away"
	}
	return fmt.Sprintf("%s is drained (%s): withdrawn, other nodes serve it", node, why)
}

// markDraining adds GRACEFUL_SHUTDOWN to every route of a draining or
// drained node (the last resorts). Routes keep sharing attributes: each
// distinct *Attrs maps to one new interned set.
func (p *planner) markDraining(res *Result) {
	if p.drain.Phase == NotDraining {
		return
	}
	marked := map[*Attrs]*Attrs{}
	for _, routes := range res.Peers {
		for i := range routes {
			r := &routes[i]
			m, ok := marked[r.Attrs]
			if !ok {
				m = p.intern(withGracefulShutdown(r.Attrs))
				marked[r.Attrs] = m
			}
			r.Attrs = m
		}
	}
}

// withGracefulShutdown is a copy of a (nil: none) with the community in
// its sorted place.
func withGracefulShutdown(a *Attrs) Attrs {
	var out Attrs
	if a != nil {
		out = *a
	}
	out.Communities = sortedSet(append(slices.Clone(out.Communities), wire.CommunityGracefulShutdown), cmp.Compare[wire.Community])
	return out
}
