package l2

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path"
	"slices"

	"github.com/vishvananda/netlink"
)

// Interface is what Select needs to know of a network interface.
type Interface struct {
	Name     string
	Index    int
	MAC      net.HardwareAddr
	Prefixes []netip.Prefix
	Up       bool
	Loopback bool
}

// Interfaces lists the interfaces of the network namespace of the calling
// thread, with their addresses. It costs one link dump and one address
// dump, however many interfaces there are (net.Interface.Addrs dumps every
// address of the namespace for each interface).
func Interfaces() ([]Interface, error) {
	var links []netlink.Link
	var addrs []netlink.Addr
	var err error
	// A dump interrupted by a change is inconsistent: take it again.
	for range 5 {
		if links, err = netlink.LinkList(); err == nil {
			if addrs, err = netlink.AddrList(nil, netlink.FAMILY_ALL); err == nil {
				break
			}
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("l2: list interfaces: %w", err)
	}
	ifs := make([]Interface, 0, len(links))
	for _, l := range links {
		at := l.Attrs()
		ifs = append(ifs, Interface{
			Name: at.Name, Index: at.Index, MAC: at.HardwareAddr,
			Up: at.Flags&net.FlagUp != 0, Loopback: at.Flags&net.FlagLoopback != 0,
		})
	}
	as := make([]ifaceAddr, 0, len(addrs))
	for _, a := range addrs {
		if a.IPNet == nil {
			continue
		}
		if p, ok := prefixOf(a.IPNet); ok {
			as = append(as, ifaceAddr{a.LinkIndex, p})
		}
	}
	return assemble(ifs, as), nil
}

// ifaceAddr is one address of the address dump: the interface it is on,
// by index, and its prefix.
type ifaceAddr struct {
	index  int
	prefix netip.Prefix
}

// assemble gives each interface its addresses, in dump order, and sorts
// the interfaces by index. An address of an interface missing from ifs
// (created between the two dumps) is left out.
func assemble(ifs []Interface, addrs []ifaceAddr) []Interface {
	slices.SortFunc(ifs, func(x, y Interface) int { return cmp.Compare(x.Index, y.Index) })
	for _, a := range addrs {
		i, ok := slices.BinarySearchFunc(ifs, a.index, func(x Interface, idx int) int { return cmp.Compare(x.Index, idx) })
		if ok {
			ifs[i].Prefixes = append(ifs[i].Prefixes, a.prefix)
		}
	}
	return ifs
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), bits), true
}

// Select returns the sorted names of the interfaces addr is answered on.
// With patterns, they are the usable interfaces whose name equals a
// pattern or matches it as a path.Match glob ("eth*"); without, the usable
// interfaces with an address on a subnet containing addr. A host prefix
// (/32, /128) is not a subnet: it is where a proxy such as kube-ipvs0
// keeps the service address itself, not where its clients are. Usable
// means up, not loopback, and with an Ethernet address, because ARP and
// NDP answers carry one.
func Select(ifs []Interface, patterns []string, addr netip.Addr) []string {
	addr = addr.Unmap()
	var names []string
	for _, it := range ifs {
		if !it.Up || it.Loopback || len(it.MAC) != 6 || !addr.IsValid() {
			continue
		}
		if len(patterns) > 0 && matchAny(patterns, it.Name) ||
			len(patterns) == 0 && onSubnet(it.Prefixes, addr) {
			names = append(names, it.Name)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		// A malformed glob matches only itself, by exact name.
		if ok, err := path.Match(p, name); p == name || err == nil && ok {
			return true
		}
	}
	return false
}

func onSubnet(prefixes []netip.Prefix, addr netip.Addr) bool {
	for _, p := range prefixes {
		if p.Bits() < p.Addr().BitLen() && p.Masked().Contains(addr) {
			return true
		}
	}
	return false
}
