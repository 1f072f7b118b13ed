package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/daemons"
	"github.com/bgplb/bgplb/lab/dnsserver"
	"github.com/bgplb/bgplb/lab/labtest"
	"github.com/bgplb/bgplb/lab/seed"
	"github.com/bgplb/bgplb/view"
)

// drainTime is the speakers' --drain-time in these tests: long enough to
// see the GRACEFUL_SHUTDOWN phase, short enough for a test.
const drainTime = 3 * time.Second

// gshut is the GRACEFUL_SHUTDOWN community (RFC 8326) as a number.
const gshut = 0xffff0000

// drainLab is the seed lab with speakers that drain in drainTime.
func drainLab(t *testing.T, limit time.Duration, withRouter bool) *seedLab {
	t.Helper()
	return buildSeedLab(t, limit, withRouter, "--drain-time", drainTime.String())
}

// gracefulRestart sets spec.gracefulRestart on the BGPRouter configure made.
func (l *seedLab) gracefulRestart(t *testing.T) {
	t.Helper()
	var peer v1alpha1.BGPRouter
	if err := l.c.Get(l.ctx, client.ObjectKey{Name: "router"}, &peer); err != nil {
		t.Fatal(err)
	}
	peer.Spec.GracefulRestart = true
	if err := l.c.Update(l.ctx, &peer); err != nil {
		t.Fatal(err)
	}
}

// cordon sets a Node's spec.unschedulable, as `kubectl cordon/uncordon`.
func (l *seedLab) cordon(t *testing.T, name string, on bool) {
	t.Helper()
	var n corev1.Node
	if err := l.c.Get(l.ctx, client.ObjectKey{Name: name}, &n); err != nil {
		t.Fatal(err)
	}
	n.Spec.Unschedulable = on
	if err := l.c.Update(l.ctx, &n); err != nil {
		t.Fatal(err)
	}
}

// waitRouterPath polls `bgplb rib` until the path of prefix from peer
// (nil: none) satisfies ok.
func (l *seedLab) waitRouterPath(t *testing.T, what string, prefix netip.Prefix, peer netip.Addr, ok func(p *view.Path) bool) {
	t.Helper()
	var last []view.RIBEntry
	err := lab.Poll(l.ctx, 50*time.Millisecond, func() (bool, error) {
		out, err := exec.CommandContext(l.ctx, bgplbBin, "rib", prefix.String(), "--socket", l.rp.socket, "-o", "json").Output()
		if err != nil {
			return false, nil
		}
		last = nil
		if err := json.Unmarshal(out, &last); err != nil {
			return false, err
		}
		for _, e := range last {
			if e.Prefix != prefix {
				continue
			}
			for i := range e.Paths {
				if e.Paths[i].Peer == peer {
					return ok(&e.Paths[i]), nil
				}
			}
		}
		return ok(nil), nil
	})
	if err != nil {
		t.Fatalf("%s: %v; the router's RIB: %+v", what, err, last)
	}
}

// TestSpeakerDrain (RFC 8326): cordoning node1 makes its speaker announce
// the Service's route again with GRACEFUL_SHUTDOWN, which bgplb router
// ranks last, so the kernel keeps node2 only while node1 still forwards;
// after --drain-time node1 withdraws. Uncordoned, it announces as before.
// The drain is told on the Node as events. A client asks the Pi-hole (a
// pod on each node, externalTrafficPolicy Cluster) every 20 ms throughout
// the drain: no query is lost, and none sent after the router moved new
// flows away reaches node1 (the figure 3, in namespaces).
func TestSpeakerDrain(t *testing.T) {
	l := drainLab(t, 3*time.Minute, true)
	l.configure(t)
	vip := netip.MustParseAddr("203.0.113.53")
	host := netip.PrefixFrom(vip, 32)
	n1, n2 := l.s.NodeAddr(seed.Node1), l.s.NodeAddr(seed.Node2)
	l.pod(t, seed.Node1, vip)
	l.pod(t, seed.Node2, vip)
	l.endpoints(t, "pihole", seed.Node1, seed.Node2)
	l.create(t, pihole(corev1.ServiceExternalTrafficPolicyCluster))
	l.rp.waitKernel(t, l.ctx, want{host: {n1, n2}})
	l.dig(t, vip, seed.Node1)

	var cordoned, marked, moved time.Time
	hasGShut := func(p *view.Path) bool { return p != nil && slices.Contains(p.Communities, "graceful-shutdown") }
	rs := l.streamDuring(t, vip, func() {
		cordoned = time.Now()
		l.cordon(t, seed.Node1, true)
		l.waitRouterPath(t, "node1's path marked GRACEFUL_SHUTDOWN", host, n1, hasGShut)
		marked = time.Now()
		l.rp.waitKernel(t, l.ctx, want{host: {n2}})
		moved = time.Now()
		l.waitRouterPath(t, "node2's path unmarked", host, n2, func(p *view.Path) bool { return p != nil && !hasGShut(p) })
		l.waitRouterPath(t, "node1's path withdrawn after the drain time", host, n1, func(p *view.Path) bool { return p == nil })
	})
	took := time.Since(marked)
	t.Logf("the router's kernel routes new flows to node2 only %v after the cordon (node1 still announced, marked)",
		moved.Sub(cordoned).Round(time.Millisecond))
	late := 0
	for _, r := range rs {
		if r.Sent.After(moved) && r.Node == seed.Node1 {
			late++
		}
	}
	sum := dnsserver.Summarize(rs)
	t.Logf("drain of node1: %v; %d sent after the router moved new flows reached node1", sum, late)
	if sum.Lost > 0 || late > 0 || sum.Sent == 0 {
		t.Errorf("drain of node1: %v, %d late to node1; want none lost and none late", sum, late)
	}
	t.Logf("node1's path carried GRACEFUL_SHUTDOWN for %v before its withdrawal (--drain-time %v)", took.Round(10*time.Millisecond), drainTime)
	if took < drainTime-time.Second {
		t.Errorf("node1 withdrew %v after marking its path, want about --drain-time %v", took, drainTime)
	}
	l.waitNodeEvents(t, seed.Node1, "BGPDraining", "BGPDrained")

	l.cordon(t, seed.Node1, false)
	l.waitRouterPath(t, "node1's path back, unmarked", host, n1, func(p *view.Path) bool { return p != nil && !hasGShut(p) })
	l.rp.waitKernel(t, l.ctx, want{host: {n1, n2}})
	l.waitNodeEvents(t, seed.Node1, "BGPDrainEnded")
}

// waitNodeEvents waits until the Node has events with these reasons.
func (l *seedLab) waitNodeEvents(t *testing.T, node string, reasons ...string) {
	t.Helper()
	var seen []string
	err := lab.Poll(l.ctx, 100*time.Millisecond, func() (bool, error) {
		var evs corev1.EventList
		if err := l.c.List(l.ctx, &evs); err != nil {
			return false, err
		}
		seen = seen[:0]
		for _, e := range evs.Items {
			if e.InvolvedObject.Kind == "Node" && e.InvolvedObject.Name == node {
				seen = append(seen, e.Reason)
			}
		}
		for _, r := range reasons {
			if !slices.Contains(seen, r) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("Node %s: want events %v, have %v", node, reasons, seen)
	}
}

// goBGPHelper is gobgpd as a graceful restart helper (RFC 4724) with both
// nodes as passive neighbours: it keeps a node's routes, stale, when the
// node's session ends without a NOTIFICATION.
type goBGPHelper struct {
	ns   *lab.Netns
	cli  string
	proc *lab.Proc
}

func startGoBGPHelper(t *testing.T, l *seedLab) *goBGPHelper {
	t.Helper()
	bin, err := exec.LookPath("gobgpd")
	if err != nil {
		labtest.Missing(t, "gobgpd: %v", err)
	}
	cli, err := exec.LookPath("gobgp")
	if err != nil {
		labtest.Missing(t, "gobgp: %v", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[global.config]\n  as = 64512\n  router-id = %q\n", l.s.RouterAddr(1))
	for _, n := range l.s.Nodes() {
		fmt.Fprintf(&b, "\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = %q\n    peer-as = 64512\n", l.s.NodeAddr(n))
		b.WriteString("  [neighbors.timers.config]\n    connect-retry = 1\n    hold-time = 9\n    keepalive-interval = 3\n    idle-hold-time-after-reset = 1\n")
		b.WriteString("  [neighbors.transport.config]\n    passive-mode = true\n")
		b.WriteString("  [neighbors.graceful-restart.config]\n    enabled = true\n    restart-time = 120\n")
		b.WriteString("  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"ipv4-unicast\"\n" +
			"    [neighbors.afi-safis.mp-graceful-restart.config]\n      enabled = true\n")
	}
	ns := l.s.Host("router")
	dir, err := os.MkdirTemp(ns.Dir, "gobgpd-gr-")
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "gobgpd.toml")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	proc, err := ns.StartWith(l.ctx, lab.StartOptions{Label: "gobgpd", Dir: dir}, bin,
		"-f", conf, "-t", "toml", "--api-hosts", "127.0.0.1:50051", "--pprof-disable", "--log-plain")
	if err != nil {
		t.Fatal(err)
	}
	g := &goBGPHelper{ns: ns, cli: cli, proc: proc}
	t.Cleanup(func() {
		_ = proc.Stop()
		if t.Failed() {
			t.Logf("gobgpd log:\n%s", proc.Logs())
		}
	})
	return g
}

// goBGPPath is what the tests read of a path in gobgpd's RIB.
type goBGPPath struct {
	peer        netip.Addr
	stale       bool
	communities []uint32
}

func (g *goBGPHelper) paths(ctx context.Context, prefix netip.Prefix) ([]goBGPPath, error) {
	out, err := g.ns.Run(ctx, g.cli, "-p", "50051", "-j", "global", "rib", "-a", "ipv4")
	if err != nil {
		return nil, err
	}
	var rib map[string][]struct {
		Stale      bool   `json:"stale"`
		NeighborIP string `json:"neighbor-ip"`
		Attrs      []struct {
			Type        int      `json:"type"`
			Communities []uint32 `json:"communities"`
		} `json:"attrs"`
	}
	if err := json.Unmarshal(out, &rib); err != nil {
		return nil, fmt.Errorf("gobgp rib: %w\n%s", err, out)
	}
	var ps []goBGPPath
	for _, p := range rib[prefix.String()] {
		a, err := netip.ParseAddr(p.NeighborIP)
		if err != nil {
			continue
		}
		gp := goBGPPath{peer: a, stale: p.Stale}
		for _, at := range p.Attrs {
			gp.communities = append(gp.communities, at.Communities...)
		}
		ps = append(ps, gp)
	}
	return ps, nil
}

// waitPath polls gobgpd until the path of prefix from peer (nil: none)
// satisfies ok.
func (g *goBGPHelper) waitPath(t *testing.T, ctx context.Context, what string, prefix netip.Prefix, peer netip.Addr, ok func(p *goBGPPath) bool) {
	t.Helper()
	var last []goBGPPath
	err := lab.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		ps, err := g.paths(ctx, prefix)
		if err != nil {
			return false, nil // not answering yet
		}
		last = ps
		if i := slices.IndexFunc(ps, func(p goBGPPath) bool { return p.peer == peer }); i >= 0 {
			return ok(&ps[i]), nil
		}
		return ok(nil), nil
	})
	if err != nil {
		t.Fatalf("%s: %v; gobgpd has %+v", what, err, last)
	}
}

// fresh: a path present, not stale, not marked GRACEFUL_SHUTDOWN.
func fresh(p *goBGPPath) bool { return p != nil && !p.stale && !slices.Contains(p.communities, gshut) }

// gracefulPihole configures the seed's BGPRouter with graceful restart,
// starts gobgpd as the helper, and the Pi-hole (Cluster, a pod on each
// node); it returns once gobgpd has the route from both nodes.
func (l *seedLab) gracefulPihole(t *testing.T) (*goBGPHelper, netip.Prefix) {
	t.Helper()
	l.configure(t)
	l.gracefulRestart(t)
	g := startGoBGPHelper(t, l)
	host := netip.MustParsePrefix("203.0.113.53/32")
	l.endpoints(t, "pihole", seed.Node1, seed.Node2)
	l.create(t, pihole(corev1.ServiceExternalTrafficPolicyCluster))
	g.waitPath(t, l.ctx, "node1's route", host, l.s.NodeAddr(seed.Node1), fresh)
	g.waitPath(t, l.ctx, "node2's route", host, l.s.NodeAddr(seed.Node2), fresh)
	return g, host
}

// sigterm stops a speaker as the kubelet does and waits for it to end.
func sigterm(t *testing.T, ctx context.Context, p *lab.Proc) {
	t.Helper()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.Wait(ctx); err != nil && ctx.Err() != nil {
		t.Fatalf("speaker did not stop: %v", err)
	}
}

// TestSpeakerGracefulRestart (RFC 4724, the restarting speaker), against
// gobgpd as the helper: a SIGTERM on a schedulable node is a restart, so
// the speaker leaves without a NOTIFICATION and gobgpd keeps node1's
// route, stale, until the new process sends it again (R bit, End-of-RIB).
// A SIGTERM on a cordoned node is for good: the route carries
// GRACEFUL_SHUTDOWN, then is withdrawn, and gobgpd keeps nothing.
func TestSpeakerGracefulRestart(t *testing.T) {
	l := drainLab(t, 3*time.Minute, false)
	g, host := l.gracefulPihole(t)
	n1, n2 := l.s.NodeAddr(seed.Node1), l.s.NodeAddr(seed.Node2)

	// A rolling update: node1's speaker goes, gobgpd keeps its route. A
	// watcher polls gobgpd throughout, for any moment without it.
	watchCtx, stopWatch := context.WithCancel(l.ctx)
	t.Cleanup(stopWatch)
	watched := make(chan [2]int, 1)
	go func() {
		polls, missing := 0, 0
		for watchCtx.Err() == nil {
			if ps, err := g.paths(watchCtx, host); err == nil {
				polls++
				if !slices.ContainsFunc(ps, func(p goBGPPath) bool { return p.peer == n1 }) {
					missing++
				}
			}
			time.Sleep(20 * time.Millisecond) // a sampling rate, not a wait for a condition
		}
		watched <- [2]int{polls, missing}
	}()
	restarted := time.Now()
	old := l.speakers[seed.Node1]
	sigterm(t, l.ctx, old)
	if logs := old.Logs(); !strings.Contains(logs, "left for a graceful restart") {
		t.Fatalf("node1's speaker did not leave for a graceful restart:\n%s", logs)
	}
	g.waitPath(t, l.ctx, "node1's route kept, stale", host, n1, func(p *goBGPPath) bool { return p != nil && p.stale })
	var st v1alpha1.BGPSessionStatus
	if err := l.c.Get(l.ctx, client.ObjectKey{Name: seed.Node1 + ".router"}, &st); err != nil {
		t.Fatal(err)
	}
	if st.Annotations["bgplb.io/graceful-restart-until"] == "" {
		t.Errorf("no restart marker on %s: %v", st.Name, st.Annotations)
	}
	l.startSpeaker(t, seed.Node1, "--drain-time", drainTime.String())
	g.waitPath(t, l.ctx, "node1's route sent again", host, n1, fresh)
	stopWatch()
	w := <-watched
	t.Logf("speaker restart: node1's route stale at gobgpd for %v; missing in %d of %d polls",
		time.Since(restarted).Round(time.Millisecond), w[1], w[0])
	if w[1] > 0 || w[0] == 0 {
		t.Errorf("gobgpd lost node1's route during the restart in %d of %d polls", w[1], w[0])
	}
	err := lab.Poll(l.ctx, 100*time.Millisecond, func() (bool, error) {
		return strings.Contains(l.speakers[seed.Node1].Logs(), "graceful restart: session up again"), nil
	})
	if err != nil {
		t.Errorf("the new speaker did not come up as a graceful restart:\n%s", l.speakers[seed.Node1].Logs())
	}

	// Going away: cordoned, then SIGTERM before the drain time is over.
	l.cordon(t, seed.Node1, true)
	g.waitPath(t, l.ctx, "node1's route marked GRACEFUL_SHUTDOWN", host, n1,
		func(p *goBGPPath) bool { return p != nil && slices.Contains(p.communities, gshut) })
	sigterm(t, l.ctx, l.speakers[seed.Node1])
	g.waitPath(t, l.ctx, "node1's route gone, not kept", host, n1, func(p *goBGPPath) bool { return p == nil })
	if logs := l.speakers[seed.Node1].Logs(); !strings.Contains(logs, "stopping for good") || strings.Contains(logs, "left for a graceful restart") {
		t.Errorf("node1's speaker on a cordoned node did not stop for good:\n%s", logs)
	}
	g.waitPath(t, l.ctx, "node2's route untouched", host, n2, fresh)
}

// streamDuring asks the Pi-hole at vip from the client every 20 ms while
// fn runs, each query a new flow, and returns every query's result.
func (l *seedLab) streamDuring(t *testing.T, vip netip.Addr, fn func()) []dnsserver.Result {
	t.Helper()
	ctx, stop := context.WithCancel(l.ctx)
	defer stop() // on a failure in fn the client stops before the lab goes
	done := make(chan []dnsserver.Result, 1)
	client := l.s.Host(seed.Client)
	go func() {
		rs, _ := dnsserver.Stream(ctx, dnsserver.StreamOptions{In: client.Do,
			Server: netip.AddrPortFrom(vip, seed.DNSPort), Name: "pihole.lab."})
		done <- rs
	}()
	fn()
	stop()
	return <-done
}

// birdKernel waits until BIRD's kernel protocol routes dst via gw.
func birdKernel(t *testing.T, ctx context.Context, ns *lab.Netns, dst netip.Prefix, gw netip.Addr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last []lab.Route
	_, err := ns.WaitRoutes(ctx, lab.RouteQuery{Proto: "bird"}, func(rs []lab.Route) bool {
		last = rs
		i := slices.IndexFunc(rs, func(r lab.Route) bool { return r.Dst == dst })
		return i >= 0 && slices.Equal(rs[i].Gateways(), []netip.Addr{gw})
	})
	if err != nil {
		t.Fatalf("BIRD's kernel route %v via %v: %v; have:\n%s", dst, gw, err, lab.FormatRoutes(last))
	}
}

// TestSpeakerRollingRestart is the rolling update of the figure 2
// in namespaces: the Pi-hole's one pod is on node1 (externalTrafficPolicy
// Local), and node1's speaker is stopped and started again while the
// client asks every 20 ms through the router, bgplb router or BIRD (its
// kernel protocol), both graceful restart helpers by default. With
// graceful restart no query is lost; without it the route goes until the
// new process is up (the figure is logged, for comparison).
func TestSpeakerRollingRestart(t *testing.T) {
	for _, tc := range []struct {
		router string
		gr     bool
	}{{"bgplb", true}, {"bgplb", false}, {"bird", true}, {"bird", false}} {
		t.Run(fmt.Sprintf("%s/gracefulRestart=%v", tc.router, tc.gr), func(t *testing.T) {
			l := drainLab(t, 3*time.Minute, tc.router == "bgplb")
			l.configure(t)
			if tc.gr {
				l.gracefulRestart(t)
			}
			vip := netip.MustParseAddr("203.0.113.53")
			host := netip.PrefixFrom(vip, 32)
			routed := l.rollingRouter(t, tc.router, host)
			l.pod(t, seed.Node1, vip)
			l.endpoints(t, "pihole", seed.Node1)
			l.create(t, pihole(corev1.ServiceExternalTrafficPolicyLocal))
			routed()
			l.dig(t, vip, seed.Node1)

			began := time.Now()
			sum := dnsserver.Summarize(l.streamDuring(t, vip, func() {
				sigterm(t, l.ctx, l.speakers[seed.Node1])
				l.startSpeaker(t, seed.Node1, "--drain-time", drainTime.String())
				p := l.speakers[seed.Node1]
				err := lab.Poll(l.ctx, 50*time.Millisecond, func() (bool, error) {
					return strings.Contains(p.Logs(), "session up: sending the full set"), nil
				})
				if err != nil {
					t.Fatalf("node1's new speaker did not come up: %v", err)
				}
				routed()
				l.dig(t, vip, seed.Node1)
			}))
			t.Logf("speaker restart through %s (graceful restart %v), %v: %v", tc.router, tc.gr, time.Since(began).Round(time.Millisecond), sum)
			if tc.gr && (sum.Lost > 0 || sum.Sent == 0) {
				t.Errorf("queries lost across a graceful restart: %v", sum)
			}
		})
	}
}

// rollingRouter starts BIRD as the router when asked (bgplb router runs
// already) and returns the wait for host via node1 in the router's kernel.
func (l *seedLab) rollingRouter(t *testing.T, router string, host netip.Prefix) func() {
	t.Helper()
	n1, n2 := l.s.NodeAddr(seed.Node1), l.s.NodeAddr(seed.Node2)
	if router == "bgplb" {
		return func() { l.rp.waitKernel(t, l.ctx, want{host: {n1}}) }
	}
	ns := l.s.Host("router")
	d, err := daemons.StartBIRD(l.ctx, ns, daemons.Config{ASN: 64512, RouterID: l.s.RouterAddr(1),
		Local4: l.s.RouterAddr(1), Local6: l.s.RouterAddr6(1), FIB: true,
		Neighbors: []daemons.Neighbor{{Address: n1, ASN: 64512, Passive: true}, {Address: n2, ASN: 64512, Passive: true}}})
	labtest.SkipIfNotInstalled(t, err)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop() })
	return func() { birdKernel(t, l.ctx, ns, host, n1) }
}

// TestSpeakerRemovedForGood: the speaker's DaemonSet is deleted (the
// speaker finds it through its pod, --pod-name): a SIGTERM is then for
// good although the node is fine and the session negotiated graceful
// restart, so the speaker drains (GRACEFUL_SHUTDOWN for --drain-time) and
// withdraws, and gobgpd keeps nothing.
func TestSpeakerRemovedForGood(t *testing.T) {
	crds, err := seed.FindCRDDir()
	if err != nil {
		t.Fatal(err)
	}
	l := bareSeedLab(t, 3*time.Minute, false, crds)
	l.startController(t)
	l.speakerKubeconfig = l.speakerIdentity(t)
	labels := map[string]string{"app": "bgplb-speaker"}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: speakerNamespace, Name: "bgplb-speaker"},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "speaker", Image: "bgplb"}}}}}}
	l.create(t, ds)
	for _, n := range l.s.Nodes() {
		// The pods no kubelet runs: what the speakers read of themselves.
		l.create(t, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: speakerNamespace, Name: "bgplb-speaker-" + n, Labels: labels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ds, appsv1.SchemeGroupVersion.WithKind("DaemonSet"))}},
			Spec: corev1.PodSpec{NodeName: n, Containers: []corev1.Container{{Name: "speaker", Image: "bgplb"}}}})
		l.startSpeaker(t, n, "--drain-time", drainTime.String(), "--pod-name", "bgplb-speaker-"+n)
	}
	g, host := l.gracefulPihole(t)
	n1, n2 := l.s.NodeAddr(seed.Node1), l.s.NodeAddr(seed.Node2)

	if err := l.c.Delete(l.ctx, ds); err != nil {
		t.Fatal(err)
	}
	p := l.speakers[seed.Node1]
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	g.waitPath(t, l.ctx, "node1's route marked GRACEFUL_SHUTDOWN as it stops", host, n1,
		func(p *goBGPPath) bool { return p != nil && slices.Contains(p.communities, gshut) })
	g.waitPath(t, l.ctx, "node1's route gone, not kept", host, n1, func(p *goBGPPath) bool { return p == nil })
	if err := p.Wait(l.ctx); err != nil {
		t.Errorf("speaker exit: %v", err)
	}
	if logs := p.Logs(); !strings.Contains(logs, "speaker DaemonSet deleted") {
		t.Errorf("node1's speaker did not see its DaemonSet deleted:\n%s", logs)
	}
	g.waitPath(t, l.ctx, "node2's route untouched", host, n2, fresh)
}
