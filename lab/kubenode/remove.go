package kubenode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bgplb/bgplb/lab"
)

// removeTimeout bounds Remove when the caller's context has no deadline.
const removeTimeout = 60 * time.Second

// Remove deletes the node whose state directory is dir, from what is on
// disk only, so it works after the starting process crashed, and again
// after a reboot: it stops the daemons, kills every process left in the
// node's cgroups and mount namespace (containers, shims), removes the
// cgroups, the CNI bridge with its veths and the node's iptables chains
// in its network namespace (if that still exists), and the directory.
// Mounts need no unmounting: they exist only in the node's mount
// namespace, which ends with its last process. Remove is idempotent. It
// refuses a state file naming anything but a node's own, and a directory
// without one unless it is empty or holds only Start's directories.
func Remove(ctx context.Context, dir string) error {
	ctx, cancel := context.WithTimeout(ctx, removeTimeout)
	defer cancel()
	st, err := readState(dir)
	if errors.Is(err, fs.ErrNotExist) {
		// Nothing ever started, or removed already; or dir is no node's.
		return removeUnstarted(dir)
	}
	if err != nil {
		return err
	}
	if err := st.check(); err != nil {
		return err
	}
	// Decided before the holder is stopped: afterwards its namespace
	// could no longer be told from another with the same inode.
	pin := pinMountNS(st)
	defer pin.close()
	var errs []error
	// The kubelet and kube-proxy first, gently: they then stop creating
	// pods and rules while the rest goes. The holder last: its namespace
	// is pinned, and anything left in it is swept below.
	for _, role := range []string{roleProxy, roleKubelet, roleContainerd, roleHolder} {
		if ref, ok := st.Procs[role]; ok {
			if err := ref.Stop(2 * time.Second); err != nil {
				errs = append(errs, fmt.Errorf("kubenode: stop %s: %w", role, err))
			}
		}
	}
	cg, err := cgroupMounts()
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	if err := killAll(ctx, cg, st.Name, pin.sweep(st)); err != nil {
		return errors.Join(append(errs, err)...)
	}
	// The mounts in the namespace end with it; the pin must not keep them
	// while the directory below them goes.
	pin.close()
	errs = append(errs, removeCgroups(ctx, cg, st.CgroupRoot))
	errs = append(errs, cleanNetwork(ctx, st))
	errs = append(errs, removeAll(dir))
	return errors.Join(errs...)
}

// removeAll removes the node's directory, its state file last: should
// anything fail, a later Remove still knows the directory is a node's.
func removeAll(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kubenode: %w", err)
	}
	state := filepath.Base(layout{dir}.stateFile())
	for _, e := range ents {
		if e.Name() == state {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("kubenode: %w", err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("kubenode: %w", err)
	}
	return nil
}

// removeUnstarted removes a directory without a state file only if it
// holds nothing but what Start makes before it writes one (Remove runs as
// root: a mistyped Dir must not lose anyone's files).
func removeUnstarted(dir string) error {
	var ents []treeEntry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			ents = append(ents, treeEntry{Rel: rel, Dir: d.IsDir()})
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kubenode: %w", err)
	}
	if err := unstartedTree(layout{dir}, ents); err != nil {
		return err
	}
	return removeAll(dir)
}

// treeEntry is one path below a directory, relative to it.
type treeEntry struct {
	Rel string
	Dir bool
}

// unstartedTree accepts the tree of a node directory without a state
// file: empty, or the layout's directories (and their parents) with no
// file in them but a state file's unfinished temporary copy.
func unstartedTree(l layout, ents []treeEntry) error {
	own := map[string]bool{}
	for _, d := range l.dirs() {
		for rel, _ := filepath.Rel(l.Dir, d); rel != "."; rel = filepath.Dir(rel) {
			own[rel] = true
		}
	}
	tmp, _ := filepath.Rel(l.Dir, l.stateFile()+".tmp")
	for _, e := range ents {
		if (e.Dir && own[e.Rel]) || (!e.Dir && e.Rel == tmp) {
			continue
		}
		return fmt.Errorf("kubenode: %s holds no node (no %s) but %s: not removed", l.Dir, filepath.Base(l.stateFile()), e.Rel)
	}
	return nil
}

// killAll SIGKILLs every process in the node's cgroups (and mount
// namespace, if sweep says so) until none is left. Zombies count as gone:
// on a machine whose init does not reap orphans they stay, holding nothing.
func killAll(ctx context.Context, cg []cgroupMount, name string, sweep sweepSet) error {
	self := os.Getpid()
	var pids []int
	err := lab.Poll(ctx, pollEvery, func() (bool, error) {
		var err error
		if pids, err = sweep.pids(ctx, cg); err != nil {
			return false, lab.Permanent(err)
		}
		pids = slices.DeleteFunc(pids, func(p int) bool { return p == self || zombie(p) })
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		return len(pids) == 0, nil
	})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("kubenode: processes %v of node %s survive: %w", pids, name, err)
	}
	return err
}

// netnsRE is lab's pattern of namespace names: no '/', never "." or "..".
var netnsRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// check refuses a state that names anything but the node's own: Remove
// runs as root from a file on disk, and killing "every process in" or
// deleting a path it names must never hit the machine.
func (st state) check() error {
	switch {
	case !idRE.MatchString(st.ID):
		return fmt.Errorf("kubenode: state of node %q: ID %q is not a node's", st.Name, st.ID)
	case st.CgroupRoot != "/bgplb-"+st.ID:
		return fmt.Errorf("kubenode: state of node %q: cgroup root %q is not /bgplb-%s", st.Name, st.CgroupRoot, st.ID)
	case !netnsRE.MatchString(st.Netns):
		return fmt.Errorf("kubenode: state of node %q: network namespace %q is no namespace name", st.Name, st.Netns)
	case st.Bridge != bridgeName:
		return fmt.Errorf("kubenode: state of node %q: bridge %q is not %s", st.Name, st.Bridge, bridgeName)
	}
	if !st.MountNS.valid() {
		return nil
	}
	for _, p := range []string{"/proc/self/ns/mnt", "/proc/1/ns/mnt"} {
		if id, err := nsOf(p); err == nil && id == st.MountNS {
			return fmt.Errorf("kubenode: state of node %q: its mount namespace is the machine's (%s)", st.Name, p)
		}
	}
	return nil
}

// sweepSet says where a node's processes are: always its cgroup trees
// (uniquely named), and its mount namespace only when that is known to
// be the node's.
type sweepSet struct {
	CgroupRoot string
	MountNS    nsID // zero: not swept
}

// pids lists the processes in the node's cgroups and mount namespace.
func (s sweepSet) pids(ctx context.Context, cg []cgroupMount) ([]int, error) {
	pids, err := cgroupPids(cg, s.CgroupRoot)
	if err != nil {
		return nil, err
	}
	if s.MountNS.valid() {
		more, err := pidsInNamespace(ctx, "mnt", s.MountNS)
		if err != nil {
			return nil, err
		}
		pids = append(pids, more...)
	}
	slices.Sort(pids)
	return slices.Compact(pids), nil
}

// holderFacts is what is known of the recorded holder when Remove begins.
type holderFacts struct {
	Recorded bool  // state.Procs has a holder
	Started  bool  // its Ref has a start time
	Alive    bool  // that process runs, by pid and start time
	MountNS  nsID  // /proc/PID/ns/mnt, opened and pinned
	Err      error // reading MountNS failed
}

// sweepMountNS decides whether the node's processes may be found by its
// recorded mount namespace. An inode number identifies a namespace only
// while it exists: a freed one is reused by the kernel, and after a reboot
// the numbers repeat. So only if the recorded holder still runs (checked
// by start time) and its namespace, now pinned open, is the recorded one;
// otherwise the uniquely named cgroups alone must do.
func sweepMountNS(recorded nsID, h holderFacts) bool {
	return recorded.valid() && h.Recorded && h.Started && h.Alive && h.Err == nil && h.MountNS == recorded
}

// nsPin holds a node's mount namespace open, so that its inode cannot be
// reused while Remove sweeps by it.
type nsPin struct {
	f  *os.File
	id nsID
}

// pinMountNS opens the holder's mount namespace if it is still the node's
// (see sweepMountNS); the zero nsPin sweeps nothing by namespace.
func pinMountNS(st state) *nsPin {
	ref, ok := st.Procs[roleHolder]
	h := holderFacts{Recorded: ok, Started: ref.Start != 0, Alive: ok && ref.Alive()}
	if !st.MountNS.valid() || !h.Alive {
		return &nsPin{}
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/mnt", ref.PID))
	if err != nil {
		return &nsPin{} // gone meanwhile
	}
	h.MountNS, h.Err = fdNS(f)
	// Opened after the first look: the pid may have been reused between.
	h.Alive = ref.Alive()
	if !sweepMountNS(st.MountNS, h) {
		f.Close()
		return &nsPin{}
	}
	return &nsPin{f: f, id: h.MountNS}
}

func (p *nsPin) sweep(st state) sweepSet {
	if p.f == nil {
		return sweepSet{CgroupRoot: st.CgroupRoot}
	}
	return sweepSet{CgroupRoot: st.CgroupRoot, MountNS: p.id}
}

func (p *nsPin) close() {
	if p.f != nil {
		p.f.Close()
		p.f = nil
	}
}

// pidsInNamespace lists the processes whose namespace of kind is id.
func pidsInNamespace(ctx context.Context, kind string, id nsID) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("kubenode: %w", err)
	}
	var pids []int
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if got, err := nsOf(filepath.Join("/proc", e.Name(), "ns", kind)); err == nil && got == id {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // gone
	}
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && len(b) > i+2 && b[i+2] == 'Z'
}

// cleanNetwork removes what CNI and kube-proxy left in the node's network
// namespace: the bridge's veths (their pods' namespaces may outlive the
// mount namespace by a moment), the bridge, and the KUBE-* and CNI-*
// iptables chains with the rules that jump to them.
func cleanNetwork(ctx context.Context, st state) error {
	ns, err := netnsNamed(st.Netns)
	if err != nil {
		return nil // the namespace is gone, and everything in it
	}
	if err := notMachineNetns(ns.Path()); err != nil {
		return err
	}
	var errs []error
	out, err := ns.IPOutput(ctx, "-j", "link", "show", "master", st.Bridge)
	if err == nil {
		var links []struct {
			Name string `json:"ifname"`
		}
		if err := json.Unmarshal(out, &links); err == nil {
			for _, l := range links {
				if err := ns.IP(ctx, "link", "del", "dev", l.Name); err != nil && !linkGone(err) {
					errs = append(errs, err)
				}
			}
		}
		if err := ns.IP(ctx, "link", "del", "dev", st.Bridge); err != nil && !linkGone(err) {
			errs = append(errs, err)
		}
	}
	for _, tool := range []string{"iptables", "ip6tables"} {
		errs = append(errs, cleanIPTables(ctx, ns, tool))
	}
	return errors.Join(errs...)
}

// notMachineNetns refuses a namespace name that refers to the machine's
// network namespace (`ip netns attach NAME 1`): its bridge and chains are
// not the node's. Where pid 1's namespace cannot be read (no
// CAP_SYS_PTRACE over it), the caller's stands for the machine's: Remove
// runs from the machine's namespace, not from the node's.
func notMachineNetns(path string) error {
	id, err := nsOf(path)
	if err != nil {
		return fmt.Errorf("kubenode: %w", err)
	}
	var machine []nsID
	for _, p := range []string{"/proc/1/ns/net", "/proc/self/ns/net"} {
		if m, err := nsOf(p); err == nil {
			machine = append(machine, m)
		}
	}
	if len(machine) == 0 || slices.Contains(machine, id) {
		return fmt.Errorf("kubenode: %s is the machine's network namespace (or that is unknown): not cleaned", path)
	}
	return nil
}

func linkGone(err error) bool {
	s := err.Error()
	// "No such device": the veth went with its pod's namespace meanwhile.
	return strings.Contains(s, "Cannot find device") || strings.Contains(s, "does not exist") ||
		strings.Contains(s, "No such device")
}

func cleanIPTables(ctx context.Context, ns *lab.Netns, tool string) error {
	save, err := ns.Run(ctx, tool+"-save")
	if err != nil {
		return nil // no such tool or family here: nothing of ours either
	}
	script := iptablesCleanup(string(save), ownedChain)
	if script == "" {
		return nil
	}
	cmd := ns.Command(ctx, tool+"-restore", "--noflush")
	cmd.Stdin = strings.NewReader(script)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("kubenode: %s-restore in %s: %w: %s\n%s", tool, ns.Name, err, b, script)
	}
	return nil
}

// ownedChain tells the chains the kubelet, kube-proxy and CNI create.
func ownedChain(name string) bool {
	return strings.HasPrefix(name, "KUBE-") || strings.HasPrefix(name, "CNI-")
}

// iptablesCleanup turns iptables-save output into an iptables-restore
// --noflush script that deletes the rules in other chains jumping to an
// owned chain, then flushes and deletes the owned chains. Other rules stay.
func iptablesCleanup(save string, owned func(string) bool) string {
	var b strings.Builder
	var table string
	var dels, chains []string
	flush := func() {
		if table == "" || len(dels)+len(chains) == 0 {
			return
		}
		fmt.Fprintf(&b, "*%s\n", table)
		for _, d := range dels {
			b.WriteString(d + "\n")
		}
		for _, c := range chains {
			fmt.Fprintf(&b, "-F %s\n", c)
		}
		for _, c := range chains {
			fmt.Fprintf(&b, "-X %s\n", c)
		}
		b.WriteString("COMMIT\n")
	}
	for _, line := range strings.Split(save, "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table, dels, chains = strings.TrimPrefix(line, "*"), nil, nil
		case strings.HasPrefix(line, ":"):
			if name, _, _ := strings.Cut(line[1:], " "); owned(name) {
				chains = append(chains, name)
			}
		case strings.HasPrefix(line, "-A "):
			f := strings.Fields(line)
			if len(f) < 2 || owned(f[1]) {
				continue // flushed with its chain
			}
			if j := slices.Index(f, "-j"); j >= 0 && j+1 < len(f) && owned(f[j+1]) {
				dels = append(dels, "-D"+strings.TrimPrefix(line, "-A"))
			}
		case line == "COMMIT":
			flush()
			table = ""
		}
	}
	return b.String()
}
