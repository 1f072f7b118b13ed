// Package seed is the home lab of the seed write-up in network namespaces:
// the topology the end-to-end tests of `bgplb speaker` start from, and the
// one `bgplb lab` brings up, shows and tears down. It imports no "testing"
// (seedtest adapts it to tests).
//
// # Topology
//
// One LAN, a bridge in its own switch namespace, 198.51.100.0/24 and
// 2001:db8:51::/64:
//
//	router   198.51.100.1    2001:db8:51::1    IP forwarding, sends no ICMP redirects
//	router2  198.51.100.2    2001:db8:51::2    with Options.Routers = 2: the seed's backup 4G router
//	node1    198.51.100.11   2001:db8:51::11   default route via router; runs the speaker
//	node2    198.51.100.12   2001:db8:51::12   likewise
//	client   198.51.100.100  2001:db8:51::100  default route via router, accepts no redirects
//
// The Service pool 203.0.113.0/24 (and 2001:db8:100::/48) is on no link:
// it is reached only through routes a router learns. Hosts other than the
// routers accept no ICMP redirects and routers send none (IPv4), so traffic
// from the client to a Service address keeps going through the router as
// it does in the write-up, and moves when the router's route moves, instead
// of sticking to the node a redirect once named.
//
// # The API link
//
// The kube-apiserver runs in the caller's (root) namespace, bound to an
// address on a veth whose other end is a port of a second bridge, the "api"
// LAN in switch namespace ID-sw-api; node1 and node2 join it with an
// interface api0. It is a /29 out of 198.51.100.64/26 (APIRange), the first
// one that holds no LAN host and that no address of the root namespace
// overlaps, chosen under a file lock so that labs built at once never pick
// the same one: its first address is the root end (APIServerAddr), the
// second node1's, the third node2's. The root namespace gains that one
// interface, its address and the connected route of its /29, nothing else;
// IPv6 is off on it, so it sends nothing unasked. The LAN itself carries no
// root-namespace port, so what a test sees on it (ARP, NDP, BGP) is only
// the lab's hosts.
//
// # Lifetime
//
// Everything is named after the lab's ID (prefix + 6 random hex digits):
// namespaces ID-router, ID-node1, …, ID-sw-lan, ID-sw-api, and the root
// veth ID-api. Close stops what the lab started (DNS responders, a control
// plane) and deletes the veth and the namespaces, which kills every process
// left inside them. Open(ID) finds a lab again from another process, after
// the one that built it died, and its Close removes it the same way.
//
// # Kubernetes pieces
//
// StartControlPlane runs etcd and kube-apiserver (package controlplane)
// bound to APIServerAddr, reachable from the nodes and from the root
// namespace.
// AddVIP does kube-proxy's part: the Service address on a device kube-ipvs0
// of the node, left down as kube-proxy leaves it, so the node accepts
// traffic to it. This kernel has no dummy interfaces (CONFIG_DUMMY is off),
// so kube-ipvs0 is a dummy where possible and otherwise an ifb, or at
// worst a port-less bridge: each carries local addresses the same way.
// StartDNS stands in for the write-up's Pi-hole: a DNS responder on a VIP
// inside a node that names the node in every answer, and Dig asks it from
// a host, so a test sees which node the route led to.
package seed
