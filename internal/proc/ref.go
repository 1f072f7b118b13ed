package proc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Ref names a process by pid and start time, so that a command run later
// (`bgplb lab down` after `bgplb lab up`) can check and stop a detached
// process it did not start, and never mistakes another process that the
// kernel gave the same pid for it.
type Ref struct {
	PID int `json:"pid"`
	// Start is the process's start time (/proc/PID/stat); zero when it was
	// not recorded, and then only the pid identifies the process.
	Start uint64 `json:"start"`
}

// goneStart marks a process that had exited when it was recorded: no
// process starts at that time.
const goneStart = ^uint64(0)

// RefOf records the running process pid. One that is already gone gets a
// start time no process has, so it is never Alive.
func RefOf(pid int) Ref {
	start, _, err := stat(pid)
	if err != nil {
		start = goneStart
	}
	return Ref{PID: pid, Start: start}
}

// Alive reports whether the process runs, is no zombie, and (when the
// start time was recorded) is the one recorded.
func (r Ref) Alive() bool {
	if r.PID <= 0 || syscall.Kill(r.PID, 0) != nil {
		return false
	}
	start, state, err := stat(r.PID)
	if err != nil || state == 'Z' {
		return false
	}
	return r.Start == 0 || start == r.Start
}

// Stop stops the process if it is still the one recorded: SIGTERM to it
// and to its group, then SIGKILL after grace. It fails if the process
// outlives both. It polls, as a process that is not our child cannot be
// waited for.
func (r Ref) Stop(grace time.Duration) error {
	if !r.Alive() {
		return nil
	}
	_ = syscall.Kill(-r.PID, syscall.SIGTERM)
	_ = syscall.Kill(r.PID, syscall.SIGTERM)
	if r.waitGone(grace) {
		return nil
	}
	_ = syscall.Kill(-r.PID, syscall.SIGKILL)
	_ = syscall.Kill(r.PID, syscall.SIGKILL)
	if r.waitGone(2 * time.Second) {
		return nil
	}
	return fmt.Errorf("process %d survives SIGKILL", r.PID)
}

func (r Ref) waitGone(limit time.Duration) bool {
	for deadline := time.Now().Add(limit); ; time.Sleep(20 * time.Millisecond) {
		if !r.Alive() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// stat reads a process's start time (clock ticks after boot, field 22 of
// /proc/PID/stat) and its state letter.
func stat(pid int) (start uint64, state byte, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name may hold spaces and parens: fields start after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	start, err = strconv.ParseUint(f[19], 10, 64) // field 22 overall
	return start, f[0][0], err
}
