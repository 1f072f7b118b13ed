package plan

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

// decideServices decides every Service, in key order, and records one
// contribution per (prefix, Service, advertisement) for buildRoutes.
// Processing in key order is what makes a Service's index order its key
// order, so routes list their Services sorted without sorting keys.
func (p *planner) decideServices(svcs []Service) {
	p.setReasons()
	order := sortedUnique(p, svcs, func(s *Service) lbmodel.Key { return s.Key }, lbmodel.Key.Compare,
		func(k lbmodel.Key) string { return "Service " + k.String() })
	p.svcKeys = make([]lbmodel.Key, len(order))
	p.weights = make([][2]int, len(order))
	p.leaving = make([][2]bool, len(order))
	p.mask = make([]byte, len(p.peers))
	p.decisions = make([]ServiceDecision, len(order))
	p.contrib = make([]contr, 0, p.maxContributions(svcs))
	for si, i := range order {
		s := &svcs[i]
		p.svcKeys[si] = s.Key
		eps, leaving := localEndpoints(s, p.node.Name)
		p.weights[si] = [2]int{weight(s.TrafficPolicy, eps.IPv4), weight(s.TrafficPolicy, eps.IPv6)}
		p.leaving[si] = leaving
		p.decisions[si] = p.decide(int32(si), s, eps, s.Endpoints.Total())
	}
}

// localEndpoints are Service s's endpoints on node, per family, and
// whether they are its terminating ones only. For a Local Service a node
// whose pods of a family are all terminating but serving counts them
// (Service.LocalFallback), as kube-proxy forwards to them: it announces
// with GRACEFUL_SHUTDOWN until they are gone, so that a rolling update
// moves new flows to the node of the new pod once that one announces,
// and nothing is withdrawn before then.
func localEndpoints(s *Service, node string) (lbmodel.Counts, [2]bool) {
	if s.TrafficPolicy != lbmodel.Local {
		return s.On(node), [2]bool{}
	}
	lf := s.LocalFallback.On(node)
	return s.On(node), [2]bool{lf.IPv4 > 0, lf.IPv6 > 0}
}

// On is what counts of the Service's endpoints on the named node, per
// family: the weight the node announces. For a Local Service that is its
// serving-terminating pods where it has no usable one (LocalFallback).
func (s *Service) On(node string) lbmodel.Counts {
	eps := s.Endpoints.On(node)
	if s.TrafficPolicy != lbmodel.Local {
		return eps
	}
	lf := s.LocalFallback.On(node)
	return lbmodel.Counts{IPv4: max(eps.IPv4, lf.IPv4), IPv6: max(eps.IPv6, lf.IPv6)}
}

// maxContributions bounds the contributions: every address announced by
// every advertisement that sends somewhere. Sizing up front avoids the
// repeated copying of a grown slice; the bound exceeds the need only by
// the addresses of Services that are not announced, at 32 bytes a record.
func (p *planner) maxContributions(svcs []Service) int {
	if p.reasons.node != "" {
		return 0
	}
	advs := 0
	for i := range p.advs {
		if p.advs[i].sends {
			advs++
		}
	}
	n := 0
	for i := range svcs {
		n += len(svcs[i].Addresses)
	}
	return n * advs
}

// setReasons formats once the reasons that apply to many Services alike.
func (p *planner) setReasons() {
	name := p.node.Name
	switch {
	case p.drain.Phase == Drained:
		p.reasons.node = drainedReason(name, p.drain)
	case p.node.Excluded() && p.drain.Phase != Draining:
		p.reasons.node = fmt.Sprintf("%s is excluded from external load balancers (label %s)", name, lbmodel.ExcludeLabel)
	case len(p.peers) == 0:
		p.reasons.node = fmt.Sprintf("no BGPRouter selects %s", name)
	}
	p.reasons.local = fmt.Sprintf("no ready endpoint on %s (externalTrafficPolicy Local)", name)
	p.reasons.cluster = fmt.Sprintf("%s is not Ready (externalTrafficPolicy Cluster)", name)
	p.reasons.none = lbmodel.ReasonNoReadyEndpoints + ": no ready endpoint on any node"
}

// weight is a Service's share of a route's bandwidth in one family: its
// endpoints of that family on this node, and at least 1 for Cluster, where
// a node without a pod still forwards to pods elsewhere.
func weight(policy lbmodel.TrafficPolicy, eps int) int {
	if policy != lbmodel.Local {
		return max(eps, 1)
	}
	return max(eps, 0)
}

// policyReason says why externalTrafficPolicy keeps this node from
// announcing address a of the Service (eps: its endpoints here, total:
// anywhere), or "". A Service with no endpoint anywhere is withdrawn
// whatever its policy: every node would only reject its traffic, and a
// router with no route says so sooner (MetalLB does the same).
func (p *planner) policyReason(policy lbmodel.TrafficPolicy, a netip.Addr, eps, total lbmodel.Counts) string {
	switch {
	case policy == lbmodel.Local && eps.Of(a) <= 0:
		return p.reasons.local
	case policy != lbmodel.Local && !p.node.Ready:
		return p.reasons.cluster
	case total.Of(a) <= 0:
		return p.reasons.none
	}
	return ""
}

// decide applies the node, Service and address rules in that order, so the
// reason given is the most general one that holds.
func (p *planner) decide(si int32, s *Service, eps, total lbmodel.Counts) ServiceDecision {
	d := ServiceDecision{Key: s.Key}
	if p.reasons.node != "" {
		d.Reason = p.reasons.node
		return d
	}
	if !slices.ContainsFunc(s.Addresses, netip.Addr.IsValid) {
		d.Reason = "no load-balancer address assigned"
		return d
	}
	clear(p.mask)
	var reasons, health []string
	for _, a := range s.Addresses {
		if a = a.Unmap().WithZone(""); !a.IsValid() {
			continue
		}
		local := s.TrafficPolicy == lbmodel.Local
		r := p.policyReason(s.TrafficPolicy, a, eps, total)
		if v := healthObjection(s, a, p.leaving[si][family(a)]); r == "" && v.Reason != "" {
			// The probe's objection only where the address would be sent:
			// elsewhere the pool or advertisement rule is the reason.
			if _, r = p.sender(a); r == "" {
				d.HealthChecked.Set(a)
				r = v.Reason
				if !v.Waiting {
					health = appendReason(health, r)
				}
			}
		}
		if r == "" {
			if r = p.announce(si, a, local); r == "" && local {
				d.HealthChecked.Set(a)
			}
		}
		reasons = appendReason(reasons, r)
	}
	d.Peers = p.peerSet()
	d.Announced = len(d.Peers) > 0
	d.Reason = strings.Join(reasons, "; ")
	d.HealthCheck = strings.Join(health, "; ")
	return d
}

// announce records the contributions for one address of Service si and
// marks the peers they reach in p.mask; it returns why the address goes to
// no peer, or "".
//
// A Local Service's address is announced at host length whatever the
// advertisement's aggregationLength: an aggregate is announced by every
// node that serves some Service in it, so an aggregate carrying a Local
// Service would draw its traffic to nodes without its pods, which drop it.
// Its host route, announced only by nodes with its pods, wins over the
// aggregate at the router by longest match.
func (p *planner) announce(si int32, a netip.Addr, local bool) string {
	pl, r := p.sender(a)
	if r != "" {
		return r
	}
	for _, ai := range pl.advs {
		ad := &p.advs[ai]
		if !ad.sends {
			continue
		}
		bits := ad.v4
		if a.Is6() {
			bits = ad.v6
		}
		if local {
			bits = a.BitLen()
		}
		p.contrib = append(p.contrib, newContr(a, bits, si, ai))
		for peer := range p.peers {
			if p.sendsTo(ai, peer) {
				p.mask[peer] = 1
			}
		}
	}
	return ""
}

// sender is the pool of address a when some advertisement of it sends to
// a peer of this node, else why none does.
func (p *planner) sender(a netip.Addr) (*pool, string) {
	pi := p.poolOf(a)
	if pi < 0 {
		return nil, a.String() + " is in no pool"
	}
	pl := &p.pools[pi]
	if len(pl.advs) == 0 {
		return nil, fmt.Sprintf("no BGPAnnouncementPolicy selects pool %s for %s", pl.name, p.node.Name)
	}
	if !slices.ContainsFunc(pl.advs, func(ai int32) bool { return p.advs[ai].sends }) {
		return nil, fmt.Sprintf("no BGPRouter named by the BGPAnnouncementPolicies of pool %s selects %s", pl.name, p.node.Name)
	}
	return pl, ""
}

// peerSet is the names of the peers marked in p.mask, interned: a
// thousand Services announced to the same peers share one slice.
func (p *planner) peerSet() []string {
	if !slices.Contains(p.mask, 1) {
		return nil
	}
	if got, ok := p.peerSets[string(p.mask)]; ok {
		return got
	}
	var names []string
	for i, on := range p.mask {
		if on == 1 {
			names = append(names, p.peers[i])
		}
	}
	if p.peerSets == nil {
		p.peerSets = map[string][]string{}
	}
	names = slices.Clip(names)
	p.peerSets[string(p.mask)] = names
	return names
}

// buildRoutes groups the contributions by prefix and, for each peer, makes
// one route of those whose advertisement sends to it. Sorting by (prefix,
// Service, advertisement) gives routes in prefix order and each route's
// Services in key order, without maps. A first pass counts routes and keys
// so that each lives in one exactly sized array: grown by append, large
// slices are copied about five times over.
func (p *planner) buildRoutes() [][]Route {
	slices.SortFunc(p.contrib, compareContr)
	counts := make([]int, len(p.peers))
	total, keys := 0, 0
	p.eachGroup(func(group []contr) {
		for peer := range p.peers {
			if n := p.servicesTo(group, peer); n > 0 {
				counts[peer]++
				total++
				keys += n
			}
		}
	})
	all := make([]Route, total)
	out := make([][]Route, len(p.peers))
	for peer, n := range counts {
		if n > 0 { // a peer without routes gets nil, not an empty slice
			out[peer], all = all[:0:n], all[n:]
		}
	}
	p.keys = make([]lbmodel.Key, 0, keys)
	p.eachGroup(func(group []contr) {
		for peer := range p.peers {
			if r, ok := p.route(group, peer); ok {
				out[peer] = append(out[peer], r)
			}
		}
	})
	return out
}

// eachGroup calls f with each run of contributions to one prefix.
func (p *planner) eachGroup(f func(group []contr)) {
	for i := 0; i < len(p.contrib); {
		j := i + 1
		for j < len(p.contrib) && p.contrib[j].samePrefix(&p.contrib[i]) {
			j++
		}
		f(p.contrib[i:j])
		i = j
	}
}

// servicesTo counts the Services of group whose contributions reach peer:
// route's loop without building anything.
func (p *planner) servicesTo(group []contr, peer int) int {
	n, last := 0, int32(-1)
	for _, c := range group {
		if c.svc != last && p.sendsTo(c.adv, peer) {
			n++
			last = c.svc
		}
	}
	return n
}

// route makes the route for one prefix (group: its contributions) to one
// peer, if any contribution reaches the peer. Route.Services are windows
// into one shared backing array, capped so an append by the caller copies.
func (p *planner) route(group []contr, peer int) (Route, bool) {
	start := len(p.keys)
	set := p.advSet[:0]
	fam := 0
	if group[0].v6 {
		fam = 1
	}
	bw, last, leaving := 0, int32(-1), true
	for _, c := range group {
		if !p.sendsTo(c.adv, peer) {
			continue
		}
		if c.svc != last {
			p.keys = append(p.keys, p.svcKeys[c.svc])
			bw += p.weights[c.svc][fam]
			leaving = leaving && p.leaving[c.svc][fam]
			last = c.svc
		}
		set = append(set, c.adv)
	}
	p.advSet = set
	if last < 0 {
		return Route{}, false
	}
	slices.Sort(set)
	set = slices.Compact(set)
	end := len(p.keys)
	prefix := group[0].prefix()
	attrs := p.attrsFor(set, prefix, peer)
	if leaving {
		// Every Service of the route is served here by terminating pods
		// only: another node's path, if any, should win.
		attrs = p.gracefulShutdown(attrs)
	}
	return Route{
		Prefix:    prefix,
		Attrs:     attrs,
		Bandwidth: float32(bw),
		Services:  p.keys[start:end:end],
	}, true
}

func (p *planner) result() Result {
	routes := p.buildRoutes()
	res := Result{Peers: make(map[string][]Route, len(p.peers)), Services: p.decisions}
	for i, name := range p.peers {
		res.Peers[name] = routes[i]
	}
	slices.Sort(p.problems)
	res.Problems = slices.Compact(p.problems)
	return res
}
