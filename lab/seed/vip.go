package seed

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/bgplb/bgplb/lab"
)

// IPVSIfname is the device kube-proxy (IPVS mode) keeps Service addresses
// on.
const IPVSIfname = "kube-ipvs0"

// ipvsKinds are the link types tried for kube-ipvs0, best first: kube-proxy
// makes a dummy, which this kernel lacks (CONFIG_DUMMY off); an ifb and a
// bridge without ports hold local addresses just the same, and stay down
// as kube-ipvs0 does.
var ipvsKinds = []string{"dummy", "ifb", "bridge"}

// ipvsKind remembers the first kind this kernel accepted.
var ipvsKind struct {
	sync.Mutex
	kind string
}

// AddVIP does kube-proxy's part on a node: the address on the node's
// kube-ipvs0 (created if needed), so the node accepts traffic to it. It is
// idempotent.
func (s *Seed) AddVIP(ctx context.Context, node string, addr netip.Addr) error {
	ns, err := s.vipHost(node, addr)
	if err != nil {
		return err
	}
	if err := ensureIPVS(ctx, ns); err != nil {
		return fmt.Errorf("seed: %s on %s: %w", IPVSIfname, node, err)
	}
	args := []string{"addr", "replace", netip.PrefixFrom(addr, addr.BitLen()).String(), "dev", IPVSIfname}
	if addr.Is6() {
		args = append(args, "nodad")
	}
	if err := ns.IP(ctx, args...); err != nil {
		return fmt.Errorf("seed: add VIP %s on %s: %w", addr, node, err)
	}
	return nil
}

// DelVIP removes the address from the node's kube-ipvs0; removing one that
// is not there is not an error.
func (s *Seed) DelVIP(ctx context.Context, node string, addr netip.Addr) error {
	ns, err := s.vipHost(node, addr)
	if err != nil {
		return err
	}
	err = ns.IP(ctx, "addr", "del", netip.PrefixFrom(addr, addr.BitLen()).String(), "dev", IPVSIfname)
	if ce := (*lab.CmdError)(nil); errors.As(err, &ce) {
		out := string(ce.Output)
		if strings.Contains(out, "Address not found") || strings.Contains(out, "Cannot assign requested address") || strings.Contains(out, "Cannot find device") {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("seed: delete VIP %s on %s: %w", addr, node, err)
	}
	return nil
}

// VIPs lists the addresses on a node's kube-ipvs0.
func (s *Seed) VIPs(ctx context.Context, node string) ([]netip.Addr, error) {
	ns := s.Host(node)
	if ns == nil {
		return nil, fmt.Errorf("seed: no host %q in lab %s", node, s.ID)
	}
	if err := ns.IP(ctx, "link", "show", "dev", IPVSIfname); err != nil {
		return nil, nil // no kube-ipvs0 yet: no VIPs
	}
	as, err := ns.Addrs(ctx, IPVSIfname)
	if err != nil {
		return nil, err
	}
	vips := make([]netip.Addr, 0, len(as))
	for _, a := range as {
		if !a.Prefix.Addr().IsLinkLocalUnicast() {
			vips = append(vips, a.Prefix.Addr())
		}
	}
	return vips, nil
}

func (s *Seed) vipHost(node string, addr netip.Addr) (*lab.Netns, error) {
	if !addr.IsValid() || addr.Zone() != "" {
		return nil, fmt.Errorf("seed: VIP %v is not an address", addr)
	}
	ns := s.Host(node)
	if ns == nil {
		return nil, fmt.Errorf("seed: no host %q in lab %s", node, s.ID)
	}
	return ns, nil
}

// ensureIPVS makes kube-ipvs0 in ns unless it exists, with the first link
// kind the kernel knows.
func ensureIPVS(ctx context.Context, ns *lab.Netns) error {
	ipvsKind.Lock()
	known := ipvsKind.kind
	ipvsKind.Unlock()
	kinds := ipvsKinds
	if known != "" {
		kinds = []string{known}
	}
	var errs []error
	for _, kind := range kinds {
		err := ns.IP(ctx, "link", "add", "name", IPVSIfname, "type", kind)
		ce := (*lab.CmdError)(nil)
		if errors.As(err, &ce) && strings.Contains(string(ce.Output), "File exists") {
			return nil
		}
		if err == nil {
			ipvsKind.Lock()
			ipvsKind.kind = kind
			ipvsKind.Unlock()
			return nil
		}
		errs = append(errs, err)
		if ce == nil || !(strings.Contains(string(ce.Output), "Unknown device type") || strings.Contains(string(ce.Output), "not supported")) {
			break // not a missing kind: trying others would hide it
		}
	}
	return errors.Join(errs...)
}
