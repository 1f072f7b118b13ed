package plan

import (
	"net/netip"

	"github.com/bgplb/bgplb/bgp/wire"
	"github.com/bgplb/bgplb/internal/lbmodel"
)

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
	Node lbmodel.Node
	// Services are the LoadBalancer Services bgplb serves (the shell keeps
	// those for which lbmodel.Handles is true).
	Services []Service
	// Pools are every LoadBalancerPool that converts (lbmodel.PoolFrom),
	// whatever the controller says of it: the planner applies the pool rule
	// (lbmodel.CheckPools) itself, so that it holds while the controller is
	// down. An address is announced according to the pool it is in.
	Pools []lbmodel.Pool
	// Peers are the BGPRouters in force (lbmodel.PeerFrom, the last good
	// version of a bad one); the shell keeps their session settings.
	Peers []lbmodel.Peer
	// Advertisements are the BGPAnnouncementPolicies in force
	// (lbmodel.AdvertisementFrom, the last good version of a bad one).
	Advertisements []lbmodel.Advertisement
	// Drain is the node's graceful shutdown (RFC 8326), if any.
	Drain Drain
	// L2Advertisements are the L2AnnouncementPolicies in force, for
	// PlanL2 (Plan, the BGP side, does not read them).
	L2Advertisements []lbmodel.L2Advertisement
	// Links are this node's interfaces that can answer ARP and NDP, for
	// PlanL2.
	Links []Link
}

// Service is what the planner needs of a LoadBalancer Service.
type Service struct {
	lbmodel.Key
	// Addresses are status.loadBalancer.ingress[].ip, in order
	// (lbmodel.Assigned).
	Addresses     []netip.Addr
	TrafficPolicy lbmodel.TrafficPolicy
	// Endpoints counts, per node name and family, the Service's endpoints
	// that count (lbmodel.EndpointsOf: ready ones, else serving while
	// terminating; each pod once per family).
	Endpoints lbmodel.NodeEndpoints
	// Fallback says, per family, that Endpoints counts the
	// serving-terminating fallback (lbmodel.CountEndpoints), which
	// kube-proxy's health check does not count.
	Fallback lbmodel.Fallback
	// LocalFallback counts, per node name and family, the serving-
	// terminating endpoints of a node with no usable one of the family
	// (lbmodel.Tally). This node announces a Local Service's address
	// for them, marked GRACEFUL_SHUTDOWN: routers prefer any node with a
	// ready pod, and use this one only while none announces, as
	// kube-proxy forwards here to the terminating pods meanwhile.
	LocalFallback lbmodel.NodeEndpoints
	// HealthCheck is this node's probe of the Service's kube-proxy health
	// check (Local Services only); the zero value objects to nothing.
	HealthCheck HealthCheck
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
	// node's endpoints of the prefix's family summed over Services, at
	// least 1 for each Cluster Service.
	Bandwidth float32
	// Services are the Services whose addresses the prefix covers, ordered
	// by namespace, name.
	Services []lbmodel.Key
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
	lbmodel.Key
	// Announced is true when some address of the Service is announced to
	// some peer.
	Announced bool
	// Peers are the peers its addresses are announced to, sorted.
	Peers []string
	// Reason says, for people, why an address of the Service is not
	// announced from this node ("no ready endpoint on node1
	// (externalTrafficPolicy Local)"); reasons for several addresses are
	// joined by "; ". Empty when every address is announced to some peer.
	// A Service with no endpoint anywhere has a reason starting with
	// lbmodel.ReasonNoReadyEndpoints.
	Reason string
	// HealthCheck holds, joined by "; ", the reasons among Reason that
	// come from the Service's HealthCheck: the addresses this node's data
	// plane does not serve although its endpoints say it should, and that
	// would be sent to a peer but for that. A probe still waiting for its
	// first answer withholds without a reason here: nothing failed yet.
	HealthCheck string
	// HealthChecked are the families in which the health check decides:
	// a Local Service's address of the family is sent to some peer, or
	// would be but for the health check. The speaker probes those and no
	// others: where the endpoints, pools or advertisements already keep an
	// address from being announced, the probe has nothing to say.
	HealthChecked Families
}
