package kubenode

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/bgplb/bgplb/internal/proc"
	"github.com/bgplb/bgplb/lab"
)

const pollEvery = 20 * time.Millisecond

// inCgroups wraps argv so that the process writes itself into the
// daemons' cgroups before it execs (the pid stays the same): whatever it
// forks later (containerd's shims) is found and killed by Remove through
// the cgroups, even after a crash of the process that started it. If a
// write fails the daemon does not run at all: outside its cgroups nothing
// would ever find and kill it.
func inCgroups(procsFiles []string, argv []string) []string {
	script := `for f in $1; do echo $$ > "$f" || exit 1; done; shift; exec "$@"`
	files := ""
	for i, f := range procsFiles {
		if i > 0 {
			files += " "
		}
		files += f
	}
	return append([]string{"sh", "-c", script, "sh", files}, argv...)
}

// enter wraps argv to run in the node's mount namespace (that of the
// holder) and network namespace. nsenter opens both paths before it
// enters either, so /run/netns is still the machine's then.
func enter(holder int, netns string, argv ...string) []string {
	pre := []string{"nsenter", fmt.Sprintf("--mount=/proc/%d/ns/mnt", holder)}
	if netns != "" {
		pre = append(pre, "--net="+filepath.Join(lab.NetnsDir, netns))
	}
	return append(append(pre, "--"), argv...)
}

// startDetached starts argv in a session of its own, without a parent-death
// signal, its output appended to logPath: it outlives the process that
// started it (`bgplb lab up` exits, the node runs on). reap is called with
// a function that waits for it, so that while the starter lives the
// process does not linger as a zombie once killed.
func startDetached(argv []string, logPath string, reap func(wait func())) (proc.Ref, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return proc.Ref{}, fmt.Errorf("kubenode: %w", err)
	}
	defer log.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return proc.Ref{}, fmt.Errorf("kubenode: start %s: %w", argv[0], err)
	}
	ref := proc.RefOf(cmd.Process.Pid)
	reap(func() { _ = cmd.Wait() })
	return ref, nil
}

// run runs argv to completion with stdin from in and returns its output.
func run(ctx context.Context, in io.Reader, argv ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = in
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("kubenode: %v: %w: %s", argv, err, bytes.TrimSpace(out.Bytes()))
	}
	return out.Bytes(), nil
}
