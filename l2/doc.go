// Package l2 answers ARP requests and IPv6 neighbour solicitations for the
// service addresses this node owns, on the interfaces chosen for them, and
// announces a takeover with gratuitous ARP and unsolicited neighbour
// advertisements.
//
// It needs only CAP_NET_RAW: both families use AF_PACKET sockets, one per
// interface and family, filtered in the kernel by a classic BPF program so
// they wake only for the requests they may answer. IPv6 also uses an
// unbound UDP socket per interface whose only job is to hold the
// solicited-node multicast memberships (the kernel then sends the MLD
// reports that snooping switches need).
//
// Why AF_PACKET for NDP rather than an ICMPv6 raw socket: a raw ICMPv6
// socket only sees packets the kernel delivers locally, and a unicast
// neighbour solicitation for a service address that is not configured on
// the node (the kernel's neighbour unreachability probe, sent when a
// client's entry goes stale) is forwarded or dropped by the IP layer before
// any raw socket sees it. The client's entry would then fail and be
// re-resolved by multicast every few minutes. A packet socket sees those
// probes, so clients keep their entries.
//
// A takeover is announced by schedules of their own per family. Gratuitous
// ARP goes out six times over 7.75 s (RFC 5227's ANNOUNCE_NUM of two is a
// minimum: Linux ignores an update of an entry younger than its locktime
// unless it takes it for gratuitous, and a switch may miss one broadcast).
// Unsolicited neighbour advertisements follow RFC 4861 section 7.2.6: at
// most MAX_NEIGHBOR_ADVERTISEMENT (3), at least RetransTimer (1 s) apart,
// at 0, 1 and 3 s by default; Linux has no locktime for an advertisement
// that overrides, so three suffice. When the interface's MAC changes under
// a running Announcer (a bond failing over with fail_over_mac), the link
// notices within a second (or at once, on the next Set), answers with the
// new MAC and runs the schedule again.
//
// Sending never waits: when the socket's send buffer is full (a transmit
// queue that does not drain) the frame is dropped and counted, so that
// Set, which stops the old owner's answers, never waits on a writer.
//
// The package imports nothing from Kubernetes.
package l2
