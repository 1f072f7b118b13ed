package allocator

import (
	"fmt"
	"net/netip"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

// Family is an address family.
type Family uint8

// The two families; the values are the IP versions so that a zero Family is
// visibly unset.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

func (f Family) String() string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	}
	return fmt.Sprintf("Family(%d)", uint8(f))
}

// FamilyOf is the family of a valid address (IPv4-mapped IPv6 addresses are
// refused before they get here, so Is4 decides).
func FamilyOf(a netip.Addr) Family {
	if a.Is4() {
		return IPv4
	}
	return IPv6
}

// other is the family that is not f.
func (f Family) other() Family {
	if f == IPv4 {
		return IPv6
	}
	return IPv4
}

// FamilyPolicy is a Service's spec.ipFamilyPolicy.
type FamilyPolicy uint8

const (
	// SingleStack: one address, of Request.Families[0].
	SingleStack FamilyPolicy = iota
	// PreferDualStack: one address of each family in Request.Families when a
	// pool can give both, otherwise one address.
	PreferDualStack
	// RequireDualStack: an IPv4 and an IPv6 address, or nothing.
	RequireDualStack
)

func (p FamilyPolicy) String() string {
	switch p {
	case SingleStack:
		return "SingleStack"
	case PreferDualStack:
		return "PreferDualStack"
	case RequireDualStack:
		return "RequireDualStack"
	}
	return fmt.Sprintf("FamilyPolicy(%d)", uint8(p))
}

// Protocol is a Service port's protocol.
type Protocol uint8

const (
	TCP Protocol = iota
	UDP
	SCTP
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	case SCTP:
		return "SCTP"
	}
	return fmt.Sprintf("Protocol(%d)", uint8(p))
}

// Port is one of a Service's ports: two Services sharing an address may not
// both use the same one.
type Port struct {
	Protocol Protocol
	Port     uint16
}

func (p Port) String() string { return fmt.Sprintf("%d/%s", p.Port, p.Protocol) }

// Request is what the allocator needs to know about one LoadBalancer
// Service. The caller has already decided that the Service is ours
// (spec.loadBalancerClass) and read the annotations.
type Request struct {
	Key lbmodel.Key
	// Labels are the Service's labels and NamespaceLabels its namespace's,
	// for the pools' serviceAllocation selectors.
	Labels, NamespaceLabels map[string]string

	// Addresses are the addresses asked for by spec.loadBalancerIP or the
	// loadBalancerIPs annotation: none, or one per family.
	Addresses []netip.Addr
	// Pool is the pool named by the address-pool annotation, or "".
	Pool string

	// Families is spec.ipFamilies, primary first. When empty it is taken
	// from Addresses, or else IPv4.
	Families []Family
	Policy   FamilyPolicy

	// SharingKey is the allow-shared-ip annotation; "" never shares.
	SharingKey    string
	Ports         []Port
	TrafficPolicy lbmodel.TrafficPolicy
	// Selector is the Service's lbmodel.PodSelector: Local Services share
	// only with Services selecting the same pods.
	Selector string
}

// Address is an assigned address and the pool it lies in ("" when it lies in
// none, see Orphans).
type Address struct {
	Addr netip.Addr
	Pool string
}

// Allocation is the outcome of a successful Allocate.
type Allocation struct {
	// Addresses are the Service's addresses, in the order of its families.
	Addresses []Address
	// Released are the addresses the Service held before and gave up.
	Released []netip.Addr
}

// Addrs are the bare addresses of the allocation.
func (a Allocation) Addrs() []netip.Addr {
	out := make([]netip.Addr, len(a.Addresses))
	for i, x := range a.Addresses {
		out[i] = x.Addr
	}
	return out
}

// Assignment is one Service's current holding, as Assignments reports it and
// Orphans reads it.
type Assignment struct {
	Key           lbmodel.Key
	Addresses     []Address
	SharingKey    string
	Ports         []Port
	TrafficPolicy lbmodel.TrafficPolicy
	Selector      string
}
