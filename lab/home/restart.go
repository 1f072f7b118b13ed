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
		return fmt.Errorf("restart %q: want controller, speaker or router", component)
	}
	steps = append(steps, u.establishedStep(ctx))
	// A restarted speaker announces once it has read the cluster again: the
	// Pi-hole is back when its route is, not when the sessions are.
	for _, n := range u.s.Nodes() {
		if _, ok := u.st.Procs["dns-"+n]; ok {
			steps = append(steps, step{fmt.Sprintf("waiting for %s/32 via %s in every router's kernel", PiholeVIP, n), func() error {
				return u.waitRoutes(ctx, u.s.NodeAddr(n))
			}})
		}
	}
	if err := u.do(steps); err != nil {
		return err
	}
	fmt.Fprintln(u.o.Out)
	return show(ctx, u.o.Out, u.s, u.st)
}
