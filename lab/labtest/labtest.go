// Package labtest wires package lab into tests: it skips when the machine
// cannot run namespaces, registers cleanups, and prints the logs of every
// process a failed test started. It is kept apart from lab so that the
// bgplb binary does not link the testing package.
package labtest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bgplb/bgplb/lab"
)

// Require skips the test unless it runs as root with iproute2. Namespace
// tests skip on a developer's laptop; CI runs them as root.
func Require(t testing.TB) {
	t.Helper()
	if err := lab.Preflight(); err != nil {
		t.Skipf("skipping namespace test: %v (run as root on Linux with iproute2)", err)
	}
}

// RequireBinaries skips the test when a program is missing, except in CI
// (CI set), where hack/install-deps.sh must have installed it and a skip
// would hide that it did not.
func RequireBinaries(t testing.TB, names ...string) {
	t.Helper()
	var missing []string
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			if _, err := os.Stat(n); err != nil {
				missing = append(missing, n)
			}
		}
	}
	if len(missing) == 0 {
		return
	}
	Missing(t, "%s not installed (run hack/install-deps.sh)", strings.Join(missing, ", "))
}

// Missing ends a test that lacks something it needs: a skip on a
// developer's machine, a failure in CI (CI set), where hack/install-deps.sh
// and the root runner must have provided it and a skip would hide that.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("missing in CI: "+format, args...)
	}
	t.Skipf("skipping: "+format, args...)
}

// SkipIfNotInstalled turns a launcher's ErrNotInstalled into a skip (a
// failure in CI), and any other error into a failure.
func SkipIfNotInstalled(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, lab.ErrNotInstalled) {
		Missing(t, "%v (run hack/install-deps.sh)", err)
	}
	t.Fatal(err)
}

// Context returns a context that ends a little before the test's deadline
// (or after limit, whichever is first), leaving time for cleanups and for
// the failure message to say what was awaited.
func Context(t testing.TB, limit time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if dl, ok := d.Deadline(); ok {
			ctx2, cancel2 := context.WithDeadline(ctx, dl.Add(-5*time.Second))
			t.Cleanup(cancel2)
			ctx = ctx2
		}
	}
	t.Cleanup(cancel)
	return ctx
}

// Netns creates a namespace removed when the test ends; if the test
// failed, the logs of the processes started in it are printed first.
func Netns(t testing.TB, prefix string) *lab.Netns {
	t.Helper()
	Require(t)
	ns, err := lab.NewNetns(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, ns)
	return ns
}

// LAN creates a lab with one LAN of the given hosts, removed when the test
// ends, with logs printed on failure.
func LAN(t testing.TB, hosts ...lab.HostSpec) (*lab.Lab, *lab.LAN) {
	t.Helper()
	Require(t)
	l, lan, err := lab.NewLAN(context.Background(), "bl", hosts...)
	if l != nil {
		t.Cleanup(func() {
			for _, h := range l.Hosts() {
				dumpLogs(t, l.Host(h))
			}
			if err := l.Close(); err != nil {
				t.Errorf("lab cleanup: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	return l, lan
}

func cleanup(t testing.TB, ns *lab.Netns) {
	t.Cleanup(func() {
		dumpLogs(t, ns)
		if err := ns.Close(); err != nil {
			t.Errorf("namespace cleanup: %v", err)
		}
	})
}

func dumpLogs(t testing.TB, ns *lab.Netns) {
	if ns == nil || !t.Failed() {
		return
	}
	for _, p := range ns.Procs() {
		t.Logf("=== log of %s in %s ===\n%s", p, ns.Name, p.Logs())
	}
}
