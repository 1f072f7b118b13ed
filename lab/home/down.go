package home

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bgplb/bgplb/internal/proc"
	"github.com/bgplb/bgplb/lab/seed"
)

// Down removes everything Up made: the root-namespace processes, the lab's
// namespaces (killing what runs inside), its veth, and the state
// directory. Labs with the prefix that no state records (an Up killed
// before it could write one) are listed, and removed with All. It is safe
// to run at any point, more than once; when something could not be
// removed, the state stays so that the next Down tries again.
func Down(ctx context.Context, o Options) error {
	unlock, err := acquire(&o)
	if err != nil {
		return err
	}
	defer unlock()
	return down(ctx, o, false)
}

// down is Down under the lock; keepLock leaves the state directory and its
// lock in place for an Up that goes on.
func down(ctx context.Context, o Options, keepLock bool) error {
	st, err := LoadState(o.StateDir)
	var errs []error
	var ids []string
	switch {
	case err == nil:
		for _, n := range []string{"controller", "control-plane"} {
			if p, ok := st.Procs[n]; ok && p.Host == "" {
				if err := p.stop(10 * time.Second); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", n, err))
				}
			}
		}
		if st.ID != "" {
			ids = append(ids, st.ID)
		}
	case errors.Is(err, os.ErrNotExist):
	default: // a corrupt state file: its lab is listed with the unrecorded ones
		fmt.Fprintf(o.Out, "ignoring %v\n", err)
		st = &State{}
	}
	others, err := seed.List(o.Prefix)
	if err != nil {
		return err
	}
	// A lab whose namespaces are gone may still have nodes: containers
	// live in namespaces of their own.
	for _, id := range nodeLabs(o.Prefix) {
		if !slices.Contains(others, id) {
			others = append(others, id)
		}
	}
	others = slices.DeleteFunc(others, func(id string) bool { return slices.Contains(ids, id) })
	if len(others) > 0 && !o.All {
		fmt.Fprintf(o.Out, "labs no state records (an interrupted up, or another state directory): %s\n"+
			"  `bgplb lab down --all` removes them too\n", strings.Join(others, ", "))
	}
	if o.All {
		ids = append(ids, others...)
		// The control plane names its lab's ID; the controller only its kubeconfig.
		needles := append(slices.Clone(others), "controller --kubeconfig "+filepath.Join(o.StateDir, "kubeconfig"))
		for _, pid := range strays(needles) {
			if err := proc.RefOf(pid).Stop(5 * time.Second); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, id := range ids {
		// The nodes first, whether or not the lab's namespaces still
		// exist: their containers and mounts outlive them.
		if err := removeNodes(ctx, o.Out, id); err != nil {
			errs = append(errs, fmt.Errorf("removing lab %s's nodes: %w", id, err))
			continue
		}
		s, err := seed.Open(id)
		if errors.Is(err, os.ErrNotExist) {
			continue // already gone
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("lab %s: %w", id, err))
			continue
		}
		fmt.Fprintf(o.Out, "removing lab %s\n", id)
		if err := s.Close(); err != nil {
			errs = append(errs, fmt.Errorf("removing lab %s: %w", id, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w\nthe state in %s is kept: run `bgplb lab down` again; `ip netns list` shows what is left",
			errors.Join(errs...), o.StateDir)
	}
	if st == nil && len(ids) == 0 {
		fmt.Fprintln(o.Out, "no lab to remove")
	}
	return removeStateDir(o.StateDir, keepLock)
}

// checkStateDir refuses a directory that is not a lab's state directory
// (a mistyped --state): one that holds anything but what Up writes while
// it has no state.json. A missing or empty directory is fine.
func checkStateDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Name() == stateFile {
			return nil
		}
	}
	for _, e := range ents {
		if e.Name() != lockFile && e.Name() != stateFile+".tmp" {
			return fmt.Errorf("%s holds %s but no %s: not a lab's state directory, leaving it alone", dir, e.Name(), stateFile)
		}
	}
	return nil
}

// removeStateDir removes the state directory, which checkStateDir passed;
// keepLock keeps the directory and its lock file for an Up that goes on.
func removeStateDir(dir string, keepLock bool) error {
	if err := checkStateDir(dir); err != nil {
		return err
	}
	if !keepLock {
		return os.RemoveAll(dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Name() != lockFile {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// strays lists the processes whose command line holds any of needles:
// what an Up that left no state started in the root namespace.
func strays(needles []string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cl := string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		if slices.ContainsFunc(needles, func(n string) bool { return strings.Contains(cl, n) }) {
			pids = append(pids, pid)
		}
	}
	return pids
}
