package plan

import (
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/bgplb/bgplb/bgp/wire"
)

// ExcludeLabel is the well-known node label that keeps a node out of
// external load balancers; a node carrying it, with any value, announces
// nothing.
const ExcludeLabel = "node.kubernetes.io/exclude-from-external-load-balancers"

// Snapshot is the cluster as one node's speaker sees it. Names (of pools,
// peers, advertisements, Services) are unique, as Kubernetes makes them; a
// repeated name is reported in [Result.Problems] and all but its first
// occurrence ignored.
//
// Plan neither modifies a Snapshot nor keeps any part of it.
type Snapshot struct {
	// Node is the node this speaker runs on. Only this node: what other
	// nodes announce is their own speakers' business, and watching one Node
	// object rather than all of them keeps a DaemonSet's API traffic linear
	// in the cluster's size.
	Node Node
	// Services are the LoadBalancer Services bgplb serves (the shell keeps
	// those for which controller.Handles is true).
	Services []Service
	// Pools are the IPPools in use (the controller's Ready condition
	// True): an address is announced according to the pool it is in.
	Pools []Pool
	// Peers are the BGPPeers; the shell keeps their session settings.
	Peers []Peer
	// Advertisements are the BGPAdvertisements, parsed (see
	// [ParseCommunities] and [ParseLargeCommunities]).
	Advertisements []Advertisement
}

// Node is what the planner needs of a Node object.
type Node struct {
	Name   string
	Labels map[string]string
	// Ready is the Node's Ready condition being True.
	Ready bool
}

// Key names a Service.
type Key struct {
	Namespace, Name string
}

func (k Key) String() string { return k.Namespace + "/" + k.Name }

// compare orders keys by namespace, then name.
func (k Key) compare(o Key) int {
	if c := strings.Compare(k.Namespace, o.Namespace); c != 0 {
		return c
	}
	return strings.Compare(k.Name, o.Name)
}

// TrafficPolicy is a Service's spec.externalTrafficPolicy. The zero value
// is Cluster, the Kubernetes default.
type TrafficPolicy uint8

const (
	Cluster TrafficPolicy = iota
	Local
)

func (p TrafficPolicy) String() string {
	if p == Local {
		return "Local"
	}
	return "Cluster"
}

// Service is what the planner needs of a LoadBalancer Service.
type Service struct {
	Key
	// Addresses are status.loadBalancer.ingress[].ip, in order. Invalid
	// addresses are skipped; IPv4-mapped IPv6 addresses count as IPv4.
	Addresses     []netip.Addr
	TrafficPolicy TrafficPolicy
	// Endpoints counts, per node name, the Service's endpoints that are
	// ready, serving and not terminating (from its EndpointSlices).
	Endpoints map[string]int
}

// Range is an inclusive range of addresses of one family (an IPPool entry,
// as v1alpha1.ParseAddresses returns it).
type Range struct {
	First, Last netip.Addr
}

// Contains reports whether a lies in r; an address of the other family
// never does.
func (r Range) Contains(a netip.Addr) bool {
	return a.BitLen() == r.First.BitLen() && r.First.Compare(a) <= 0 && a.Compare(r.Last) <= 0
}

// valid: both ends valid, of one family, no zone, First <= Last.
func (r Range) valid() bool {
	return r.First.IsValid() && r.Last.IsValid() && r.First.BitLen() == r.Last.BitLen() &&
		r.First.Zone() == "" && r.Last.Zone() == "" && r.First.Compare(r.Last) <= 0
}

func (r Range) overlaps(o Range) bool {
	return r.First.BitLen() == o.First.BitLen() && r.First.Compare(o.Last) <= 0 && o.First.Compare(r.Last) <= 0
}

func (r Range) String() string {
	if r.First == r.Last {
		return r.First.String()
	}
	return r.First.String() + "-" + r.Last.String()
}

// Pool is what the planner needs of an IPPool.
type Pool struct {
	Name   string
	Labels map[string]string
	// Ranges are the pool's addresses; an invalid range is reported and
	// ignored.
	Ranges []Range
}

// Peer is what the planner needs of a BGPPeer: which nodes keep a session
// with it.
type Peer struct {
	Name string
	// NodeSelectors select the nodes that peer with it: a node matching
	// any. Empty means every node; a nil entry matches nothing, as
	// metav1.LabelSelectorAsSelector(nil) does.
	NodeSelectors []labels.Selector
}

// Advertisement is a BGPAdvertisement's spec, parsed.
type Advertisement struct {
	Name string
	// Pools names pools; PoolSelectors match pool labels. A pool named or
	// matched is selected; both empty selects every pool.
	Pools         []string
	PoolSelectors []labels.Selector
	// AggregationLength is the prefix length announced for an IPv4 address,
	// AggregationLengthV6 for an IPv6 one. 0 means the host route (32,
	// 128), the CRD's default: an aggregate of length 0 would be a default
	// route, which no router should take from a Kubernetes node (bgplb
	// router refuses one). Other out-of-range values are reported and the
	// advertisement ignored.
	AggregationLength, AggregationLengthV6 int
	// LocalPref, when set, is the LOCAL_PREF of the routes.
	LocalPref *uint32
	// Communities and LargeCommunities are attached to the routes, in any
	// order, repeats allowed.
	Communities      []wire.Community
	LargeCommunities []wire.LargeCommunity
	// Peers names the peers to announce to; empty means every peer.
	Peers []string
	// NodeSelectors select the nodes that announce: a node matching any.
	// Empty means every node; a nil entry matches nothing.
	NodeSelectors []labels.Selector
}

// Result is what this node announces.
//
// Its slices and *Attrs are shared between routes and with nothing else:
// read them, do not modify them.
type Result struct {
	// Peers has an entry for every peer that selects this node, and only
	// for those: the sessions the speaker keeps. Each holds the routes for
	// that peer in netip.Prefix.Compare order, possibly none (an excluded
	// node keeps its sessions and announces nothing).
	Peers map[string][]Route
	// Services has one decision per Service, ordered by namespace, name.
	Services []ServiceDecision
	// Problems are configuration errors worth telling the operator,
	// sorted, each once.
	Problems []string
}

// Route is one prefix announced to one peer.
type Route struct {
	Prefix netip.Prefix
	// Attrs are the route's attributes. Within one Result, routes with
	// equal attributes share one pointer.
	Attrs *Attrs
	// Bandwidth is the link-bandwidth value (wire.NewLinkBandwidth): this
	// node's ready endpoints summed over Services, at least 1 for each
	// Cluster Service.
	Bandwidth float32
	// Services are the Services whose addresses the prefix covers, ordered
	// by namespace, name.
	Services []Key
}

// Attrs are the path attributes advertisements give a route; the fields
// match announce.Route's, so the shell copies them across as they are.
type Attrs struct {
	// LocalPref is the LOCAL_PREF, nil when no advertisement sets one (the
	// announcer's convention: it then sends its default).
	LocalPref *uint32
	// Communities and LargeCommunities are sorted (large by global, then
	// local parts), without repeats, nil when empty.
	Communities      []wire.Community
	LargeCommunities []wire.LargeCommunity
}

// ServiceDecision says what this node does with one Service.
type ServiceDecision struct {
	Key
	// Announced is true when some address of the Service is announced to
	// some peer.
	Announced bool
	// Peers are the peers its addresses are announced to, sorted.
	Peers []string
	// Reason says, for people, why an address of the Service is not
	// announced from this node ("no ready endpoint on node1
	// (externalTrafficPolicy Local)"); reasons for several addresses are
	// joined by "; ". Empty when every address is announced to some peer.
	Reason string
}
