package kubetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// TB is the part of testing.TB that Start and Shared use. *testing.T and
// *testing.B satisfy it; the package declares it instead of importing
// "testing" so that the bgplb binary, which uses Run, does not link that.
type TB interface {
	Helper()
	Name() string
	Cleanup(func())
	Failed() bool
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
}

// cleanupTimeout bounds the cleanups registered here: they must end even
// when the API server hangs.
const cleanupTimeout = time.Minute

// Start runs a control plane for one test and stops it when the test ends,
// printing the processes' last log lines first if the test failed. Without
// binaries it skips the test, except in CI (CI set), where hack/k8sbin.sh
// must have built them and a skip would hide that it did not.
func Start(t TB, opts ...Option) *Env {
	t.Helper()
	var o Options
	for _, f := range opts {
		f(&o)
	}
	e, err := Run(context.Background(), o)
	if err != nil {
		skipOrFail(t, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kubetest: control plane logs:\n%s", e.Logs(40))
		}
		if err := e.Stop(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return e
}

// Namespace creates a namespace named after the test and deletes it with
// everything in it when the test ends.
func (e *Env) Namespace(t TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	ns, err := e.CreateNamespace(ctx, t.Name())
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := e.DeleteNamespace(ctx, ns); err != nil {
			t.Errorf("%v", err)
		}
	})
	return ns
}

func skipOrFail(t TB, err error) {
	t.Helper()
	if errors.Is(err, ErrNoBinaries) && os.Getenv("CI") == "" {
		t.Skipf("skipping: %v", err)
	}
	t.Fatalf("%v", err)
}

// Shared is one control plane for a whole test binary, started by the first
// test that asks for it, so that a package's tests pay the start-up once
// and a run of only its unit tests pays nothing. Use it from TestMain:
//
//	var controlPlane = kubetest.NewShared()
//
//	func TestMain(m *testing.M) { os.Exit(controlPlane.Main(m)) }
//
//	func TestX(t *testing.T) { env := controlPlane.Env(t); ... }
//
// Tests sharing it should keep to their own namespaces (Env.Namespace).
type Shared struct {
	opts []Option
	once sync.Once
	env  *Env
	err  error
}

// errSharedStopped is the start error of a Shared stopped before first use.
var errSharedStopped = errors.New("kubetest: shared control plane already stopped")

// NewShared returns a Shared that starts with opts.
func NewShared(opts ...Option) *Shared { return &Shared{opts: opts} }

// Env returns the running control plane, starting it on the first call.
// If it could not start, every caller skips or fails as Start does.
func (s *Shared) Env(t TB) *Env {
	t.Helper()
	s.once.Do(func() {
		var o Options
		for _, f := range s.opts {
			f(&o)
		}
		s.env, s.err = Run(context.Background(), o)
	})
	if s.err != nil {
		skipOrFail(t, s.err)
	}
	return s.env
}

// Stop stops the control plane if it was started; later Env calls fail.
func (s *Shared) Stop() error {
	s.once.Do(func() { s.err = errSharedStopped })
	if s.env == nil {
		return nil
	}
	return s.env.Stop()
}

// Main runs the tests, then stops the control plane; when a test failed it
// prints the processes' last log lines first. It returns the exit code.
func (s *Shared) Main(m interface{ Run() int }) int {
	code := m.Run()
	if code != 0 && s.env != nil {
		fmt.Fprintf(os.Stderr, "kubetest: control plane logs:\n%s", s.env.Logs(40))
	}
	if err := s.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
