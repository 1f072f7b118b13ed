package home_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bgplb/bgplb/internal/controlplane"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/labtest"
	"github.com/bgplb/bgplb/lab/seed"

	"github.com/bgplb/bgplb/lab/home"
)

// TestUpDown is `bgplb lab up`, the checks of the write-up, a second `up`
// that finds the lab running, and `down`, after which nothing of the lab
// is left: no namespace, veth, process, scratch or state directory.
func TestUpDown(t *testing.T) {
	labtest.Require(t)
	if _, err := controlplane.BinDir(); errors.Is(err, controlplane.ErrNoBinaries) && os.Getenv("CI") == "" {
		t.Skipf("skipping: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "bgplb")
	build := exec.Command("go", "build", "-o", bin, "github.com/bgplb/bgplb/cmd/bgplb")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building bgplb: %v\n%s", err, out)
	}
	var out bytes.Buffer
	o := home.Options{BinPath: bin, StateDir: filepath.Join(t.TempDir(), "state"), Prefix: "labt", Out: &out}
	ctx := labtest.Context(t, 4*time.Minute)
	var id string
	down := func() {
		if err := home.Down(context.Background(), o); err != nil {
			t.Errorf("down: %v", err)
		}
	}
	t.Cleanup(func() {
		if id != "" { // a failed test still removes its lab
			down()
		}
	})

	start := time.Now()
	err := home.Up(ctx, o)
	t.Logf("up took %v:\n%s", time.Since(start).Round(time.Millisecond), out.String())
	st, lerr := home.LoadState(o.StateDir)
	if lerr == nil {
		id = st.ID
	}
	if err != nil {
		if st != nil {
			for n, p := range st.Procs {
				b, _ := os.ReadFile(p.Log)
				t.Logf("=== %s log ===\n%s", n, b)
			}
		}
		t.Fatalf("up: %v", err)
	}
	if !st.Ready {
		t.Fatalf("state not ready: %+v", st)
	}

	// The router's kernel has the VIP via node1 (proto bgp); the client is
	// answered by node1 through the router.
	s, err := seed.Open(st.ID)
	if err != nil {
		t.Fatal(err)
	}
	r := &run{t: t, ctx: ctx, o: o, s: s, out: &out}
	r.wantVia("after up", seed.Node1)
	r.wantAnswer("over TCP after up", true, seed.Node1)
	if n := strings.Count(out.String(), "  Established  "); n != 2 {
		t.Errorf("up's neighbour table shows %d Established sessions, want 2", n)
	}
	for _, want := range []string{"*> 203.0.113.53/32", "203.0.113.53 nhid", "pihole.lab. A 203.0.113.53, answered by the Pi-hole on node1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("up's output lacks %q", want)
		}
	}

	// `bgplb lab kubectl` reaches the lab's API server with the kubectl
	// built beside it (the API server's version), so it works where no
	// kubectl is installed.
	kc := exec.CommandContext(ctx, bin, "lab", "--state", o.StateDir, "kubectl", "get", "svc", "pihole",
		"-o", "jsonpath={.status.loadBalancer.ingress[0].ip}")
	if b, err := kc.CombinedOutput(); err != nil || string(b) != home.PiholeVIP.String() {
		t.Errorf("bgplb lab kubectl get svc: %q, %v; want %s", b, err, home.PiholeVIP.String())
	}
	kc = exec.CommandContext(ctx, bin, "lab", "--state", o.StateDir, "kubectl", "version", "--client")
	if b, err := kc.CombinedOutput(); err != nil || !strings.Contains(string(b), "Client Version: "+controlplane.KubernetesVersion) {
		t.Errorf("bgplb lab kubectl version: %q, %v; want the API server's version %s", b, err, controlplane.KubernetesVersion)
	}

	// Up again: the lab is found running, nothing is rebuilt.
	r.do("second up", func() error { return home.Up(ctx, o) })
	if !strings.Contains(out.String(), "already up") {
		t.Errorf("second up did not find the lab:\n%s", out.String())
	}
	if st2, _ := home.LoadState(o.StateDir); st2 == nil || st2.ID != st.ID {
		t.Errorf("second up changed the lab: %+v", st2)
	}
	// Asking for another shape does not rebuild it either, but says how.
	two := o
	two.Routers = 2
	r.do("up --routers 2 on a running lab", func() error { return home.Up(ctx, two) })
	if !strings.Contains(out.String(), "not the 2 asked for") {
		t.Errorf("up --routers 2 on a one-router lab did not say so:\n%s", out.String())
	}

	// Move: the pod goes to node2, the route and the answers follow, and
	// node1 no longer holds the VIP.
	r.do("move", func() error { return home.Move(ctx, o) })
	r.wantVia("after move", seed.Node2)
	r.wantAnswer("after move", false, seed.Node2)
	if vips, err := s.VIPs(ctx, seed.Node1); err != nil || len(vips) != 0 {
		t.Errorf("node1 still holds %v (%v)", vips, err)
	}
	if !strings.Contains(out.String(), "the route followed the pod to node2") {
		t.Errorf("move's output:\n%s", out.String())
	}

	// Fail node2 (which now runs the Pi-hole): it is rescheduled on node1,
	// the router drops node2's paths; heal brings node2's session back.
	r.do("fail", func() error { return home.Fail(ctx, o, seed.Node2) })
	r.wantVia("after failing node2", seed.Node1)
	r.wantAnswer("after the failover", false, seed.Node1)
	r.do("heal", func() error { return home.Heal(ctx, o, seed.Node2) })
	if n := strings.Count(out.String(), "  Established  "); n != 2 {
		t.Errorf("after heal %d sessions Established, want 2:\n%s", n, out.String())
	}
	if rs, err := s.Host(seed.Node2).Routes(ctx, lab.RouteQuery{}); err != nil ||
		!slices.ContainsFunc(rs, func(r lab.Route) bool { return r.Dst.Bits() == 0 && r.Dst.Addr().Is4() }) {
		t.Errorf("node2 has no default route after heal: %v\n%s", err, lab.FormatRoutes(rs))
	}

	// Restart each component in place: the sessions come back and the
	// Pi-hole keeps its route and its answers.
	for _, c := range []string{"controller", "speaker", "router"} {
		r.do("restart "+c, func() error { return home.Restart(ctx, o, c) })
		r.wantAnswer("after restarting the "+c, true, seed.Node1)
	}
	// The restarted controller works: a new Service gets an address.
	kubectl := func(args ...string) (string, error) {
		b, err := exec.CommandContext(ctx, bin, append([]string{"lab", "--state", o.StateDir, "kubectl"}, args...)...).CombinedOutput()
		return string(b), err
	}
	if b, err := kubectl("create", "service", "loadbalancer", "web", "--tcp=80:80"); err != nil {
		t.Fatalf("creating a Service: %v\n%s", err, b)
	}
	var ip string
	if err := lab.Poll(ctx, 200*time.Millisecond, func() (bool, error) {
		ip, _ = kubectl("get", "svc", "web", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}")
		return ip != "", nil
	}); err != nil {
		t.Errorf("a Service created after restarting the controller got no address: %v", err)
	} else if a, err := netip.ParseAddr(ip); err != nil || !seed.Pool4.Contains(a) {
		t.Errorf("the new Service got %q, want an address of %s", ip, seed.Pool4)
	}
	if err := home.Restart(ctx, o, "etcd"); err == nil {
		t.Error("restart of an unknown component was accepted")
	}

	// The processes now are the ones move, fail and restart started.
	if st, err = home.LoadState(o.StateDir); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	down()
	id = ""
	checkGone(t, st, o.StateDir)
	// Down again is harmless.
	if err := home.Down(context.Background(), o); err != nil {
		t.Errorf("second down: %v", err)
	}
}

// run is one lab under test, and what its commands printed.
type run struct {
	t   testing.TB
	ctx context.Context
	o   home.Options
	s   *seed.Seed
	out *bytes.Buffer
}

// do runs one lab command with fresh output, and stops the test if it fails.
func (r *run) do(what string, fn func() error) {
	r.t.Helper()
	r.out.Reset()
	if err := fn(); err != nil {
		r.t.Fatalf("%s: %v\n%s", what, err, r.out.String())
	}
}

// wantVia checks that the router's kernel has the Pi-hole's /32 via node alone.
func (r *run) wantVia(when, node string) {
	r.t.Helper()
	rs, err := r.s.Host(seed.Router).Routes(r.ctx, lab.RouteQuery{Proto: "bgp"})
	if err != nil {
		r.t.Fatal(err)
	}
	vip := netip.PrefixFrom(home.PiholeVIP, 32)
	i := slices.IndexFunc(rs, func(rt lab.Route) bool { return rt.Dst == vip })
	if i < 0 || !slices.Equal(rs[i].Gateways(), []netip.Addr{r.s.NodeAddr(node)}) {
		r.t.Errorf("%s: want %s via %s alone, proto bgp:\n%s", when, vip, node, lab.FormatRoutes(rs))
	}
}

// wantAnswer asks the Pi-hole from the client and wants node's responder.
func (r *run) wantAnswer(when string, tcp bool, node string) {
	r.t.Helper()
	a, err := r.s.Dig(r.ctx, seed.Client, home.PiholeVIP, "pihole.lab.", tcp)
	if err != nil || !strings.HasSuffix(a, "from "+node) {
		r.t.Errorf("dig %s: %q, %v; want an answer from %s", when, a, err, node)
	}
}

// checkGone fails the test for anything of lab st left on the machine.
func checkGone(t *testing.T, st *home.State, stateDir string) {
	t.Helper()
	if names, _ := lab.ListNetns(st.ID); len(names) > 0 {
		t.Errorf("namespaces left: %v", names)
	}
	if _, err := net.InterfaceByName(st.ID + "-api"); err == nil {
		t.Errorf("veth %s-api left", st.ID)
	}
	if _, err := os.Stat(stateDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state directory %s left (%v)", stateDir, err)
	}
	if m, _ := filepath.Glob(filepath.Join(os.TempDir(), "bgplb-"+st.ID+"-*")); len(m) > 0 {
		t.Errorf("scratch directories left: %v", m)
	}
	// `ip netns add` bind-mounts each namespace under /run/netns.
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err != nil {
		t.Errorf("reading mounts: %v", err)
	} else {
		for _, l := range strings.Split(string(mi), "\n") {
			if strings.Contains(l, st.ID) || strings.Contains(l, stateDir) {
				t.Errorf("mount left: %s", l)
			}
		}
	}
	for n, p := range st.Procs {
		if p.Alive() {
			t.Errorf("process %s (pid %d) left", n, p.PID)
		}
	}
	// Nothing else mentions the lab or its state (etcd, kube-apiserver run
	// with --data-dir/--cert-dir under it).
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue // gone, or a zombie not yet reaped
		}
		cl := string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		if strings.Contains(cl, stateDir) || strings.Contains(cl, st.ID) {
			t.Errorf("process %d left: %s", pid, cl)
		}
	}
}

// TestUpTwoRouters is `bgplb lab up --routers 2`: the write-up's backup
// router learns the route too and installs it in its own kernel.
func TestUpTwoRouters(t *testing.T) {
	labtest.Require(t)
	if _, err := controlplane.BinDir(); errors.Is(err, controlplane.ErrNoBinaries) && os.Getenv("CI") == "" {
		t.Skipf("skipping: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "bgplb")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/bgplb/bgplb/cmd/bgplb").CombinedOutput(); err != nil {
		t.Fatalf("building bgplb: %v\n%s", err, out)
	}
	var out bytes.Buffer
	o := home.Options{BinPath: bin, StateDir: filepath.Join(t.TempDir(), "state"), Prefix: "labr", Out: &out, Routers: 2}
	ctx := labtest.Context(t, 3*time.Minute)
	t.Cleanup(func() {
		if err := home.Down(context.Background(), o); err != nil {
			t.Errorf("down: %v", err)
		}
	})
	if err := home.Up(ctx, o); err != nil {
		t.Fatalf("up --routers 2: %v\n%s", err, out.String())
	}
	st, err := home.LoadState(o.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := seed.Open(st.ID)
	if err != nil {
		t.Fatal(err)
	}
	vip := netip.PrefixFrom(home.PiholeVIP, 32)
	for _, r := range []string{seed.RouterName(1), seed.RouterName(2)} {
		rs, err := s.Host(r).Routes(ctx, lab.RouteQuery{Proto: "bgp"})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(rs, func(x lab.Route) bool {
			return x.Dst == vip && slices.Equal(x.Gateways(), []netip.Addr{s.NodeAddr(seed.Node1)})
		}) {
			t.Errorf("%s: want %s via node1:\n%s", r, vip, lab.FormatRoutes(rs))
		}
	}
	if n := strings.Count(out.String(), "  Established  "); n != 4 {
		t.Errorf("want 4 Established sessions (2 nodes × 2 routers) in up's output, got %d:\n%s", n, out.String())
	}
}

// An up that fails says what to do and leaves a lab that down removes
// without a trace: once before the network exists, once after.
func TestUpFailsThenDown(t *testing.T) {
	labtest.Require(t)
	if _, err := controlplane.BinDir(); errors.Is(err, controlplane.ErrNoBinaries) && os.Getenv("CI") == "" {
		t.Skipf("skipping: %v", err)
	}
	// A "bgplb" that cannot start the control plane.
	broken := filepath.Join(t.TempDir(), "bgplb")
	if err := os.WriteFile(broken, []byte("#!/bin/sh\necho 'cannot run here' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, prefix, want string
	}{
		{"before the network", "BAD", "`bgplb lab up` tries again"},
		{"after the network", "labf", "cannot run here"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			o := home.Options{BinPath: broken, StateDir: filepath.Join(t.TempDir(), "state"), Prefix: tc.prefix, Out: &out}
			ctx := labtest.Context(t, time.Minute)
			err := home.Up(ctx, o)
			st, lerr := home.LoadState(o.StateDir)
			if st != nil && st.ID != "" {
				t.Cleanup(func() { _ = home.Down(context.Background(), o) })
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "bgplb lab down") {
				t.Fatalf("up: %v\n%s; want an error with %q that says how to clean up", err, out.String(), tc.want)
			}
			if lerr != nil {
				t.Fatalf("no state after a failed up: %v", lerr)
			}
			if err := home.Down(ctx, o); err != nil {
				t.Fatalf("down: %v\n%s", err, out.String())
			}
			if st.ID != "" {
				checkGone(t, st, o.StateDir)
			} else if _, err := os.Stat(o.StateDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("state directory left: %v", err)
			}
		})
	}
}

// A corrupt state file does not wedge the lab: down clears it (and says
// so), where it used to ask to be run again forever.
func TestDownCorruptState(t *testing.T) {
	labtest.Require(t)
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	o := home.Options{StateDir: dir, Prefix: "labc", Out: &out}
	if err := home.Down(labtest.Context(t, time.Minute), o); err != nil {
		t.Fatalf("down: %v\n%s", err, out.String())
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("corrupt state left (%v):\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "ignoring") {
		t.Errorf("down did not say it ignored the corrupt state:\n%s", out.String())
	}
}
