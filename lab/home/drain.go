package home

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
)

// errNeedsCluster refuses a verb the played lab has no Kubernetes for.
var errNeedsCluster = errors.New("this needs the real cluster: `bgplb lab up` (without --cluster=false)")

// Drain takes a node out of service as an operator does before
// maintenance: it is cordoned, and if the Pi-hole runs there its
// Deployment rolls it over to the other node (the new pod is Ready before
// the old one goes). The node's speaker drains on its own (RFC 8326): it
// re-announces its routes with GRACEFUL_SHUTDOWN, the routers move new
// flows to the other node at once, and it withdraws after its drain
// time. Drain waits until no router routes via the node. Uncordon
// undoes it.
func Drain(ctx context.Context, o Options, node string) error {
	u, ctx, done, err := playNode(ctx, o, node)
	if err != nil {
		return err
	}
	defer done()
	ranPihole := u.piholeNodeNow(ctx) == node
	routed, err := u.routedVia(ctx, node)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := u.do([]step{{"cordoning " + node, func() error { return u.cordon(ctx, node, true) }}}); err != nil {
		return err
	}
	dropped, err := u.waitDropped(ctx, node, start, routed)
	if err != nil {
		return err
	}
	if ranPihole {
		other := u.otherNode(node)
		if err := u.do([]step{
			{fmt.Sprintf("restarting the Pi-hole Deployment (its new pod goes to %s)", other), func() error {
				return u.rolloutRestart(ctx, &appsv1.Deployment{}, "default", "pihole")
			}},
			{fmt.Sprintf("waiting for the new Pi-hole pod on %s to be Ready and %s/32 via %s alone", other, PiholeVIP, other), func() error {
				if _, err := u.waitPihole(ctx, node); err != nil {
					return err
				}
				return u.waitRoutes(ctx, u.s.NodeAddr(other))
			}},
		}); err != nil {
			return err
		}
	}
	fmt.Fprintf(u.o.Out, "\nthe routers stopped sending new flows to %s %v after the cordon; `bgplb lab uncordon %s` puts it back.\n\n",
		node, dropped.Round(time.Millisecond), node)
	return show(ctx, u.o.Out, u.s, u.st)
}

// Uncordon puts a drained node back in service: its speaker announces
// its routes again, without GRACEFUL_SHUTDOWN.
func Uncordon(ctx context.Context, o Options, node string) error {
	u, ctx, done, err := playNode(ctx, o, node)
	if err != nil {
		return err
	}
	defer done()
	if err := u.do([]step{
		{"uncordoning " + node, func() error { return u.cordon(ctx, node, false) }},
		u.establishedStep(ctx),
	}); err != nil {
		return err
	}
	fmt.Fprintln(u.o.Out)
	return show(ctx, u.o.Out, u.s, u.st)
}

// playNode is play for a verb on one node of the real cluster.
func playNode(ctx context.Context, o Options, node string) (*upper, context.Context, func(), error) {
	u, ctx, done, err := play(ctx, o, 2*time.Minute)
	if err != nil {
		return nil, nil, nil, err
	}
	switch {
	case !u.st.Cluster:
		err = errNeedsCluster
	case !slices.Contains(u.s.Nodes(), node):
		err = fmt.Errorf("no node %q in the lab: %v", node, u.s.Nodes())
	}
	if err != nil {
		done()
		return nil, nil, nil, err
	}
	return u, ctx, done, nil
}
