package controlplane_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bgplb/bgplb/internal/controlplane"
)

// BenchmarkRun measures a control plane's start-up (Run until /readyz and
// the default namespace) and, as stop-s, its Stop.
//
//	go test -run '^$' -bench Run -benchtime 5x ./internal/controlplane
func BenchmarkRun(b *testing.B) {
	var stopping time.Duration
	for b.Loop() {
		env, err := controlplane.Run(context.Background(), controlplane.Options{})
		if errors.Is(err, controlplane.ErrNoBinaries) {
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
