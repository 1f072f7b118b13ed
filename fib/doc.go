// Package fib programs the router's routes into a Linux kernel routing
// table over rtnetlink, the job FRR's Zebra did for GoBGP in the seed.
//
// # What is ours
//
// Our routes carry protocol [ProtoBGP] (186, "proto bgp" in iproute2), a
// configured table and metric; routes with another protocol or metric are
// never read, replaced or deleted. Our nexthop objects carry the same
// protocol and ids from a range we own (by default the ids whose top byte is
// the protocol number). Nothing is registered globally.
//
// # Batches
//
// [FIB.Apply] packs many route messages into one datagram (BatchSize, at
// most 256 KiB) without NLM_F_ACK: the kernel processes the datagram before
// send returns and answers only the messages that fail, in order, each
// carrying its request's sequence number, which maps it back to its change.
// Only the last message of a datagram asks for an ACK, so its arrival means
// every answer is in. NETLINK_CAP_ACK keeps error answers small and
// NETLINK_EXT_ACK adds the kernel's reason. If the receive buffer still
// overflows (ENOBUFS), answers were lost: the datagram is replayed with an
// ACK on every message, in pieces that halve until they fit. Replaying is
// safe because every request is idempotent: routes and objects are written
// with NLM_F_REPLACE, and deleting a route that is gone is not a failure.
//
// The socket is a raw NETLINK_ROUTE socket from golang.org/x/sys/unix,
// registered with Go's poller for deadlines, with messages built in place in
// one reused buffer (encoding allocates nothing; see TestEncodeNoAllocs).
// vishvananda/netlink and jsimonetti/rtnetlink send one route per request
// and wait for its ACK; mdlayher/netlink can send several messages at once
// but builds each as its own value, and the sequence bookkeeping above
// would still be ours. What is left to write is small, so it is written here.
//
// # Next hops
//
// With nexthop objects (Linux 5.3+, probed at [Open]), every gateway is one
// object and every distinct weighted set of gateways one group; routes point
// at them with RTA_NH_ID, single-hop routes included, so that one mode
// covers both. Objects are content-addressed and reference counted in a
// pure table (nhtable.go): a route whose set changes is re-installed
// pointing at the group of its new set, atomically in the kernel, and a
// group is deleted when its last route leaves; a group changes in place
// only when every one of its routes changes the same way (resilient groups,
// below). Objects
// are created before the routes that use them and deleted after.
// Without nexthop objects (or with [NextHopOff]) next hops are written
// inline: RTA_GATEWAY, or RTA_MULTIPATH for ECMP. Either way an IPv4 route
// may use an IPv6 gateway (RFC 8950, RTA_VIA inline).
//
// # Resilient groups
//
// Where the kernel has them (Linux 5.13+, probed at [Open]) and unless
// Config.Resilient says Off, groups are resilient (NHA_RES_GROUP): flows
// hash to a table of buckets, each holding one member, and a member that
// leaves gives up only its own buckets; a hash-threshold (mpath) group
// recomputes every member's share of the hash space and moves flows
// between the members that stay. The kernel keeps the buckets only of a
// group changed in place, so when changes move every route of a group to
// one new set with no group yet (a peer leaving or joining), the group
// takes the new set in place instead: its routes are not written at all.
// A peer's routes may be swept (or announced) over several Apply calls:
// while a [FIB.Hold] is out, and for moves in bulk that drop no gateway (a
// peer joining, weights changing), changes that move part of a group's
// routes to one new set are held back (the routes stay on the group) until
// the rest follow, and written as ordinary changes if they do not
// (groupmove.go). A gateway that
// becomes unusable leaves its groups in place too. The bucket count cannot
// change in place, nor can a group's type: after such a change of
// configuration, Open moves routes to new groups, make-before-break; new
// timers are written in place. The kernel takes longer to replace a group
// than to create one (it waits for readers of the old one): a node that
// leaves 1,024 single-route groups at once costs about 120 ms in resilient
// mode against 10 ms of new mpath groups and route writes, while 100k
// routes through one group cost one replace instead of 100k route writes
// (BenchmarkGroupChurn).
//
// Weights come from the BGP link-bandwidth community on any positive scale;
// they are reduced to the smallest integers with the same ratios and scaled
// into the kernel's 1..256 when larger, so {1,2} and {1000,2000} share one
// group. A set in which any path has no weight is unweighted.
//
// Gateways must be on-link. Inline, the kernel finds the interface; a
// nexthop object must name it, so the FIB looks the gateway up as
// `ip route get` does and refuses gateways reached through another router.
//
// An IPv6 link-local gateway is not looked up: every LAN has fe80::/64, and
// the first match is as good as any other. It must carry its interface as
// the address's zone (fe80::2%eth1; a link-local gateway without one is
// refused with ErrInvalidRoute, and only link-local gateways take a zone).
// The zone, a name or else a decimal index in the FIB's namespace, is
// resolved with an RTM_GETLINK when the gateway is first used and on every
// full comparison (which link changes lead to), and written as RTA_OIF,
// rtnh_ifindex or NHA_OIF. The zone is part of the gateway: fe80::2%eth0
// and fe80::2%eth1 are two gateways, with two objects. Reading back, the
// interface index becomes the zone again (a table of the namespace's links
// names it), so the kernel compares equal to the desired state. A gateway
// whose interface is missing, renamed or down is unusable, and its routes
// are installed without it, never on another interface, until it is back.
//
// # The kernel is the truth
//
// The FIB keeps the desired state, what Apply was asked for: prefix -> an
// interned hop set (in nexthop mode the set is our kernel object), 16 bytes
// a route. [FIB.Maintain] subscribes to the kernel's route, nexthop, link
// and address notifications on a second socket and keeps the kernel equal
// to that state: a route of ours deleted or changed behind our back is
// written again within the coalesce time (20 ms); link and address changes,
// our objects deleted by hand, and a notification socket overrun (ENOBUFS)
// lead to a full comparison ([FIB.Sync]), which also runs periodically.
// Writes the kernel refused are retried with backoff. The kernel echoes
// every change we make to the monitor socket too, with our writer's port id
// in the header: a socket filter (classic BPF) drops that echo before it is
// queued, so a million-route Apply neither overruns the socket nor causes a
// full comparison, and user space skips any that get through. A change
// that sets the hop set a prefix already has, and that the kernel holds
// as desired, is not written at all (Stats.Writes counts what is): peers
// re-announcing their routes after a restart cost no kernel work, and
// objects adopted at Open that resolve as they stand are not replaced
// (replacing one makes the kernel notify every route through it).
// [FIB.Check] reports any difference; [FIB.Stats] counts repairs.
//
// Gateways are looked up when first used and again on every full
// comparison. A route is installed with the members that can be used (a
// nexthop group with its usable members, inline the usable gateways); the
// others are reported in Result.Degraded and logged once, when a gateway's
// state changes. A route with no usable member has no kernel route (never
// the route it had before) until a gateway comes back.
//
// # A peer that goes away
//
// In nexthop mode every route through one gateway points at that gateway's
// object, and deleting the object makes the kernel drop them all in one
// walk of its table, without a notification per route: a million routes go
// in about 0.6 s instead of four. So deletes through a single object that
// come in bulk (64 or more in a chunk) are deferred: they leave the desired
// state at once, and when every reference left on the object is a deferred
// delete, the object is deleted instead (Stats.Flushed counts the routes
// that went that way). Deletes that do not empty their object are written
// one by one once no Apply has touched them for 100 ms (at most 1 s later),
// or before Check and Sync compare. [FIB.Hold] holds that settling while
// more deletes are known to be coming: the router holds it while it sweeps a
// peer whose session went down, whose sweep a loaded machine may pause.
//
// # Ownership and other daemons
//
// A route is ours by its table, metric and protocol (Config.Protocol,
// default 186 "bgp"). FRR's zebra also writes "proto bgp", metric 20 in
// table main by default, the same key: on a host that runs FRR too, give
// bgplb a protocol of its own (any number above 4, named in
// /etc/iproute2/rt_protos.d/) or another metric or table, or each will take
// the other's routes for its own.
//
// # Restarts and configuration changes
//
// Routes and objects outlive the process. [Open] streams our routes into
// the desired state as stale routes: they keep forwarding while peers
// reconnect, every prefix Apply sets is the daemon's again, and those not
// set when the grace time ends (MaintainOptions.Grace, or [FIB.EndGrace])
// are deleted. A route written in another form (the other next hop mode, a
// duplicate object) is rewritten in place at Open, make-before-break, and
// objects nothing uses are deleted after. With Config.StateFile, Open also
// knows the key of the previous run: after a change of table, metric or
// protocol, each old route is installed under the new key before the old
// one is deleted; the file is rewritten once no old route is left. Without
// it, only routes of the current key are adopted.
package fib
