package home

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

func TestLockExcludes(t *testing.T) {
	dir := t.TempDir() + "/state"
	unlock, err := lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lock(dir)
	if !errors.Is(err, errBusy) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second lock: %v; want errBusy naming pid %d", err, os.Getpid())
	}
	unlock()
	unlock, err = lock(dir)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock()
}

// A recorded pid counts as the lab's process only while it is the same
// process: not once it exited, not for another process given that pid.
func TestProcAlive(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	p := newProc(cmd.Process.Pid, "", "")
	if !p.Alive() {
		t.Fatalf("%+v: not alive", p)
	}
	other := p
	other.Start++ // the same pid, started at another time
	if other.Alive() {
		t.Error("a process with another start time counts as the recorded one")
	}
	if (Proc{PID: 2}).Alive() || (Proc{PID: 1}).Alive() {
		t.Error("a pid recorded without its start time counts as alive")
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if p.Alive() {
		t.Error("alive after it exited")
	}
	if err := stopPID(p, 0); err != nil {
		t.Errorf("stopping a process that is gone: %v", err)
	}
}
