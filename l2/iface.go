package l2

import (
	"fmt"
	"net"
	"net/netip"
	"path"
	"slices"
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
// thread, with their addresses.
func Interfaces() ([]Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("l2: list interfaces: %w", err)
	}
	out := make([]Interface, 0, len(ifs))
	for _, ifi := range ifs {
		addrs, err := ifi.Addrs()
		if err != nil {
			return nil, fmt.Errorf("l2: addresses of %s: %w", ifi.Name, err)
		}
		it := Interface{
			Name: ifi.Name, Index: ifi.Index, MAC: ifi.HardwareAddr,
			Up: ifi.Flags&net.FlagUp != 0, Loopback: ifi.Flags&net.FlagLoopback != 0,
		}
		for _, a := range addrs {
			if p, ok := prefixOf(a); ok {
				it.Prefixes = append(it.Prefixes, p)
			}
		}
		out = append(out, it)
	}
	return out, nil
}

func prefixOf(a net.Addr) (netip.Prefix, bool) {
	n, ok := a.(*net.IPNet)
	if !ok {
		return netip.Prefix{}, false
	}
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
