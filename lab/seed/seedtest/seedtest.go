// Package seedtest adapts package seed to tests: it skips where the lab
// cannot run, removes the lab when the test ends, and prints what a failed
// test needs to see (the lab's layout, the logs of the processes started in
// it, the control plane's last lines). It is apart from seed so that the
// bgplb binary does not link the testing package.
package seedtest

import (
	"context"
	"testing"
	"time"

	"github.com/bgplb/bgplb/internal/kubetest"
	"github.com/bgplb/bgplb/lab/labtest"
	"github.com/bgplb/bgplb/lab/seed"
)

// buildTimeout bounds building a lab: about a second here, more on a
// loaded machine.
const buildTimeout = 60 * time.Second

// New builds the seed lab for a test, skipping it unless the process runs
// as root with iproute2. The lab is removed when the test ends; if the test
// failed, its layout and the logs of the processes started in its hosts
// are printed first.
func New(t testing.TB, o seed.Options) *seed.Seed {
	t.Helper()
	labtest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	s, err := seed.New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s", s.Describe())
			for _, h := range s.Lab.Hosts() {
				ns := s.Host(h)
				for _, p := range ns.Procs() {
					t.Logf("=== log of %s in %s ===\n%s", p, ns.Name, p.Logs())
				}
			}
		}
		if err := s.Close(); err != nil {
			t.Errorf("seed cleanup: %v", err)
		}
	})
	return s
}

// ControlPlane starts etcd and kube-apiserver on the lab's API address
// (seed.StartControlPlane), skipping the test when the binaries are missing
// except in CI (CI set), where hack/k8sbin.sh must have built them. It is
// stopped when the test ends, after printing its last log lines if the
// test failed.
func ControlPlane(t testing.TB, s *seed.Seed, opts ...kubetest.Option) *kubetest.Env {
	t.Helper()
	srv, err := s.StartControlPlane(context.Background(), kubetest.NewOptions(opts...))
	if err != nil {
		kubetest.SkipOrFail(t, err)
	}
	return kubetest.Adopt(t, srv)
}
