// Package proc supervises the child processes bgplb and its tests start:
// the lab's daemons in network namespaces, the control plane's etcd and
// kube-apiserver, and the detached processes of `bgplb lab up`. It is the
// one place that knows how a child is started so that it cannot outlive a
// crashed parent (or, detached, so that it does), how it is stopped with
// its helpers, and how its output is kept for a failure report.
//
// Proc is a child of this process. Ref names a process by pid and start
// time, for a detached one that a later bgplb command must find again.
package proc

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
)

// ErrExited is returned by Proc.Stop when the process had already ended on
// its own (a crashed daemon), wrapped together with its exit status.
var ErrExited = errors.New("process had already exited")

// DefaultStopTimeout is how long Stop waits after SIGTERM before SIGKILL.
const DefaultStopTimeout = 5 * time.Second

// Options tune Start.
type Options struct {
	// Label names the log file and appears in errors; default: the
	// command's base name.
	Label string
	// Env is appended to the current environment.
	Env []string
	// Dir is the working directory.
	Dir string
	// Via is a command the process is run through, which execs it in a
	// changed context: `ip netns exec NAME`. PID is then the process
	// itself, and Args leave Via out.
	Via []string
	// LogPath is the file stdout and stderr go to, created or truncated.
	// Empty means a new file <Label>-*.log in LogDir.
	LogPath string
	// LogDir is where a log file is made when LogPath is empty; empty means
	// os.TempDir().
	LogDir string
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL;
	// default DefaultStopTimeout.
	StopTimeout time.Duration
	// Detach lets the process outlive this one (`bgplb lab up`): a new
	// session and no parent-death signal. Otherwise the process is the
	// leader of a new process group and gets SIGKILL if this process dies
	// without cleaning up (a test binary killed on timeout), so no child
	// outlives a crash.
	Detach bool
}

// Proc is a running child. Its stdout and stderr go to LogPath, so they
// survive for failure reports.
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

// Start starts name with args. It returns once the process runs; it ends
// on Stop, on its own, or (unless detached) when this process dies.
func Start(opt Options, name string, args ...string) (*Proc, error) {
	label := opt.Label
	if label == "" {
		label = filepath.Base(name)
	}
	logf, err := openLog(opt, label)
	if err != nil {
		return nil, fmt.Errorf("proc: log file for %s: %w", label, err)
	}
	defer logf.Close() // the child holds its own descriptor

	argv := append(append(append([]string(nil), opt.Via...), name), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = opt.Dir
	if len(opt.Env) > 0 {
		cmd.Env = append(os.Environ(), opt.Env...)
	}
	if opt.Detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	}
	p := &Proc{Label: label, LogPath: logf.Name(), Args: argv[len(opt.Via):], done: make(chan struct{}), stopTimeout: opt.StopTimeout}
	if p.stopTimeout <= 0 {
		p.stopTimeout = DefaultStopTimeout
	}
	started := make(chan error, 1)
	go p.run(cmd, started)
	if err := <-started; err != nil {
		return nil, fmt.Errorf("proc: start %s: %w", label, err)
	}
	return p, nil
}

func openLog(opt Options, label string) (*os.File, error) {
	if opt.LogPath != "" {
		return os.Create(opt.LogPath)
	}
	return os.CreateTemp(opt.LogDir, label+"-*.log")
}

// run owns the child from start to reaping. Linux sends the parent-death
// signal when the *thread* that forked the child ends, not only the
// process: a thread that some goroutine locked and left locked (as
// network-namespace code does when it cannot switch back) is retired, and
// children forked on it would die with it. So the forking thread stays
// locked to this goroutine, which lives exactly as long as the child, and
// no other goroutine can run on it meanwhile.
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

// PID is the process id.
func (p *Proc) PID() int { return p.pid }

// Ref names the process for a later command (see Ref).
func (p *Proc) Ref() Ref { return RefOf(p.pid) }

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
		return fmt.Errorf("proc: signal %s: %w", p.Label, err)
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
	// Kill the group's stragglers now; helpers that left the group are the
	// caller's to find (Netns.Close looks in the namespace).
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

// Tail returns the last n lines of the process's log.
func (p *Proc) Tail(n int) string { return Tail(p.LogPath, n) }

// String describes the process for messages.
func (p *Proc) String() string {
	return fmt.Sprintf("%s (pid %d): %s", p.Label, p.pid, strings.Join(p.Args, " "))
}

// Tail returns the last n lines of the file at path, or a note saying why
// there are none, for a failure report.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log %s: %v)", path, err)
	}
	return lastLines(b, n)
}

func lastLines(b []byte, n int) string {
	s := strings.TrimRight(string(b), "\n")
	for i, cut := len(s)-1, 0; i >= 0; i-- {
		if s[i] == '\n' {
			if cut++; cut == n {
				return s[i+1:]
			}
		}
	}
	return s
}
