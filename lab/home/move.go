package home

import (
	"context"
	"fmt"
	"time"
)

// Move moves the Pi-hole pod to the other node, as a rescheduled pod
// would, and shows the route following it: the new node's VIP and DNS
// responder come up first, then the EndpointSlice names the new node (the
// speakers react to that), then the old node lets go.
func Move(ctx context.Context, o Options) error {
	u, ctx, done, err := play(ctx, o, 2*time.Minute)
	if err != nil {
		return err
	}
	defer done()
	if u.st.l2() {
		return u.l2Move(ctx)
	}
	if u.st.Cluster {
		return u.clusterMove(ctx)
	}
	from, to := "", ""
	for _, n := range u.s.Nodes() {
		if _, ok := u.st.Procs["dns-"+n]; ok {
			from = n
		} else if to == "" {
			to = n
		}
	}
	if from == "" || to == "" {
		return fmt.Errorf("lab %s: cannot tell which node runs the Pi-hole (state in %s); `bgplb lab up` again", u.st.ID, u.o.StateDir)
	}
	var moved time.Duration
	if err := u.do([]step{
		{fmt.Sprintf("starting the Pi-hole on %s and pointing its EndpointSlice there", to), func() error { return u.pod(ctx, to) }},
		{fmt.Sprintf("waiting for %s/32 via %s in every router's kernel", PiholeVIP, to), func() error {
			t := time.Now()
			err := u.waitRoutes(ctx, u.s.NodeAddr(to))
			moved = time.Since(t)
			return err
		}},
		{fmt.Sprintf("stopping the Pi-hole on %s", from), func() error { return u.stopPod(ctx, from) }},
	}); err != nil {
		return err
	}
	fmt.Fprintf(u.o.Out, "\nthe route followed the pod to %s %v after its EndpointSlice changed.\n\n", to, moved.Round(time.Millisecond))
	return show(ctx, u.o.Out, u.s, u.st)
}

// stopPod undoes pod on node: the DNS responder and the VIP.
func (u *upper) stopPod(ctx context.Context, node string) error {
	if p, ok := u.st.Procs["dns-"+node]; ok {
		if err := p.stop(2 * time.Second); err != nil {
			return err
		}
		delete(u.st.Procs, "dns-"+node)
	}
	if err := u.s.DelVIP(ctx, node, PiholeVIP); err != nil {
		return err
	}
	return u.st.save()
}
