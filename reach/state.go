// Package reach decides whether the router can use a BGP next hop: a
// unicast address on a connected network whose link is up (or, for an eBGP
// multihop session, one reached through a route that is not BGP's own), and
// not one of the router's own addresses.
//
// The decision is a pure function over a snapshot of the kernel's links,
// addresses and routes ([State.Check]); [Watch] keeps such snapshots coming
// from a network namespace as links and addresses change.
package reach

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
)

// Reason says whether a next hop can be used, and why not.
type Reason uint8

// Verdicts of [State.Check]. Usable is zero, as rib.Config.NextHop wants.
const (
	Usable Reason = iota
	// Unspecified: no address, 0.0.0.0 or ::.
	Unspecified
	Loopback
	Multicast
	// Broadcast: 255.255.255.255 or the broadcast address of a connected
	// IPv4 network.
	Broadcast
	// LinkLocalNoZone: an IPv6 link-local address without the interface
	// it is on.
	LinkLocalNoZone
	// NoSuchLink: the zone of a link-local address names no interface.
	NoSuchLink
	// OwnAddress: one of the router's addresses.
	OwnAddress
	// LinkDown: on a connected network whose links are all down.
	LinkDown
	// Unreachable: on no connected network (nor, multihop, behind a route
	// that is not BGP's).
	Unreachable
)

var reasonNames = [...]string{
	Usable: "usable", Unspecified: "unspecified", Loopback: "loopback", Multicast: "multicast",
	Broadcast: "broadcast", LinkLocalNoZone: "link-local without interface", NoSuchLink: "no such interface",
	OwnAddress: "own address", LinkDown: "link down", Unreachable: "unreachable",
}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// Link is a network interface.
type Link struct {
	Index int
	Name  string
	// Up: administratively up with carrier (IFF_UP and IFF_RUNNING).
	Up bool
	// Loopback links connect nothing: their addresses are only own.
	Loopback bool
}

// Address is one of the router's addresses.
type Address struct {
	// Local is the address itself.
	Local netip.Addr
	// Subnet is the network it connects to (for a point-to-point address,
	// the peer's prefix).
	Subnet netip.Prefix
	Link   int
}

// Route is a kernel route to a prefix (of another protocol than the
// router's own: those are never a way to a next hop).
type Route struct {
	Dst netip.Prefix
	// Link is the outgoing interface, 0 for a multipath or gatewayless
	// route without one.
	Link int
}

// State is a snapshot of what next hops depend on. It is immutable once
// built by NewState, so it may be shared between goroutines.
type State struct {
	links  map[int]Link
	names  map[string]int
	own    map[netip.Addr]bool
	addrs  []Address // connected, not on loopback links
	routes []Route   // longest prefix first
}

// NewState builds a snapshot. The slices are copied.
func NewState(links []Link, addrs []Address, routes []Route) *State {
	s := &State{
		links: make(map[int]Link, len(links)),
		names: make(map[string]int, len(links)),
		own:   make(map[netip.Addr]bool, len(addrs)),
	}
	for _, l := range links {
		s.links[l.Index] = l
		s.names[l.Name] = l.Index
	}
	for _, a := range addrs {
		a.Local = a.Local.Unmap()
		s.own[a.Local] = true
		if !s.links[a.Link].Loopback && a.Subnet.IsValid() {
			a.Subnet = a.Subnet.Masked()
			s.addrs = append(s.addrs, a)
		}
	}
	s.routes = slices.Clone(routes)
	slices.SortStableFunc(s.routes, func(a, b Route) int { return cmp.Compare(b.Dst.Bits(), a.Dst.Bits()) })
	return s
}

// Equal reports whether two snapshots give every next hop the same
// verdict (they hold the same links, addresses and routes).
func (s *State) Equal(o *State) bool {
	if s == nil || o == nil {
		return s == o
	}
	return mapsEqual(s.links, o.links) && mapsEqual(s.own, o.own) &&
		slices.Equal(s.addrs, o.addrs) && slices.Equal(s.routes, o.routes)
}

func mapsEqual[K, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// LinkOf names the interface holding the router's address a, for giving
// an IPv6 link-local next hop learnt over a session from a its zone: RFC
// 2545 next hops carry no interface, and the session's is the right one.
func (s *State) LinkOf(a netip.Addr) (string, bool) {
	a = a.Unmap().WithZone("")
	for _, x := range s.addrs {
		if x.Local == a {
			l, ok := s.links[x.Link]
			return l.Name, ok
		}
	}
	return "", false
}

// Check says whether nh can be used as a next hop. For a multihop session,
// a next hop on no connected network may still be reached through a route
// of the snapshot (which holds no route of the router's own protocol).
func (s *State) Check(nh netip.Addr, multihop bool) Reason {
	zone := nh.Zone()
	nh = nh.Unmap().WithZone("")
	switch {
	case !nh.IsValid() || nh.IsUnspecified():
		return Unspecified
	case nh.IsLoopback():
		return Loopback
	case nh.IsMulticast():
		return Multicast
	case nh == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return Broadcast
	case s.own[nh]:
		return OwnAddress
	case nh.Is6() && nh.IsLinkLocalUnicast():
		return s.linkLocal(zone)
	}
	down := false
	for _, a := range s.addrs {
		if !a.Subnet.Contains(nh) {
			continue
		}
		if isBroadcast(a.Subnet, nh) {
			return Broadcast
		}
		if s.links[a.Link].Up {
			return Usable
		}
		down = true
	}
	if multihop && s.routed(nh) {
		return Usable
	}
	if down {
		return LinkDown
	}
	return Unreachable
}

// linkLocal judges an IPv6 link-local next hop by its zone, which names the
// interface (or gives its index).
func (s *State) linkLocal(zone string) Reason {
	if zone == "" {
		return LinkLocalNoZone
	}
	idx, ok := s.names[zone]
	if !ok {
		n, err := strconv.Atoi(zone)
		if _, known := s.links[n]; err != nil || !known {
			return NoSuchLink
		}
		idx = n
	}
	if l := s.links[idx]; !l.Up || l.Loopback {
		return LinkDown
	}
	return Usable
}

// isBroadcast reports whether a is the broadcast address of IPv4 subnet p
// (networks of /31 and /32 have none, RFC 3021).
func isBroadcast(p netip.Prefix, a netip.Addr) bool {
	if !a.Is4() || p.Bits() >= 31 {
		return false
	}
	b := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	return netip.AddrFrom4([4]byte{byte((v | host) >> 24), byte((v | host) >> 16), byte((v | host) >> 8), byte(v | host)}) == a
}

// routed reports whether the longest route matching nh leaves through a
// link that is up (or names none, as a multipath route may not).
func (s *State) routed(nh netip.Addr) bool {
	for _, r := range s.routes {
		if r.Dst.Contains(nh) {
			if r.Link == 0 {
				return true
			}
			l, ok := s.links[r.Link]
			return ok && l.Up
		}
	}
	return false
}
