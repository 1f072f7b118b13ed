// Package kubetest adapts package controlplane to tests: Start runs a
// control plane for one test, skipping when the binaries are missing
// (failing in CI) and stopping it at cleanup; Shared starts one per test
// binary on first use; Env.Namespace gives a test a namespace of its own
// and removes it with everything in it afterwards.
//
// It is test code: the bgplb binary must not link it (cmd/bgplb's
// TestBinaryLinksNoTestCode), and runs package controlplane itself.
package kubetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/bgplb/bgplb/internal/controlplane"
	"github.com/bgplb/bgplb/lab/labtest"
)

// Env is a control plane run for tests.
type Env struct {
	*controlplane.Server
}

// An Option changes the control plane's options; Start takes any number.
type Option func(*controlplane.Options)

// WithBindAddress sets controlplane.Options.BindAddress.
func WithBindAddress(a netip.Addr) Option { return func(o *controlplane.Options) { o.BindAddress = a } }

// WithAdvertiseAddress sets controlplane.Options.AdvertiseAddress.
func WithAdvertiseAddress(a netip.Addr) Option {
	return func(o *controlplane.Options) { o.AdvertiseAddress = a }
}

// WithServiceCIDRs sets controlplane.Options.ServiceCIDRs.
func WithServiceCIDRs(p ...netip.Prefix) Option {
	return func(o *controlplane.Options) { o.ServiceCIDRs = p }
}

// WithAPIServerFlags appends to controlplane.Options.APIServerFlags.
func WithAPIServerFlags(f ...string) Option {
	return func(o *controlplane.Options) { o.APIServerFlags = append(o.APIServerFlags, f...) }
}

// WithBinDir sets controlplane.Options.BinDir.
func WithBinDir(dir string) Option { return func(o *controlplane.Options) { o.BinDir = dir } }

// WithLogger sets controlplane.Options.Logger.
func WithLogger(l *slog.Logger) Option { return func(o *controlplane.Options) { o.Logger = l } }

// NewOptions applies opts to zero options.
func NewOptions(opts ...Option) controlplane.Options {
	var o controlplane.Options
	for _, f := range opts {
		f(&o)
	}
	return o
}

// cleanupTimeout bounds the cleanups registered here: they must end even
// when the API server hangs.
const cleanupTimeout = time.Minute

// Start runs a control plane for one test and stops it when the test ends,
// printing the processes' last log lines first if the test failed. Without
// binaries it skips the test, except in CI (CI set), where hack/k8sbin.sh
// must have built them and a skip would hide that it did not.
func Start(t testing.TB, opts ...Option) *Env {
	t.Helper()
	s, err := controlplane.Run(context.Background(), NewOptions(opts...))
	if err != nil {
		SkipOrFail(t, err)
	}
	return Adopt(t, s)
}

// Adopt stops s when the test ends, printing the processes' last log lines
// first if the test failed, and returns it as an Env.
func Adopt(t testing.TB, s *controlplane.Server) *Env {
	e := &Env{Server: s}
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
func (e *Env) Namespace(t testing.TB) string {
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

// SkipOrFail ends a test whose control plane did not start: a skip when
// the binaries are missing, except in CI (CI set), where hack/k8sbin.sh
// must have built them and a skip would hide that it did not.
func SkipOrFail(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, controlplane.ErrNoBinaries) {
		labtest.Missing(t, "%v", err)
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
func (s *Shared) Env(t testing.TB) *Env {
	t.Helper()
	s.once.Do(func() {
		o := NewOptions(s.opts...)
		var srv *controlplane.Server
		if srv, s.err = controlplane.Run(context.Background(), o); s.err == nil {
			s.env = &Env{Server: srv}
		}
	})
	if s.err != nil {
		SkipOrFail(t, s.err)
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
func (s *Shared) Main(m *testing.M) int {
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
