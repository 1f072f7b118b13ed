package bfd_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bfd"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/daemons"
	"github.com/bgplb/bgplb/lab/labtest"
)

type startFunc func(ctx context.Context, ns *lab.Netns, routerID netip.Addr, peers []daemons.BFDPeer) (daemons.BFDDaemon, error)

var interopDaemons = []struct {
	name  string
	bins  []string
	start startFunc
}{
	{"frr", []string{"/usr/lib/frr/bfdd", "/usr/lib/frr/zebra", "vtysh"},
		func(ctx context.Context, ns *lab.Netns, _ netip.Addr, peers []daemons.BFDPeer) (daemons.BFDDaemon, error) {
			return daemons.StartFRRBFD(ctx, ns, peers)
		}},
	{"bird", []string{"bird", "birdc"},
		func(ctx context.Context, ns *lab.Netns, id netip.Addr, peers []daemons.BFDPeer) (daemons.BFDDaemon, error) {
			return daemons.StartBIRDBFD(ctx, ns, id, peers)
		}},
}

// TestInterop runs bgplb against FRR's bfdd and BIRD's bfd protocol, single
// hop over IPv4 and IPv6, both ways: each comes Up with bgplb, each sees
// the other go Down when the link is cut and Up when it heals, the daemon
// sees bgplb's AdminDown, and bgplb in the passive role is brought Up by
// the daemon.
func TestInterop(t *testing.T) {
	for _, d := range interopDaemons {
		for _, fam := range []int{4, 6} {
			for _, passive := range []bool{false, true} {
				name := fmt.Sprintf("%s/ipv%d", d.name, fam)
				if passive {
					name += "/passive"
				}
				t.Run(name, func(t *testing.T) {
					labtest.RequireBinaries(t, d.bins...)
					interop(t, d.start, fam, passive)
				})
			}
		}
	}
}

func interop(t *testing.T, start startFunc, fam int, passive bool) {
	ctx := labtest.Context(t, time.Minute)
	p := newPair(t)
	la, lb := p.a4, p.b4
	if fam == 6 {
		la, lb = p.a6, p.b6
	}
	d, err := start(ctx, p.b, p.b4, []daemons.BFDPeer{{Peer: la, Local: lb, Interval: 50 * ms, Mult: 3}})
	labtest.SkipIfNotInstalled(t, err)
	t.Cleanup(func() { d.Stop() })

	m := manager(t, p.a)
	cfg := fastCfg()
	cfg.Passive = passive
	k := add(t, m, la, lb, cfg)
	ev := subscribe(t, m, k)
	if _, err := waitState(ev, bfd.Up, 5*time.Second); err != nil {
		s, _ := m.Status(k)
		t.Fatalf("bgplb: %v; status %+v", err, s)
	}
	if err := daemons.WaitBFD(ctx, d, la, "up"); err != nil {
		t.Fatal(err)
	}
	if s, _ := m.Status(k); s.TxInterval != 50*ms || s.DetectTime != 150*ms {
		t.Errorf("negotiated tx %v detect %v, want 50ms 150ms", s.TxInterval, s.DetectTime)
	}

	cut := time.Now()
	if err := p.lan.SetLink(ctx, "b", false); err != nil {
		t.Fatal(err)
	}
	down, err := waitState(ev, bfd.Down, 2*time.Second)
	if err != nil {
		t.Fatalf("bgplb after cut: %v", err)
	}
	t.Logf("bgplb Down %v after the cut", down.At.Sub(cut))
	// The figure is BenchmarkDetect's; here only that detection, not a
	// second-long fallback, took the session down.
	if took := down.At.Sub(cut); took >= detectionBound {
		t.Errorf("bgplb Down after %v, want well under %v (detection 150 ms)", took, detectionBound)
	}
	if err := daemons.WaitBFD(ctx, d, la, "down"); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s reports Down %v after the cut (polled)", d.Kind(), time.Since(cut))

	if err := p.lan.SetLink(ctx, "b", true); err != nil {
		t.Fatal(err)
	}
	if _, err := waitState(ev, bfd.Up, 5*time.Second); err != nil {
		t.Fatalf("bgplb after heal: %v", err)
	}
	if err := daemons.WaitBFD(ctx, d, la, "up"); err != nil {
		t.Fatal(err)
	}

	// bgplb AdminDown: the daemon goes down (diag AdminDown), bgplb
	// sends no failure.
	if err := m.SetAdminDown(k, true); err != nil {
		t.Fatal(err)
	}
	if err := daemons.WaitBFD(ctx, d, la, "down"); err != nil {
		t.Fatal(err)
	}
	if err := m.SetAdminDown(k, false); err != nil {
		t.Fatal(err)
	}
	if _, err := waitState(ev, bfd.Up, 5*time.Second); err != nil {
		t.Fatalf("bgplb after AdminDown ended: %v", err)
	}
	if err := daemons.WaitBFD(ctx, d, la, "up"); err != nil {
		t.Fatal(err)
	}
}
