// Package enginetest runs container engines (containerd, podman, dockerd)
// for tests, as root on the host but each inside `unshare`: a private
// mount namespace where the host directories the engines write to whatever
// their flags say (/run: runc and shim state, shim sockets; /var/lib:
// podman's blob-info cache; /var/tmp: podman's unpacked oci-archive;
// /etc/docker: dockerd's key.json) are the test's own empty directories,
// and a private PID namespace that --kill-child tears down whole, so no
// shim, conmon or container outlives the test even when it fails midway.
package enginetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bgplb/bgplb/lab/labtest"
)

var nameSeq atomic.Int64

// UniqueName names this run's cgroups, containerd namespace and the like:
// the PID tells concurrent test binaries apart, the sequence the tests of one.
func UniqueName(kind string) string {
	return fmt.Sprintf("bgplb-%s-%d-%d", kind, os.Getpid(), nameSeq.Add(1))
}

// Require skips without root or without the programs, except in CI,
// where hack/install-deps.sh installs them and the runner is root.
func Require(t *testing.T, bins ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		labtest.Missing(t, "container engine tests need root")
	}
	labtest.RequireBinaries(t, append([]string{"unshare", "mount"}, bins...)...)
}

func ShellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Isolated returns a command running script (with args as "$@") under sh
// in a fresh mount and PID namespace where each of binds (host directories
// that must exist) is replaced by an empty directory below root/ns.
func Isolated(ctx context.Context, t *testing.T, root string, binds []string, script string, args ...string) *exec.Cmd {
	t.Helper()
	return IsolatedIn(ctx, t, "", root, binds, script, args...)
}

// IsolatedIn is Isolated inside the network namespace at the path netns
// ("" for the caller's): joined before the binds hide /run/netns.
func IsolatedIn(ctx context.Context, t *testing.T, netns, root string, binds []string, script string, args ...string) *exec.Cmd {
	t.Helper()
	var pre strings.Builder
	for _, b := range binds {
		private := filepath.Join(root, "ns", b)
		if err := os.MkdirAll(private, 0o755); err != nil {
			t.Fatal(err)
		}
		// -n: not even /run/mount/utab of the host records the mount.
		fmt.Fprintf(&pre, "mount -n --bind %s %s && ", ShellQuote(private), ShellQuote(b))
	}
	argv := append([]string{"--mount", "--propagation", "private", "--pid", "--fork",
		"--kill-child", "--mount-proc", "--", "sh", "-c", pre.String() + script, "sh"}, args...)
	if netns == "" {
		return exec.CommandContext(ctx, "unshare", argv...)
	}
	// nsenter execs unshare in place, so the daemon's pid is unshare's.
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + netns, "unshare"}, argv...)...)
}

// Daemon is an engine started by StartDaemon; its log is root/NAME.log.
type Daemon struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	started time.Time
}

// StartDaemon starts script (see Isolated) and stops it in t.Cleanup: a
// SIGTERM to the engine (PID 1 of its namespace), then, if it lingers,
// SIGKILL to unshare, whose --kill-child ends the namespace.
func StartDaemon(t *testing.T, name, root string, binds []string, script string, args ...string) *Daemon {
	t.Helper()
	return StartDaemonIn(t, "", name, root, binds, script, args...)
}

// StartDaemonIn is StartDaemon inside the network namespace at the path
// netns (see IsolatedIn).
func StartDaemonIn(t *testing.T, netns, name, root string, binds []string, script string, args ...string) *Daemon {
	t.Helper()
	d := &Daemon{name: name, logPath: filepath.Join(root, name+".log"), done: make(chan struct{})}
	logf, err := os.Create(d.logPath)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = IsolatedIn(context.Background(), t, netns, root, binds, script, args...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.started = time.Now()
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = d.cmd.Wait()
		logf.Close()
		close(d.done)
	}()
	t.Cleanup(func() { d.Stop(t) })
	return d
}

func (d *Daemon) Exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

func (d *Daemon) Stop(t *testing.T) {
	if d.Exited() {
		return
	}
	start := time.Now()
	pid := d.cmd.Process.Pid
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		if child, err := strconv.Atoi(f[0]); err == nil {
			_ = syscall.Kill(child, syscall.SIGTERM)
		}
	}
	select {
	case <-d.done:
		t.Logf("%s stopped in %v", d.name, time.Since(start).Round(time.Millisecond))
		return
	case <-time.After(30 * time.Second):
	}
	t.Logf("%s still running 30s after SIGTERM: killing its namespace", d.name)
	_ = d.cmd.Process.Kill()
	<-d.done
}

// WaitReady waits until probe succeeds, failing early if the engine exits.
func (d *Daemon) WaitReady(t *testing.T, timeout time.Duration, probe func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := probe()
		if err == nil {
			t.Logf("%s ready in %v", d.name, time.Since(d.started).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %v: %v\n%s", d.name, timeout, err, d.LogTail())
		}
		select {
		case <-d.done:
			t.Fatalf("%s exited (%v)\n%s", d.name, d.cmd.ProcessState, d.LogTail())
		case <-tick.C:
		}
	}
}

func (d *Daemon) LogTail() string {
	b, _ := os.ReadFile(d.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return d.name + " log:\n" + strings.Join(lines, "\n")
}

// RemoveCgroupsAfter registers the removal of the cgroup name in every
// hierarchy (v1 controllers, the v2 root): engines create the parent of
// their containers' cgroups and leave it behind. Register it before
// starting the engine, so it runs after the engine stopped.
func RemoveCgroupsAfter(t *testing.T, name string) {
	t.Cleanup(func() {
		dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", name))
		dirs = append(dirs, filepath.Join("/sys/fs/cgroup", name))
		for _, dir := range dirs {
			if err := rmdirTree(dir); err != nil {
				t.Errorf("removing cgroup %s: %v", dir, err)
			}
		}
	})
}

// rmdirTree removes the cgroup directories below and at dir, deepest first
// (cgroupfs removes only empty directories, with rmdir).
func rmdirTree(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: %w", dirs[i], err)
		}
	}
	return nil
}

// RunCmd runs cmd, returning its stdout and, on failure, an error with both
// outputs and how long it took.
func RunCmd(cmd *exec.Cmd) (string, time.Duration, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err != nil {
		return stdout.String(), took, fmt.Errorf("%s: %w\nstdout: %s\nstderr: %s",
			strings.Join(cmd.Args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), took, nil
}
