package proc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLastLines(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb\nc", 2, "b\nc"},
		{"a\nb\nc\n", 5, "a\nb\nc"},
		{"", 3, ""},
		{"one", 1, "one"},
	}
	for _, tt := range tests {
		if got := lastLines([]byte(tt.in), tt.n); got != tt.want {
			t.Errorf("lastLines(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

// A process that ignores SIGTERM is killed after the stop timeout, its
// output is in its log, and a second Stop says it had exited.
func TestStartStop(t *testing.T) {
	dir := t.TempDir()
	p, err := Start(Options{LogDir: dir, StopTimeout: 100 * time.Millisecond, Env: []string{"PROC_TEST=hello"}},
		"sh", "-c", `trap "" TERM; echo "$PROC_TEST"; while :; do sleep 0.05; done`)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop() })
	if p.Label != "sh" || !strings.HasPrefix(p.LogPath, filepath.Join(dir, "sh-")) || p.Args[0] != "sh" {
		t.Errorf("label %q, log %q, args %q", p.Label, p.LogPath, p.Args)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for p.Tail(1) != "hello" {
		select {
		case <-ctx.Done():
			t.Fatalf("log says %q, want hello", p.Logs())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if exited, err := p.Exited(); !exited || err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("after Stop: exited %v, %v; want killed", exited, err)
	}
	if err := p.Stop(); !errors.Is(err, ErrExited) {
		t.Errorf("second Stop: %v, want ErrExited", err)
	}
}

// Via runs the command through another that execs it: the pid is the
// command's, and Args leave Via out.
func TestVia(t *testing.T) {
	p, err := Start(Options{Via: []string{"env", "PROC_VIA=1"}, LogPath: filepath.Join(t.TempDir(), "x.log")}, "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop() })
	if got := strings.Join(p.Args, " "); got != "sleep 30" {
		t.Errorf("Args %q, want sleep 30", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for !sleepAlive(p.PID(), "sleep\x0030\x00") {
		select {
		case <-ctx.Done():
			t.Fatalf("pid %d never became sleep 30", p.PID())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestChildDiesWithProcess proves the claim in run's comment: a child left
// running when its parent dies is killed. The test runs itself again as a
// helper that starts a child and exits without stopping it; a detached
// child survives it.
func TestChildDiesWithProcess(t *testing.T) {
	if dir := os.Getenv("PROC_HELPER_DIR"); dir != "" {
		p, err := Start(Options{LogDir: dir, Detach: os.Getenv("PROC_HELPER_DETACH") != ""}, "/bin/sleep", "60")
		if err != nil {
			fmt.Println(err)
			os.Exit(2)
		}
		fmt.Println(p.PID())
		os.Exit(0) // no Stop
	}
	for _, detach := range []bool{false, true} {
		helper := exec.Command(os.Args[0], "-test.run=^TestChildDiesWithProcess$")
		helper.Env = append(os.Environ(), "PROC_HELPER_DIR="+t.TempDir())
		if detach {
			helper.Env = append(helper.Env, "PROC_HELPER_DETACH=1")
		}
		out, err := helper.Output()
		if err != nil {
			t.Fatalf("helper: %v: %s", err, out)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil {
			t.Fatalf("helper said %q", out)
		}
		ref := RefOf(pid)
		t.Cleanup(func() { _ = ref.Stop(0) })
		if detach {
			if !sleepAlive(pid, "/bin/sleep\x0060\x00") {
				t.Error("a detached child died with its parent")
			}
			continue
		}
		for deadline := time.Now().Add(10 * time.Second); sleepAlive(pid, "/bin/sleep\x0060\x00"); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("child %d still running 10 s after its parent process exited", pid)
			}
		}
	}
}

// sleepAlive reports whether pid runs cmdline and is not a zombie.
func sleepAlive(pid int, cmdline string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || string(b) != cmdline {
		return false
	}
	_, state, err := stat(pid)
	return err == nil && state != 'Z'
}

// A Ref counts as its process only while it is the same process: not once
// it exited, not for another process given that pid.
func TestRef(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	r := RefOf(cmd.Process.Pid)
	if !r.Alive() {
		t.Fatalf("%+v: not alive", r)
	}
	other := r
	other.Start++ // the same pid, started at another time
	if other.Alive() {
		t.Error("a process with another start time counts as the recorded one")
	}
	if err := other.Stop(0); err != nil || !r.Alive() {
		t.Errorf("Stop of another start time: %v; alive %v, want untouched", err, r.Alive())
	}
	if err := r.Stop(time.Second); err != nil {
		t.Fatal(err)
	}
	if r.Alive() {
		t.Error("alive after Stop")
	}
	if gone := RefOf(r.PID); gone.Alive() {
		t.Errorf("RefOf a gone pid: %+v alive", gone)
	}
}
