package e2e

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/bgplb/bgplb/lab"
)

// hop is one next hop of a kernel route. gw is the gateway whether the
// kernel has it as RTA_GATEWAY or, for an IPv4 route via an IPv6 gateway
// (RFC 8950), as RTA_VIA (`via inet6`), which lab.Routes does not read.
type hop struct {
	gw  netip.Addr
	dev string
}

func (h hop) String() string { return fmt.Sprintf("via %s dev %s", h.gw, h.dev) }

// ipRouteHop is a next hop in `ip -j route` output.
type ipRouteHop struct {
	Gateway string `json:"gateway"`
	Via     struct {
		Host string `json:"host"`
	} `json:"via"`
	Dev string `json:"dev"`
}

// kernelHops reads the proto bgp routes of both families in ns.
func kernelHops(ctx context.Context, ns *lab.Netns) (map[netip.Prefix][]hop, error) {
	out := map[netip.Prefix][]hop{}
	for _, fam := range []string{"-4", "-6"} {
		b, err := ns.IPOutput(ctx, "-j", fam, "route", "show", "proto", "bgp")
		if err != nil {
			return nil, err
		}
		if err := parseHops(b, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// parseHops adds the routes of one `ip -j route` dump to out, each with
// its next hops sorted by gateway.
func parseHops(b []byte, out map[netip.Prefix][]hop) error {
	var rs []struct {
		Dst string `json:"dst"`
		ipRouteHop
		NextHops []ipRouteHop `json:"nexthops"`
	}
	if err := json.Unmarshal(b, &rs); err != nil {
		return fmt.Errorf("ip -j route: %w", err)
	}
	for _, r := range rs {
		dst, err := netip.ParsePrefix(r.Dst)
		if err != nil {
			// ip leaves the length out of host routes.
			a, aerr := netip.ParseAddr(r.Dst)
			if aerr != nil {
				return fmt.Errorf("ip -j route: destination %q: %w", r.Dst, err)
			}
			dst = netip.PrefixFrom(a, a.BitLen())
		}
		hs := r.NextHops
		if len(hs) == 0 {
			hs = []ipRouteHop{r.ipRouteHop}
		}
		for _, h := range hs {
			gw, err := netip.ParseAddr(cmp.Or(h.Gateway, h.Via.Host))
			if err != nil {
				return fmt.Errorf("ip -j route: %s: gateway: %w", r.Dst, err)
			}
			out[dst] = append(out[dst], hop{gw: gw, dev: h.Dev})
		}
		slices.SortFunc(out[dst], func(a, b hop) int { return a.gw.Compare(b.gw) })
	}
	return nil
}

// waitHops waits until the router's kernel holds, for each prefix, exactly
// the given next hops (gateway and device); none means the prefix must be
// absent.
func (rp *routerProc) waitHops(t *testing.T, ctx context.Context, w map[netip.Prefix][]hop) {
	t.Helper()
	var last map[netip.Prefix][]hop
	err := lab.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		rs, err := kernelHops(ctx, rp.ns)
		if err != nil {
			return false, err
		}
		last = rs
		for p, hs := range w {
			want := slices.Clone(hs)
			slices.SortFunc(want, func(a, b hop) int { return a.gw.Compare(b.gw) })
			if !slices.Equal(rs[p], want) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("router kernel: %v\nwant %v\nhave %v", err, w, last)
	}
}

// on0 is next hops through the gateways on the LAN port.
func on0(gws ...netip.Addr) []hop {
	hs := make([]hop, len(gws))
	for i, gw := range gws {
		hs[i] = hop{gw: gw, dev: lab.DefaultIfname}
	}
	return hs
}
