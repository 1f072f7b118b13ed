package plan

import (
	"net/netip"
	"slices"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

// L2Want is one address the cluster answers ARP or NDP for: every speaker
// computes the same list (but for Interfaces and Here), and the election
// (speaker/l2owner) picks one owner among the candidates.
type L2Want struct {
	Addr netip.Addr
	// Pool is the pool holding Addr.
	Pool string
	// Policies are the L2AnnouncementPolicies selecting the pool, sorted:
	// a node selected by one of them may own Addr.
	Policies []string
	// Nodes, when not nil, are the only nodes that may own Addr: those
	// with a usable endpoint of Addr's family for the Services with
	// externalTrafficPolicy Local using Addr (of several such Services,
	// the nodes serving all of them, else any one).
	Nodes map[string]bool
	// Services are the Services using Addr, in key order.
	Services []lbmodel.Key
	// Here is whether a policy selecting the pool selects this node, and
	// Interfaces are then the interface patterns this node answers on
	// (nil: the interfaces on Addr's subnet).
	Here       bool
	Interfaces []string
}

// L2Plan is what L2 mode needs from one snapshot.
type L2Plan struct {
	// Wants are sorted by address.
	Wants []L2Want
	// Candidate is whether this node may own addresses at all: Ready, not
	// excluded from load balancers, not draining; Policies are then the
	// L2AnnouncementPolicies selecting it, sorted.
	Candidate bool
	Policies  []string
}

// PlanL2 decides the cluster's L2 addresses. An address is in L2 mode when
// some L2AnnouncementPolicy selects its pool; one with no usable endpoint
// anywhere is left out, as BGP withdraws it (lbmodel.ReasonNoReadyEndpoints).
func PlanL2(s Snapshot) L2Plan {
	var out L2Plan
	if len(s.L2Advertisements) == 0 {
		return out
	}
	accepted, _ := lbmodel.CheckPools(s.Pools)
	nodeLabels := labels.Set(s.Node.Labels)
	byAddr := map[netip.Addr]*L2Want{}
	for i := range s.Services {
		sv := &s.Services[i]
		for _, a := range sv.Addresses {
			if sv.Endpoints.Total().Of(a) == 0 && sv.LocalFallback.Total().Of(a) == 0 {
				continue
			}
			w := byAddr[a]
			if w == nil {
				p := poolHolding(accepted, a)
				if p == nil {
					continue
				}
				names := lbmodel.L2Policies(s.L2Advertisements, p.Name, p.Labels)
				if len(names) == 0 {
					continue
				}
				w = &L2Want{Addr: a, Pool: p.Name, Policies: names}
				w.Interfaces, w.Here = lbmodel.L2Interfaces(s.L2Advertisements, p.Name, p.Labels, nodeLabels)
				byAddr[a] = w
			}
			w.Services = append(w.Services, sv.Key)
			if sv.TrafficPolicy == lbmodel.Local {
				w.Nodes = narrow(w.Nodes, serving(sv, a))
			}
		}
	}
	for _, w := range byAddr {
		slices.SortFunc(w.Services, lbmodel.Key.Compare)
		out.Wants = append(out.Wants, *w)
	}
	slices.SortFunc(out.Wants, func(a, b L2Want) int { return a.Addr.Compare(b.Addr) })
	n := &s.Node
	if n.Name != "" && n.Ready && !n.Excluded() && s.Drain.Phase == NotDraining {
		out.Policies = lbmodel.L2NodePolicies(s.L2Advertisements, nodeLabels)
		out.Candidate = len(out.Policies) > 0
	}
	return out
}

// serving are the nodes with a usable endpoint of a's family for a Local
// Service: kube-proxy drops its traffic on any other.
func serving(sv *Service, a netip.Addr) map[string]bool {
	out := map[string]bool{}
	for node := range sv.Endpoints {
		if sv.On(node).Of(a) > 0 {
			out[node] = true
		}
	}
	for node := range sv.LocalFallback {
		if sv.On(node).Of(a) > 0 {
			out[node] = true
		}
	}
	return out
}

// narrow keeps the nodes in both sets, or, when none is, both sets' nodes:
// an address shared by Local Services with pods on different nodes is
// better served on some node than on none.
func narrow(have, more map[string]bool) map[string]bool {
	if have == nil {
		return more
	}
	both := map[string]bool{}
	for n := range have {
		if more[n] {
			both[n] = true
		}
	}
	if len(both) > 0 {
		return both
	}
	for n := range more {
		have[n] = true
	}
	return have
}

func poolHolding(pools []lbmodel.Pool, a netip.Addr) *lbmodel.Pool {
	for i := range pools {
		for _, r := range pools[i].Ranges {
			if r.Contains(a) {
				return &pools[i]
			}
		}
	}
	return nil
}
