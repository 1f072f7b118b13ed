package kubenode

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/bgplb/bgplb/lab"
)

// cgroupMount is one mounted cgroup hierarchy.
type cgroupMount struct {
	Dir    string
	Cpuset bool // v1 cpuset: a new cgroup must be given cpus and mems
}

// parseCgroupMounts finds the cgroup hierarchies (v1 and v2) in a
// /proc/self/mountinfo.
func parseCgroupMounts(mountinfo []byte) []cgroupMount {
	var out []cgroupMount
	sc := bufio.NewScanner(bytes.NewReader(mountinfo))
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 || (g[0] != "cgroup" && g[0] != "cgroup2") {
			continue
		}
		m := cgroupMount{Dir: f[4]}
		if g[0] == "cgroup" {
			m.Cpuset = slices.Contains(strings.Split(g[2], ","), "cpuset")
		}
		out = append(out, m)
	}
	return out
}

func cgroupMounts() ([]cgroupMount, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("kubenode: %w", err)
	}
	ms := parseCgroupMounts(b)
	if len(ms) == 0 {
		return nil, errors.New("kubenode: no cgroup hierarchy mounted")
	}
	return ms, nil
}

// createCgroups makes root and root/daemons in every hierarchy.
func createCgroups(ms []cgroupMount, root string) error {
	for _, m := range ms {
		for _, rel := range []string{root, filepath.Join(root, daemonCgroup)} {
			dir := filepath.Join(m.Dir, rel)
			if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("kubenode: cgroup: %w", err)
			}
			if m.Cpuset {
				if err := inheritCpuset(dir); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// inheritCpuset copies cpus and mems from the parent: a v1 cpuset cgroup
// starts with none, and no task may join it then.
func inheritCpuset(dir string) error {
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		v, err := os.ReadFile(filepath.Join(filepath.Dir(dir), f))
		if err != nil {
			return fmt.Errorf("kubenode: cgroup: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
			return fmt.Errorf("kubenode: cgroup: %w", err)
		}
	}
	return nil
}

// daemonProcsFiles are the cgroup.procs files a daemon writes itself into.
func daemonProcsFiles(ms []cgroupMount, root string) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = filepath.Join(m.Dir, root, daemonCgroup, "cgroup.procs")
	}
	return out
}

// cgroupTree lists the cgroup directories below (and including) root in
// one hierarchy, children before parents, so they can be removed in order.
func cgroupTree(m cgroupMount, root string) ([]string, error) {
	var dirs []string
	err := filepath.WalkDir(filepath.Join(m.Dir, root), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	slices.Reverse(dirs)
	return dirs, err
}

// cgroupPids lists the tasks in root's trees, in every hierarchy.
func cgroupPids(ms []cgroupMount, root string) ([]int, error) {
	var pids []int
	for _, m := range ms {
		dirs, err := cgroupTree(m, root)
		if err != nil {
			return nil, err
		}
		for _, d := range dirs {
			b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
			if err != nil {
				continue // removed meanwhile
			}
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					pids = append(pids, pid)
				}
			}
		}
	}
	slices.Sort(pids)
	return slices.Compact(pids), nil
}

// removeCgroups removes root's trees in every hierarchy, children first.
// The tasks must be gone: rmdir fails while a cgroup has any.
func removeCgroups(ctx context.Context, ms []cgroupMount, root string) error {
	var errs []error
	for _, m := range ms {
		dirs, err := cgroupTree(m, root)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, d := range dirs {
			if err := rmdirRetry(ctx, d); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// rmdirRetry retries EBUSY: a killed task leaves its cgroup a moment after
// it is reported dead.
func rmdirRetry(ctx context.Context, dir string) error {
	err := lab.Poll(ctx, pollEvery, func() (bool, error) {
		err := os.Remove(dir)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return true, nil
		}
		return false, err
	})
	if err != nil {
		return fmt.Errorf("kubenode: remove cgroup %s: %w", dir, err)
	}
	return nil
}
