package bfd_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bfd"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/daemons"
	"github.com/bgplb/bgplb/lab/labtest"
)

// upPair starts a session between two bgplb endpoints and waits until
// both are Up.
func upPair(t *testing.T) (p pair, ma, mb *bfd.Manager, ka, kb bfd.Key) {
	t.Helper()
	p = newPair(t)
	ma, mb = manager(t, p.a), manager(t, p.b)
	ka, kb = add(t, ma, p.a4, p.b4, fastCfg()), add(t, mb, p.b4, p.a4, fastCfg())
	for _, x := range []struct {
		m *bfd.Manager
		k bfd.Key
	}{{ma, ka}, {mb, kb}} {
		if _, err := waitState(subscribe(t, x.m, x.k), bfd.Up, 2*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	return p, ma, mb, ka, kb
}

// TestWatchPathDown: a cut link calls pathDown once, with the detection
// diagnostic; a watcher whose context ended is never called.
func TestWatchPathDown(t *testing.T) {
	p, _, mb, _, kb := upPair(t)
	ctx := labtest.Context(t, 30*time.Second)
	downs := make(chan bfd.Event, 4)
	run, err := mb.WatchPathDown(ctx, kb, func(ev bfd.Event) { downs <- ev })
	if err != nil {
		t.Fatal(err)
	}
	stopped, stop := context.WithCancel(ctx)
	runStopped, err := mb.WatchPathDown(stopped, kb, func(ev bfd.Event) { t.Errorf("a stopped watcher acted on %+v", ev) })
	if err != nil {
		t.Fatal(err)
	}
	stop()
	done := make(chan struct{}, 2)
	for _, r := range []func(){run, runStopped} {
		go func() {
			defer func() { done <- struct{}{} }()
			r()
		}()
	}
	if _, err := mb.WatchPathDown(ctx, bfd.Key{Peer: p.a6, Local: p.b6}, func(bfd.Event) {}); err == nil {
		t.Error("watching a session that does not exist succeeded")
	}
	if err := p.lan.SetLink(ctx, "a", false); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-downs:
		if ev.Diag != bfd.DiagDetectionExpired || ev.From != bfd.Up {
			t.Errorf("pathDown with %+v, want Up lost by detection", ev)
		}
	case <-ctx.Done():
		t.Fatal("pathDown not called after the cut")
	}
	// Both runs return: one after pathDown, the other on its context.
	for range 2 {
		select {
		case <-done:
		case <-ctx.Done():
			t.Fatal("a watcher did not return")
		}
	}
	if len(downs) != 0 {
		t.Errorf("pathDown called again: %+v", <-downs)
	}
}

// adminDownCounter counts, with an iptables rule in ns (the kernel's
// counter, exact), the BFD packets arriving there that say AdminDown: the
// state is the top two bits of the payload's second byte, AdminDown 0.
func adminDownCounter(t *testing.T, ns *lab.Netns) func() int {
	t.Helper()
	labtest.RequireBinaries(t, "iptables")
	ctx := labtest.Context(t, 10*time.Second)
	if out, err := ns.Run(ctx, "iptables", "-I", "INPUT", "1", "-p", "udp", "--dport", strconv.Itoa(bfd.PortSingleHop),
		"-m", "u32", "--u32", "0>>22&0x3C@8>>22&0x3=0"); err != nil {
		t.Fatalf("iptables: %v\n%s", err, out)
	}
	return func() int {
		t.Helper()
		out, err := ns.Run(ctx, "iptables", "-L", "INPUT", "1", "-v", "-x", "-n")
		if err != nil {
			t.Fatalf("iptables: %v\n%s", err, out)
		}
		f := strings.Fields(string(out))
		if len(f) == 0 {
			t.Fatalf("iptables printed no counter")
		}
		n, err := strconv.Atoi(f[0])
		if err != nil {
			t.Fatalf("iptables counter %q: %v", out, err)
		}
		return n
	}
}

// TestShutdownTellsAdminDown: a Manager shut down on purpose tells its Up
// peers AdminDown during the peer's detection time (RFC 5880 §6.8.16), so
// the other end goes Down with NeighborDown and the peer's AdminDown,
// which is no path failure (PathDown false), instead of waiting for its
// detection timer.
func TestShutdownTellsAdminDown(t *testing.T) {
	p, ma, mb, ka, kb := upPair(t)
	adminDowns := adminDownCounter(t, p.b)
	eb := subscribe(t, mb, kb)
	ctx := labtest.Context(t, 10*time.Second)
	start := time.Now()
	if err := ma.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	ev, err := waitState(eb, bfd.Down, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Diag != bfd.DiagNeighborDown || ev.RemoteState != bfd.AdminDown || ev.PathDown() {
		t.Errorf("b saw %+v (PathDown %v), want Down by the peer's AdminDown, no path failure", ev, ev.PathDown())
	}
	if s, _ := mb.Status(kb); s.LastDownDiag != bfd.DiagNeighborDown || s.LastDownRemoteState != bfd.AdminDown || s.LastDown.IsZero() {
		t.Errorf("b's last down: %v (peer %v) at %v, want NeighborDown by the peer's AdminDown", s.LastDownDiag, s.LastDownRemoteState, s.LastDown)
	}
	// 50 ms × 3: the first packet and one every 50 ms until the peer's
	// 150 ms detection time has passed; a sends nothing after (it is
	// closed), which the poll's permanent error catches while it waits
	// past the last packet's arrival.
	const want = 4
	wait, cancel := context.WithTimeout(ctx, 300*ms)
	defer cancel()
	if err := lab.Poll(wait, 10*ms, func() (bool, error) {
		if n := adminDowns(); n > want {
			return false, lab.Permanent(fmt.Errorf("b received %d AdminDown packets, want %d", n, want))
		}
		return false, nil
	}); wait.Err() == nil {
		t.Error(err)
	}
	if n := adminDowns(); n != want {
		t.Errorf("b received %d AdminDown packets, want %d", n, want)
	}
	t.Logf("Shutdown took %v", took)
	if took > time.Second {
		t.Errorf("Shutdown took %v", took)
	}
	if err := ma.Add(bfd.SessionConfig{Key: ka, Config: fastCfg()}); err == nil {
		t.Error("Add after Shutdown succeeded")
	}
}

// TestShutdownWhileRemove: a Remove racing Shutdown neither panics nor
// holds Shutdown up (run with -race: the farewells' WaitGroup).
func TestShutdownWhileRemove(t *testing.T) {
	_, ma, _, ka, _ := upPair(t)
	ctx := labtest.Context(t, 10*time.Second)
	removed := make(chan error, 1)
	go func() { removed <- ma.Remove(ka) }()
	if err := ma.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-removed; err != nil && !errors.Is(err, bfd.ErrNotFound) {
		t.Errorf("Remove: %v", err)
	}
}

// TestRemoveThenAdd: the AdminDown packets a removed session repeats stop
// when a new session takes its addresses at once (a BGP session back up):
// the peer must not take them for the new session's, which comes Up and
// stays Up.
func TestRemoveThenAdd(t *testing.T) {
	_, ma, mb, ka, kb := upPair(t)
	eb := subscribe(t, mb, kb)
	if err := ma.Remove(ka); err != nil {
		t.Fatal(err)
	}
	if err := ma.Add(bfd.SessionConfig{Key: ka, Config: fastCfg()}); err != nil {
		t.Fatal(err)
	}
	if _, err := waitState(eb, bfd.Down, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := waitState(eb, bfd.Up, 3*time.Second); err != nil {
		t.Fatalf("b with the new session: %v", err)
	}
	// A second of traffic (20 packets at 50 ms) with b Up throughout.
	ctx := labtest.Context(t, 10*time.Second)
	start, _ := ma.Status(ka)
	if err := lab.Poll(ctx, 10*ms, func() (bool, error) {
		select {
		case ev := <-eb:
			if ev.To != bfd.Up {
				return false, lab.Permanent(fmt.Errorf("b left Up with the new session: %+v", ev))
			}
		default:
		}
		s, _ := ma.Status(ka)
		return s.PacketsIn-start.PacketsIn >= 20, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestShutdownInterop: AdminDown both ways with FRR's bfdd. An FRR peer
// shut down in its config takes bgplb's session Down without a path
// failure (PathDown false); bgplb's Shutdown is seen by bfdd as the peer's
// AdminDown (remote diagnostic "administratively down"), not a detection
// timeout.
func TestShutdownInterop(t *testing.T) {
	labtest.RequireBinaries(t, "/usr/lib/frr/bfdd", "/usr/lib/frr/zebra", "vtysh")
	ctx := labtest.Context(t, time.Minute)
	p := newPair(t)
	d, err := daemons.StartFRRBFD(ctx, p.b, []daemons.BFDPeer{{Peer: p.a4, Local: p.b4, Interval: 50 * ms, Mult: 3}})
	labtest.SkipIfNotInstalled(t, err)
	t.Cleanup(func() { d.Stop() })
	m := manager(t, p.a)
	k := add(t, m, p.a4, p.b4, fastCfg())
	if _, err := waitState(subscribe(t, m, k), bfd.Up, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := daemons.WaitBFD(ctx, d, p.a4, "up"); err != nil {
		t.Fatal(err)
	}
	ev := subscribe(t, m, k)
	peerShutdown := func(shut string) {
		t.Helper()
		if out, err := d.VTY(ctx, "configure terminal", "bfd", "peer "+p.a4.String()+" local-address "+p.b4.String(), shut); err != nil {
			t.Fatalf("vtysh %s: %v\n%s", shut, err, out)
		}
	}
	peerShutdown("shutdown")
	down, err := waitState(ev, bfd.Down, 2*time.Second)
	if err != nil {
		t.Fatalf("bgplb after bfdd's shutdown: %v", err)
	}
	if down.RemoteState != bfd.AdminDown || down.PathDown() {
		t.Errorf("bgplb saw %+v (PathDown %v) at bfdd's shutdown, want the peer's AdminDown, no path failure", down, down.PathDown())
	}
	peerShutdown("no shutdown")
	if _, err := waitState(ev, bfd.Up, 5*time.Second); err != nil {
		t.Fatalf("bgplb after bfdd's no shutdown: %v", err)
	}
	if err := daemons.WaitBFD(ctx, d, p.a4, "up"); err != nil {
		t.Fatal(err)
	}
	if err := m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := daemons.WaitBFD(ctx, d, p.a4, "down"); err != nil {
		t.Fatal(err)
	}
	ss, err := d.BFDSessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(ss, func(s daemons.BFDState) bool { return s.Peer == p.a4 }); i < 0 ||
		ss[i].RemoteDiag != "administratively down" || ss[i].Diag != "neighbor signaled session down" {
		t.Errorf("bfdd: %+v, want down by the peer's AdminDown", ss)
	}
}
