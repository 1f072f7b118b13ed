package home

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/lbmodel"
	"github.com/bgplb/bgplb/lab"
)

// The verbs on a real cluster do what an operator does (cordon, rollout
// restart, pull a cable) and let Kubernetes and bgplb react; the lab only
// watches and times them.

// otherNode is the lab's node that is not node.
func (u *upper) otherNode(node string) string {
	for _, n := range u.s.Nodes() {
		if n != node {
			return n
		}
	}
	return ""
}

// clusterMove cordons the Pi-hole's node and restarts its Deployment: the
// scheduler puts the new pod on the other node, and the route follows once
// it is Ready and the old one is gone.
func (u *upper) clusterMove(ctx context.Context) error {
	from, err := u.waitPihole(ctx, "")
	if err != nil {
		return err
	}
	to := u.otherNode(from)
	// Uncordoned whatever happens: a node left cordoned would leave the
	// next move nowhere to go.
	defer func() { _ = u.cordon(context.WithoutCancel(ctx), from, false) }()
	var ready time.Time
	var followed, alone time.Duration
	if err := u.do([]step{
		{fmt.Sprintf("cordoning %s and restarting the Pi-hole Deployment (its new pod goes to %s)", from, to), func() error {
			if err := u.cordon(ctx, from, true); err != nil {
				return err
			}
			return u.rolloutRestart(ctx, &appsv1.Deployment{}, "default", "pihole")
		}},
		{fmt.Sprintf("waiting for the new Pi-hole pod on %s to be Ready", to), func() error {
			_, err := u.waitPihole(ctx, from)
			ready = time.Now()
			return err
		}},
		{fmt.Sprintf("waiting for %s/32 via %s in every router's kernel", PiholeVIP, to), func() error {
			if err := u.waitKernel(ctx, vipVia(u.s.NodeAddr(to), false)); err != nil {
				return err
			}
			followed = time.Since(ready)
			return nil
		}},
		{fmt.Sprintf("waiting for the old pod to go and %s to withdraw", from), func() error {
			err := u.waitRoutes(ctx, u.s.NodeAddr(to))
			alone = time.Since(ready)
			return err
		}},
		{"uncordoning " + from, func() error { return u.cordon(ctx, from, false) }},
	}); err != nil {
		return err
	}
	fmt.Fprintf(u.o.Out, "\nthe route followed the pod to %s %v after it was Ready (via %s alone after %v).\n\n",
		to, followed.Round(time.Millisecond), to, alone.Round(time.Millisecond))
	return show(ctx, u.o.Out, u.s, u.st)
}

// cordon marks node (un)schedulable, as kubectl cordon does.
func (u *upper) cordon(ctx context.Context, node string, off bool) error {
	patch := fmt.Sprintf(`{"spec":{"unschedulable":%t}}`, off)
	n := &corev1.Node{}
	n.Name = node
	return u.k.c.Patch(ctx, n, client.RawPatch(types.MergePatchType, []byte(patch)))
}

// rolloutRestart is `kubectl rollout restart`: a new pod template
// annotation, so that the workload replaces its pods by its strategy.
func (u *upper) rolloutRestart(ctx context.Context, obj client.Object, ns, name string) error {
	obj.SetNamespace(ns)
	obj.SetName(name)
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`,
		time.Now().Format(time.RFC3339Nano))
	return u.k.c.Patch(ctx, obj, client.RawPatch(types.StrategicMergePatchType, []byte(patch)))
}

// clusterFail cuts node off the LAN and the API link, as a dead machine:
// its Node goes NotReady, its Pi-hole pod is evicted and started on the
// other node; the routers drop its paths as soon as BFD (or the hold time)
// says it is gone.
func (u *upper) clusterFail(ctx context.Context, node string) error {
	s, out := u.s, u.o.Out
	ranPihole, other, routed, err := u.beforeLeaving(ctx, node)
	if err != nil {
		return err
	}
	start := time.Now()
	var ready time.Time
	var followed time.Duration
	steps := []step{
		{fmt.Sprintf("cutting %s off the LAN and the API link", node), func() error { return u.cutOff(ctx, node) }},
	}
	if err := u.do(steps); err != nil {
		return err
	}
	dropped, err := u.waitDropped(ctx, node, start, routed)
	if err != nil {
		return err
	}
	steps = []step{
		{fmt.Sprintf("waiting for the Node %s to be NotReady (grace %s)", node, nodeGrace), func() error {
			return u.waitNode(ctx, node, false)
		}},
	}
	if ranPihole {
		steps = append(steps,
			step{fmt.Sprintf("waiting for the Pi-hole to be evicted and Ready on %s", other), func() error {
				_, err := u.waitPihole(ctx, node)
				ready = time.Now()
				return err
			}},
			step{fmt.Sprintf("waiting for %s/32 via %s", PiholeVIP, other), func() error {
				err := u.waitKernel(ctx, vipVia(s.NodeAddr(other), false))
				followed = time.Since(ready)
				return err
			}})
	}
	if err := u.do(steps); err != nil {
		return err
	}
	if ranPihole {
		fmt.Fprintf(out, "    every router routes via %s %v after the failure (%v after the new pod was Ready)\n",
			other, time.Since(start).Round(time.Millisecond), followed.Round(time.Millisecond))
	}
	fmt.Fprintf(out, "\nthe routers dropped %s's paths %v after it went away; `bgplb lab heal %s` puts it back.\n\n",
		node, dropped.Round(time.Millisecond), node)
	return show(ctx, out, s, u.st)
}

// piholeNodeNow is the node of a Ready Pi-hole pod now, without waiting.
func (u *upper) piholeNodeNow(ctx context.Context) string {
	var pods corev1.PodList
	if err := u.k.c.List(ctx, &pods, client.InNamespace("default"), piholeSelector); err != nil {
		return ""
	}
	return readyNode(pods.Items, "")
}

// clusterHeal reconnects node: both links, its default and pod routes;
// then its kubelet reports Ready again and its sessions come back.
func (u *upper) clusterHeal(ctx context.Context, node string) error {
	return u.do([]step{
		{fmt.Sprintf("putting %s back on the LAN and the API link", node), func() error { return u.reconnect(ctx, node) }},
		{fmt.Sprintf("waiting for the Node %s to be Ready", node), func() error { return u.waitNode(ctx, node, true) }},
		u.establishedStep(ctx),
	})
}

// clusterRestart restarts a component the way an upgrade does: the
// controller's Deployment and the speakers' DaemonSet by a rolling
// restart, the router (not in the cluster) in place.
func (u *upper) clusterRestart(ctx context.Context, component string) ([]step, error) {
	switch component {
	case "controller":
		return []step{{"rolling restart of Deployment " + controllerDeployment, func() error {
			if err := u.rolloutRestart(ctx, &appsv1.Deployment{}, speakerNamespace, controllerDeployment); err != nil {
				return err
			}
			return u.waitRolledOut(ctx, &appsv1.Deployment{}, controllerDeployment)
		}}}, nil
	case "speaker":
		return []step{{"rolling restart of DaemonSet " + speakerDaemonSet + " (one node at a time)", func() error {
			if err := u.rolloutRestart(ctx, &appsv1.DaemonSet{}, speakerNamespace, speakerDaemonSet); err != nil {
				return err
			}
			return u.waitRolledOut(ctx, &appsv1.DaemonSet{}, speakerDaemonSet)
		}}}, nil
	case "router":
		if u.st.l2() {
			return nil, errL2("restart router")
		}
		return u.restartSteps(ctx, "router")
	}
	return nil, fmt.Errorf("restart %q: want controller, speaker or router", component)
}

// waitRolledOut waits until a Deployment or DaemonSet of bgplb's
// namespace runs only pods of its current template, all Ready.
func (u *upper) waitRolledOut(ctx context.Context, obj client.Object, name string) error {
	last := ""
	err := lab.Poll(ctx, 200*time.Millisecond, func() (bool, error) {
		if err := u.k.c.Get(ctx, client.ObjectKey{Namespace: speakerNamespace, Name: name}, obj); err != nil {
			return false, nil
		}
		var done bool
		done, last = rolledOut(obj)
		return done, nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w; %s\n%s", name, err, last, u.k.podReport(ctx, speakerNamespace, nil))
	}
	return nil
}

// rolledOut says whether a workload's rollout is complete, and where it is.
func rolledOut(obj client.Object) (bool, string) {
	switch w := obj.(type) {
	case *appsv1.Deployment:
		want := int32(1)
		if w.Spec.Replicas != nil {
			want = *w.Spec.Replicas
		}
		st := w.Status
		return st.ObservedGeneration >= w.Generation && st.UpdatedReplicas == want && st.Replicas == want && st.ReadyReplicas == want,
			fmt.Sprintf("%d updated, %d in all, %d ready of %d", st.UpdatedReplicas, st.Replicas, st.ReadyReplicas, want)
	case *appsv1.DaemonSet:
		st := w.Status
		return st.ObservedGeneration >= w.Generation && st.UpdatedNumberScheduled == st.DesiredNumberScheduled &&
				st.NumberReady == st.DesiredNumberScheduled && st.NumberUnavailable == 0,
			fmt.Sprintf("%d updated, %d ready of %d", st.UpdatedNumberScheduled, st.NumberReady, st.DesiredNumberScheduled)
	}
	return false, fmt.Sprintf("unexpected %T", obj)
}

// clusterStatus prints the nodes and pods, as `kubectl get nodes,pods -A
// -o wide` would, shorter.
func clusterStatus(ctx context.Context, w io.Writer, k *kube) error {
	var nodes corev1.NodeList
	if err := k.c.List(ctx, &nodes); err != nil {
		return err
	}
	var pods corev1.PodList
	if err := k.c.List(ctx, &pods); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tREADY\tSCHEDULING\tADDRESSES")
	for _, n := range nodes.Items {
		ready := "Unknown"
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				ready = string(c.Status)
			}
		}
		sched := "on"
		if n.Spec.Unschedulable {
			sched = "cordoned"
		}
		var addrs []string
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				addrs = append(addrs, a.Address)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", n.Name, ready, sched, strings.Join(addrs, ","))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "POD\tNODE\tIP\tREADY\tPHASE")
	items := pods.Items
	slices.SortFunc(items, func(a, b corev1.Pod) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	for _, p := range items {
		ready := "false"
		if readyNode([]corev1.Pod{p}, "") != "" {
			ready = "true"
		}
		phase := string(p.Status.Phase)
		if p.DeletionTimestamp != nil {
			phase = "Terminating"
		}
		fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%s\n", p.Namespace, p.Name, p.Spec.NodeName, p.Status.PodIP, ready, phase)
	}
	return tw.Flush()
}

// announcementState says whether a ServiceAnnouncement is an announcement:
// a node whose health check fails keeps the object, without the peers of
// what it withholds, and says why in an annotation.
func announcementState(a *v1alpha1.ServiceAnnouncement) string {
	why := a.Annotations[lbmodel.AnnotationHealthCheck]
	switch {
	case why == "":
		return "announced"
	case len(a.Status.Peers) == 0:
		return "withheld: " + why
	}
	return "partly withheld: " + why
}

// objectStatus prints bgplb's status objects: who announces which
// Service, and every speaker's sessions, as the speakers report them.
func objectStatus(ctx context.Context, w io.Writer, k *kube) error {
	var anns v1alpha1.ServiceAnnouncementList
	if err := k.c.List(ctx, &anns); err != nil {
		return err
	}
	var sess v1alpha1.BGPSessionStatusList
	if err := k.c.List(ctx, &sess); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICEANNOUNCEMENT\tSERVICE\tNODE\tPREFIXES\tPEERS\tENDPOINTS\tSTATE")
	for _, a := range anns.Items {
		fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%s\t%d\t%s\n", a.Namespace, a.Name, a.Spec.Service, a.Spec.Node,
			strings.Join(a.Status.Prefixes, ","), strings.Join(a.Status.Peers, ","), a.Status.Endpoints, announcementState(&a))
	}
	if slices.ContainsFunc(anns.Items, func(a v1alpha1.ServiceAnnouncement) bool { return len(a.Status.L2) > 0 }) {
		fmt.Fprintln(tw)
		tw.Flush()
		l2Status(w, anns.Items)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "BGPSESSIONSTATUS\tNODE\tPEER\tADDRESS\tSTATE\tPREFIXES")
	for _, x := range sess.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", x.Name, x.Spec.Node, x.Spec.Peer, x.Status.PeerAddress,
			x.Status.State, x.Status.PrefixesAnnounced)
	}
	return tw.Flush()
}
