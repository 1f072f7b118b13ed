// Package lab builds small networks out of Linux network namespaces, for
// the end-to-end tests and for `bgplb lab`: hosts (router, nodes, client)
// joined by LANs, processes running inside them, and views of their kernel
// routing tables. It needs root and iproute2; it imports nothing from
// Kubernetes. The daemons subpackage starts real BGP daemons (gobgpd,
// BIRD 2, FRR, ExaBGP) in these hosts; labtest adapts all of it to tests.
//
// # Shape
//
//   - [Netns] is one namespace made with `ip netns add`, so iproute2 and a
//     later process can find it by name. [Netns.Run] runs a command inside,
//     [Netns.Start] a long-running process ([Proc], of package
//     internal/proc) whose output goes to a file under the namespace's
//     scratch [Netns.Dir], and [Netns.Do] runs Go code on a thread switched
//     into the namespace (to open sockets or netlink handles there).
//     [Netns.Close] kills everything inside, whoever started it, then
//     deletes the namespace and its interfaces.
//   - [Lab] is a set of hosts named ID-host; [LAN] is a bridge in a switch
//     namespace of its own with a veth port per host, so a host sees only
//     its own interface, and a port can be unplugged ([LAN.SetLink]) to fail
//     a node. [Open] finds a lab again by ID, from another process.
//   - [Forward] relays TCP from one namespace to another (a node reaching
//     the kube-apiserver on the root namespace's loopback, or `bgplb lab`
//     reaching a lab host) without an address or route in the root
//     namespace. [Netns.Command] prepares an interactive command inside.
//   - Each namespace's files (process logs, daemon configs and sockets) live
//     in its scratch directory, [ScratchDir] of its name, which [OpenNetns]
//     finds again and Close removes.
//   - [Netns.Routes] reads the kernel table (`ip -j route`) into [Route]
//     values, with ECMP next hops resolved whether they came as
//     RTA_MULTIPATH or as nexthop groups; [Netns.WaitRoutes] polls it.
//
// Network hygiene: everything happens inside namespaces the caller creates;
// the root namespace's addresses, routes and sysctls are never touched.
// Tests use 198.51.100.0/24, 203.0.113.0/24 and 2001:db8::/32 only.
//
// # Quirks of this kernel and of iproute2 found on the way
//
//   - The kernel has no dummy interfaces (CONFIG_DUMMY is off) and no VRFs:
//     put service addresses on lo ([Netns.AddLoopbackAddr]) and use
//     namespaces where VRFs would do.
//   - `ip link add a type veth` reads "a" as the abbreviation of "address";
//     interface names always follow the "name" keyword here.
//   - IPv6 duplicate address detection leaves new addresses "tentative" for
//     about a second, and daemons binding them fail meanwhile. New
//     namespaces turn DAD off (accept_dad=0 on "all" and "default": "all"
//     alone does not reach interfaces created later), and addresses are
//     added with nodad; [Netns.WaitAddr] still checks.
//   - The parent-death signal that kills a crashed test's daemons fires when
//     the *thread* that forked them ends, so each Proc keeps its own locked
//     OS thread until the process is reaped (package proc does this for
//     every child of bgplb and its tests).
//   - /proc/sys/net shows the namespace of the thread that opens it, so
//     sysctls are written from inside [Netns.Do] without forking sysctl(8).
//   - A bridge forwards from a port the moment it is up only with STP off
//     (the default); multicast snooping is turned off too, so neighbour
//     discovery never waits for a querier.
package lab
