package home

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/seed"
)

// Fail cuts a node off the LAN (its LAN link goes down, as a pulled cable or
// a dead machine would look to the router) and shows the router noticing:
// the node's paths leave every router's kernel when its BGP hold time
// runs out.
func Fail(ctx context.Context, o Options, node string) error {
	return setLink(ctx, o, node, false)
}

// Heal puts a failed node back and waits for its sessions.
func Heal(ctx context.Context, o Options, node string) error {
	return setLink(ctx, o, node, true)
}

func setLink(ctx context.Context, o Options, node string, up bool) error {
	st, s, unlock, err := openLocked(&o)
	if err != nil {
		return err
	}
	defer unlock()
	if !slices.Contains(s.Nodes(), node) {
		return fmt.Errorf("no node %q in the lab: %v", node, s.Nodes())
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	p := &stepper{o: o, start: time.Now()}
	if up {
		if err := p.step(fmt.Sprintf("putting %s back on the LAN", node), func() error {
			if err := s.Host(node).SetUp(ctx, lab.DefaultIfname); err != nil {
				return err
			}
			// The link going down took the node's default routes with it.
			if err := s.Host(node).IP(ctx, "route", "replace", "default", "via", s.RouterAddr(1).String()); err != nil {
				return err
			}
			return s.Host(node).IP(ctx, "-6", "route", "replace", "default", "via", s.RouterAddr6(1).String())
		}); err != nil {
			return err
		}
		u := &upper{o: o, p: p, st: st, s: s}
		if err := p.step("waiting for node1 and node2 to be Established on every router", func() error { return u.waitEstablished(ctx) }); err != nil {
			return err
		}
		fmt.Fprintln(o.Out)
		return show(ctx, o.Out, s, st)
	}
	return fail(ctx, o, p, st, s, node)
}

// fail cuts node off; if the Pi-hole ran there, it is rescheduled on the
// other node, as Kubernetes would once the node is gone.
func fail(ctx context.Context, o Options, p *stepper, st *State, s *seed.Seed, node string) error {
	addr := s.NodeAddr(node)
	start := time.Now()
	if err := p.step(fmt.Sprintf("cutting %s off the LAN", node), func() error {
		// Keep the IPv6 address across the outage, as a real NIC whose
		// cable is pulled keeps its configuration.
		if err := s.Host(node).SetSysctls(ctx, map[string]string{"net/ipv6/conf/" + lab.DefaultIfname + "/keep_addr_on_down": "1"}); err != nil {
			return err
		}
		return s.Host(node).SetDown(ctx, lab.DefaultIfname)
	}); err != nil {
		return err
	}
	if _, ok := st.Procs["dns-"+node]; ok {
		k, err := newKube(st.Kubeconfig)
		if err != nil {
			return err
		}
		u := &upper{o: o, p: p, st: st, s: s, k: k}
		other := s.Nodes()[0]
		if other == node {
			other = s.Nodes()[1]
		}
		if err := p.step(fmt.Sprintf("rescheduling the Pi-hole on %s (its EndpointSlice names %s)", other, other), func() error {
			if err := u.pod(ctx, other); err != nil {
				return err
			}
			return u.stopPod(ctx, node)
		}); err != nil {
			return err
		}
		if err := p.step(fmt.Sprintf("waiting for 203.0.113.53/32 via %s", other), func() error {
			return waitNextHop(ctx, s, st.Routers, s.NodeAddr(other))
		}); err != nil {
			return err
		}
		fmt.Fprintf(o.Out, "    every router routes via %s %v after the failure\n", other, time.Since(start).Round(time.Millisecond))
		for i := 1; i <= st.Routers; i++ {
			rs, err := s.Host(seed.RouterName(i)).Routes(ctx, lab.RouteQuery{Proto: "bgp"})
			if err != nil {
				return err
			}
			fmt.Fprintf(o.Out, "    %s: %s", seed.RouterName(i), lab.FormatRoutes(rs))
			if slices.ContainsFunc(rs, func(r lab.Route) bool { return slices.Contains(r.Gateways(), addr) }) {
				fmt.Fprintf(o.Out, "    (until %s's hold time runs out, %s still sends part of the flows to %s)\n",
					node, seed.RouterName(i), node)
			}
		}
	}
	if err := p.step(fmt.Sprintf("waiting for every router to drop %s's paths (its hold time, 9 s)", node), func() error {
		return waitNoNextHop(ctx, s, st.Routers, addr)
	}); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "\nthe routers dropped %s's paths %v after it went away; `bgplb lab heal %s` puts it back.\n\n",
		node, time.Since(start).Round(time.Millisecond), node)
	return show(ctx, o.Out, s, st)
}

// waitNoNextHop waits until no router's kernel has a bgp route via addr.
func waitNoNextHop(ctx context.Context, s *seed.Seed, routers int, addr netip.Addr) error {
	for i := 1; i <= routers; i++ {
		_, err := s.Host(seed.RouterName(i)).WaitRoutes(ctx, lab.RouteQuery{Proto: "bgp"}, func(rs []lab.Route) bool {
			for _, r := range rs {
				if slices.Contains(r.Gateways(), addr) {
					return false
				}
			}
			return true
		})
		if err != nil {
			return fmt.Errorf("%s still routes via %s: %w", seed.RouterName(i), addr, err)
		}
	}
	return nil
}

// waitNextHop waits until every router's kernel has the Pi-hole's /32 via
// addr (alone or among others).
func waitNextHop(ctx context.Context, s *seed.Seed, routers int, addr netip.Addr) error {
	host := netip.PrefixFrom(PiholeVIP, 32)
	for i := 1; i <= routers; i++ {
		_, err := s.Host(seed.RouterName(i)).WaitRoutes(ctx, lab.RouteQuery{Proto: "bgp"}, func(rs []lab.Route) bool {
			return slices.ContainsFunc(rs, func(r lab.Route) bool { return r.Dst == host && slices.Contains(r.Gateways(), addr) })
		})
		if err != nil {
			return fmt.Errorf("%s: no route to %s via %s: %w", seed.RouterName(i), host, addr, err)
		}
	}
	return nil
}
