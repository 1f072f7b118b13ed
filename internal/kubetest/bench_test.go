package kubetest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bgplb/bgplb/internal/kubetest"
)

// BenchmarkRun measures a control plane's start-up (Run until /readyz and
// the default namespace) and, as stop-s, its Stop.
//
//	go test -run '^$' -bench Run -benchtime 5x ./internal/kubetest
func BenchmarkRun(b *testing.B) {
	var stopping time.Duration
	for b.Loop() {
		env, err := kubetest.Run(context.Background(), kubetest.Options{})
		if errors.Is(err, kubetest.ErrNoBinaries) {
			b.Skip(err)
		}
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		began := time.Now()
		if err := env.Stop(); err != nil {
			b.Fatal(err)
		}
		stopping += time.Since(began)
		b.StartTimer()
	}
	b.ReportMetric(stopping.Seconds()/float64(b.N), "stop-s")
}
