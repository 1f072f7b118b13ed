package home

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/bgplb/bgplb/internal/controlplane"
	"github.com/bgplb/bgplb/internal/proc"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/images"
	"github.com/bgplb/bgplb/lab/seed"
	"github.com/bgplb/bgplb/view"
)

// PiholeVIP is the address the example Service asks for.
var PiholeVIP = netip.MustParseAddr("203.0.113.53")

// upTimeout bounds Up after the binaries are found.
const upTimeout = 4 * time.Minute

// routerConfig is `bgplb router`'s config on router i: every LAN host may
// peer (iBGP, AS 64512, the example BGPRouter's TCP-MD5 password), and only
// the Service pools are accepted; d says whether the peers run BFD.
func routerConfig(addr netip.Addr, socket string, d Detection) string {
	bfd := ""
	if d.BFD > 0 {
		bfd = fmt.Sprintf(", bfd: {minTx: %s, minRx: %s, multiplier: %d}", d.BFD, d.BFD, bfdMultiplier)
	}
	return fmt.Sprintf(`asn: 64512
routerID: %s
listen: ["0.0.0.0:179"]
dynamicNeighbors:
  - {prefix: %s, peerASN: 64512, holdTime: 9s, password: "seed-secret"%s}
import:
  prefixes: ["%s", "%s"]
fib: {graceTime: 5s}
api: {socket: %s}
`, addr, seed.LAN4, bfd, seed.Pool4, seed.Pool6, socket)
}

// stepper prints progress: what is being done, then how long it took.
type stepper struct {
	o     Options
	start time.Time
}

func (p *stepper) step(what string, fn func() error) error {
	fmt.Fprintf(p.o.Out, "==> %s ... ", what)
	t := time.Now()
	err := fn()
	if err != nil {
		fmt.Fprintf(p.o.Out, "FAILED after %v\n", time.Since(t).Round(time.Millisecond))
		return err
	}
	fmt.Fprintf(p.o.Out, "done (%v)\n", time.Since(t).Round(time.Millisecond))
	return nil
}

// Preflight says whether this machine can run the lab, and what to do if not.
func Preflight() error {
	if err := lab.Preflight(); err != nil {
		return fmt.Errorf("%w\nthe lab needs root and iproute2: run it as root (sudo make lab), with iproute2 installed", err)
	}
	return nil
}

// Up brings the lab up and prints what the write-up shows. If a lab is
// already up in StateDir it says so and shows it again; a half-made one
// (an earlier Up that failed, a reboot) is removed first. On failure the
// lab stays as it is for inspection and the error says what to do.
func Up(ctx context.Context, o Options) error {
	unlock, err := acquire(&o)
	if err != nil {
		return err
	}
	defer unlock()
	if o.Mode == ModeL2 && !o.Cluster {
		return fmt.Errorf("--mode %s runs on the real cluster: drop --cluster=false", ModeL2)
	}
	if st, err := LoadState(o.StateDir); err == nil {
		if st.Ready && st.healthy() {
			fmt.Fprintf(o.Out, "lab %s is already up (state in %s); showing it again.\n", st.ID, o.StateDir)
			if st.Cluster != o.Cluster {
				fmt.Fprintf(o.Out, "it is %s, not what --cluster=%t asks for: `bgplb lab down`, then `bgplb lab up --cluster=%t`.\n",
					labKind(st.Cluster), o.Cluster, o.Cluster)
			}
			if st.mode() != o.Mode {
				fmt.Fprintf(o.Out, "it runs in %s mode, not %s: `bgplb lab down`, then `bgplb lab up --mode %s`.\n", st.mode(), o.Mode, o.Mode)
			}
			if st.Routers != o.Routers {
				fmt.Fprintf(o.Out, "it has %d router(s), not the %d asked for: `bgplb lab down`, then `bgplb lab up --routers %d`.\n",
					st.Routers, o.Routers, o.Routers)
			}
			return Status(ctx, o)
		}
		fmt.Fprintf(o.Out, "found an unfinished or broken lab %q in %s: removing it first\n", st.ID, o.StateDir)
		if err := down(ctx, o, true); err != nil {
			return fmt.Errorf("removing the earlier lab: %w", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(o.Out, "%v: removing what it recorded first\n", err)
		if err := down(ctx, o, true); err != nil {
			return fmt.Errorf("removing the earlier lab: %w", err)
		}
	}
	if _, err := os.Stat(o.BinPath); err != nil {
		return fmt.Errorf("bgplb binary %s: %w (build it with `make build`)", o.BinPath, err)
	}
	if _, err := controlplane.BinDir(); err != nil {
		return fmt.Errorf("%w\nbuild them with `make k8sbin` (about 20 minutes the first time), or point $BGPLB_K8S_BIN at a directory with both", err)
	}
	if o.Cluster {
		if err := checkCluster(); err != nil {
			return err
		}
	}
	// Recorded before anything exists, so that Down always finds a state.
	st := &State{Routers: o.Routers, Bin: o.BinPath, Cluster: o.Cluster, Procs: map[string]Proc{}, Detection: defaultDetection, Mode: o.Mode, dir: o.StateDir}
	if err := st.save(); err != nil {
		return err
	}
	if o.Cluster && o.SourceDir == "" {
		o.SourceDir = treeAt(".")
	}
	src, err := sourceDir(o)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, upTimeout)
	defer cancel()
	u := &upper{o: o, src: src, p: &stepper{o: o, start: time.Now()}, st: st}
	if err := u.run(ctx); err != nil {
		if u.s == nil { // the network was never built: nothing to look at
			return fmt.Errorf("%w\n\n`bgplb lab up` tries again; `bgplb lab down` clears %s", err, o.StateDir)
		}
		return fmt.Errorf("%w\n\nthe lab is left as it is for a look (`bgplb lab status` lists its processes and logs);\n"+
			"`bgplb lab down` removes it, and `bgplb lab up` starts over", err)
	}
	fmt.Fprintf(o.Out, "\nlab %s is up after %v.\n\n", u.st.ID, time.Since(u.p.start).Round(time.Millisecond))
	if err := show(ctx, o.Out, u.s, u.st); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "\nnext: bgplb lab status | bgplb lab exec client -- dig @%s pihole.lab | bgplb lab kubectl get svc | bgplb lab down\n", u.st.vip())
	return nil
}

// labKind names what a lab runs, for messages.
func labKind(cluster bool) string {
	if cluster {
		return "a real cluster"
	}
	return "a played cluster"
}

// upper carries Up's work.
type upper struct {
	o   Options
	src string
	p   *stepper
	st  *State
	s   *seed.Seed
	k   *kube
	// A real cluster's: the control plane's credentials, the images, and
	// the node the Pi-hole runs on.
	cp      controlPlaneInfo
	images  images.Set
	podNode string
}

func (u *upper) run(ctx context.Context) error {
	o := u.o
	err := u.p.step(fmt.Sprintf("building the network: %d router(s), node1, node2, client in namespaces", o.Routers), func() error {
		s, err := seed.New(ctx, seed.Options{Prefix: o.Prefix, Routers: o.Routers})
		if err != nil {
			return err
		}
		u.s, u.st.ID = s, s.ID
		return u.st.save()
	})
	if err != nil {
		return err
	}
	steps := u.steps
	if o.Cluster {
		steps = u.clusterSteps
	}
	if err := u.do(steps(ctx)); err != nil {
		return err
	}
	u.st.Ready = true
	return u.st.save()
}

type step struct {
	what string
	do   func() error
}

// do runs steps in order, printing each, and stops at the first failure.
func (u *upper) do(steps []step) error {
	for _, st := range steps {
		if err := u.p.step(st.what, st.do); err != nil {
			return err
		}
	}
	return nil
}

// establishedStep waits for both nodes' sessions on every router.
func (u *upper) establishedStep(ctx context.Context) step {
	return step{"waiting for node1 and node2 to be Established on every router", func() error { return u.waitEstablished(ctx) }}
}

// play opens a running lab for a command that changes it (move, fail,
// heal, restart): under the lab's lock, with an API client, and bounded
// by timeout. done releases it all.
func play(ctx context.Context, o Options, timeout time.Duration) (u *upper, _ context.Context, done func(), err error) {
	st, s, unlock, err := openLocked(&o)
	if err != nil {
		return nil, nil, nil, err
	}
	k, err := newKube(st.Kubeconfig)
	if err != nil {
		unlock()
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	u = &upper{o: o, p: &stepper{o: o, start: time.Now()}, st: st, s: s, k: k}
	return u, ctx, func() { cancel(); unlock() }, nil
}

// steps lists Up's work once the network exists, in order; each step's
// text is what the user sees.
func (u *upper) steps(ctx context.Context) []step {
	steps := []step{
		{"starting etcd and kube-apiserver on " + u.s.APIServerAddr().String() + " (first start takes longer)", u.controlPlane(ctx)},
		{"registering node1 and node2, the speakers' RBAC", func() error { return u.register(ctx) }},
	}
	steps = append(steps, u.routerSteps(ctx)...)
	steps = append(steps, step{"starting bgplb controller (root namespace)", u.controller})
	for _, n := range u.s.Nodes() {
		steps = append(steps, step{"starting bgplb speaker on " + n, func() error { return u.speaker(ctx, n) }})
	}
	return append(steps,
		u.examplesStep(ctx),
		step{"playing the Pi-hole pod on node1: VIP on kube-ipvs0, DNS responder, EndpointSlice", func() error {
			return u.pod(ctx, seed.Node1)
		}},
		step{"creating the Pi-hole Service (deploy/examples/pihole.yaml)", func() error {
			return u.k.applyFile(ctx, filepath.Join(u.src, "deploy", "examples", "pihole.yaml"))
		}},
		step{"waiting for " + PiholeVIP.String() + "/32 in every router's kernel via node1", func() error {
			return u.waitRoutes(ctx, u.s.NodeAddr(seed.Node1))
		}},
		u.establishedStep(ctx),
		step{"asking the Pi-hole from the client, through the router", func() error {
			return u.whileAlive(ctx, func(ctx context.Context) error {
				if err := u.waitAnswer(ctx, seed.Client, seed.Node1, 100*time.Millisecond); err != nil {
					return fmt.Errorf("%w (see %s)", err, u.st.Procs["dns-node1"].Log)
				}
				return nil
			})
		}},
	)
}

// routerSteps start `bgplb router` on every router.
func (u *upper) routerSteps(ctx context.Context) []step {
	var steps []step
	for i := 1; i <= u.o.Routers; i++ {
		steps = append(steps, step{"starting bgplb router on " + seed.RouterName(i), func() error { return u.router(ctx, i) }})
	}
	return steps
}

// examplesStep applies the example configuration: the pool, the routers,
// the announcement policy.
func (u *upper) examplesStep(ctx context.Context) step {
	examples := []string{"loadbalancerpool.yaml", "bfdpolicy.yaml", "bgprouter.yaml", "bgpannouncementpolicy.yaml"}
	if u.o.Routers > 1 {
		examples = append(examples, "bgprouter-router2.yaml")
	}
	return u.applyStep(ctx, examples)
}

// register creates the Node objects and binds the speakers' role.
func (u *upper) register(ctx context.Context) error {
	k, err := newKube(u.st.Kubeconfig)
	if err != nil {
		return err
	}
	u.k = k
	for _, n := range u.s.Nodes() {
		if err := k.createNode(ctx, n, u.s.NodeAddr(n), u.s.NodeAddr6(n)); err != nil {
			return err
		}
	}
	return k.speakerRBAC(ctx, filepath.Join(u.src, "config", "rbac", "speaker", "role.yaml"), speakerNamespace)
}

// controller starts `bgplb controller` in the root namespace.
func (u *upper) controller() error {
	log := u.st.path("controller.log")
	p, err := startRoot(log, u.o.BinPath, "controller", "--kubeconfig", u.st.Kubeconfig,
		"--leader-elect=false", "--health-addr", "", "--metrics-addr", "")
	if err != nil {
		return err
	}
	u.st.Procs["controller"] = p
	return u.st.save()
}

func (u *upper) controlPlane(ctx context.Context) func() error {
	return func() error {
		if err := u.startControlPlane(); err != nil {
			return err
		}
		return u.waitControlPlane(ctx)
	}
}

// startControlPlane starts `bgplb lab control-plane`, detached; it takes
// seconds to be ready, which a real cluster's Up spends building images.
func (u *upper) startControlPlane() error {
	st := u.st
	log := st.path("control-plane.log")
	argv := []string{u.o.BinPath, "lab", "control-plane", "--dir", u.o.StateDir,
		"--id", st.ID, "--crds", filepath.Join(u.src, "config", "crd", "bases")}
	if u.o.Cluster {
		argv = append(argv, "--cluster")
	}
	p, err := startRoot(log, argv...)
	if err != nil {
		return err
	}
	st.Procs["control-plane"] = p
	return st.save()
}

// waitControlPlane waits for the control plane's ready file and takes its
// credentials.
func (u *upper) waitControlPlane(ctx context.Context) error {
	st := u.st
	p := st.Procs["control-plane"]
	ready := st.path(controlPlaneReady)
	if err := waitFile(ctx, ready, p); err != nil {
		return fmt.Errorf("control plane: %w; last lines of %s:\n%s", err, p.Log, proc.Tail(p.Log, 30))
	}
	b, err := os.ReadFile(ready)
	if err != nil {
		return err
	}
	var info controlPlaneInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return err
	}
	st.Kubeconfig, st.SpeakerKubeconfig, st.APIServer = info.Kubeconfig, info.SpeakerKubeconfig, info.APIServer
	u.cp = info
	if u.k, err = newKube(st.Kubeconfig); err != nil {
		return err
	}
	return st.save()
}

func (u *upper) router(ctx context.Context, i int) error {
	name := seed.RouterName(i)
	sock := u.st.path(name + ".sock")
	cfg := u.st.path(name + ".yaml")
	if err := os.WriteFile(cfg, []byte(routerConfig(u.s.RouterAddr(i), sock, u.st.Detection)), 0o644); err != nil {
		return err
	}
	p, err := startIn(ctx, u.s, name, "bgplb-"+name, u.o.BinPath, "router", "--config", cfg)
	if err != nil {
		return err
	}
	p.Socket = sock
	u.st.Procs[name] = p
	if err := u.st.save(); err != nil {
		return err
	}
	if err := waitFile(ctx, sock, p); err != nil {
		return fmt.Errorf("bgplb router on %s: %w; last lines of its log:\n%s", name, err, proc.Tail(p.Log, 30))
	}
	return nil
}

func (u *upper) speaker(ctx context.Context, node string) error {
	sock := u.st.path(node + ".sock")
	p, err := startIn(ctx, u.s, node, "bgplb-speaker", u.o.BinPath, "speaker",
		"--node-name", node, "--kubeconfig", u.st.SpeakerKubeconfig, "--namespace", speakerNamespace,
		"--socket", sock, "--metrics-addr", "",
		"--listen", netip.AddrPortFrom(u.s.NodeAddr(node), 179).String())
	if err != nil {
		return err
	}
	p.Socket = sock
	u.st.Procs["speaker-"+node] = p
	return u.st.save()
}

// pod does what kubelet and kube-proxy would for the Pi-hole pod on node:
// the VIP on kube-ipvs0, a DNS responder process, the ready endpoint.
func (u *upper) pod(ctx context.Context, node string) error {
	if err := u.s.AddVIP(ctx, node, PiholeVIP); err != nil {
		return err
	}
	p, err := startIn(ctx, u.s, node, "pihole-dns", u.o.BinPath, "lab", "dns-responder",
		"--id", u.st.ID, "--node", node, "--addr", PiholeVIP.String())
	if err != nil {
		return err
	}
	u.st.Procs["dns-"+node] = p
	if err := u.st.save(); err != nil {
		return err
	}
	// The pod is ready when it answers, as a readiness probe would say:
	// only then may the EndpointSlice name it and the route move.
	if err := u.whileAlive(ctx, func(ctx context.Context) error { return u.waitAnswer(ctx, node, node, 50*time.Millisecond) }); err != nil {
		return fmt.Errorf("the DNS responder on %s: %w; the last lines of %s:\n%s", node, err, p.Log, proc.Tail(p.Log, 20))
	}
	return u.k.endpoints(ctx, "pihole", node, slices.Index(u.s.Nodes(), node))
}

// waitRoutes waits until every router's kernel has the VIP's /32, proto
// bgp, via next hop alone.
func (u *upper) waitRoutes(ctx context.Context, via netip.Addr) error {
	return u.waitKernel(ctx, vipVia(via, true))
}

// waitKernel waits until every router's bgp routes satisfy ok, or one of
// the lab's processes dies; the error shows the routes last seen.
func (u *upper) waitKernel(ctx context.Context, ok func([]lab.Route) bool) error {
	return u.whileAlive(ctx, func(ctx context.Context) error {
		for i := 1; i <= u.st.Routers; i++ {
			var last []lab.Route
			_, err := u.s.Host(seed.RouterName(i)).WaitRoutes(ctx, lab.RouteQuery{Proto: "bgp"}, func(rs []lab.Route) bool {
				last = rs
				return ok(rs)
			})
			if err != nil {
				return fmt.Errorf("%s: %w\nits bgp routes:\n%s\nlogs: %s, %s", seed.RouterName(i), err, lab.FormatRoutes(last),
					u.st.Procs[seed.RouterName(i)].Log, u.st.Procs["speaker-node1"].Log)
			}
		}
		return nil
	})
}

// vipVia holds when the Pi-hole's /32 goes via gw; alone, via gw only.
func vipVia(gw netip.Addr, alone bool) func([]lab.Route) bool {
	host := netip.PrefixFrom(PiholeVIP, 32)
	return func(rs []lab.Route) bool {
		return slices.ContainsFunc(rs, func(r lab.Route) bool {
			gws := r.Gateways()
			return r.Dst == host && slices.Contains(gws, gw) && (!alone || len(gws) == 1)
		})
	}
}

// noneVia holds when no route goes via gw.
func noneVia(gw netip.Addr) func([]lab.Route) bool {
	return func(rs []lab.Route) bool {
		return !slices.ContainsFunc(rs, func(r lab.Route) bool { return slices.Contains(r.Gateways(), gw) })
	}
}

// notShared holds when no route goes via gw beside another gateway: new
// flows of every prefix another node also serves avoid gw.
func notShared(gw netip.Addr) func([]lab.Route) bool {
	return func(rs []lab.Route) bool {
		return !slices.ContainsFunc(rs, func(r lab.Route) bool {
			gws := r.Gateways()
			return len(gws) > 1 && slices.Contains(gws, gw)
		})
	}
}

// waitEstablished waits until every router has both nodes Established.
func (u *upper) waitEstablished(ctx context.Context) error {
	return u.whileAlive(ctx, u.waitEstablishedAll)
}

func (u *upper) waitEstablishedAll(ctx context.Context) error {
	return u.waitNeighbors(ctx, func(n view.Neighbor) bool { return n.State == "Established" })
}

// waitNeighbors waits until every router sees both nodes as neighbours ok
// accepts.
func (u *upper) waitNeighbors(ctx context.Context, ok func(view.Neighbor) bool) error {
	for i := 1; i <= u.st.Routers; i++ {
		name := seed.RouterName(i)
		c := view.NewClient(u.st.Procs[name].Socket)
		var last []view.Neighbor
		err := lab.Poll(ctx, 100*time.Millisecond, func() (bool, error) {
			ns, err := c.Neighbors(ctx)
			if err != nil {
				return false, nil
			}
			last = ns
			up := 0
			for _, n := range ns {
				if ok(n) && (n.Address == u.s.NodeAddr(seed.Node1) || n.Address == u.s.NodeAddr(seed.Node2)) {
					up++
				}
			}
			return up == 2, nil
		})
		if err != nil {
			return fmt.Errorf("%s: %w; neighbours %+v; speaker logs: %s, %s", name, err, last,
				u.st.Procs["speaker-node1"].Log, u.st.Procs["speaker-node2"].Log)
		}
	}
	return nil
}

// whileAlive runs wait, and fails it at once if one of the lab's processes
// exits meanwhile, with that process's log: a crashed speaker must not
// cost the user the whole timeout and leave them guessing.
func (u *upper) whileAlive(ctx context.Context, wait func(context.Context) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := u.deadProc(); err != nil {
					cancel(err)
					return
				}
			}
		}
	}()
	err := wait(ctx)
	cause := context.Cause(ctx)
	cancel(nil)
	wg.Wait()
	if err != nil && cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
		return cause
	}
	return err
}

// deadProc names the first of the lab's processes that is gone.
func (u *upper) deadProc() error {
	procs := u.st.allProcs()
	for _, name := range slices.Sorted(maps.Keys(procs)) {
		if p := procs[name]; !p.Alive() {
			return fmt.Errorf("%s (pid %d) exited; the last lines of %s:\n%s", name, p.PID, p.Log, proc.Tail(p.Log, 20))
		}
	}
	return nil
}

// waitAnswer asks the Pi-hole from host until the responder on node
// answers; the error says what the last try got.
func (u *upper) waitAnswer(ctx context.Context, host, node string, every time.Duration) error {
	last := "nothing"
	err := lab.Poll(ctx, every, func() (bool, error) {
		a, err := u.s.Query(ctx, host, PiholeVIP, "pihole.lab.", false)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = "an answer from " + cmp.Or(a.Node, "no lab responder")
		return a.Node == node, nil
	})
	if err != nil {
		return fmt.Errorf("no DNS answer from %s's Pi-hole (last try: %s): %w", node, last, err)
	}
	return nil
}

// speakerNamespace is where the lab's speakers run: the namespace of their
// BGP password Secret (deploy/examples/bgprouter.yaml) and of their Role,
// the install bundle's.
const speakerNamespace = "bgplb-system"
