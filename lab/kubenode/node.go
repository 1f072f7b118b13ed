package kubenode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/bgplb/bgplb/internal/proc"
	"github.com/bgplb/bgplb/lab"
)

// Options describe one node.
type Options struct {
	// Name is the Node's name (node1).
	Name string
	// ID is unique per lab and node, and short: it names the node's cgroup
	// parent (/bgplb-ID), so that two labs never share one.
	ID string
	// Netns is the `ip netns` name of the namespace the node lives in.
	Netns string
	// Dir is the node's state directory: everything of the node lives below
	// it. It must not be below /run or /var (the node gets its own).
	Dir string
	// BinDir holds kubelet and kube-proxy.
	BinDir string
	// Kubeconfig is the kubelet's: a client certificate of
	// system:node:NAME in group system:nodes, for a server address reachable
	// from the node's namespace. It, ProxyKubeconfig and CACert are copied
	// into Dir at Start.
	Kubeconfig string
	// ProxyKubeconfig is kube-proxy's (system:kube-proxy); empty means
	// Kubeconfig, which the Node authorizer may not let list Services.
	ProxyKubeconfig string
	// CACert is the cluster CA's certificate file: the kubelet accepts
	// client certificates it signed (the API server's calls for logs and
	// exec).
	CACert string
	// NodeIPs are the node's addresses (--node-ip), v4 and/or v6.
	NodeIPs []netip.Addr
	// PodCIDRs are this node's pod ranges, at most one per family (the
	// CNI bridge's host-local ranges), e.g. 198.18.1.0/24.
	PodCIDRs []netip.Prefix
	// ClusterCIDRs are all pods' ranges (kube-proxy's --cluster-cidr),
	// e.g. 198.18.0.0/16.
	ClusterCIDRs []netip.Prefix
	// Images are OCI or docker archives imported into containerd's k8s.io
	// namespace before the kubelet starts.
	Images []string
	// SandboxImage is the pause image's name as containerd knows it
	// (docker.io/library/...), one of Images.
	SandboxImage string
	// Labels are the Node's labels.
	Labels map[string]string
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
}

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,23}$`)

func (o Options) check() (Options, error) {
	switch {
	case o.Name == "":
		return o, errors.New("kubenode: no Name")
	case !idRE.MatchString(o.ID):
		return o, fmt.Errorf("kubenode: ID %q: lower-case letters, digits and '-', at most 24", o.ID)
	case o.Netns == "":
		return o, errors.New("kubenode: no Netns")
	case o.Kubeconfig == "" || o.CACert == "":
		return o, errors.New("kubenode: Kubeconfig and CACert are needed")
	case o.SandboxImage == "":
		return o, errors.New("kubenode: no SandboxImage")
	case len(o.ClusterCIDRs) == 0:
		return o, errors.New("kubenode: no ClusterCIDRs")
	}
	if err := checkDir(o.Dir); err != nil {
		return o, err
	}
	// A kubelet without its kubeconfig file runs standalone, silently.
	for _, f := range []string{o.Kubeconfig, o.ProxyKubeconfig, o.CACert} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return o, fmt.Errorf("kubenode: %w", err)
		}
	}
	o.Dir = filepath.Clean(o.Dir)
	if o.ProxyKubeconfig == "" {
		o.ProxyKubeconfig = o.Kubeconfig
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// Node is a started node. Its processes are detached: they run on when the
// process that started them exits, and Remove (by Dir) ends them.
type Node struct {
	Name string
	Dir  string

	opts   Options
	layout layout
	cg     []cgroupMount

	mu sync.Mutex // guards st
	st state

	reapers sync.WaitGroup // one per daemon while this process lives
}

// The daemons' roles, as keys of state.Procs and names of their logs.
const (
	roleHolder     = "holder"
	roleContainerd = "containerd"
	roleKubelet    = "kubelet"
	roleProxy      = "kube-proxy"
)

// Start makes the node: its cgroups, its mount namespace, containerd with
// the images, the kubelet and kube-proxy. It returns once they run (the
// Node need not be Ready yet: see WaitReady). On failure it removes what it
// made; the error carries the failing daemon's last log lines.
func Start(ctx context.Context, o Options) (n *Node, err error) {
	began := time.Now()
	n, err = newNode(o)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			cctx, cancel := cleanupContext(ctx)
			defer cancel()
			err = errors.Join(err, n.Stop(cctx))
			n = nil
		}
	}()
	if err := n.startRuntime(ctx); err != nil {
		return n, err
	}
	if err := n.startKubernetes(ctx); err != nil {
		return n, err
	}
	n.opts.Logger.Info("kubenode: node started", "node", n.Name, "after", time.Since(began))
	return n, nil
}

// cleanupContext is for undoing a failed Start: it outlives ctx (often
// the cause of the failure) but not forever, as Stop waits for its
// daemons to be reaped until its context ends.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), removeTimeout+10*time.Second)
}

// newNode checks the options and writes the node's directory and state,
// before anything runs; from then on Remove(Dir) undoes what follows.
func newNode(o Options) (*Node, error) {
	o, err := o.check()
	if err != nil {
		return nil, err
	}
	l := layout{o.Dir}
	if _, err := os.Stat(l.stateFile()); err == nil {
		return nil, fmt.Errorf("kubenode: %s already holds a node; Remove it first", o.Dir)
	}
	cg, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	n := &Node{Name: o.Name, Dir: o.Dir, opts: o, layout: l, cg: cg, st: state{
		Name: o.Name, ID: o.ID, Netns: o.Netns, Bridge: bridgeName,
		CgroupRoot: "/bgplb-" + o.ID, Procs: map[string]proc.Ref{},
	}}
	// What Remove will refuse to trust, refused before anything is made.
	if err := n.st.check(); err != nil {
		return nil, err
	}
	for _, d := range l.dirs() {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("kubenode: %w", err)
		}
	}
	if err := writeState(o.Dir, n.st); err != nil {
		return nil, err
	}
	return n, nil
}

// startRuntime makes the cgroups and the mount namespace, and starts
// containerd with the images.
func (n *Node) startRuntime(ctx context.Context) error {
	began := time.Now()
	if err := createCgroups(n.cg, n.st.CgroupRoot); err != nil {
		return err
	}
	if err := n.writeConfigs(); err != nil {
		return err
	}
	if err := n.startHolder(ctx); err != nil {
		return err
	}
	if err := n.startContainerd(ctx); err != nil {
		return err
	}
	n.opts.Logger.Info("kubenode: containerd ready", "node", n.Name, "after", time.Since(began))
	for _, img := range n.opts.Images {
		if err := n.ImportImage(ctx, img); err != nil {
			return err
		}
	}
	return nil
}

// startKubernetes starts the kubelet and kube-proxy.
func (n *Node) startKubernetes(ctx context.Context) error {
	if err := n.startKubelet(ctx); err != nil {
		return err
	}
	return n.startDaemon(roleProxy, filepath.Join(n.opts.BinDir, "kube-proxy"), "--config="+n.layout.proxyConf())
}

// bridgeName is the CNI bridge in the node's namespace: one per namespace,
// so it need not be unique.
const bridgeName = "cni0"

func (n *Node) writeConfigs() error {
	l, o := n.layout, n.opts
	if err := prepareVar(l); err != nil {
		return err
	}
	if err := copySysctls(l, globalSysctls); err != nil {
		return err
	}
	if err := n.copyCredentials(); err != nil {
		return err
	}
	o = n.opts
	cni, err := cniConflist(bridgeName, o.PodCIDRs)
	if err != nil {
		return err
	}
	kubelet, err := kubeletConfig(kubeletConfigInput{CgroupRoot: n.st.CgroupRoot, CACert: o.CACert, ResolvConf: l.resolvConf()})
	if err != nil {
		return err
	}
	proxy, err := proxyConfig(o.ProxyKubeconfig, o.Name, o.ClusterCIDRs)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		l.containerdConf(): []byte(containerdConfig(o.SandboxImage, l.cniConfDir())),
		filepath.Join(l.cniConfDir(), "10-bgplb.conflist"): cni,
		l.kubeletConf(): kubelet,
		l.proxyConf():   proxy,
		// Pods get no resolver of the machine's: an empty configuration.
		l.resolvConf(): []byte("# bgplb lab node: no upstream resolver\n"),
	}
	for p, b := range files {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return fmt.Errorf("kubenode: %w", err)
		}
	}
	return nil
}

// copyCredentials copies the kubeconfigs and the CA into the node's
// directory and uses the copies: the node stays whole if the files it was
// given go away (a control plane's directory), and their paths need not be
// visible in the node's mount namespace.
func (n *Node) copyCredentials() error {
	for _, c := range []struct {
		path *string
		name string
	}{{&n.opts.Kubeconfig, "kubelet.kubeconfig"}, {&n.opts.ProxyKubeconfig, "kube-proxy.kubeconfig"}, {&n.opts.CACert, "ca.crt"}} {
		b, err := os.ReadFile(*c.path)
		if err != nil {
			return fmt.Errorf("kubenode: %w", err)
		}
		dst := filepath.Join(n.layout.confDir(), c.name)
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			return fmt.Errorf("kubenode: %w", err)
		}
		*c.path = dst
	}
	return nil
}

// startHolder makes the node's mount namespace, held by a sleeping process
// in the node's network namespace, and waits until its binds are in place.
func (n *Node) startHolder(ctx context.Context) error {
	l := n.layout
	script := holderScript(mountPlan(l, globalSysctls), "/run/"+filepath.Base(l.holderReady()))
	argv := []string{"nsenter", "--net=" + filepath.Join(lab.NetnsDir, n.opts.Netns), "--",
		"unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script}
	ref, err := n.spawn(roleHolder, argv)
	if err != nil {
		return err
	}
	err = n.poll(ctx, roleHolder, func(context.Context) error {
		_, err := os.Stat(l.holderReady())
		return err
	})
	if err != nil {
		return err
	}
	id, err := nsOf(fmt.Sprintf("/proc/%d/ns/mnt", ref.PID))
	if err != nil {
		return fmt.Errorf("kubenode: holder's mount namespace: %w", err)
	}
	n.mu.Lock()
	n.st.MountNS = id
	st := n.st
	n.mu.Unlock()
	if err := st.check(); err != nil {
		return err
	}
	return writeState(n.Dir, st)
}

// spawn starts argv detached in the daemons' cgroups and records it.
func (n *Node) spawn(role string, argv []string) (proc.Ref, error) {
	argv = inCgroups(daemonProcsFiles(n.cg, n.st.CgroupRoot), argv)
	ref, err := startDetached(argv, n.layout.logFile(role), func(wait func()) {
		n.reapers.Add(1)
		go func() {
			defer n.reapers.Done()
			wait()
		}()
	})
	if err != nil {
		return ref, err
	}
	n.mu.Lock()
	n.st.Procs[role] = ref
	st := n.st
	n.mu.Unlock()
	return ref, writeState(n.Dir, st)
}

// startDaemon starts a program inside the node's namespaces.
func (n *Node) startDaemon(role, bin string, args ...string) error {
	holder, err := n.holderPID()
	if err != nil {
		return err
	}
	_, err = n.spawn(role, enter(holder, n.opts.Netns, append([]string{bin}, args...)...))
	return err
}

func (n *Node) holderPID() (int, error) {
	n.mu.Lock()
	ref, ok := n.st.Procs[roleHolder]
	n.mu.Unlock()
	if !ok || !ref.Alive() {
		return 0, fmt.Errorf("kubenode: node %s: the mount namespace's holder is gone", n.Name)
	}
	return ref.PID, nil
}

func (n *Node) startContainerd(ctx context.Context) error {
	ns, err := netnsNamed(n.opts.Netns)
	if err != nil {
		return err
	}
	// The bridge plugin turns forwarding on too, but only with the first pod.
	v4, v6 := families(n.opts.PodCIDRs)
	if err := ns.EnableForwarding(ctx, v4, v6); err != nil {
		return err
	}
	if err := n.startDaemon(roleContainerd, "containerd", "--config", n.layout.containerdConf()); err != nil {
		return err
	}
	return n.poll(ctx, roleContainerd, func(ctx context.Context) error {
		_, err := n.ctr(ctx, nil, "version")
		return err
	})
}

func families(ps []netip.Prefix) (v4, v6 bool) {
	for _, p := range ps {
		if p.Addr().Is4() {
			v4 = true
		} else {
			v6 = true
		}
	}
	return v4, v6
}

func (n *Node) startKubelet(ctx context.Context) error {
	o := n.opts
	args := kubeletArgs(n.layout.kubeletConf(), o.Kubeconfig, o.Name, o.NodeIPs, o.Labels)
	if err := n.startDaemon(roleKubelet, filepath.Join(o.BinDir, "kubelet"), args...); err != nil {
		return err
	}
	// Up once its healthz port listens inside the namespace.
	ns, err := netnsNamed(o.Netns)
	if err != nil {
		return err
	}
	return n.poll(ctx, roleKubelet, func(ctx context.Context) error {
		return ns.Do(func() error {
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", "127.0.0.1:10248")
			if err == nil {
				c.Close()
			}
			return err
		})
	})
}

// ctr runs containerd's client inside the node's mount namespace.
func (n *Node) ctr(ctx context.Context, in io.Reader, args ...string) ([]byte, error) {
	holder, err := n.holderPID()
	if err != nil {
		return nil, err
	}
	return ctrIn(ctx, holder, in, args...)
}

func ctrIn(ctx context.Context, holder int, in io.Reader, args ...string) ([]byte, error) {
	return run(ctx, in, enter(holder, "", append([]string{"ctr", "--address", containerdSock, "--namespace", k8sNamespace}, args...)...)...)
}

// Ctr runs `ctr ARGS` against the containerd of the node in dir (in its
// namespace k8s.io) and returns the output: a way to look at images and
// containers without crictl, also from a process that did not start it.
func Ctr(ctx context.Context, dir string, args ...string) ([]byte, error) {
	holder, err := holderOf(dir)
	if err != nil {
		return nil, err
	}
	return ctrIn(ctx, holder, nil, args...)
}

func holderOf(dir string) (int, error) {
	st, err := readState(dir)
	if err != nil {
		return 0, fmt.Errorf("kubenode: no node in %s: %w", dir, err)
	}
	ref, ok := st.Procs[roleHolder]
	if !ok || !ref.Alive() {
		return 0, fmt.Errorf("kubenode: node %s in %s is not running", st.Name, dir)
	}
	return ref.PID, nil
}

// ImportImage imports an OCI or docker archive into the node's containerd
// (namespace k8s.io, unpacked for the CRI's snapshotter), as
// `ctr images import` does. The archive is read here and streamed in, so
// its path need not be visible inside the node.
func (n *Node) ImportImage(ctx context.Context, archive string) error {
	holder, err := n.holderPID()
	if err != nil {
		return err
	}
	began := time.Now()
	if err := importImage(ctx, holder, archive); err != nil {
		return err
	}
	n.opts.Logger.Info("kubenode: image imported", "node", n.Name, "archive", archive, "took", time.Since(began))
	return nil
}

// ImportImage is Node.ImportImage for the node in dir, started by this or
// another process.
func ImportImage(ctx context.Context, dir, archive string) error {
	holder, err := holderOf(dir)
	if err != nil {
		return err
	}
	return importImage(ctx, holder, archive)
}

func importImage(ctx context.Context, holder int, archive string) error {
	f, err := os.Open(archive)
	if err != nil {
		return fmt.Errorf("kubenode: image: %w", err)
	}
	defer f.Close()
	_, err = ctrIn(ctx, holder, f, "images", "import", "--snapshotter", "overlayfs", "-")
	return err
}

// poll waits for check, failing at once with the daemon's log if it ended.
func (n *Node) poll(ctx context.Context, role string, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	err := lab.Poll(ctx, pollEvery, func() (bool, error) {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		defer ccancel()
		if err := check(cctx); err != nil {
			if derr := n.daemonErr(role); derr != nil {
				return false, lab.Permanent(derr)
			}
			return false, err
		}
		return true, nil
	})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("kubenode: %s on %s not ready: %w\n%s", role, n.Name, err, proc.Tail(n.layout.logFile(role), 30))
	}
	return err
}

const startTimeout = 60 * time.Second

// daemonErr says which daemon has ended, with its last log lines.
func (n *Node) daemonErr(roles ...string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(roles) == 0 {
		roles = daemonRoles
	}
	for _, r := range roles {
		if ref, ok := n.st.Procs[r]; ok && !ref.Alive() {
			return fmt.Errorf("kubenode: %s on %s exited; last lines of %s:\n%s", r, n.Name, n.layout.logFile(r), proc.Tail(n.layout.logFile(r), 30))
		}
	}
	return nil
}

// Err reports a daemon of the node that has ended, or nil.
func (n *Node) Err() error { return n.daemonErr() }

// LogPath is the log of a daemon: "containerd", "kubelet", "kube-proxy".
func (n *Node) LogPath(role string) string { return LogPath(n.Dir, role) }

// Stop removes the node (see Remove) and waits for its processes, within
// Remove's bound when ctx has none.
func (n *Node) Stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, removeTimeout+10*time.Second)
	defer cancel()
	err := Remove(ctx, n.Dir)
	reaped := make(chan struct{})
	go func() {
		n.reapers.Wait()
		close(reaped)
	}()
	select {
	case <-reaped:
		return err
	case <-ctx.Done():
		// Only a process stuck in the kernel outlives SIGKILL; Remove said so.
		return errors.Join(err, fmt.Errorf("kubenode: node %s: daemons not reaped: %w", n.Name, ctx.Err()))
	}
}

// netnsNamed is the existing namespace name, without the scratch
// directory lab.OpenNetns would make for it: the node is a guest there.
func netnsNamed(name string) (*lab.Netns, error) {
	ns := &lab.Netns{Name: name}
	if _, err := os.Stat(ns.Path()); err != nil {
		return nil, fmt.Errorf("kubenode: network namespace %s: %w", name, err)
	}
	return ns, nil
}
