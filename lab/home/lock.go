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

// lock takes the state directory's lock, creating the directory, without
// waiting: a second command fails at once, naming the holder. The lock
// goes with the returned function (or with the process).
func lock(stateDir string) (unlock func(), err error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(stateDir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
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
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}
