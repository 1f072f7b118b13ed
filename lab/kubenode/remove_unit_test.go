package kubenode

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bgplb/bgplb/internal/proc"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/labtest"
)

func TestSweepMountNS(t *testing.T) {
	rec := nsID{Dev: 4, Ino: 4026532500}
	live := holderFacts{Recorded: true, Started: true, Alive: true, MountNS: rec}
	for _, tc := range []struct {
		name     string
		recorded nsID
		h        func(h *holderFacts)
		want     bool
	}{
		{"the holder runs in the recorded namespace", rec, func(*holderFacts) {}, true},
		{"no namespace recorded", nsID{}, func(*holderFacts) {}, false},
		{"no holder recorded", rec, func(h *holderFacts) { h.Recorded = false }, false},
		{"holder without start time", rec, func(h *holderFacts) { h.Started = false }, false},
		{"holder gone (crash, reboot)", rec, func(h *holderFacts) { h.Alive = false }, false},
		{"inode reused by another namespace", rec, func(h *holderFacts) { h.MountNS = nsID{Dev: 4, Ino: 4026532501} }, false},
		{"same inode, other device", rec, func(h *holderFacts) { h.MountNS.Dev = 5 }, false},
		{"namespace unreadable", rec, func(h *holderFacts) { h.MountNS, h.Err = nsID{}, errors.New("EACCES") }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := live
			tc.h(&h)
			if got := sweepMountNS(tc.recorded, h); got != tc.want {
				t.Errorf("sweepMountNS(%v, %+v) = %v, want %v", tc.recorded, h, got, tc.want)
			}
		})
	}
}

func TestStateCheck(t *testing.T) {
	own, err := nsOf("/proc/self/ns/mnt")
	if err != nil {
		labtest.Missing(t, "reading this process's mount namespace: %v", err)
	}
	good := state{Name: "node1", ID: "t1a2b3c", Netns: "kn-1a2b3c", Bridge: bridgeName, CgroupRoot: "/bgplb-t1a2b3c", MountNS: nsID{Dev: 4, Ino: 1}}
	for _, tc := range []struct {
		name string
		edit func(st *state)
		ok   bool
	}{
		{"node", func(*state) {}, true},
		{"no namespace yet", func(st *state) { st.MountNS = nsID{} }, true},
		{"root cgroup", func(st *state) { st.CgroupRoot = "/" }, false},
		{"empty cgroup", func(st *state) { st.CgroupRoot = "" }, false},
		{"cgroup escape", func(st *state) { st.CgroupRoot = "/bgplb-t1a2b3c/../.." }, false},
		{"another node's cgroup", func(st *state) { st.CgroupRoot = "/bgplb-other" }, false},
		{"cgroup not below /", func(st *state) { st.CgroupRoot = "bgplb-t1a2b3c" }, false},
		{"bad ID", func(st *state) { st.ID, st.CgroupRoot = "../x", "/bgplb-../x" }, false},
		{"empty ID", func(st *state) { st.ID, st.CgroupRoot = "", "/bgplb-" }, false},
		{"no netns", func(st *state) { st.Netns = "" }, false},
		{"netns path", func(st *state) { st.Netns = "../../proc/1/ns/net" }, false},
		{"netns with /", func(st *state) { st.Netns = "a/b" }, false},
		{"netns ..", func(st *state) { st.Netns = ".." }, false},
		{"machine's link as bridge", func(st *state) { st.Bridge = "eth0" }, false},
		{"no bridge", func(st *state) { st.Bridge = "" }, false},
		{"machine's mount namespace", func(st *state) { st.MountNS = own }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := good
			tc.edit(&st)
			if err := st.check(); (err == nil) != tc.ok {
				t.Errorf("check(%+v) = %v, want ok %v", st, err, tc.ok)
			}
		})
	}
}

func TestUnstartedTree(t *testing.T) {
	l := layout{Dir: "/tmp/lab/node1"}
	d := func(rel string) treeEntry { return treeEntry{Rel: rel, Dir: true} }
	f := func(rel string) treeEntry { return treeEntry{Rel: rel} }
	var all []treeEntry
	for _, p := range []string{"conf", "logs", "cni", "cni/net.d", "sysctl", "run", "var", "var/lib", "var/log", "var/tmp"} {
		all = append(all, d(p))
	}
	for _, tc := range []struct {
		name string
		ents []treeEntry
		ok   bool
	}{
		{"empty", nil, true},
		{"the layout's directories", all, true},
		{"some of them", []treeEntry{d("var"), d("var/lib")}, true},
		{"an unfinished state file", slices.Concat(all, []treeEntry{f("state.json.tmp")}), true},
		{"a file of someone's", []treeEntry{f("thesis.tex")}, false},
		{"a directory of someone's", []treeEntry{d("src")}, false},
		{"a file in a layout directory", slices.Concat(all, []treeEntry{f("conf/kubelet.yaml")}), false},
		{"a directory in a layout directory", slices.Concat(all, []treeEntry{d("var/lib/mysql")}), false},
		{"a layout name as a file", []treeEntry{f("conf")}, false},
		{"a layout name as a symlink", []treeEntry{f("var")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := unstartedTree(l, tc.ents); (err == nil) != tc.ok {
				t.Errorf("unstartedTree(%v) = %v, want ok %v", tc.ents, err, tc.ok)
			}
		})
	}
}

// Remove of a directory without a state file: one Start left before its
// first write goes, anything else stays, with an error.
func TestRemoveWithoutState(t *testing.T) {
	ctx := context.Background()
	if err := Remove(ctx, filepath.Join(t.TempDir(), "never")); err != nil {
		t.Errorf("Remove of a missing directory: %v", err)
	}
	unstarted := filepath.Join(t.TempDir(), "node1")
	for _, d := range (layout{unstarted}).dirs() {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := Remove(ctx, unstarted); err != nil {
		t.Errorf("Remove of an unstarted node: %v", err)
	}
	if _, err := os.Stat(unstarted); err == nil {
		t.Errorf("%s left", unstarted)
	}
	foreign := t.TempDir()
	mine := filepath.Join(foreign, "var", "notes")
	if err := os.MkdirAll(filepath.Dir(mine), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mine, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Remove(ctx, foreign); err == nil {
		t.Error("Remove of a directory holding no node succeeded")
	} else {
		t.Logf("refused as it should: %v", err)
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("Remove deleted a file it does not own: %v", err)
	}
}

func TestNotMachineNetns(t *testing.T) {
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"/proc/self/ns/net", false},
		{"/proc/1/ns/net", false},
		{filepath.Join(t.TempDir(), "gone"), false},
	} {
		if err := notMachineNetns(tc.path); (err == nil) != tc.ok {
			t.Errorf("notMachineNetns(%s) = %v, want ok %v", tc.path, err, tc.ok)
		}
	}
	labtest.Require(t)
	ns := labtest.Netns(t, "kn")
	if err := notMachineNetns(ns.Path()); err != nil {
		t.Errorf("a namespace of the test's own: %v", err)
	}
}

// pinMountNS with a real process in a mount namespace of its own: the
// namespace is pinned only while that very process runs in it.
func TestPinMountNS(t *testing.T) {
	labtest.Require(t)
	labtest.RequireBinaries(t, "unshare", "sleep")
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "--", "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	ref := proc.RefOf(cmd.Process.Pid)
	nsPath := fmt.Sprintf("/proc/%d/ns/mnt", ref.PID)
	own, err := nsOf("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	var id nsID
	if err := lab.Poll(labtest.Context(t, 10*time.Second), 10*time.Millisecond, func() (bool, error) {
		id, err = nsOf(nsPath)
		return err == nil && id != own, err // unshare has not entered it yet
	}); err != nil {
		t.Fatal(err)
	}
	st := state{MountNS: id, Procs: map[string]proc.Ref{roleHolder: ref}}
	other := st
	other.MountNS.Ino++
	noStart := st
	noStart.Procs = map[string]proc.Ref{roleHolder: {PID: ref.PID}}
	for _, tc := range []struct {
		name string
		st   state
		want nsID
	}{
		{"the holder's namespace", st, id},
		{"another inode", other, nsID{}},
		{"holder without start time", noStart, nsID{}},
		{"no holder", state{MountNS: id}, nsID{}},
	} {
		pin := pinMountNS(tc.st)
		if pin.id != tc.want || (pin.f != nil) != tc.want.valid() {
			t.Errorf("%s: pinned %v (open %v), want %v", tc.name, pin.id, pin.f != nil, tc.want)
		}
		pin.close()
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if pin := pinMountNS(st); pin.f != nil {
		pin.close()
		t.Error("pinned the namespace of a holder that is gone")
	}
}

// A failed Start's cleanup runs on when the start's context has ended,
// but is bounded.
func TestCleanupContext(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	cancel()
	ctx, cleanupCancel := cleanupContext(parent)
	defer cleanupCancel()
	if ctx.Err() != nil {
		t.Errorf("the cleanup's context ended with the start's: %v", ctx.Err())
	}
	deadline, ok := ctx.Deadline()
	if !ok || time.Until(deadline) > removeTimeout+time.Minute {
		t.Errorf("the cleanup's deadline is %v (set %v): unbounded", deadline, ok)
	}
}

func TestDaemons(t *testing.T) {
	dir := t.TempDir()
	if _, err := Daemons(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Daemons without a state file: %v, want ErrNotExist", err)
	}
	for _, tc := range []struct {
		name  string
		procs map[string]proc.Ref
		want  []string
	}{
		{"none yet", nil, nil},
		{"all, in start order", map[string]proc.Ref{
			roleProxy: {PID: 4, Start: 40}, roleHolder: {PID: 1, Start: 10},
			roleKubelet: {PID: 3, Start: 30}, roleContainerd: {PID: 2, Start: 20},
		}, []string{"holder", "containerd", "kubelet", "kube-proxy"}},
		{"a start that failed at the kubelet", map[string]proc.Ref{
			roleContainerd: {PID: 2, Start: 20}, roleHolder: {PID: 1, Start: 10},
		}, []string{"holder", "containerd"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := writeState(dir, state{Name: "node1", Procs: tc.procs}); err != nil {
				t.Fatal(err)
			}
			got, err := Daemons(dir)
			if err != nil {
				t.Fatal(err)
			}
			var roles []string
			for _, d := range got {
				roles = append(roles, d.Role)
				if d.Ref != tc.procs[d.Role] {
					t.Errorf("%s: Ref %+v, want %+v", d.Role, d.Ref, tc.procs[d.Role])
				}
				if want := filepath.Join(dir, "logs", d.Role+".log"); d.Log != want || LogPath(dir, d.Role) != want {
					t.Errorf("%s: Log %s, LogPath %s, want %s", d.Role, d.Log, LogPath(dir, d.Role), want)
				}
			}
			if !slices.Equal(roles, tc.want) {
				t.Errorf("roles %v, want %v", roles, tc.want)
			}
		})
	}
}

// Start refuses, before it makes anything, a node Remove would not trust.
func TestNewNodeRefusesUntrustable(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "creds")
	if err := os.WriteFile(creds, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, netns := range []string{"../../proc/1/ns/net", "a/b", ".."} {
		dir := filepath.Join(t.TempDir(), "node1")
		_, err := newNode(Options{Name: "node1", ID: "t1", Netns: netns, Dir: dir, Kubeconfig: creds, CACert: creds,
			SandboxImage: "pause", ClusterCIDRs: testServiceCIDRs})
		if err == nil {
			t.Errorf("newNode with Netns %q succeeded", netns)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("newNode with Netns %q made %s", netns, dir)
		}
	}
}
