package seed

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
)

// The real cluster's address plan (kubelets in the node namespaces). Pods
// and ClusterIPs come from 198.18.0.0/15, the benchmarking block: like the
// documentation blocks it is never routed on the Internet, and the
// documentation blocks are already taken by the LAN and the Service pools.
// Pod and ClusterIP addresses exist only inside the lab's namespaces.
var (
	// ClusterCIDR holds every node's pod range.
	ClusterCIDR = netip.MustParsePrefix("198.18.0.0/16")
	// ServiceCIDR4 and ServiceCIDR6 are the ClusterIP ranges.
	ServiceCIDR4 = netip.MustParsePrefix("198.19.0.0/16")
	ServiceCIDR6 = netip.MustParsePrefix("2001:db8:ffff:96::/108")
)

// ServiceCIDRs are the ClusterIP ranges, IPv4 first.
func ServiceCIDRs() []netip.Prefix { return []netip.Prefix{ServiceCIDR4, ServiceCIDR6} }

// PodCIDR is node's pod range, a /24 of ClusterCIDR numbered after the
// node (node1: 198.18.1.0/24); invalid for a host that is not a node.
func (s *Seed) PodCIDR(node string) netip.Prefix {
	i := slices.Index(s.Nodes(), node)
	if i < 0 {
		return netip.Prefix{}
	}
	return podCIDR(i + 1)
}

func podCIDR(n int) netip.Prefix {
	a := ClusterCIDR.Addr().As4()
	a[2] = byte(n)
	return netip.PrefixFrom(netip.AddrFrom4(a), 24)
}

// podRoutes lists, per node, the routes to the other nodes' pod ranges
// straight over the LAN (not via the router, which knows nothing of pods),
// as a flat L2 network without an overlay does.
func podRoutes(nodes []string, cidr func(string) netip.Prefix, addr func(string) netip.Addr) map[string][][]string {
	out := map[string][][]string{}
	for _, n := range nodes {
		for _, peer := range nodes {
			if peer == n {
				continue
			}
			out[n] = append(out[n], []string{"route", "replace", cidr(peer).String(), "via", addr(peer).String()})
		}
	}
	return out
}

// RoutePods lets the nodes reach each other's pods over the LAN.
func (s *Seed) RoutePods(ctx context.Context) error {
	for n, cmds := range podRoutes(s.Nodes(), s.PodCIDR, s.NodeAddr) {
		ns := s.Host(n)
		if ns == nil {
			return fmt.Errorf("seed: no node %q in lab %s", n, s.ID)
		}
		if err := ns.IPBatch(ctx, cmds...); err != nil {
			return fmt.Errorf("seed: pod routes on %s: %w", n, err)
		}
	}
	return nil
}
