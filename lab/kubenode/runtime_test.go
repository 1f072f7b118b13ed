package kubenode

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/labtest"
)

var runtimeBins = []string{"containerd", "containerd-shim-runc-v2", "ctr", "runc", "nsenter", "unshare", "iptables-save"}

// testOptions are a node's options in ns with the pause image, without
// the Kubernetes parts.
func testOptions(t *testing.T, ns *lab.Netns) Options {
	archive, name := pauseArchive(t)
	// Placeholders: the runtime alone reads none of them.
	creds := filepath.Join(t.TempDir(), "placeholder")
	if err := os.WriteFile(creds, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return Options{
		Name:         "node1",
		ID:           "t" + lab.UniqueSuffix(),
		Netns:        ns.Name,
		Dir:          filepath.Join(t.TempDir(), "node1"),
		Kubeconfig:   creds,
		CACert:       creds,
		PodCIDRs:     []netip.Prefix{netip.MustParsePrefix("198.18.1.0/24")},
		ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/16")},
		Images:       []string{archive},
		SandboxImage: name,
	}
}

// runtimeSetup prepares a runtime-only test: a namespace, a node's
// options in it, and how things look before the node starts.
func runtimeSetup(t *testing.T) (context.Context, *lab.Netns, Options, snapshot) {
	t.Helper()
	labtest.Require(t)
	labtest.RequireBinaries(t, runtimeBins...)
	ctx := testContext(t, 2*time.Minute)
	ns := labtest.Netns(t, "kn")
	o := testOptions(t, ns)
	return ctx, ns, o, takeSnapshot(t, ns)
}

// The runtime half of a node: containerd runs in the node's own mount
// namespace with the pause image imported, nothing of it shows in the
// machine's namespace, and Remove leaves nothing.
func TestRuntime(t *testing.T) {
	ctx, ns, o, before := runtimeSetup(t)
	n, err := newNode(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop(context.Background()) })
	began := time.Now()
	if err := n.startRuntime(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("containerd ready with the pause image imported in %v", time.Since(began).Round(time.Millisecond))

	if err := n.runContainer(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	out, err := Ctr(ctx, o.Dir, "images", "ls", "-q")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(o.SandboxImage)) {
		t.Errorf("containerd's images %q lack %s", out, o.SandboxImage)
	}
	if _, err := os.Stat(filepath.Join(o.Dir, "run", "containerd", "containerd.sock")); err != nil {
		t.Errorf("containerd's socket is not below Dir: %v", err)
	}
	for _, p := range before.absent {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s appeared in the machine's namespace", p)
		}
	}
	if m := newMounts(t, before, o.Dir); len(m) > 0 {
		t.Errorf("mounts appeared in the machine's namespace:\n%s", strings.Join(m, "\n"))
	}
	st := pinnedState(t, o.Dir)
	began = time.Now()
	if err := n.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("removed in %v", time.Since(began).Round(time.Millisecond))
	checkClean(t, ns, before, st, o.Dir)
	if err := Remove(ctx, o.Dir); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

// A process starts the runtime and a container, then dies by SIGKILL;
// Remove, from the directory alone, leaves nothing.
func TestRemoveAfterCrash(t *testing.T) {
	ctx, ns, o, before := runtimeSetup(t)
	t.Cleanup(func() { _ = Remove(context.Background(), o.Dir) })
	startInOtherProcess(t, o, crashEnv+"=1")
	st, pids := livePids(ctx, t, o.Dir)
	// holder, containerd, a shim, the container's process at least.
	if len(pids) < 4 {
		t.Fatalf("the crashed starter left %d processes (%v), want the runtime and a container", len(pids), pids)
	}
	began := time.Now()
	if err := Remove(ctx, o.Dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("figures: Remove after a crash took %v (%d processes)", time.Since(began).Round(time.Millisecond), len(pids))
	checkClean(t, ns, before, st, o.Dir)
	if err := Remove(ctx, o.Dir); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

// A start that fails (here: the network namespace is gone before the
// holder enters it) says why, with the failing daemon's log, and leaves
// nothing behind.
func TestStartFailureLeavesNothing(t *testing.T) {
	ctx, ns, o, before := runtimeSetup(t)
	o.Netns = ns.Name + "-gone"
	_, err := Start(ctx, o)
	if err == nil {
		t.Fatal("Start in a missing namespace succeeded")
	}
	t.Logf("Start failed as it should: %v", err)
	if !strings.Contains(err.Error(), "holder") {
		t.Errorf("the error does not name the holder: %v", err)
	}
	checkClean(t, ns, before, state{Name: o.Name, CgroupRoot: "/bgplb-" + o.ID}, o.Dir)
}

// `down` may delete the lab's namespaces first (killing what runs in the
// node's network namespace: the holder, containerd, the shims) and only
// then remove the node: the containers, in namespaces of their own, are
// still found through the cgroups.
func TestRemoveAfterNetnsGone(t *testing.T) {
	ctx, ns, o, before := runtimeSetup(t)
	n, err := newNode(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop(context.Background()) })
	if err := n.startRuntime(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n.runContainer(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := ns.Close(); err != nil {
		t.Fatal(err)
	}
	st, pids := livePids(ctx, t, o.Dir)
	if len(pids) == 0 {
		t.Fatal("the container died with the namespace: the test tests nothing")
	}
	if err := n.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	before.nodeLinks = nil // the namespace is gone
	checkCleanMachine(t, before, st, o.Dir)
}

// livePids reads the state of the node in dir and lists its processes
// that are not zombies.
func livePids(ctx context.Context, t *testing.T, dir string) (state, []int) {
	t.Helper()
	st := pinnedState(t, dir)
	cg, err := cgroupMounts()
	if err != nil {
		t.Fatal(err)
	}
	pids, err := nodePids(ctx, cg, st)
	if err != nil {
		t.Fatal(err)
	}
	return st, slices.DeleteFunc(pids, zombie)
}
