package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// NetnsDir is where `ip netns` keeps the bind mounts that name namespaces.
const NetnsDir = "/run/netns"

// ErrNotRoot is returned when an operation needs root and the process is not.
var ErrNotRoot = errors.New("lab: needs root (network namespaces)")

// ErrNotInstalled is returned (wrapped) when a program the lab needs is
// missing: iproute2, or a daemon.
var ErrNotInstalled = errors.New("not installed")

// Preflight reports why this process cannot build namespaces, or nil.
// Tests skip on its error; `bgplb lab` prints it.
func Preflight() error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("lab: iproute2 `ip` %w: %w", ErrNotInstalled, err)
	}
	return nil
}

// Netns is one named network namespace created with `ip netns add`, so that
// the iproute2 tools (`ip -n NAME`, `ip netns exec NAME`) and a later process
// (`bgplb lab down`) can find it by name.
//
// A Netns is safe for concurrent use. Close kills every process inside it,
// including ones another process started, and removes it.
type Netns struct {
	// Name is the name under /run/netns.
	Name string
	// Dir is this namespace's scratch directory: the output of processes
	// started with Start, daemons' configs and control sockets. Close removes
	// it unless KeepDir is set.
	Dir     string
	KeepDir bool

	mu     sync.Mutex // guards procs and closed
	procs  []*Proc
	closed bool
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// UniqueSuffix returns 6 random hex digits: short enough to keep derived
// interface names under the kernel's 15-character limit, random enough that
// overlapping test runs never pick the same name.
func UniqueSuffix() string {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on Linux; the pid keeps names unique anyway.
		return fmt.Sprintf("%06x", os.Getpid()&0xffffff)
	}
	return hex.EncodeToString(b[:])
}

// NewNetns creates a namespace named prefix + "-" + a random suffix, with
// loopback up and IPv6 duplicate address detection off (DAD would leave
// fresh addresses "tentative" for a second or more, and tests would race it).
func NewNetns(ctx context.Context, prefix string) (*Netns, error) {
	return CreateNetns(ctx, prefix+"-"+UniqueSuffix())
}

// CreateNetns creates a namespace with exactly this name; it fails if the
// name is taken. Prefer NewNetns in tests.
func CreateNetns(ctx context.Context, name string) (*Netns, error) {
	if err := Preflight(); err != nil {
		return nil, err
	}
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("lab: invalid namespace name %q", name)
	}
	if _, err := runCmd(ctx, "ip", "netns", "add", name); err != nil {
		return nil, err
	}
	n := &Netns{Name: name}
	if err := n.init(ctx); err != nil {
		return nil, errors.Join(err, n.Close())
	}
	return n, nil
}

func (n *Netns) init(ctx context.Context) error {
	// A crashed run may have left a directory under this (random) name.
	if err := os.RemoveAll(ScratchDir(n.Name)); err != nil {
		return fmt.Errorf("lab: scratch dir for %s: %w", n.Name, err)
	}
	dir, err := scratchDir(n.Name)
	if err != nil {
		return err
	}
	n.Dir = dir
	if err := n.IP(ctx, "link", "set", "dev", "lo", "up"); err != nil {
		return err
	}
	// "all" alone does not cover interfaces created later; "default" does.
	return n.SetSysctls(ctx, map[string]string{
		"net/ipv6/conf/all/accept_dad":     "0",
		"net/ipv6/conf/default/accept_dad": "0",
		"net/ipv6/conf/all/dad_transmits":  "0",
		"net/ipv6/conf/default/accept_ra":  "0",
		"net/ipv6/conf/default/autoconf":   "0",
	})
}

// OpenNetns attaches to an existing namespace, e.g. one a previous
// `bgplb lab up` created, with the same scratch directory.
func OpenNetns(name string) (*Netns, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("lab: invalid namespace name %q", name)
	}
	if _, err := os.Stat(filepath.Join(NetnsDir, name)); err != nil {
		return nil, fmt.Errorf("lab: namespace %s: %w", name, err)
	}
	dir, err := scratchDir(name)
	if err != nil {
		return nil, err
	}
	return &Netns{Name: name, Dir: dir}, nil
}

// ScratchDir is where a namespace's files live: named after it, so that
// another process (`bgplb lab down`) finds and removes them.
func ScratchDir(name string) string { return filepath.Join(os.TempDir(), "bgplb-"+name) }

// scratchDir creates (or reuses) the scratch directory. Daemons that drop
// privileges (FRR's zebra runs as frr) keep files below it, so everyone may
// traverse it.
func scratchDir(name string) (string, error) {
	dir := ScratchDir(name)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("lab: scratch dir for %s: %w", name, err)
	}
	if st, err := os.Lstat(dir); err != nil || !st.IsDir() {
		return "", fmt.Errorf("lab: scratch dir %s is not a directory (%v)", dir, err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", fmt.Errorf("lab: scratch dir for %s: %w", name, err)
	}
	return dir, nil
}

// Path is the namespace's bind mount, which setns(2) accepts.
func (n *Netns) Path() string { return filepath.Join(NetnsDir, n.Name) }

// Command prepares a command to run inside the namespace with the
// caller's choice of stdio (`bgplb lab exec node1 -- sh`).
func (n *Netns) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Run runs a command inside the namespace and returns its combined output;
// on failure the error carries the command line and that output.
func (n *Netns) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	return runCmd(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// IP runs `ip -n NAME args...`, which needs no fork into the namespace.
func (n *Netns) IP(ctx context.Context, args ...string) error {
	_, err := runCmd(ctx, "ip", append([]string{"-n", n.Name}, args...)...)
	return err
}

// IPBatch runs several `ip` commands in the namespace with one process
// (`ip -n NAME -batch -`); each ip run costs ~20 ms here, which adds up
// when building a lab. It stops at the first failing command and reports
// its line.
func (n *Netns) IPBatch(ctx context.Context, cmds ...[]string) error {
	var in strings.Builder
	for _, c := range cmds {
		for i, a := range c {
			if strings.ContainsAny(a, " \t\n\"'\\") {
				return fmt.Errorf("lab: ip batch argument %q needs quoting", a)
			}
			if i > 0 {
				in.WriteByte(' ')
			}
			in.WriteString(a)
		}
		in.WriteByte('\n')
	}
	cmd := exec.CommandContext(ctx, "ip", "-n", n.Name, "-batch", "-")
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return &CmdError{Args: []string{"ip", "-n", n.Name, "-batch", "<<", strings.ReplaceAll(strings.TrimSpace(in.String()), "\n", "; ")}, Output: out, Err: err}
	}
	return nil
}

// IPOutput is IP returning the output.
func (n *Netns) IPOutput(ctx context.Context, args ...string) ([]byte, error) {
	return runCmd(ctx, "ip", append([]string{"-n", n.Name}, args...)...)
}

// CmdError is a failed external command with its output.
type CmdError struct {
	Args   []string
	Output []byte
	Err    error
}

func (e *CmdError) Error() string {
	out := strings.TrimSpace(string(e.Output))
	if out == "" {
		return fmt.Sprintf("lab: %s: %v", strings.Join(e.Args, " "), e.Err)
	}
	return fmt.Sprintf("lab: %s: %v: %s", strings.Join(e.Args, " "), e.Err, out)
}

func (e *CmdError) Unwrap() error { return e.Err }

func runCmd(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// A child that keeps the pipe open (a daemonizing grandchild) must not
	// hang us past the context.
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		return out.Bytes(), &CmdError{Args: append([]string{name}, args...), Output: out.Bytes(), Err: err}
	}
	return out.Bytes(), nil
}

// Do runs fn on an OS thread switched into the namespace, so sockets and
// netlink handles fn opens belong to it (they stay there after Do returns).
// Goroutines fn starts do NOT inherit the namespace: they may run on any
// thread. The caller's thread is never touched; if the thread cannot be
// switched back it is thrown away rather than returned to the scheduler.
// A panic in fn is re-raised in the caller.
func (n *Netns) Do(fn func() error) error {
	target, err := os.Open(n.Path())
	if err != nil {
		return fmt.Errorf("lab: open namespace %s: %w", n.Name, err)
	}
	defer target.Close()
	type result struct {
		err   error
		panic any
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("lab: open current namespace: %w", err)}
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("lab: setns %s: %w", n.Name, err)}
			return
		}
		var r result
		func() {
			defer func() { r.panic = recover() }()
			r.err = fn()
		}()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Still locked: the runtime ends this thread when we return.
			r.err = errors.Join(r.err, fmt.Errorf("lab: restore namespace: %w", err))
			done <- r
			return
		}
		runtime.UnlockOSThread()
		done <- r
	}()
	r := <-done
	if r.panic != nil {
		panic(r.panic)
	}
	return r.err
}

// SetSysctls writes sysctls (keys as paths under /proc/sys, "net/ipv4/ip_forward")
// inside the namespace; /proc/sys/net shows the namespace of the thread
// that opens it.
func (n *Netns) SetSysctls(ctx context.Context, kv map[string]string) error {
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	slices.Sort(keys) // deterministic order; "all" before "default" etc.
	return n.Do(func() error {
		for _, k := range keys {
			if err := ctx.Err(); err != nil {
				return err
			}
			p := sysctlPath(k)
			if err := os.WriteFile(p, []byte(kv[k]), 0o644); err != nil {
				return fmt.Errorf("lab: sysctl %s=%s in %s: %w", k, kv[k], n.Name, err)
			}
		}
		return nil
	})
}

// Sysctl reads one sysctl inside the namespace.
func (n *Netns) Sysctl(key string) (string, error) {
	var v []byte
	err := n.Do(func() error {
		var err error
		v, err = os.ReadFile(sysctlPath(key))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("lab: sysctl %s in %s: %w", key, n.Name, err)
	}
	return strings.TrimSpace(string(v)), nil
}

// sysctlPath accepts "net.ipv4.ip_forward" and "net/ipv4/conf/eth0.100/...":
// dots are separators only when there is no slash, as with sysctl(8).
func sysctlPath(key string) string {
	if !strings.Contains(key, "/") {
		key = strings.ReplaceAll(key, ".", "/")
	}
	return filepath.Join("/proc/sys", filepath.Clean("/"+key))
}

// EnableForwarding turns on IPv4 and/or IPv6 forwarding, as a router needs.
func (n *Netns) EnableForwarding(ctx context.Context, v4, v6 bool) error {
	kv := map[string]string{}
	if v4 {
		kv["net/ipv4/ip_forward"] = "1"
	}
	if v6 {
		kv["net/ipv6/conf/all/forwarding"] = "1"
	}
	return n.SetSysctls(ctx, kv)
}

// Pids lists the processes whose network namespace is this one, whoever
// started them, as `ip netns pids` does: by comparing each process's
// /proc/PID/ns/net with the namespace's bind mount.
func (n *Netns) Pids(ctx context.Context) ([]int, error) {
	var target unix.Stat_t
	if err := unix.Stat(n.Path(), &target); err != nil {
		return nil, fmt.Errorf("lab: namespace %s: %w", n.Name, err)
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("lab: list processes: %w", err)
	}
	var pids []int
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		var st unix.Stat_t
		// Processes come and go, and kernel threads have no namespace link.
		if unix.Stat(filepath.Join("/proc", e.Name(), "ns", "net"), &st) != nil {
			continue
		}
		if st.Dev == target.Dev && st.Ino == target.Ino {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// Close stops the processes started with Start (SIGTERM, then SIGKILL),
// kills any other process left in the namespace, and deletes it. Deleting
// the namespace destroys its interfaces, and with them the far ends of its
// veth pairs. Close is idempotent.
func (n *Netns) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	procs := n.procs
	n.procs = nil
	n.mu.Unlock()

	var errs []error
	for _, p := range procs {
		if err := p.Stop(); err != nil && !errors.Is(err, ErrExited) {
			errs = append(errs, err)
		}
	}
	// A fresh context: Close runs in cleanups after the test's context ended.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// It may be gone already: `bgplb lab down` from another process.
	if _, err := os.Stat(n.Path()); err == nil {
		errs = append(errs, n.killAll(ctx))
		if _, err := runCmd(ctx, "ip", "netns", "del", n.Name); err != nil {
			errs = append(errs, err)
		}
	}
	if n.Dir != "" && !n.KeepDir {
		errs = append(errs, os.RemoveAll(n.Dir))
	}
	return errors.Join(errs...)
}

// killAll SIGKILLs whatever is still inside and waits until it is gone, so
// that `ip netns del` really frees the namespace.
func (n *Netns) killAll(ctx context.Context) error {
	self := os.Getpid()
	for {
		pids, err := n.Pids(ctx)
		if err != nil {
			return err
		}
		pids = slices.DeleteFunc(pids, func(p int) bool { return p == self })
		if len(pids) == 0 {
			return nil
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL) // may be gone already
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("lab: processes %v survive in %s: %w", pids, n.Name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ListNetns returns the names of existing namespaces that start with prefix.
func ListNetns(prefix string) ([]string, error) {
	ents, err := os.ReadDir(NetnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lab: list namespaces: %w", err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}
