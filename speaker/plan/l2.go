package plan

import (
	"net/netip"
	"path"
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
	// Policies are the election's tokens for Addr (L2Token: each
	// L2AnnouncementPolicy selecting the pool, with the pool), sorted: a
	// node whose candidacy holds one of them may own Addr.
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
	// excluded from load balancers, not draining, and able to answer for
	// some pool. Policies are then its tokens, sorted: for each
	// L2AnnouncementPolicy selecting it and each pool the policy selects,
	// one token when a link of this node (Snapshot.Links) can answer for
	// the pool (L2Token). A node that could win an address but answer on
	// no interface would leave it silent; it is no candidate instead.
	Candidate bool
	Policies  []string
}

// Link is one of the node's interfaces that can answer ARP and NDP: up,
// not loopback, with an Ethernet address (l2.Interfaces tells them).
type Link struct {
	Name string
	// Prefixes are its addresses with their subnets.
	Prefixes []netip.Prefix
}

// L2Token names a (policy, pool) pair in the election: a want carries the
// tokens of the policies selecting its pool, a node's candidacy those it
// can answer for.
func L2Token(policy, pool string) string { return policy + "/" + pool }

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
				for i, n := range names {
					names[i] = L2Token(n, p.Name)
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
		out.Policies = candidacy(s.L2Advertisements, accepted, nodeLabels, s.Links)
		out.Candidate = len(out.Policies) > 0
	}
	return out
}

// candidacy are the tokens of the (policy, pool) pairs this node can
// answer for, sorted.
func candidacy(advs []lbmodel.L2Advertisement, pools []lbmodel.Pool, nodeLabels labels.Set, links []Link) []string {
	var out []string
	for i := range advs {
		a := &advs[i]
		if !a.SelectsNode(nodeLabels) {
			continue
		}
		for j := range pools {
			p := &pools[j]
			if a.SelectsPool(p.Name, p.Labels) && canAnswer(a.Interfaces, p.Ranges, links) {
				out = append(out, L2Token(a.Name, p.Name))
			}
		}
	}
	slices.Sort(out)
	return out
}

// canAnswer is l2.Select's rule for a whole pool: with patterns, some link
// matches one; without, some link has a subnet (not a host prefix) holding
// an address of the pool.
func canAnswer(patterns []string, ranges []lbmodel.Range, links []Link) bool {
	for _, l := range links {
		if len(patterns) > 0 {
			if slices.ContainsFunc(patterns, func(p string) bool { ok, _ := path.Match(p, l.Name); return ok || p == l.Name }) {
				return true
			}
			continue
		}
		for _, pf := range l.Prefixes {
			if pf.IsSingleIP() {
				continue
			}
			pf = pf.Masked()
			for _, r := range ranges {
				if r.First.Is4() == pf.Addr().Is4() && pf.Addr().Compare(r.Last) <= 0 && lastAddr(pf).Compare(r.First) >= 0 {
					return true
				}
			}
		}
	}
	return false
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// serving are the nodes with a usable endpoint of a's family for a Local
// Service (kube-proxy drops its traffic on any other): those with a ready
// one, or, while no node has one, those still serving with terminating
// pods (LocalFallback). BGP prefers the former by marking the latter
// GRACEFUL_SHUTDOWN; an L2 address has one owner, so the rule must choose.
func serving(sv *Service, a netip.Addr) map[string]bool {
	out := map[string]bool{}
	for node, c := range sv.Endpoints {
		if c.Of(a) > 0 {
			out[node] = true
		}
	}
	if len(out) > 0 {
		return out
	}
	for node, c := range sv.LocalFallback {
		if c.Of(a) > 0 {
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
