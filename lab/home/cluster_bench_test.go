package home_test

import (
	"testing"
	"time"

	"github.com/bgplb/bgplb/lab/home"
)

// BenchmarkRollouts measures what a client sees while the real cluster
// does what operators do every day, with a client asking the Pi-hole every
// 20 ms (one try each, 500 ms to answer): the queries lost and the
// longest outage per operation. These are the failover work's goals
// (issue 15: zero lost queries), not assertions.
//
//	make bench-lab   (go test -run '^$' -bench Rollouts -benchtime 3x ./lab/home)
func BenchmarkRollouts(b *testing.B) {
	c := startCluster(b, "labb")
	ops := []struct {
		name string
		do   func() error
	}{
		// A Deployment rolling update that moves the pod: cordon + restart.
		{"PiholeMove", func() error { return home.Move(c.ctx, c.o) }},
		// The speaker DaemonSet's rolling update, one node at a time.
		{"SpeakerRollout", func() error { return home.Restart(c.ctx, c.o, "speaker") }},
		// The controller Deployment's rolling update.
		{"ControllerRollout", func() error { return home.Restart(c.ctx, c.o, "controller") }},
		// The router restarting in place with its routes kept.
		{"RouterRestart", func() error { return home.Restart(c.ctx, c.o, "router") }},
	}
	for _, op := range ops {
		b.Run(op.name, func(b *testing.B) {
			var lost, sent int
			var outage time.Duration
			c.r.t = b
			for b.Loop() {
				sum := c.r.streaming(op.name, op.do)
				lost, sent, outage = lost+sum.Lost, sent+sum.Sent, max(outage, sum.Outage)
			}
			b.ReportMetric(float64(lost)/float64(b.N), "lost/op")
			b.ReportMetric(float64(sent)/float64(b.N), "queries/op")
			b.ReportMetric(float64(outage.Milliseconds()), "max-outage-ms")
		})
	}
}
