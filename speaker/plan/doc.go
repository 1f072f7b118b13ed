// Package plan decides what one node's speaker announces to each of its BGP
// peers. It is the pure core of `bgplb speaker`: a [Snapshot] of the cluster
// as this node sees it goes in, a [Result] comes out. No Kubernetes client,
// no clock, no goroutines, no network: the watchers that fill the snapshot
// and the announcer that sends the result are thin shells around [Plan], and
// everything decided here is table-tested without a cluster.
//
// # Who announces
//
// A node carrying the label lbmodel.ExcludeLabel (any value) announces nothing:
// it is the upstream Kubernetes way of taking a node out of external load
// balancers, and an operator draining a node expects it to be honoured.
//
// Which endpoints count is lbmodel's rule (lbmodel.EndpointsOf), the one
// the controller explains with: ready, serving, non-terminating ones, else,
// when a Service has none in a family, those serving while terminating
// (kube-proxy's fallback); families are counted apart, each pod once.
//
// A Service with externalTrafficPolicy Cluster is announced when this node
// is Ready and the Service has an endpoint somewhere (on any node, or on
// none for a selectorless Service): kube-proxy on any node forwards to a
// pod anywhere, and with no pod at all every node would only reject the
// traffic, so the address is withdrawn everywhere, with a reason starting
// with lbmodel.ReasonNoReadyEndpoints, until an endpoint is ready again
// (as MetalLB does). A Service with Local is announced only when this
// node has an endpoint of it, whatever the node's own Ready condition:
// with Local, traffic arriving at a node without a pod is dropped, and a
// pod that is serving proves the node forwards. Both are decided per
// address, with the endpoints of the address's family.
//
// A node whose pods of a Local Service are all terminating but serving
// ([Service.LocalFallback]: a rolling update has started their
// replacement, maybe on another node) keeps announcing the Service's
// address, as kube-proxy keeps forwarding to them, but with the
// GRACEFUL_SHUTDOWN community (RFC 8326) on a route all of whose Services
// are in that state: routers prefer any node that announces it plainly,
// so new flows move to the new pod once its node announces, and none is
// dropped in between (make before break). The route is withdrawn when the
// pods are gone.
//
// A Local Service's address is also held back while this node's probe of
// kube-proxy's health check for it objects ([Service.HealthCheck], the
// verdict of speaker/healthcheck, for the address's family): the endpoints
// say where the pods are, the probe whether this node's data plane forwards
// to them. Its "0 local endpoints" does not hold back a family whose
// endpoints are the serving-terminating fallback ([Service.Fallback]), or
// on this node only terminating ones ([Service.LocalFallback]): kube-proxy
// forwards to those but its health check does not count them.
// The probe is the reason only where the address would otherwise be sent
// to a peer ([ServiceDecision.HealthChecked]); [ServiceDecision.HealthCheck]
// tells those reasons apart.
//
// A node going away is drained (RFC 8326) through [Snapshot.Drain], which
// the shell times: while [Draining] every route carries the
// GRACEFUL_SHUTDOWN community, so that routers prefer other nodes for new
// flows while this one still forwards the old ones (the exclusion label
// then does not stop the announcements: the drain is how it takes effect);
// once [Drained] nothing is announced, every Service saying why.
//
// # What is announced, and to whom
//
// For every address of an announced Service: its pool is the pool whose
// ranges contain it, among the pools the controller's own rule accepts
// (lbmodel.CheckPools: of two overlapping pools the older keeps the
// addresses, by creationTimestamp then name, and the other is not used; a
// problem is reported). The planner applies that rule itself rather than
// read the controller's verdict from the pools' status, so that it holds
// while the controller is down. Every advertisement that selects that pool
// and this node contributes a route
// to each peer it names (none named: every peer), as long as the peer's own
// node selectors select this node. The prefix is the address masked to the
// advertisement's aggregation length for its family, so several Services in
// one aggregate make one route that lists them all.
//
// A Local Service is never aggregated: its address is announced at host
// length (/32, /128) whatever the aggregation length. An aggregate is
// announced by every node serving some Service in it; were a Local Service
// in it, nodes without its pods would draw its traffic and drop it. Its
// host route, from the nodes with its pods only, wins at the router by
// longest match over the aggregates of the Cluster Services around it.
//
// Routes to one peer for one prefix are merged: communities and large
// communities are the sorted union of every contributing advertisement's,
// LOCAL_PREF the highest that any sets (two different values are reported as
// a problem, naming both advertisements). Routes with equal attributes
// share one *[Attrs] (as BIRD routes share attribute sets): tens of
// thousands of routes usually carry two or three sets, and a consumer can
// convert or group them by pointer.
//
// # Link bandwidth
//
// [Route.Bandwidth] is the number of this node's endpoints of the route's
// family summed over the Services the route carries, counting at least 1
// for a Cluster Service (a node with no local pod still forwards its
// share). A dual-stack Service's pods count once in each family's route. Sent as the
// link-bandwidth extended community it lets a router that weights ECMP by
// bandwidth (bgplb router does) weight each node by its pods.
//
// # Explaining
//
// Every Service gets a [ServiceDecision]: announced or not, to which peers,
// and in words why an address is not announced from this node, for the
// shell to put in an event or a log line. [Result.Problems] lists what is
// wrong in the configuration itself (an advertisement naming a peer that
// does not exist, disagreeing LOCAL_PREFs, overlapping pools).
//
// The inputs are lbmodel's values, the ones the controller reads too:
// the node, pools, peers and advertisements (the shell passes the last good
// version of a broken advertisement or peer, lbmodel.LastGood).
//
// The result is deterministic: the order of the input slices does not
// change it, and nothing in it comes from map iteration.
package plan
