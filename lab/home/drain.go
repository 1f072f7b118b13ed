package home

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/seed"
	"github.com/bgplb/bgplb/view"
)

// errNeedsCluster refuses a verb the played lab has no Kubernetes for.
var errNeedsCluster = errors.New("this needs the real cluster: `bgplb lab up` (without --cluster=false)")

// Drain takes a node out of service as an operator does before
// maintenance: it is cordoned, and if the Pi-hole runs there its
// Deployment rolls it over to the other node (the new pod is Ready before
// the old one goes). The node's speaker drains on its own (RFC 8326): it
// re-announces its routes with GRACEFUL_SHUTDOWN, the routers take it out
// of every ECMP set at once (new flows go to the other node), and it
// withdraws after its drain time. Drain times both; Uncordon undoes it.
func Drain(ctx context.Context, o Options, node string) error {
	u, ctx, done, err := playNode(ctx, o, node)
	if err != nil {
		return err
	}
	defer done()
	if u.st.l2() {
		return errL2("drain")
	}
	ranPihole, other, routed, err := u.beforeLeaving(ctx, node)
	if err != nil {
		return err
	}
	start := time.Now()
	what := "cordoning " + node
	if ranPihole {
		what += fmt.Sprintf(" and restarting the Pi-hole Deployment (its new pod goes to %s)", other)
	}
	if err := u.do([]step{{what, func() error {
		if err := u.cordon(ctx, node, true); err != nil {
			return err
		}
		if ranPihole {
			return u.rolloutRestart(ctx, &appsv1.Deployment{}, "default", "pihole")
		}
		return nil
	}}}); err != nil {
		return err
	}
	if !routed {
		fmt.Fprintf(u.o.Out, "    (no router routed via %s: it announces nothing)\n", node)
		return show(ctx, u.o.Out, u.s, u.st)
	}
	addr := u.s.NodeAddr(node)
	moved, err := u.waitEvery(ctx, fmt.Sprintf("waiting for every router to take %s out of its ECMP sets (GRACEFUL_SHUTDOWN)", node), start, notShared(addr))
	if err != nil {
		return err
	}
	if u.o.Figure != nil {
		u.o.Figure("drain-moved", moved)
	}
	if ranPihole {
		if err := u.do([]step{{fmt.Sprintf("waiting for the new Pi-hole pod on %s to be Ready and %s/32 via %s", other, PiholeVIP, other), func() error {
			if _, err := u.waitPihole(ctx, node); err != nil {
				return err
			}
			return u.waitKernel(ctx, vipVia(u.s.NodeAddr(other), false))
		}}}); err != nil {
			return err
		}
	}
	// The kernel shows best paths only: the withdrawal is seen in the RIB.
	var gone time.Duration
	if err := u.do([]step{{fmt.Sprintf("waiting for %s's speaker to withdraw at the end of its drain", node), func() error {
		return u.whileAlive(ctx, func(ctx context.Context) error {
			err := u.waitRIB(ctx, func(es []view.RIBEntry) bool {
				return !slices.ContainsFunc(es, func(e view.RIBEntry) bool {
					return slices.ContainsFunc(e.Paths, func(p view.Path) bool { return p.Peer == addr })
				})
			})
			gone = time.Since(start)
			return err
		})
	}}}); err != nil {
		return err
	}
	fmt.Fprintf(u.o.Out, "\nthe routers sent new flows only to %s %v after the cordon; %s withdrew after %v. `bgplb lab uncordon %s` puts it back.\n\n",
		other, moved.Round(time.Millisecond), node, gone.Round(time.Millisecond), node)
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
	settled := u.establishedStep(ctx)
	if u.st.l2() {
		settled = u.l2SettledStep(ctx)
	}
	if err := u.do([]step{
		{"uncordoning " + node, func() error { return u.cordon(ctx, node, false) }},
		settled,
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

// waitRIB waits until every router's RIB satisfies ok.
func (u *upper) waitRIB(ctx context.Context, ok func([]view.RIBEntry) bool) error {
	for i := 1; i <= u.st.Routers; i++ {
		name := seed.RouterName(i)
		c := view.NewClient(u.st.Procs[name].Socket)
		var last []view.RIBEntry
		if err := lab.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
			es, err := c.RIB(ctx, "", netip.Prefix{})
			if err != nil {
				return false, nil
			}
			last = es
			return ok(es), nil
		}); err != nil {
			return fmt.Errorf("%s: %w; its RIB: %+v", name, err, last)
		}
	}
	return nil
}

// beforeLeaving reads, before node is taken out, what the verb will wait
// for: whether the Pi-hole runs there, the node that takes over, and
// whether any router routes via node at all (routedVia).
func (u *upper) beforeLeaving(ctx context.Context, node string) (ranPihole bool, other string, routed bool, err error) {
	routed, err = u.routedVia(ctx, node)
	return u.piholeNodeNow(ctx) == node, u.otherNode(node), routed, err
}
