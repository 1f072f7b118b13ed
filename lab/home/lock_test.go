package home

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bgplb/bgplb/internal/proc"
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

// A recorded process stops only while it is the one started (proc.Ref
// tests the rest); one that is gone stops without an error.
func TestProcStop(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	p := Proc{Ref: proc.RefOf(cmd.Process.Pid)}
	other := p
	other.Start++ // the same pid, started at another time
	if err := other.stop(0); err != nil || !p.Alive() {
		t.Fatalf("stopping another start time: %v; alive %v, want untouched", err, p.Alive())
	}
	if (Proc{Ref: proc.Ref{PID: 2}}).Alive() || (Proc{Ref: proc.Ref{PID: 1}}).Alive() {
		t.Error("a pid recorded without its start time counts as alive")
	}
	if err := p.stop(time.Second); err != nil {
		t.Fatal(err)
	}
	if p.Alive() {
		t.Error("alive after stop")
	}
	if err := p.stop(0); err != nil {
		t.Errorf("stopping a process that is gone: %v", err)
	}
}

// A process recorded by an older bgplb, without a start time, counts as
// the lab's only while its command line is a bgplb one.
func TestProcAliveWithoutStart(t *testing.T) {
	for _, tc := range []struct {
		argv0 string
		want  bool
	}{{"bgplb-controller", true}, {"sleep", false}} {
		cmd := exec.Command("bash", "-c", "exec -a "+tc.argv0+" sleep 30")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		p := Proc{Ref: proc.Ref{PID: cmd.Process.Pid}}
		var got bool
		for range 100 { // until bash has exec'd
			if got = p.Alive(); got == tc.want {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if got != tc.want {
			t.Errorf("%s recorded without a start time: alive %v, want %v", tc.argv0, got, tc.want)
		}
	}
}

// A mistyped --state never costs the directory it names; a real state
// directory goes, or keeps only its lock for an Up that goes on.
func TestRemoveStateDir(t *testing.T) {
	precious := t.TempDir()
	if err := os.WriteFile(filepath.Join(precious, "thesis.tex"), []byte("years"), 0o600); err != nil {
		t.Fatal(err)
	}
	unlock, err := lock(precious)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if err := removeStateDir(precious, false); err == nil {
		t.Error("a directory with no state.json was accepted as a state directory")
	}
	if _, err := os.Stat(filepath.Join(precious, "thesis.tex")); err != nil {
		t.Fatalf("the user's file is gone: %v", err)
	}

	state := filepath.Join(t.TempDir(), "state")
	unlock, err = lock(state)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	st := &State{dir: state}
	if err := st.save(); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(state, manifestsDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := removeStateDir(state, true); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(state); len(ents) != 1 || ents[0].Name() != lockFile {
		t.Errorf("keepLock left %v, want only %s", ents, lockFile)
	}
	if err := removeStateDir(state, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state directory left: %v", err)
	}
}
