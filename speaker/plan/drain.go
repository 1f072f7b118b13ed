package plan

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/bgplb/bgplb/bgp/wire"
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
	// Drained announces nothing.
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

// drainedReason is every Service's reason on a drained node.
func drainedReason(node string, d Drain) string {
	why := d.Why
	if why == "" {
		why = "going away"
	}
	return fmt.Sprintf("%s is drained (%s): its routes are withdrawn", node, why)
}

// markDraining adds GRACEFUL_SHUTDOWN to every route of a draining node.
// Routes keep sharing attributes: each distinct *Attrs maps to one new
// interned set.
func (p *planner) markDraining(res *Result) {
	if p.drain.Phase != Draining {
		return
	}
	for _, routes := range res.Peers {
		for i := range routes {
			routes[i].Attrs = p.gracefulShutdown(routes[i].Attrs)
		}
	}
}

// gracefulShutdown is a with GRACEFUL_SHUTDOWN added, interned: routes
// keep sharing attributes, each distinct *Attrs mapping to one new set.
func (p *planner) gracefulShutdown(a *Attrs) *Attrs {
	if m, ok := p.gshut[a]; ok {
		return m
	}
	m := p.intern(withGracefulShutdown(a))
	if p.gshut == nil {
		p.gshut = map[*Attrs]*Attrs{}
	}
	p.gshut[a] = m
	return m
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
