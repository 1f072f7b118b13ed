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
	st, s, unlock, err := openLocked(&o)
	if err != nil {
		return err
	}
	defer unlock()
	k, err := newKube(st.Kubeconfig)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	u := &upper{o: o, p: &stepper{o: o, start: time.Now()}, st: st, s: s, k: k}
	type part struct {
		name  string
		start func() error
	}
	var parts []part
	switch component {
	case "controller":
		parts = []part{{"controller", u.controller}}
	case "speaker":
		for _, n := range s.Nodes() {
			parts = append(parts, part{"speaker-" + n, func() error { return u.speaker(ctx, n) }})
		}
	case "router":
		for i := 1; i <= st.Routers; i++ {
			parts = append(parts, part{seed.RouterName(i), func() error { return u.router(ctx, i) }})
		}
	default:
		return fmt.Errorf("restart %q: want controller, speaker or router", component)
	}
	for _, p := range parts {
		if err := u.p.step("restarting "+p.name, func() error {
			if err := stopPID(st.Procs[p.name], 5*time.Second); err != nil {
				return err
			}
			return p.start()
		}); err != nil {
			return err
		}
	}
	if err := u.p.step("waiting for node1 and node2 to be Established on every router", func() error {
		return u.waitEstablished(ctx)
	}); err != nil {
		return err
	}
	fmt.Fprintln(o.Out)
	return show(ctx, o.Out, s, st)
}
