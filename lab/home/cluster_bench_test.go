package home_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/home"
	"github.com/bgplb/bgplb/lab/seed"
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

// BenchmarkNodeOut measures what a client of an ETP Cluster Service (both
// nodes announce it; each query, a new source port, takes its own path)
// sees when a node leaves, with a client asking every 20 ms throughout:
//
//   - Fail (issue 15, figure 1): the node that does not run the Pi-hole is
//     cut off (LAN and API links); dropped-ms is the time from the cut
//     until no router's kernel routes via it, with the examples' BFD
//     (300 ms × 3), with 50 ms × 3, and without BFD at the smallest hold
//     time (3 s).
//
//   - Drain (figure 3): the node is cordoned (the Pi-hole rolls over if it
//     ran there); its speaker drains with GRACEFUL_SHUTDOWN; dropped-ms is
//     the time from the cordon until no router's ECMP set holds it (new
//     flows go elsewhere); the client asks until it withdrew (drain time).
//
//     make bench-lab   (go test -run '^$' -bench NodeOut -benchtime 3x ./lab/home)
func BenchmarkNodeOut(b *testing.B) {
	c := startCluster(b, "labf")
	other := map[string]string{seed.Node1: seed.Node2, seed.Node2: seed.Node1}
	// Both nodes announce an ETP Cluster Service: the node leaving has a
	// path to drop, and part of the client's flows go through it.
	svc := filepath.Join(b.TempDir(), "all.yaml")
	if err := os.WriteFile(svc, []byte(clusterService), 0o644); err != nil {
		b.Fatal(err)
	}
	c.kubectl("apply", "-f", svc)
	vip := netip.MustParseAddr("203.0.113.54")
	viaBoth := func() {
		for _, n := range []string{seed.Node1, seed.Node2} {
			if _, err := c.s.Host(seed.Router).WaitRoutes(c.ctx, lab.RouteQuery{Proto: "bgp"}, func(rs []lab.Route) bool {
				return slices.ContainsFunc(rs, func(r lab.Route) bool {
					return r.Dst == netip.PrefixFrom(vip, 32) && slices.Contains(r.Gateways(), c.s.NodeAddr(n))
				})
			}); err != nil {
				b.Fatalf("%s never routed via %s: %v", vip, n, err)
			}
		}
	}
	viaBoth()
	// The routes come with the endpoints; kube-proxy's rules may lag.
	if err := lab.Poll(c.ctx, 100*time.Millisecond, func() (bool, error) {
		_, err := c.s.Dig(c.ctx, seed.Client, vip, "pihole.lab.", false)
		return err == nil, nil
	}); err != nil {
		b.Fatalf("%s never answered: %v", vip, err)
	}
	type op struct {
		name string
		bfd  time.Duration // for Fail
		// node picks the node that leaves; out takes it out, back returns it.
		node      func() string
		out, back func(o home.Options, node string) error
	}
	notPihole := func() string { return other[podNode(b, c.kubectl)] }
	pihole := func() string { return podNode(b, c.kubectl) }
	fail := func(o home.Options, n string) error { return home.Fail(c.ctx, o, n) }
	heal := func(o home.Options, n string) error { return home.Heal(c.ctx, o, n) }
	drain := func(o home.Options, n string) error { return home.Drain(c.ctx, o, n) }
	uncordon := func(o home.Options, n string) error { return home.Uncordon(c.ctx, o, n) }
	for _, p := range []op{
		{"Fail/BFD300ms", 300 * time.Millisecond, notPihole, fail, heal},
		{"Fail/BFD50ms", 50 * time.Millisecond, notPihole, fail, heal},
		{"Fail/NoBFDHold3s", 0, notPihole, fail, heal},
		{"Drain/Other", 300 * time.Millisecond, notPihole, drain, uncordon},
		{"Drain/Pihole", 300 * time.Millisecond, pihole, drain, uncordon},
	} {
		b.Run(p.name, func(b *testing.B) {
			c.r.t = b
			c.r.do(fmt.Sprintf("bfd %v", p.bfd), func() error { return home.TuneBFD(c.ctx, c.o, p.bfd) })
			var lost, sent int
			var total, most time.Duration
			o := c.o
			for b.Loop() {
				node := p.node()
				var dropped time.Duration
				o.Figure = func(_ string, d time.Duration) { dropped = d }
				sum := c.r.streamingTo(vip, p.name+" "+node, func() error { return p.out(o, node) })
				if dropped == 0 {
					b.Fatalf("%s %s measured nothing", p.name, node)
				}
				c.r.do("back "+node, func() error { return p.back(c.o, node) })
				viaBoth()
				lost, sent = lost+sum.Lost, sent+sum.Sent
				total, most = total+dropped, max(most, dropped)
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "dropped-ms")
			b.ReportMetric(float64(most.Milliseconds()), "max-dropped-ms")
			b.ReportMetric(float64(lost)/float64(b.N), "lost/op")
			b.ReportMetric(float64(sent)/float64(b.N), "queries/op")
		})
	}
}
