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
// The package imports nothing from Kubernetes.
package l2
