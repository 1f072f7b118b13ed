package home_test

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bgplb/bgplb/internal/controlplane"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/dnsserver"
	"github.com/bgplb/bgplb/lab/home"
	"github.com/bgplb/bgplb/lab/labtest"
	"github.com/bgplb/bgplb/lab/seed"
)

// TestCluster is the seed's story on a real cluster (`bgplb lab up
// --cluster`): kubelets, containerd and kube-proxy in the node namespaces,
// bgplb installed from its bundle, the Pi-hole a Deployment. The client is
// answered by the pod through the router and kube-proxy; move, fail, heal
// and the rolling restarts work through Kubernetes, with a client asking
// throughout the rolling updates (the lost queries are logged: they are
// the failover work's goals); down leaves nothing behind.
func TestCluster(t *testing.T) {
	c := startCluster(t, "labk")
	ctx, o, s, r, kubectl := c.ctx, c.o, c.s, c.r, c.kubectl
	out := c.out

	// Real pods on real nodes: the Pi-hole and bgplb's workloads are
	// scheduled, run by the kubelets, and the Service got its address.
	first := podNode(t, kubectl)
	r.wantVia("after up", first)
	r.wantAnswer("over TCP after up", true, first)
	if ip := kubectl("get", "svc", "pihole", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}"); ip != home.PiholeVIP.String() {
		t.Errorf("the Pi-hole Service got %q, want %s", ip, home.PiholeVIP)
	}
	if n := kubectl("get", "pods", "-n", "bgplb-system", "-o", "name"); strings.Count(n, "pod/bgplb-speaker-") != 2 || strings.Count(n, "pod/bgplb-controller-") != 2 {
		t.Errorf("bgplb's pods: %s", n)
	}
	r.do("status", func() error { return home.Status(ctx, o) })
	for _, want := range []string{"node1  True", "node2  True", "default/pihole-", "node1.router", "203.0.113.53/32", "node1/kubelet", "node2/containerd"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}

	// Move: the Deployment's new pod lands on the other node and the
	// route follows; a client asks throughout.
	other := map[string]string{seed.Node1: seed.Node2, seed.Node2: seed.Node1}
	sum := r.streaming("move (rolling update of the Pi-hole)", func() error { return home.Move(ctx, o) })
	r.wantVia("after move", other[first])
	r.wantAnswer("after move", false, other[first])
	if podNode(t, kubectl) != other[first] {
		t.Errorf("after move the Pi-hole runs on %s", podNode(t, kubectl))
	}
	if sum.ByNode[other[first]] == 0 {
		t.Errorf("no answer from %s while moving: %v", other[first], sum)
	}

	// A rolling restart of the speaker DaemonSet, one node at a time.
	r.streaming("restart speaker (DaemonSet rolling update)", func() error { return home.Restart(ctx, o, "speaker") })
	r.wantVia("after the speakers' rolling update", other[first])

	// Fail the Pi-hole's node: NotReady, evicted, rescheduled, the route
	// follows; heal brings the node back Ready and Established.
	failed := other[first]
	var dropped time.Duration
	fo := o
	fo.Figure = func(name string, d time.Duration) { dropped = d }
	r.do("fail", func() error { return home.Fail(ctx, fo, failed) })
	// The examples run BFD at 300 ms × 3: the routers drop the node's
	// paths long before its 9 s hold time would.
	if dropped <= 0 || dropped > 3*time.Second {
		t.Errorf("the routers dropped %s's paths %v after the cut, want BFD's < 1 s (bound 3 s)", failed, dropped)
	}
	r.wantVia("after failing "+failed, first)
	r.wantAnswer("after the failover", false, first)
	r.do("heal", func() error { return home.Heal(ctx, o, failed) })
	if n := strings.Count(out.String(), "  Established  "); n != 2 {
		t.Errorf("after heal %d sessions Established, want 2:\n%s", n, out.String())
	}
	// Faster BFD on both ends without touching the BGP sessions.
	r.do("bfd 100ms", func() error { return home.TuneBFD(ctx, o, 100*time.Millisecond) })
	for _, c := range []string{"controller", "router"} {
		r.do("restart "+c, func() error { return home.Restart(ctx, o, c) })
		r.wantAnswer("after restarting the "+c, true, first)
	}

	// ETP Cluster: every node announces, weighted by its ready pods (at
	// least 1: a node without one still forwards); deleting the Service
	// withdraws it.
	svcFile := filepath.Join(t.TempDir(), "all.yaml")
	if err := os.WriteFile(svcFile, []byte(clusterService), 0o644); err != nil {
		t.Fatal(err)
	}
	kubectl("apply", "-f", svcFile)
	kubectl("scale", "deployment/pihole", "--replicas=3")
	allVIP := netip.MustParsePrefix("203.0.113.54/32")
	if err := lab.Poll(ctx, 200*time.Millisecond, func() (bool, error) {
		return readyPods(t, kubectl, seed.Node1)+readyPods(t, kubectl, seed.Node2) == 3, nil
	}); err != nil {
		t.Fatalf("three Pi-hole pods never Ready: %v", err)
	}
	t.Logf("ready Pi-hole pods: node1 %d, node2 %d", readyPods(t, kubectl, seed.Node1), readyPods(t, kubectl, seed.Node2))
	r.wantWeights(allVIP, func() map[netip.Addr]int {
		w := map[netip.Addr]int{}
		for _, n := range s.Nodes() {
			w[s.NodeAddr(n)] = max(1, readyPods(t, kubectl, n))
		}
		return w
	})
	// The routes follow the endpoints at once; each node's kube-proxy
	// programs the new Service on its own sync, and a query hashed to a
	// node whose rules are not there yet goes unanswered: wait for one.
	var answer string
	var digErr error
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := lab.Poll(dctx, 200*time.Millisecond, func() (bool, error) {
		answer, digErr = s.Dig(dctx, seed.Client, allVIP.Addr(), "pihole.lab.", false)
		return digErr == nil, nil
	}); err != nil {
		err = errors.Join(err, digErr)
		t.Errorf("dig @%s never answered: %v", allVIP.Addr(), err)
	} else {
		t.Logf("ETP Cluster: %s", answer)
	}
	kubectl("delete", "service", "pihole-all")
	if _, err := s.Host(seed.Router).WaitRoutes(ctx, lab.RouteQuery{Proto: "bgp"}, func(rs []lab.Route) bool {
		return !slices.ContainsFunc(rs, func(x lab.Route) bool { return x.Dst == allVIP })
	}); err != nil {
		t.Errorf("%s still routed after the Service's deletion: %v", allVIP, err)
	}
	kubectl("scale", "deployment/pihole", "--replicas=1")

	out.Reset()
	gone := c.down()
	checkGone(t, gone, o.StateDir)
	checkNoCgroups(t, gone.ID)
}

// cluster is a real-cluster lab under test.
type cluster struct {
	ctx     context.Context
	o       home.Options
	s       *seed.Seed
	r       *run
	out     *bytes.Buffer
	kubectl func(args ...string) string
	st      *home.State
}

// startCluster brings up a real-cluster lab (removed at cleanup, also
// when the test fails).
func startCluster(t testing.TB, prefix string) *cluster {
	return startClusterWith(t, prefix, func(*home.Options) {})
}

// startClusterWith is startCluster with Up's options changed by opt.
func startClusterWith(t testing.TB, prefix string, opt func(*home.Options)) *cluster {
	labtest.Require(t)
	if _, err := controlplane.BinDir(); errors.Is(err, controlplane.ErrNoBinaries) {
		labtest.Missing(t, "%v", err)
	}
	for _, tool := range []string{"containerd", "runc", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			labtest.Missing(t, "%s: %v (hack/install-deps.sh installs it)", tool, err)
		}
	}
	src, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "bgplb")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/bgplb/bgplb/cmd/bgplb").CombinedOutput(); err != nil {
		t.Fatalf("building bgplb: %v\n%s", err, out)
	}
	c := &cluster{out: &bytes.Buffer{}}
	c.o = home.Options{BinPath: bin, StateDir: filepath.Join(t.TempDir(), "state"), SourceDir: src,
		Prefix: prefix, Out: c.out, Cluster: true}
	opt(&c.o)
	c.ctx = labtest.Context(t, 8*time.Minute)
	t.Cleanup(func() {
		if c.st != nil {
			if err := home.Down(context.Background(), c.o); err != nil {
				t.Errorf("down: %v", err)
			}
		}
	})
	start := time.Now()
	err = home.Up(c.ctx, c.o)
	t.Logf("up took %v:\n%s", time.Since(start).Round(time.Millisecond), c.out.String())
	c.st, _ = home.LoadState(c.o.StateDir)
	if err != nil {
		t.Fatalf("up --cluster: %v", err)
	}
	if c.s, err = seed.Open(c.st.ID); err != nil {
		t.Fatal(err)
	}
	c.r = &run{t: t, ctx: c.ctx, o: c.o, s: c.s, out: c.out}
	c.kubectl = func(args ...string) string {
		t.Helper()
		b, err := exec.CommandContext(c.ctx, bin, append([]string{"lab", "--state", c.o.StateDir, "kubectl"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, b)
		}
		return string(b)
	}
	return c
}

// down removes the lab now and returns its last state.
func (c *cluster) down() *home.State {
	c.r.t.Helper()
	st := c.st
	if now, err := home.LoadState(c.o.StateDir); err == nil {
		st = now // with the processes restarts started
	}
	if err := home.Down(context.Background(), c.o); err != nil {
		c.r.t.Fatalf("down: %v\n%s", err, c.out.String())
	}
	c.st = nil
	return st
}

// clusterService is a second Service for the Pi-hole, with ETP Cluster.
const clusterService = `apiVersion: v1
kind: Service
metadata:
  name: pihole-all
  namespace: default
  annotations:
    metallb.universe.tf/address-pool: lan
    metallb.universe.tf/loadBalancerIPs: 203.0.113.54
spec:
  type: LoadBalancer
  externalTrafficPolicy: Cluster
  selector:
    k8s-app: pi-hole
  ports:
  - {name: dns-udp, protocol: UDP, port: 53, targetPort: 53}
`

// readyPods counts the Pi-hole's ready pods on node.
func readyPods(t testing.TB, kubectl func(...string) string, node string) int {
	t.Helper()
	out := kubectl("get", "pods", "-l", "k8s-app=pi-hole", "--field-selector=spec.nodeName="+node,
		"-o", `jsonpath={range .items[*]}{.metadata.deletionTimestamp}/{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if l == "/True" { // Ready, and not being deleted
			n++
		}
	}
	return n
}

// wantWeights waits until the router's route to vip has exactly the next
// hops and weights want gives (asked again on each look, as pods start).
func (r *run) wantWeights(vip netip.Prefix, want func() map[netip.Addr]int) {
	r.t.Helper()
	var last []lab.Route
	var w map[netip.Addr]int
	_, err := r.s.Host(seed.Router).WaitRoutes(r.ctx, lab.RouteQuery{Proto: "bgp"}, func(rs []lab.Route) bool {
		last, w = rs, want()
		i := slices.IndexFunc(rs, func(x lab.Route) bool { return x.Dst == vip })
		if i < 0 || len(rs[i].NextHops) != len(w) {
			return false
		}
		for _, h := range rs[i].NextHops {
			if w[h.Gateway] != h.Weight {
				return false
			}
		}
		return true
	})
	if err != nil {
		r.t.Errorf("%s: want next hops weighted %v: %v\n%s", vip, w, err, lab.FormatRoutes(last))
	}
}

// podNode is the node the Pi-hole pod runs on (not counting one that is
// terminating).
func podNode(t testing.TB, kubectl func(...string) string) string {
	t.Helper()
	out := kubectl("get", "pods", "-l", "k8s-app=pi-hole", "--field-selector=status.phase=Running",
		"-o", `jsonpath={range .items[*]}{.metadata.deletionTimestamp}/{.spec.nodeName}{"\n"}{end}`)
	var nodes []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if n, ok := strings.CutPrefix(l, "/"); ok {
			nodes = append(nodes, n)
		}
	}
	if len(nodes) != 1 || (nodes[0] != seed.Node1 && nodes[0] != seed.Node2) {
		t.Fatalf("the Pi-hole runs on %q, want one node", nodes)
	}
	return nodes[0]
}

// streaming runs a lab command while the client asks the Pi-hole every
// 20 ms, and logs what the client saw.
func (r *run) streaming(what string, fn func() error) dnsserver.Summary {
	r.t.Helper()
	return r.streamingTo(home.PiholeVIP, what, fn)
}

// streamingTo is streaming with the client asking vip.
func (r *run) streamingTo(vip netip.Addr, what string, fn func() error) dnsserver.Summary {
	r.t.Helper()
	ctx, stop := context.WithCancel(r.ctx)
	done := make(chan []dnsserver.Result, 1)
	// On a failure (r.do's Fatalf) the client stops before the lab goes.
	defer stop()
	client := r.s.Host(seed.Client)
	go func() {
		rs, _ := dnsserver.Stream(ctx, dnsserver.StreamOptions{In: client.Do,
			Server: netip.AddrPortFrom(vip, seed.DNSPort), Name: "pihole.lab."})
		done <- rs
	}()
	r.do(what, fn)
	stop()
	sum := dnsserver.Summarize(<-done)
	r.t.Logf("%s: %v", what, sum)
	return sum
}

// checkNoCgroups fails the test for a cgroup of lab id left: the nodes'
// /bgplb-ID-NODE parents, one level down in every v1 hierarchy, or at the
// top of a v2 one.
func checkNoCgroups(t testing.TB, id string) {
	t.Helper()
	hs, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil || len(hs) == 0 {
		t.Fatalf("reading /sys/fs/cgroup: %v (%d entries)", err, len(hs))
	}
	for _, pattern := range []string{"*" + id + "*", "*/*" + id + "*"} {
		if m, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", pattern)); len(m) > 0 {
			t.Errorf("cgroups left: %v", m)
		}
	}
}
