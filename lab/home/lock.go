package home

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockFile is the state directory's lock: the commands that change the lab
// (up, down, move, fail, heal, restart) hold it, so that two of them never
// build or tear down the same lab at once.
const lockFile = "lock"

// errBusy is returned when another command holds the lock.
var errBusy = errors.New("another `bgplb lab` command is working on this lab")

// acquire readies a command that changes the lab: defaults, the
// machine's preflight, a state directory that is a lab's, and its lock.
func acquire(o *Options) (unlock func(), err error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if err := Preflight(); err != nil {
		return nil, err
	}
	if err := checkStateDir(o.StateDir); err != nil {
		return nil, err
	}
	return lock(o.StateDir)
}

// lock takes the state directory's lock, creating the directory, without
// waiting: a second command fails at once, naming the holder. The lock
// goes with the returned function (or with the process).
func lock(stateDir string) (unlock func(), err error) {
	// Down removes the lock file with the directory while holding it; a
	// command that opened the old file meanwhile would lock a file nobody
	// else sees. So the lock counts only on the file the path still names.
	for range 10 {
		f, err := tryLock(stateDir)
		if err != nil || f != nil {
			if f == nil {
				return nil, err
			}
			return func() { f.Close() }, nil
		}
	}
	return nil, fmt.Errorf("locking %s: its lock file keeps being replaced", stateDir)
}

// tryLock locks the lock file once; (nil, nil) means the file was removed
// or replaced while it was being locked, and the caller tries again.
func tryLock(stateDir string) (*os.File, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	path := filepath.Join(stateDir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := io.ReadAll(f)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (pid %s, state %s): wait for it to finish, or stop it",
				errBusy, strings.TrimSpace(string(holder)), stateDir)
		}
		return nil, fmt.Errorf("locking %s: %w", stateDir, err)
	}
	held, err1 := f.Stat()
	named, err2 := os.Stat(path)
	if err1 != nil || err2 != nil || !os.SameFile(held, named) {
		f.Close()
		return nil, nil
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}
