package kubenode

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bgplb/bgplb/lab"
)

// snapshot is what the machine and the node's network namespace look like
// before a node starts; after Remove they must look the same.
type snapshot struct {
	mounts    []string // the machine's mount points
	rootLinks []string
	nodeLinks []string
	// paths a kubelet, containerd or CNI would write outside the node:
	// those that did not exist before must not exist after.
	absent []string
}

var outsidePaths = []string{
	"/run/containerd", "/var/lib/containerd", "/opt/containerd", "/var/lib/kubelet",
	"/var/log/pods", "/var/log/containers", "/var/lib/cni", "/var/run/netns/cni-", "/etc/cni/net.d",
	// The kubelet's flexvolume prober, unless volumePluginDir says otherwise.
	"/usr/libexec/kubernetes",
}

func takeSnapshot(t *testing.T, ns *lab.Netns) snapshot {
	t.Helper()
	var absent []string
	for _, p := range outsidePaths {
		if _, err := os.Stat(p); err != nil {
			absent = append(absent, p)
		}
	}
	return snapshot{mounts: mountPoints(t), rootLinks: links(t, nil), nodeLinks: links(t, ns), absent: absent}
}

func mountPoints(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 {
			out = append(out, f[4])
		}
	}
	slices.Sort(out)
	return out
}

// newMounts lists mount points of the machine's namespace that were not
// there before and that a node could have made: below its directory, or
// where the node mounts its own /run, /var and sysctls. Other tests on the
// machine make mounts of their own meanwhile.
func newMounts(t *testing.T, before snapshot, dir string) []string {
	t.Helper()
	var out []string
	for _, m := range mountPoints(t) {
		if slices.Contains(before.mounts, m) || strings.HasPrefix(m, lab.NetnsDir+"/") {
			continue
		}
		for _, p := range []string{dir, "/run", "/var", "/proc/sys"} {
			if m == p || strings.HasPrefix(m, p+"/") {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// newLinks lists the links in the machine's namespace that were not there
// before and that look like a node's (CNI's veths and bridge); other tests
// add and remove links of their own meanwhile.
func newLinks(got, before []string) []string {
	var out []string
	for _, l := range got {
		if !slices.Contains(before, l) && (strings.HasPrefix(l, "veth") || strings.HasPrefix(l, "cni")) {
			out = append(out, l)
		}
	}
	return out
}

func links(t *testing.T, ns *lab.Netns) []string {
	t.Helper()
	var out []byte
	var err error
	if ns == nil {
		out, err = runCmdOutput("ip", "-j", "link", "show")
	} else {
		out, err = ns.IPOutput(context.Background(), "-j", "link", "show")
	}
	if err != nil {
		t.Fatal(err)
	}
	var ls []struct {
		Name string `json:"ifname"`
	}
	if err := json.Unmarshal(out, &ls); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range ls {
		names = append(names, l.Name)
	}
	slices.Sort(names)
	return names
}

func runCmdOutput(name string, args ...string) ([]byte, error) {
	return run(context.Background(), nil, append([]string{name}, args...)...)
}

// checkClean checks that nothing of the node st is left: no process in its
// cgroups or mount namespace, no cgroup directory, no mount, no link in the
// node's namespace that was not there before, no iptables chain, no
// directory.
func checkClean(t *testing.T, ns *lab.Netns, before snapshot, st state, dir string) {
	t.Helper()
	checkCleanMachine(t, before, st, dir)
	if got := links(t, ns); !slices.Equal(got, before.nodeLinks) {
		t.Errorf("links in the node's namespace: %v, before %v", got, before.nodeLinks)
	}
	for _, tool := range []string{"iptables-save", "ip6tables-save"} {
		if out, err := ns.Run(context.Background(), tool); err != nil {
			t.Error(err)
		} else if s := iptablesCleanup(string(out), ownedChain); s != "" {
			t.Errorf("%s: chains left in the node's namespace; removing them takes:\n%s", tool, s)
		}
	}
}

// checkCleanMachine is checkClean without the node's network namespace.
func checkCleanMachine(t *testing.T, before snapshot, st state, dir string) {
	t.Helper()
	cg, err := cgroupMounts()
	if err != nil {
		t.Fatal(err)
	}
	pids, err := nodePids(context.Background(), cg, st)
	if err != nil {
		t.Fatal(err)
	}
	pids = slices.DeleteFunc(pids, zombie)
	if len(pids) > 0 {
		t.Errorf("processes left: %v", pids)
	}
	for _, m := range cg {
		if _, err := os.Stat(filepath.Join(m.Dir, st.CgroupRoot)); err == nil {
			t.Errorf("cgroup %s left in %s", st.CgroupRoot, m.Dir)
		}
	}
	if m := newMounts(t, before, dir); len(m) > 0 {
		t.Errorf("mounts left in the machine's namespace:\n%s", strings.Join(m, "\n"))
	}
	if l := newLinks(links(t, nil), before.rootLinks); len(l) > 0 {
		t.Errorf("links left in the machine's namespace: %v", l)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("%s left", dir)
	}
	for _, p := range before.absent {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s appeared in the machine's namespace", p)
		}
	}
}

// nodePids lists the processes in the node's cgroups and, if st.MountNS
// is set, in that mount namespace: st must come from pinnedState, or the
// number may be another namespace's by now.
func nodePids(ctx context.Context, cg []cgroupMount, st state) ([]int, error) {
	return sweepSet{CgroupRoot: st.CgroupRoot, MountNS: st.MountNS}.pids(ctx, cg)
}

// pinnedState reads the node's state and holds its mount namespace open
// until the test ends, so that checkClean may look for processes in it
// after Remove: a freed namespace's inode is reused at once. Without a
// live holder MountNS is cleared, and only the cgroups are looked at.
func pinnedState(t *testing.T, dir string) state {
	t.Helper()
	st, err := readState(dir)
	if err != nil {
		t.Fatal(err)
	}
	pin := pinMountNS(st)
	t.Cleanup(pin.close)
	st.MountNS = pin.id
	return st
}
