package speaker

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bfd"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/labtest"
)

// The BFD shell against a real BFD peer across a real link: an established
// BGP session gets a BFD session, a cut link resets the BGP session at
// once, and a session that went down before the cut resets nothing.
func TestBFDSessionsReset(t *testing.T) {
	a4, b4 := netip.MustParseAddr("198.51.100.31"), netip.MustParseAddr("198.51.100.32")
	l, lan := labtest.LAN(t,
		lab.HostSpec{Name: "a", Addrs: []netip.Prefix{netip.PrefixFrom(a4, 24)}},
		lab.HostSpec{Name: "b", Addrs: []netip.Prefix{netip.PrefixFrom(b4, 24)}})
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	ctx, cancel := context.WithCancel(context.Background())
	ma := bfd.NewManager(ctx, bfd.Options{Do: l.Host("a").Do, Logger: log})
	mb := bfd.NewManager(ctx, bfd.Options{Do: l.Host("b").Do, Logger: log})
	cfg := bfd.Config{DesiredMinTx: 100 * time.Millisecond, RequiredMinRx: 100 * time.Millisecond, DetectMult: 3}
	// b is the router's end: a plain BFD session.
	kb := bfd.Key{Peer: a4, Local: b4}
	if err := mb.Add(bfd.SessionConfig{Key: kb, Config: cfg}); err != nil {
		t.Fatal(err)
	}
	resets := make(chan string, 4)
	s := newBFDSessions(ctx, log, ma, func(name string) { resets <- name })
	t.Cleanup(func() {
		cancel()
		_ = ma.Close()
		_ = mb.Close()
		s.wait()
	})
	s.setPeers(map[string]bfdPeer{"r": {addr: b4, cfg: cfg}, "idle": {addr: netip.MustParseAddr("198.51.100.99"), cfg: cfg}})
	s.session("r", true, a4)
	up := func() (bool, error) { st, ok := s.status("r"); return ok && st.State == bfd.Up, nil }
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	defer pcancel()
	if err := lab.Poll(pctx, 20*time.Millisecond, up); err != nil {
		t.Fatalf("BFD never came up: %v", err)
	}
	if _, ok := s.status("idle"); ok {
		t.Error("a peer without an established session runs BFD")
	}
	if got := s.states(); len(got) != 1 || got["r"] != bfd.Up {
		t.Errorf("states %v, want r Up only", got)
	}
	if r := s.reports(); len(r) != 1 || r["r"] == nil || r["r"].State != "Up" || r["r"].RemoteState != "Up" ||
		r["r"].TransmitInterval.Duration != 100*time.Millisecond || r["r"].DetectMultiplier != 3 {
		t.Errorf("reports %+v, want r Up at 100ms x 3", r)
	}

	// The router's end taken down on purpose: no reset, and the report
	// says NeighborDown, also once the BGP session went down and took
	// that BFD session with it, and once a new one runs.
	if err := mb.SetAdminDown(kb, true); err != nil {
		t.Fatal(err)
	}
	if err := lab.Poll(pctx, 20*time.Millisecond, func() (bool, error) {
		st, ok := s.status("r")
		return ok && st.State == bfd.Down, nil
	}); err != nil {
		t.Fatalf("BFD never went down with the peer's AdminDown: %v", err)
	}
	adminDown := s.reports()["r"]
	if adminDown == nil || adminDown.LastDownReason != "NeighborDown" || adminDown.LastDownRemoteState != "AdminDown" || adminDown.LastDownTime == nil {
		t.Fatalf("report after the peer's AdminDown %+v, want NeighborDown", adminDown)
	}
	sameDown := func(when string) {
		t.Helper()
		if r := s.reports()["r"]; r == nil || r.LastDownReason != "NeighborDown" || r.LastDownRemoteState != "AdminDown" ||
			!r.LastDownTime.Equal(adminDown.LastDownTime) {
			t.Errorf("report %s: %+v, want the last down still NeighborDown at %v", when, r, adminDown.LastDownTime)
		}
	}

	// Down and up again: the new BFD session is the one that counts.
	s.session("r", false, netip.Addr{})
	if _, ok := s.status("r"); ok {
		t.Fatal("BFD still runs after the BGP session went down")
	}
	sameDown("once the BFD session stopped")
	if err := mb.SetAdminDown(kb, false); err != nil {
		t.Fatal(err)
	}
	s.session("r", true, a4)
	if err := lab.Poll(pctx, 20*time.Millisecond, up); err != nil {
		t.Fatalf("BFD never came up again: %v", err)
	}
	sameDown("with a new BFD session")
	select {
	case n := <-resets:
		t.Fatalf("reset %q although no path failed", n)
	default:
	}

	cut := time.Now()
	if err := lan.SetLink(ctx, "b", false); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-resets:
		if n != "r" {
			t.Fatalf("reset %q, want r", n)
		}
		if d := time.Since(cut); d > 3*time.Second {
			t.Errorf("reset after %v, want within 3s", d)
		}
		t.Logf("BGP session reset %v after the cut", time.Since(cut))
	case <-time.After(10 * time.Second):
		t.Fatal("no reset within 10s of the cut")
	}
	if got := s.teardowns.Load(); got != 1 {
		t.Errorf("teardowns = %d, want 1", got)
	}
	if _, ok := s.status("r"); ok {
		t.Error("BFD still runs after the reset")
	}
	// The report keeps saying why.
	if r := s.reports()["r"]; r == nil || r.State != "Down" || r.LastDownReason != "DetectionTimeExpired" || r.LastDownTime == nil {
		t.Errorf("report after the reset %+v, want Down by detection", r)
	}

	// Healed and established again, then the speaker stops: the router's
	// end hears AdminDown, no failure of the path.
	if err := lan.SetLink(ctx, "b", true); err != nil {
		t.Fatal(err)
	}
	s.session("r", true, a4)
	if err := lab.Poll(pctx, 20*time.Millisecond, up); err != nil {
		t.Fatalf("BFD never came up after the heal: %v", err)
	}
	// The router's end too: the speaker's end is Up first, and the router's
	// Init→Up must not be taken for the stop.
	if err := lab.Poll(pctx, 20*time.Millisecond, func() (bool, error) {
		st, ok := mb.Status(kb)
		return ok && st.State == bfd.Up, nil
	}); err != nil {
		t.Fatalf("the router's end never came up after the heal: %v", err)
	}
	events, unsubscribe, err := mb.Subscribe(kb)
	if err != nil {
		t.Fatal(err)
	}
	defer unsubscribe()
	s.shutdown()
	for {
		select {
		case ev := <-events:
			if ev.From != bfd.Up || ev.To == bfd.Up {
				continue
			}
			if ev.RemoteState != bfd.AdminDown || ev.PathDown() {
				t.Errorf("the router's end saw %+v at the speaker's stop, want the peer's AdminDown", ev)
			}
			return
		case <-pctx.Done():
			t.Fatal("the router's end saw nothing of the speaker's stop")
		}
	}
}
