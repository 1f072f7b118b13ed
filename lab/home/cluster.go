package home

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/internal/controlplane"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/images"
	"github.com/bgplb/bgplb/lab/kubenode"
	"github.com/bgplb/bgplb/lab/seed"
)

// piholeDeployment is the real cluster's Pi-hole; its image is IMAGE until
// the lab names its own.
//
//go:embed cluster/pihole-deployment.yaml
var piholeDeployment string

// The install bundle's workloads, in its namespace.
const (
	controllerDeployment = "bgplb-controller"
	speakerDaemonSet     = "bgplb-speaker"
)

// piholeSelector selects the Pi-hole's pods (deploy/examples/pihole.yaml).
var piholeSelector = client.MatchingLabels{"k8s-app": "pi-hole"}

// clusterSteps lists Up's work for a real cluster once the network exists.
func (u *upper) clusterSteps(ctx context.Context) []step {
	if u.st.l2() {
		return u.l2Steps(ctx)
	}
	steps := u.clusterBase(ctx)
	steps = append(steps, u.routerSteps(ctx)...)
	return append(steps,
		step{"installing bgplb from deploy/bgplb.yaml (controller Deployment, speaker DaemonSet) with the lab's image",
			func() error { return u.install(ctx) }},
		u.examplesStep(ctx),
		step{"waiting for bgplb's controller and a speaker on every node to be Ready", func() error { return u.waitBGPLB(ctx) }},
		step{"creating the Pi-hole Deployment and its Service (deploy/examples/pihole.yaml)", func() error { return u.pihole(ctx) }},
		step{"waiting for the Pi-hole pod to be Ready", func() error {
			_, err := u.waitPihole(ctx, "")
			return err
		}},
		step{"waiting for " + PiholeVIP.String() + "/32 in every router's kernel via the Pi-hole's node", func() error {
			return u.waitRoutes(ctx, u.s.NodeAddr(u.podNode))
		}},
		u.establishedStep(ctx),
		step{"asking the Pi-hole from the client, through the router and kube-proxy", func() error {
			return u.whileAlive(ctx, func(ctx context.Context) error {
				return u.waitAnswer(ctx, seed.Client, u.podNode, 100*time.Millisecond)
			})
		}},
	)
}

// clusterBase is the start of Up's work for a real cluster, whatever the
// mode: the control plane, the images, the nodes Ready.
func (u *upper) clusterBase(ctx context.Context) []step {
	steps := []step{
		{"starting etcd, kube-apiserver, kube-controller-manager and kube-scheduler on " + u.s.APIServerAddr().String() + " (in the background)",
			u.startControlPlane},
		{"building the lab's images (pause, Pi-hole, bgplb), or finding them in the cache", func() error { return u.buildImages(ctx) }},
		{"waiting for the control plane", func() error { return u.whileAlive(ctx, u.waitControlPlane) }},
		{"routing the pod ranges between the nodes over the LAN", func() error { return u.s.RoutePods(ctx) }},
	}
	for _, n := range u.s.Nodes() {
		steps = append(steps, step{fmt.Sprintf("starting containerd, kubelet and kube-proxy on %s (pods %s)", n, u.s.PodCIDR(n)),
			func() error { return u.startNode(ctx, n) }})
	}
	return append(steps, step{"waiting for the Nodes " + strings.Join(u.s.Nodes(), " and ") + " to be Ready", func() error { return u.waitNodes(ctx) }})
}

// clusterTools are what a real cluster's nodes run besides the Kubernetes
// binaries, and the Debian package of each.
var clusterTools = []struct{ path, pkg string }{
	{"containerd", "containerd"},
	{"runc", "runc"},
	{"iptables", "iptables"},
	{"/usr/lib/cni/bridge", "containernetworking-plugins"},
	{"/usr/lib/cni/host-local", "containernetworking-plugins"},
	{"/usr/lib/cni/loopback", "containernetworking-plugins"},
}

// checkCluster says what a real cluster lacks on this machine, and how to
// get it, before anything is built.
func checkCluster() error {
	var missing, pkgs []string
	for _, t := range clusterTools {
		if _, err := exec.LookPath(t.path); err != nil {
			missing = append(missing, t.path)
			if !slices.Contains(pkgs, t.pkg) {
				pkgs = append(pkgs, t.pkg)
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the real cluster's nodes need %s: apt-get install %s (or hack/install-deps.sh lab); --cluster=false plays the Kubernetes half without them",
			strings.Join(missing, ", "), strings.Join(pkgs, " "))
	}
	bin, err := controlplane.BinDir()
	if err != nil {
		return err
	}
	for _, b := range []string{"kubelet", "kube-proxy", "kube-controller-manager", "kube-scheduler"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return fmt.Errorf("no %s in %s: rebuild them with `make k8sbin` (hack/k8sbin.sh)", b, bin)
		}
	}
	return nil
}

// imageRef is the reference of one of the lab's images; before they are
// built, the name they will have.
func (u *upper) imageRef(name string) string {
	if r, ok := u.st.Images[name]; ok {
		return r
	}
	return images.Ref(name, "dev")
}

// buildImages builds the lab's images from the source tree (a Go build;
// seconds with a warm cache), or finds them in the cache.
func (u *upper) buildImages(ctx context.Context) error {
	// u.src: the tree the manifests come from too, so that the images
	// and the objects that run them are of one version.
	src := u.src
	if _, err := os.Stat(filepath.Join(src, "lab", "images", "pause")); err != nil {
		return fmt.Errorf("the real cluster's images are built from a bgplb source tree: run from one (make lab), pass --source DIR, or play the Kubernetes half with --cluster=false (%w)", err)
	}
	logPath := u.st.path("images.log")
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	set, err := images.Ensure(ctx, images.Options{SourceDir: src, Log: slog.New(slog.NewTextHandler(f, nil))})
	if err != nil {
		return fmt.Errorf("%w (log: %s)", err, logPath)
	}
	u.images = set
	u.st.Images = map[string]string{}
	for name, img := range set {
		u.st.Images[name] = img.Ref
	}
	return u.st.save()
}

// nodeDir is where a node of lab id keeps its containerd, kubelet and
// pods: beside the node namespace's scratch files (not in the state
// directory: a node gets a /run of its own).
func nodeDir(id, node string) string {
	return filepath.Join(lab.ScratchDir(id+"-"+node), "kubenode")
}

// startNode makes node a Kubernetes node: containerd with the lab's
// images, the kubelet, kube-proxy.
func (u *upper) startNode(ctx context.Context, node string) error {
	// No state to record: down finds the node at nodeDir from the ID.
	dir := nodeDir(u.st.ID, node)
	bin, err := controlplane.BinDir()
	if err != nil {
		return err
	}
	var archives []string
	for _, name := range images.All() {
		archives = append(archives, u.images[name].Archive)
	}
	// kubenode copies the credentials into the node: the state directory
	// may be under /run, which a node replaces with its own.
	cp := u.cp
	_, err = kubenode.Start(ctx, kubenode.Options{
		Name:            node,
		ID:              u.st.ID + "-" + node,
		Netns:           u.s.Host(node).Name,
		Dir:             dir,
		BinDir:          bin,
		Kubeconfig:      cp.NodeKubeconfigs[node],
		ProxyKubeconfig: cp.ProxyKubeconfig,
		CACert:          cp.CACert,
		NodeIPs:         []netip.Addr{u.s.NodeAddr(node), u.s.NodeAddr6(node)},
		PodCIDRs:        []netip.Prefix{u.s.PodCIDR(node)},
		ClusterCIDRs:    []netip.Prefix{seed.ClusterCIDR},
		Images:          archives,
		SandboxImage:    u.images[images.Pause].Ref,
	})
	if err != nil {
		return fmt.Errorf("node %s: %w", node, err)
	}
	return nil
}

// waitNodes waits until every node's kubelet reports Ready.
func (u *upper) waitNodes(ctx context.Context) error {
	for _, n := range u.s.Nodes() {
		if err := u.waitNode(ctx, n, true); err != nil {
			return err
		}
	}
	return nil
}

// waitNode waits until node's Ready condition is ready (true) or not.
func (u *upper) waitNode(ctx context.Context, node string, ready bool) error {
	last := "not registered"
	err := lab.Poll(ctx, 100*time.Millisecond, func() (bool, error) {
		var n corev1.Node
		if err := u.k.c.Get(ctx, client.ObjectKey{Name: node}, &n); err != nil {
			return false, nil
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				last = fmt.Sprintf("Ready=%s (%s: %s)", c.Status, c.Reason, c.Message)
				return (c.Status == corev1.ConditionTrue) == ready, nil
			}
		}
		last = "no Ready condition"
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("node %s: %w; last seen %s; kubelet log: %s", node, err, last,
			kubenode.LogPath(nodeDir(u.st.ID, node), "kubelet"))
	}
	return nil
}

// install applies the install bundle with the lab's bgplb image.
func (u *upper) install(ctx context.Context) error {
	b, err := os.ReadFile(filepath.Join(u.src, "deploy", bundleFile))
	if err != nil {
		return err
	}
	b, err = withImage(b, u.imageRef(images.BGPLB))
	if err != nil {
		return err
	}
	return u.k.applyBytes(ctx, bundleFile, b)
}

// waitBGPLB waits for the controller Deployment and the speaker
// DaemonSet to have every replica Ready.
func (u *upper) waitBGPLB(ctx context.Context) error {
	last := ""
	err := lab.Poll(ctx, 200*time.Millisecond, func() (bool, error) {
		var d appsv1.Deployment
		var ds appsv1.DaemonSet
		if err := u.k.c.Get(ctx, client.ObjectKey{Namespace: speakerNamespace, Name: controllerDeployment}, &d); err != nil {
			return false, nil
		}
		if err := u.k.c.Get(ctx, client.ObjectKey{Namespace: speakerNamespace, Name: speakerDaemonSet}, &ds); err != nil {
			return false, nil
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		last = fmt.Sprintf("controller %d/%d Ready, speakers %d/%d Ready", d.Status.ReadyReplicas, want,
			ds.Status.NumberReady, ds.Status.DesiredNumberScheduled)
		return d.Status.ReadyReplicas == want && ds.Status.DesiredNumberScheduled == int32(len(u.s.Nodes())) &&
			ds.Status.NumberReady == ds.Status.DesiredNumberScheduled, nil
	})
	if err != nil {
		return fmt.Errorf("bgplb: %w; last seen %s\n%s", err, last, u.k.podReport(ctx, speakerNamespace, nil))
	}
	return nil
}

// pihole creates the Pi-hole's Deployment and Service.
func (u *upper) pihole(ctx context.Context) error {
	if strings.Count(piholeDeployment, "image: IMAGE") != 1 {
		return errors.New("the Pi-hole Deployment has no one `image: IMAGE` to replace")
	}
	dep := strings.ReplaceAll(piholeDeployment, "image: IMAGE", "image: "+u.imageRef(images.Pihole))
	if err := u.k.applyBytes(ctx, "pihole-deployment.yaml", []byte(dep)); err != nil {
		return err
	}
	return u.k.applyFile(ctx, filepath.Join(u.src, "deploy", "examples", "pihole.yaml"))
}

// waitPihole waits until one Pi-hole pod is Ready on a node other than
// notOn, and records that node.
func (u *upper) waitPihole(ctx context.Context, notOn string) (string, error) {
	node := ""
	err := lab.Poll(ctx, 100*time.Millisecond, func() (bool, error) {
		var pods corev1.PodList
		if err := u.k.c.List(ctx, &pods, client.InNamespace("default"), piholeSelector); err != nil {
			return false, nil
		}
		node = readyNode(pods.Items, notOn)
		return node != "", nil
	})
	if err != nil {
		return "", fmt.Errorf("the Pi-hole pod: %w\n%s", err, u.k.podReport(ctx, "default", piholeSelector))
	}
	u.podNode = node
	return node, nil
}

// readyNode is the node of the first Ready, not terminating pod that is
// not on notOn; empty if none.
func readyNode(pods []corev1.Pod, notOn string) string {
	for _, p := range pods {
		if p.DeletionTimestamp != nil || p.Spec.NodeName == "" || p.Spec.NodeName == notOn {
			continue
		}
		if slices.ContainsFunc(p.Status.Conditions, func(c corev1.PodCondition) bool {
			return c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue
		}) {
			return p.Spec.NodeName
		}
	}
	return ""
}

// allProcs is every process the lab runs: st.Procs, and on a real
// cluster each node's daemons as their state records them ("node1/kubelet").
func (st *State) allProcs() map[string]Proc {
	all := maps.Clone(st.Procs)
	if all == nil {
		all = map[string]Proc{}
	}
	if !st.Cluster || st.ID == "" {
		return all
	}
	for _, n := range []string{seed.Node1, seed.Node2} {
		ds, err := kubenode.Daemons(nodeDir(st.ID, n))
		if err != nil {
			continue // not started yet, or removed
		}
		for _, d := range ds {
			all[n+"/"+d.Role] = Proc{Ref: d.Ref, Host: n, Log: d.Log}
		}
	}
	return all
}

// removeNodes removes the nodes of lab id that exist. It looks only where
// Up puts them (nodeDir), never at a path a state file names: Remove acts
// as root on what it finds there.
func removeNodes(ctx context.Context, out io.Writer, id string) error {
	var errs []error
	for _, n := range []string{seed.Node1, seed.Node2} {
		d := nodeDir(id, n)
		if _, err := os.Stat(d); errors.Is(err, os.ErrNotExist) {
			continue
		}
		fmt.Fprintf(out, "removing lab %s's %s (containers, mounts, cgroups)\n", id, n)
		if err := kubenode.Remove(ctx, d); err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

// nodeLabs lists the IDs of labs with prefix that have a node directory.
func nodeLabs(prefix string) []string {
	m, _ := filepath.Glob(nodeDir(prefix+"*", "node*"))
	var ids []string
	for _, d := range m {
		name := strings.TrimPrefix(filepath.Base(filepath.Dir(d)), "bgplb-")
		id, _, ok := strings.Cut(name, "-")
		// As seed.List: the prefix and six hex digits, not a longer prefix's.
		if ok && len(id) == len(prefix)+6 && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}
