package home

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/seed"
)

// Fail cuts a node off the LAN (its LAN link goes down, as a pulled cable or
// a dead machine would look to the router) and shows the router noticing:
// the node's paths leave every router's kernel when BFD declares the path
// down, or its BGP hold time runs out (TuneBFD chooses).
func Fail(ctx context.Context, o Options, node string) error {
	return setLink(ctx, o, node, false)
}

// Heal puts a failed node back and waits for its sessions.
func Heal(ctx context.Context, o Options, node string) error {
	return setLink(ctx, o, node, true)
}

func setLink(ctx context.Context, o Options, node string, up bool) error {
	u, ctx, done, err := play(ctx, o, 2*time.Minute)
	if err != nil {
		return err
	}
	defer done()
	if u.st.l2() && node == OwnerNode {
		if node, err = u.owner(ctx, L2VIP); err != nil {
			return err
		}
	}
	if !slices.Contains(u.s.Nodes(), node) {
		return fmt.Errorf("no node %q in the lab: %v", node, u.s.Nodes())
	}
	switch {
	case u.st.l2() && !up:
		return u.l2Fail(ctx, node)
	case u.st.l2():
		return u.l2Heal(ctx, node)
	case u.st.Cluster && !up:
		return u.clusterFail(ctx, node)
	case u.st.Cluster:
		if err := u.clusterHeal(ctx, node); err != nil {
			return err
		}
		fmt.Fprintln(u.o.Out)
		return show(ctx, u.o.Out, u.s, u.st)
	case !up:
		return u.fail(ctx, node)
	}
	h := u.s.Host(node)
	if err := u.do([]step{
		{fmt.Sprintf("putting %s back on the LAN", node), func() error {
			if err := h.SetUp(ctx, lab.DefaultIfname); err != nil {
				return err
			}
			// The link going down took the node's default routes with it.
			if err := h.IP(ctx, "route", "replace", "default", "via", u.s.RouterAddr(1).String()); err != nil {
				return err
			}
			return h.IP(ctx, "-6", "route", "replace", "default", "via", u.s.RouterAddr6(1).String())
		}},
		u.establishedStep(ctx),
	}); err != nil {
		return err
	}
	fmt.Fprintln(u.o.Out)
	return show(ctx, u.o.Out, u.s, u.st)
}

// fail cuts node off; if the Pi-hole ran there, it is rescheduled on the
// other node, as Kubernetes would once the node is gone.
func (u *upper) fail(ctx context.Context, node string) error {
	s, out := u.s, u.o.Out
	addr := s.NodeAddr(node)
	routed, err := u.routedVia(ctx, node)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := u.p.step(fmt.Sprintf("cutting %s off the LAN", node), func() error {
		// Keep the IPv6 address across the outage, as a real NIC whose
		// cable is pulled keeps its configuration.
		if err := s.Host(node).SetSysctls(ctx, map[string]string{"net/ipv6/conf/" + lab.DefaultIfname + "/keep_addr_on_down": "1"}); err != nil {
			return err
		}
		return s.Host(node).SetDown(ctx, lab.DefaultIfname)
	}); err != nil {
		return err
	}
	dropped, err := u.waitDropped(ctx, node, start, routed)
	if err != nil {
		return err
	}
	if _, ok := u.st.Procs["dns-"+node]; ok {
		other := s.Nodes()[0]
		if other == node {
			other = s.Nodes()[1]
		}
		if err := u.do([]step{
			{fmt.Sprintf("rescheduling the Pi-hole on %s (its EndpointSlice names %s)", other, other), func() error {
				if err := u.pod(ctx, other); err != nil {
					return err
				}
				return u.stopPod(ctx, node)
			}},
			{fmt.Sprintf("waiting for %s/32 via %s", PiholeVIP, other), func() error {
				return u.waitKernel(ctx, vipVia(s.NodeAddr(other), false))
			}},
		}); err != nil {
			return err
		}
		fmt.Fprintf(out, "    every router routes via %s %v after the failure\n", other, time.Since(start).Round(time.Millisecond))
		for i := 1; i <= u.st.Routers; i++ {
			rs, err := s.Host(seed.RouterName(i)).Routes(ctx, lab.RouteQuery{Proto: "bgp"})
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "    %s: %s", seed.RouterName(i), lab.FormatRoutes(rs))
			if !noneVia(addr)(rs) {
				fmt.Fprintf(out, "    (until %s's hold time runs out, %s still sends part of the flows to %s)\n",
					node, seed.RouterName(i), node)
			}
		}
	}
	fmt.Fprintf(out, "\nthe routers dropped %s's paths %v after it went away; `bgplb lab heal %s` puts it back.\n\n",
		node, dropped.Round(time.Millisecond), node)
	return show(ctx, out, s, u.st)
}

// routedVia reports whether some router's kernel routes via node; read
// before a node is taken out, it says whether waitDropped has anything to
// wait for (fast BFD may drop the paths before a read after the cut).
func (u *upper) routedVia(ctx context.Context, node string) (bool, error) {
	for i := 1; i <= u.st.Routers; i++ {
		rs, err := u.s.Host(seed.RouterName(i)).Routes(ctx, lab.RouteQuery{Proto: "bgp"})
		if err != nil {
			return false, err
		}
		if !noneVia(u.s.NodeAddr(node))(rs) {
			return true, nil
		}
	}
	return false, nil
}

// waitDropped waits until every router's kernel has no route via node,
// reading the tables every few milliseconds, and says how long that took
// since the cut: the failover figure (issue 15's first). routed is
// routedVia from before the cut.
func (u *upper) waitDropped(ctx context.Context, node string, cut time.Time, routed bool) (time.Duration, error) {
	if !routed {
		// Nothing to drop (a Service with externalTrafficPolicy Local and
		// no pod there): no figure to make up.
		fmt.Fprintf(u.o.Out, "    (no router routed via %s: it announces nothing)\n", node)
		return 0, nil
	}
	took, err := u.waitEvery(ctx, fmt.Sprintf("waiting for every router to drop %s's paths (%s)", node, u.st.Detection),
		cut, noneVia(u.s.NodeAddr(node)))
	if err == nil && u.o.Figure != nil {
		u.o.Figure("fail-dropped", took)
	}
	return took, err
}

// waitEvery is a step that waits until every router's kernel table
// satisfies ok, reading it every few milliseconds since it is timed: it
// returns the time since from.
func (u *upper) waitEvery(ctx context.Context, what string, from time.Time, ok func([]lab.Route) bool) (time.Duration, error) {
	var took time.Duration
	err := u.p.step(what, func() error {
		return u.whileAlive(ctx, func(ctx context.Context) error {
			for i := 1; i <= u.st.Routers; i++ {
				if _, err := u.s.Host(seed.RouterName(i)).WaitRoutesEvery(ctx, 5*time.Millisecond, lab.RouteQuery{Proto: "bgp"}, ok); err != nil {
					return fmt.Errorf("%s: %w", seed.RouterName(i), err)
				}
			}
			took = time.Since(from)
			return nil
		})
	})
	return took, err
}
