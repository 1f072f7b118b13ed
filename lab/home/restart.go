package home

import (
	"context"
	"fmt"
	"time"

	"github.com/bgplb/bgplb/lab/seed"
)

// Restart restarts one component in place: "controller", "speaker" (both
// nodes' speakers) or "router" (every router). The router's routes stay in
// its kernel across the restart (fib graceTime) and the speakers' sessions
// come back; the controller rebuilds its assignments from Service status.
func Restart(ctx context.Context, o Options, component string) error {
	u, ctx, done, err := play(ctx, o, 2*time.Minute)
	if err != nil {
		return err
	}
	defer done()
	var steps []step
	if u.st.Cluster {
		if steps, err = u.clusterRestart(ctx, component); err != nil {
			return err
		}
	} else {
		if steps, err = u.restartSteps(ctx, component); err != nil {
			return err
		}
	}
	if u.st.l2() {
		if err := u.do(append(steps, u.l2SettledStep(ctx))); err != nil {
			return err
		}
		fmt.Fprintln(u.o.Out)
		return show(ctx, u.o.Out, u.s, u.st)
	}
	steps = append(steps, u.establishedStep(ctx))
	// A restarted speaker announces once it has read the cluster again: the
	// Pi-hole is back when its route is, not when the sessions are.
	node := u.piholeNodeOf()
	if u.st.Cluster {
		node = u.piholeNodeNow(ctx)
	}
	if node != "" {
		steps = append(steps, step{fmt.Sprintf("waiting for %s/32 via %s in every router's kernel", PiholeVIP, node), func() error {
			return u.waitRoutes(ctx, u.s.NodeAddr(node))
		}})
	}
	if err := u.do(steps); err != nil {
		return err
	}
	fmt.Fprintln(u.o.Out)
	return show(ctx, u.o.Out, u.s, u.st)
}

// piholeNodeOf is the node the played Pi-hole runs on.
func (u *upper) piholeNodeOf() string {
	for _, n := range u.s.Nodes() {
		if _, ok := u.st.Procs["dns-"+n]; ok {
			return n
		}
	}
	return ""
}

// restartSteps restart a played lab's component in place.
func (u *upper) restartSteps(ctx context.Context, component string) ([]step, error) {
	restart := func(name string, start func() error) step {
		return step{"restarting " + name, func() error {
			if err := u.st.Procs[name].stop(5 * time.Second); err != nil {
				return err
			}
			return start()
		}}
	}
	var steps []step
	switch component {
	case "controller":
		steps = []step{restart("controller", u.controller)}
	case "speaker":
		for _, n := range u.s.Nodes() {
			steps = append(steps, restart("speaker-"+n, func() error { return u.speaker(ctx, n) }))
		}
	case "router":
		for i := 1; i <= u.st.Routers; i++ {
			steps = append(steps, restart(seed.RouterName(i), func() error { return u.router(ctx, i) }))
		}
	default:
		return nil, fmt.Errorf("restart %q: want controller, speaker or router", component)
	}
	return steps, nil
}
