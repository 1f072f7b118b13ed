package lbmodel

import (
	"net/netip"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
)

// Which endpoints count, for both the speakers (what they announce, with
// which link bandwidth) and the controller (how it explains it):
//
//   - An endpoint counts when it is ready, serving and not terminating
//     ([Usable]).
//   - Kube-proxy's fallback: when a Service has not one such endpoint in an
//     address family, the endpoints of that family that are serving while
//     terminating count instead ([ServingTerminating]). A single-replica
//     rolling update then keeps its route until the new pod is ready,
//     since kube-proxy still forwards to the old one.
//   - For externalTrafficPolicy Local kube-proxy falls back per node: a
//     node with no usable local endpoint forwards to its local
//     serving-terminating ones ([Tally.LocalFallback]). The speakers
//     announce those with GRACEFUL_SHUTDOWN, so that a rolling update
//     moves new flows to the new pod's node without a gap.
//   - Families are counted apart: a dual-stack Service has IPv4 and IPv6
//     EndpointSlices listing the same pods, so adding them up would count
//     every pod twice. An IPv4 address is served by the IPv4 endpoints, an
//     IPv6 one by the IPv6 endpoints.
//   - Within a family an endpoint listed twice (by two slices while the
//     EndpointSlice controller moves it) counts once, at its best state:
//     identified by its targetRef, else by its node and addresses.
//   - FQDN slices count for nothing: kube-proxy ignores them too.

// Usable reports whether an endpoint may receive traffic: ready (unset
// counts as ready), serving (unset follows ready), and not terminating.
func Usable(c discoveryv1.EndpointConditions) bool {
	ready := c.Ready == nil || *c.Ready
	serving := ready
	if c.Serving != nil {
		serving = *c.Serving
	}
	terminating := c.Terminating != nil && *c.Terminating
	return ready && serving && !terminating
}

// ServingTerminating reports whether an endpoint is on its way out but
// still serving: what kube-proxy falls back to when nothing is [Usable].
func ServingTerminating(c discoveryv1.EndpointConditions) bool {
	return c.Serving != nil && *c.Serving && c.Terminating != nil && *c.Terminating
}

// Counts are endpoints that count, by address family.
type Counts struct{ IPv4, IPv6 int }

// Of is the count of a's family: the endpoints that serve a.
func (c Counts) Of(a netip.Addr) int {
	if a.Unmap().Is4() {
		return c.IPv4
	}
	return c.IPv6
}

// Pods is the number of pods: both families of a dual-stack Service list
// the same pods, so it is the larger count, not the sum.
func (c Counts) Pods() int { return max(c.IPv4, c.IPv6) }

func (c Counts) plus(d Counts) Counts { return Counts{c.IPv4 + d.IPv4, c.IPv6 + d.IPv6} }

// NodeEndpoints are one Service's endpoints that count, per node name; the
// key "" holds endpoints on no node (a selectorless Service's hand-made
// slice), which serve Cluster traffic but are no node's own.
type NodeEndpoints map[string]Counts

// On is what counts on the named node.
func (e NodeEndpoints) On(node string) Counts {
	if node == "" {
		return Counts{}
	}
	return e[node]
}

// Total is what counts anywhere, on a node or on none: zero in a family
// means the Service has no endpoint of that family at all.
func (e NodeEndpoints) Total() Counts {
	var t Counts
	for _, c := range e {
		t = t.plus(c)
	}
	return t
}

// family of a slice: 4, 6, or 0 for one that counts for nothing (FQDN). A
// slice without addressType (the API server requires one; hand-made test
// values) takes the family of its first endpoint's address, else counts
// for both.
func family(s *discoveryv1.EndpointSlice) int {
	switch s.AddressType {
	case discoveryv1.AddressTypeIPv4:
		return 4
	case discoveryv1.AddressTypeIPv6:
		return 6
	case discoveryv1.AddressTypeFQDN:
		return 0
	}
	for _, e := range s.Endpoints {
		for _, a := range e.Addresses {
			if x, err := netip.ParseAddr(a); err == nil {
				if x.Unmap().Is4() {
					return 4
				}
				return 6
			}
		}
	}
	return 46
}

// state of an endpoint, best last.
type state uint8

const (
	gone state = iota
	terminating
	usable
)

func stateOf(c discoveryv1.EndpointConditions) state {
	switch {
	case Usable(c):
		return usable
	case ServingTerminating(c):
		return terminating
	}
	return gone
}

// identity names an endpoint for de-duplication within a family, or ""
// when nothing names it (then it is never merged with another).
func identity(e *discoveryv1.Endpoint) string {
	if r := e.TargetRef; r != nil && (r.UID != "" || r.Name != "") {
		return "ref/" + string(r.UID) + "/" + r.Kind + "/" + r.Namespace + "/" + r.Name
	}
	if len(e.Addresses) == 0 {
		return ""
	}
	node := ""
	if e.NodeName != nil {
		node = *e.NodeName
	}
	return "addr/" + node + "/" + strings.Join(e.Addresses, ",")
}

// familyTally collects one family's endpoints of one Service.
type familyTally struct {
	seen  map[string]int // identity -> index in eps
	eps   []tallied
	ready bool // some endpoint is usable
}

type tallied struct {
	node string
	st   state
}

func (f *familyTally) add(e *discoveryv1.Endpoint) {
	st := stateOf(e.Conditions)
	if st == gone {
		return
	}
	f.ready = f.ready || st == usable
	node := ""
	if e.NodeName != nil {
		node = *e.NodeName
	}
	id := identity(e)
	if i, ok := f.seen[id]; ok && id != "" {
		f.eps[i].st = max(f.eps[i].st, st)
		return
	}
	if id != "" {
		if f.seen == nil {
			f.seen = map[string]int{}
		}
		f.seen[id] = len(f.eps)
	}
	f.eps = append(f.eps, tallied{node, st})
}

// count adds to out, for each node, the endpoints that count: the usable
// ones, or the serving-terminating ones when none is usable. It adds to
// local, for each node with no usable endpoint, its serving-terminating
// ones: kube-proxy's fallback for externalTrafficPolicy Local, which is
// per node.
func (f *familyTally) count(out, local NodeEndpoints, v6 bool) {
	want := terminating
	if f.ready {
		want = usable
	}
	ready := map[string]bool{}
	for _, e := range f.eps {
		ready[e.node] = ready[e.node] || e.st == usable
	}
	for _, e := range f.eps {
		if e.st == want {
			out[e.node] = out[e.node].add(v6)
		}
		if e.st == terminating && !ready[e.node] {
			local[e.node] = local[e.node].add(v6)
		}
	}
}

// add is c with one more endpoint of the family.
func (c Counts) add(v6 bool) Counts {
	if v6 {
		c.IPv6++
	} else {
		c.IPv4++
	}
	return c
}

// Fallback says, per family, whether a Service's endpoints that count are
// the serving-terminating fallback (no endpoint of that family is
// [Usable]). kube-proxy forwards to them, but its health check on the
// healthCheckNodePort counts only ready local endpoints: it answers 503
// with "localEndpoints": 0 on the very nodes that still serve.
type Fallback = Families

// Families says something per address family.
type Families struct{ IPv4, IPv6 bool }

// Of is the flag of a's family.
func (f Families) Of(a netip.Addr) bool {
	if a.Unmap().Is4() {
		return f.IPv4
	}
	return f.IPv6
}

// Set raises the flag of a's family.
func (f *Families) Set(a netip.Addr) {
	if a.Unmap().Is4() {
		f.IPv4 = true
	} else {
		f.IPv6 = true
	}
}

// fallback reports whether the family counts its serving-terminating
// endpoints.
func (f *familyTally) fallback() bool { return !f.ready && len(f.eps) > 0 }

// Tally is one Service's endpoints, counted by the rules above.
type Tally struct {
	// Endpoints are those that count, per node.
	Endpoints NodeEndpoints
	// Fallback says, per family, whether Endpoints are the
	// serving-terminating fallback.
	Fallback Fallback
	// LocalFallback are, per node and family, the serving-terminating
	// endpoints of a node without a usable one of that family: where
	// kube-proxy forwards an externalTrafficPolicy Local Service's traffic
	// on that node, while its health check answers 503 there. A node
	// whose last local pod is terminating (a rolling update whose new pod
	// is ready elsewhere) still serves; it should draw no new flows.
	LocalFallback NodeEndpoints
}

// EndpointsOf counts the endpoints of one Service's EndpointSlices by the
// rules above.
func EndpointsOf(ss []discoveryv1.EndpointSlice) NodeEndpoints {
	return CountEndpoints(ss).Endpoints
}

// CountEndpoints tallies one Service's EndpointSlices.
func CountEndpoints(ss []discoveryv1.EndpointSlice) Tally {
	var v4, v6 familyTally
	for i := range ss {
		s := &ss[i]
		fam := family(s)
		for j := range s.Endpoints {
			if fam == 4 || fam == 46 {
				v4.add(&s.Endpoints[j])
			}
			if fam == 6 || fam == 46 {
				v6.add(&s.Endpoints[j])
			}
		}
	}
	t := Tally{Endpoints: NodeEndpoints{}, LocalFallback: NodeEndpoints{}}
	v4.count(t.Endpoints, t.LocalFallback, false)
	v6.count(t.Endpoints, t.LocalFallback, true)
	t.Fallback = Fallback{IPv4: v4.fallback(), IPv6: v6.fallback()}
	return t
}

// EndpointsByService groups EndpointSlices by the Service they name (the
// kubernetes.io/service-name label; a slice without it is skipped) and
// counts each Service's with [EndpointsOf]. A Service with no slice has no
// entry.
func EndpointsByService(ss []discoveryv1.EndpointSlice) map[Key]NodeEndpoints {
	out := map[Key]NodeEndpoints{}
	for k, t := range CountByService(ss) {
		out[k] = t.Endpoints
	}
	return out
}

// CountByService is [CountEndpoints] for the slices of each Service, as
// [EndpointsByService] groups them.
func CountByService(ss []discoveryv1.EndpointSlice) map[Key]Tally {
	bySvc := map[Key][]discoveryv1.EndpointSlice{}
	for i := range ss {
		s := &ss[i]
		svc := s.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		k := Key{Namespace: s.Namespace, Name: svc}
		bySvc[k] = append(bySvc[k], *s)
	}
	out := make(map[Key]Tally, len(bySvc))
	for k, group := range bySvc {
		out[k] = CountEndpoints(group)
	}
	return out
}

// EndpointsByNode counts, per Service and node, the pods that count
// ([Counts.Pods]); endpoints on no node are left out.
func EndpointsByNode(ss []discoveryv1.EndpointSlice) map[Key]map[string]int {
	out := map[Key]map[string]int{}
	for k, eps := range EndpointsByService(ss) {
		for node, c := range eps {
			if node == "" || c.Pods() == 0 {
				continue
			}
			m := out[k]
			if m == nil {
				m = map[string]int{}
				out[k] = m
			}
			m[node] = c.Pods()
		}
	}
	return out
}

// ReadyEndpoints counts the pods of one Service's slices that count and
// are on a node, summed over nodes: what a Local Service needs somewhere.
func ReadyEndpoints(ss []discoveryv1.EndpointSlice) int {
	n := 0
	for node, c := range EndpointsOf(ss) {
		if node != "" {
			n += c.Pods()
		}
	}
	return n
}

// HasEndpoints reports whether one Service's slices have any endpoint that
// counts, on a node or on none: without one, a Cluster Service is
// withdrawn everywhere (reason [ReasonNoReadyEndpoints]), as MetalLB does,
// since every node would only reject its traffic.
func HasEndpoints(ss []discoveryv1.EndpointSlice) bool {
	return EndpointsOf(ss).Total().Pods() > 0
}

// ReasonNoReadyEndpoints is the reason, for machines, that a Service has no
// endpoint that counts anywhere and is therefore announced by no node.
const ReasonNoReadyEndpoints = "NoReadyEndpoints"
