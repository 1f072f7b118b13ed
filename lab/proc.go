package lab

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bgplb/bgplb/internal/proc"
)

// The lab's processes are package proc's; these names keep the lab's API.
type (
	// Proc is a long-running process inside a namespace.
	Proc = proc.Proc
	// StartOptions tunes Netns.StartWith. Via is the namespace's, and the
	// log goes to the namespace's directory unless LogPath says otherwise.
	StartOptions = proc.Options
)

// ErrExited is returned by Proc.Stop when the process had already ended on
// its own (a crashed daemon), wrapped together with its exit status.
var ErrExited = proc.ErrExited

// DefaultStopTimeout is how long Stop waits after SIGTERM before SIGKILL.
const DefaultStopTimeout = proc.DefaultStopTimeout

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
	opt.Via = []string{"ip", "netns", "exec", n.Name}
	if opt.LogPath == "" && opt.LogDir == "" {
		opt.LogDir = n.Dir
	}
	p, err := proc.Start(opt, name, args...)
	if err != nil {
		return nil, fmt.Errorf("lab: in %s: %w", n.Name, err)
	}
	// `ip netns exec` switches namespace just after the fork; until then
	// Pids (and Close) would not see the process.
	if err := n.waitEntered(ctx, p); err != nil {
		_ = p.Stop()
		return nil, fmt.Errorf("lab: start %s in %s: %w", p.Label, n.Name, err)
	}
	n.mu.Lock()
	closed = n.closed
	if !closed {
		n.procs = append(n.procs, p)
	}
	n.mu.Unlock()
	if closed { // Close ran meanwhile and would not know to stop it
		_ = p.Stop()
		return nil, fmt.Errorf("lab: start %s: namespace %s closed", p.Label, n.Name)
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
	nsLink := fmt.Sprintf("/proc/%d/ns/net", p.PID())
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

// Procs returns the processes started in the namespace, for failure reports.
func (n *Netns) Procs() []*Proc {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*Proc(nil), n.procs...)
}
