package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrExited is returned by Proc.Stop when the process had already ended on
// its own (a crashed daemon), wrapped together with its exit status.
var ErrExited = errors.New("lab: process had already exited")

// DefaultStopTimeout is how long Stop waits after SIGTERM before SIGKILL.
const DefaultStopTimeout = 5 * time.Second

// StartOptions tunes Netns.StartWith.
type StartOptions struct {
	// Label names the log file and appears in errors; default: the command's base name.
	Label string
	// Env is appended to the current environment.
	Env []string
	// Dir is the working directory.
	Dir string
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL;
	// default DefaultStopTimeout.
	StopTimeout time.Duration
	// Detach lets the process outlive this one (`bgplb lab up`): a new
	// session and no parent-death signal. Otherwise the process gets SIGKILL
	// if this process dies without cleaning up (a test binary killed on
	// timeout), so no daemon outlives a crashed test.
	Detach bool
}

// Proc is a long-running process inside a namespace. Its stdout and stderr
// go to LogPath, so they survive for failure reports.
type Proc struct {
	Label   string
	LogPath string
	Args    []string

	pid         int
	pgid        int
	stopTimeout time.Duration
	done        chan struct{} // closed when the process has been reaped
	err         error         // exit status, readable after done
}

// Start starts a long-running process inside the namespace. ctx bounds only
// the start itself: the process runs until Stop, or Close of the namespace.
func (n *Netns) Start(ctx context.Context, name string, args ...string) (*Proc, error) {
	return n.StartWith(ctx, StartOptions{}, name, args...)
}

// StartWith is Start with options.
func (n *Netns) StartWith(ctx context.Context, opt StartOptions, name string, args ...string) (*Proc, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n.mu.Lock()
	closed := n.closed
	n.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("lab: start %s in closed namespace %s", name, n.Name)
	}
	label := opt.Label
	if label == "" {
		label = filepath.Base(name)
	}
	logf, err := os.CreateTemp(n.Dir, label+"-*.log")
	if err != nil {
		return nil, fmt.Errorf("lab: log file for %s: %w", label, err)
	}
	defer logf.Close() // the child holds its own descriptor

	argv := append([]string{"ip", "netns", "exec", n.Name, name}, args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = opt.Dir
	if len(opt.Env) > 0 {
		cmd.Env = append(os.Environ(), opt.Env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if opt.Detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	p := &Proc{Label: label, LogPath: logf.Name(), Args: argv[4:], done: make(chan struct{}), stopTimeout: opt.StopTimeout}
	if p.stopTimeout <= 0 {
		p.stopTimeout = DefaultStopTimeout
	}
	started := make(chan error, 1)
	go p.run(cmd, started)
	if err := <-started; err != nil {
		return nil, fmt.Errorf("lab: start %s in %s: %w", label, n.Name, err)
	}
	// `ip netns exec` switches namespace just after the fork; until then
	// Pids (and Close) would not see the process.
	if err := n.waitEntered(ctx, p); err != nil {
		_ = p.Stop()
		return nil, fmt.Errorf("lab: start %s in %s: %w", label, n.Name, err)
	}
	n.mu.Lock()
	closed = n.closed
	if !closed {
		n.procs = append(n.procs, p)
	}
	n.mu.Unlock()
	if closed { // Close ran meanwhile and would not know to stop it
		_ = p.Stop()
		return nil, fmt.Errorf("lab: start %s: namespace %s closed", label, n.Name)
	}
	return p, nil
}

// waitEntered waits until the process is inside the namespace, or has
// ended (its exit status then tells what went wrong).
func (n *Netns) waitEntered(ctx context.Context, p *Proc) error {
	var target unix.Stat_t
	if err := unix.Stat(n.Path(), &target); err != nil {
		return err
	}
	nsLink := fmt.Sprintf("/proc/%d/ns/net", p.pid)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return Poll(ctx, time.Millisecond, func() (bool, error) {
		if exited, _ := p.Exited(); exited {
			return true, nil
		}
		var st unix.Stat_t
		if err := unix.Stat(nsLink, &st); err != nil {
			return false, err
		}
		return st.Dev == target.Dev && st.Ino == target.Ino, nil
	})
}

// run owns the child from start to reaping. The parent-death signal fires
// when the thread that forked the child ends, so that thread stays locked to
// this goroutine, which lives exactly as long as the child.
func (p *Proc) run(cmd *exec.Cmd, started chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		started <- err
		close(p.done)
		return
	}
	p.pid = cmd.Process.Pid
	p.pgid = p.pid // Setpgid/Setsid make the child its group's leader
	started <- nil
	p.err = cmd.Wait()
	close(p.done)
}

// PID is the process id (the daemon itself: `ip netns exec` execs it).
func (p *Proc) PID() int { return p.pid }

// Done is closed once the process has ended.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has ended, and its status.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Signal sends sig to the process group: daemons' helpers go with them.
func (p *Proc) Signal(sig syscall.Signal) error {
	if exited, _ := p.Exited(); exited {
		return ErrExited
	}
	if err := syscall.Kill(-p.pgid, sig); err != nil {
		return fmt.Errorf("lab: signal %s: %w", p.Label, err)
	}
	return nil
}

// Stop sends SIGTERM, waits up to the stop timeout, then SIGKILLs the group.
// It returns an error wrapping ErrExited if the process had ended before.
func (p *Proc) Stop() error {
	if exited, err := p.Exited(); exited {
		return fmt.Errorf("%w: %s: %v", ErrExited, p.Label, err)
	}
	_ = p.Signal(syscall.SIGTERM) // it may exit between the check and here
	select {
	case <-p.done:
	case <-time.After(p.stopTimeout):
		_ = syscall.Kill(-p.pgid, syscall.SIGKILL)
		<-p.done
	}
	// Helpers that left the group are still in the namespace; Netns.Close
	// catches them. Kill the group's stragglers now.
	_ = syscall.Kill(-p.pgid, syscall.SIGKILL)
	return nil
}

// Wait waits until the process ends or ctx is done.
func (p *Proc) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// maxLogTail bounds what Logs returns, to keep failure output readable.
const maxLogTail = 64 << 10

// Logs returns the process output (its last 64 KiB).
func (p *Proc) Logs() string {
	f, err := os.Open(p.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > maxLogTail {
		if _, err := f.Seek(st.Size()-maxLogTail, io.SeekStart); err != nil {
			return fmt.Sprintf("(log: %v)", err)
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(log: %v)", err)
	}
	return string(b)
}

// String describes the process for messages.
func (p *Proc) String() string {
	return fmt.Sprintf("%s (pid %d): %s", p.Label, p.pid, strings.Join(p.Args, " "))
}

// Procs returns the processes started in the namespace, for failure reports.
func (n *Netns) Procs() []*Proc {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*Proc(nil), n.procs...)
}
