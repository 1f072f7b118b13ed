// Package lbmodel is bgplb's one model of the cluster: it turns Services,
// EndpointSlices, Nodes and the bgplb custom resources into validated plain
// values, once, and holds the rules that the controller and the speakers
// must apply alike: which Services are bgplb's (the load-balancer class),
// what their annotations ask for, which endpoints count, which pool an
// address belongs to when pools overlap, which pools, peers and nodes an
// advertisement selects, and which version of a bad advertisement or peer
// stays in force.
//
// The controller (and its allocator) and the speaker (and its planner)
// import this package and never each other: were each to read the objects
// its own way, the controller's explanation on a Service could drift from
// what the speakers do.
//
// Everything here is pure: no client, no clock, no goroutines. The one
// piece of state, [LastGood], is a small cache its owner keeps.
package lbmodel
