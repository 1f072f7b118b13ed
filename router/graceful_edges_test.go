package router

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bfd"
	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/fib"
)

// TestHelperKeepsOnlyGRFamilies: the families the peer's capability does
// not list go when its session ends; the others wait (RFC 4724 §4.2).
func TestHelperKeepsOnlyGRFamilies(t *testing.T) {
	r := newHelperRig(t, grOn)
	gr := grNeg(120, true, v4) // both negotiated, only IPv4 kept
	r.p.Established(nil, gr)
	r.announce("203.0.113.1/32", "2001:db8::1/128")
	r.has("203.0.113.1/32", "2001:db8::1/128")

	r.p.Down(nil, io.EOF)
	r.has("203.0.113.1/32")
	if st := r.p.grStatus(); st.stale == 0 || len(st.fams) != 1 || st.fams[0] != v4 {
		t.Fatalf("stale generation %+v, want IPv4 only", st)
	}
	r.p.Established(nil, gr)
	r.p.EndOfRIB(nil, v4)
	r.has()
	if r.p.staleID.Load() != 0 || r.outcome(grEndOfRIB) != 1 {
		t.Fatalf("after IPv4's End-of-RIB: stale %d, end_of_rib %v", r.p.staleID.Load(), r.outcome(grEndOfRIB))
	}
}

// TestHelperLateTimer: a restart timer whose callback was already running,
// blocked on grMu, while the peer came back does not drop what now waits
// for End-of-RIB.
func TestHelperLateTimer(t *testing.T) {
	r := newHelperRig(t, grOn)
	gr := grNeg(120, true, v4)
	r.p.Established(nil, gr)
	r.announce("203.0.113.1/32")
	r.p.Down(nil, io.EOF)
	r.p.grMu.Lock()
	armed := r.p.gr.timerSeq // the restart timer's
	r.p.grMu.Unlock()
	r.p.Established(nil, gr) // re-arms: the stale timer
	r.p.expire(armed, grRestartTime)
	r.has("203.0.113.1/32")
	if st := r.p.grStatus(); st.stale == 0 || st.deadline.IsZero() || r.outcome(grRestartTime) != 0 {
		t.Fatalf("the late restart timer acted: %+v, restart_time %v", st, r.outcome(grRestartTime))
	}
	// The stale timer's own callback still works.
	r.p.grMu.Lock()
	cur := r.p.gr.timerSeq
	r.p.grMu.Unlock()
	r.p.expire(cur, grStaleTime)
	r.has()
	if r.outcome(grStaleTime) != 1 {
		t.Fatal("the current timer did not drop the stale routes")
	}
}

// graceRig is a daemon waiting, after its own restart, for the peers
// named by expected; cfg has a dynamic range.
func graceRig(t *testing.T, expected ...netip.Addr) *Daemon {
	t.Helper()
	cfg := mustParse(t, `asn: 64512
routerID: 198.51.100.1
dynamicNeighbors: [{prefix: 198.51.100.0/24, peerASN: 64512}, {prefix: "fe80::/64", peerASN: 64512}]
import: {prefixes: [203.0.113.0/24]}
`)
	d := New(cfg, Options{Log: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	d.ctx = ctx
	g := &d.grace
	g.open, g.start, g.until = true, time.Now(), time.Now().Add(time.Hour)
	g.expected, g.synced = map[netip.Addr]bool{}, map[netip.Addr]bool{}
	for _, a := range expected {
		g.expected[a] = true
	}
	g.known = true
	return d
}

// TestGraceZonedPeers: a link-local node the old routes point at (zoned
// next hop) is the same peer as the one that connects (zoned address).
func TestGraceZonedPeers(t *testing.T) {
	a := netip.MustParseAddr
	cfg := mustParse(t, "asn: 64512\nrouterID: 198.51.100.1\ndynamicNeighbors: [{prefix: \"fe80::/64\", peerASN: 64512}]\nimport: {prefixes: [203.0.113.0/24]}\n")
	old := []fib.Route{{Prefix: netip.MustParsePrefix("203.0.113.1/32"), NextHops: []fib.NextHop{{Addr: a("fe80::11%eth1")}}}}
	if got := expectedPeers(cfg, old); !got[a("fe80::11")] || len(got) != 1 {
		t.Fatalf("expected peers %v, want fe80::11", got)
	}

	d := graceRig(t, a("fe80::11"), a("fe80::12"))
	d.peerSynced(a("fe80::11%eth1"))
	if !d.grace.waiting() {
		t.Fatal("ended with fe80::12 still away")
	}
	d.peerSynced(a("fe80::12%eth1"))
	if d.grace.waiting() {
		t.Fatal("every expected link-local peer synced, yet the grace goes on")
	}
}

// TestGraceDumpFails: without the old routes' next hops, End-of-RIB
// cannot end the grace early: graceTime does.
func TestGraceDumpFails(t *testing.T) {
	d := graceRig(t)
	d.grace.known = false // the dump runs
	d.expectNextHops(d.ctx, d.config(), nil, errors.New("netlink: message truncated"))
	d.peerSynced(netip.MustParseAddr("198.51.100.11"))
	if !d.grace.waiting() {
		t.Fatal("the first dynamic peer's End-of-RIB ended the grace though the dump failed")
	}
	// With the dump, it does.
	d2 := graceRig(t)
	d2.grace.known = false
	d2.expectNextHops(d2.ctx, d2.config(), nil, nil)
	d2.peerSynced(netip.MustParseAddr("198.51.100.11"))
	if d2.grace.waiting() {
		t.Fatal("grace not ended with the dump read")
	}
}

// TestGraceRecheckedOnDown: the last peer the grace waited for going down
// may end it.
func TestGraceRecheckedOnDown(t *testing.T) {
	r := newHelperRig(t, grOn)
	g := &r.d.grace
	g.open, g.start, g.until = true, time.Now(), time.Now().Add(time.Hour)
	g.expected = map[netip.Addr]bool{r.p.addr: true}
	g.synced = map[netip.Addr]bool{r.p.addr: true}
	g.known = true
	r.p.Established(nil, grNeg(120, true, v4))
	r.p.Down(nil, ceaseN)
	if g.waiting() {
		t.Fatal("the grace was not checked again when a peer went down")
	}
}

func TestBFDPlan(t *testing.T) {
	on := BFD{Enabled: true, MinTx: 300 * time.Millisecond, MinRx: 300 * time.Millisecond, Multiplier: 3}
	fast := on
	fast.MinTx = 50 * time.Millisecond
	tests := []struct {
		name               string
		running            bool
		cur, want          BFD
		established, stale bool
		step               bfdStep
	}{
		{"session up: start", false, BFD{}, on, true, false, bfdStart},
		{"session up, no bfd configured", false, BFD{}, BFD{}, true, false, bfdKeep},
		{"session down, nothing kept: stop", true, on, on, false, false, bfdStop},
		{"session down, stale routes kept: BFD guards them", true, on, on, false, true, bfdKeep},
		{"stale routes kept, settings changed: retune", true, on, fast, false, true, bfdRetune},
		{"stale routes kept, bfd turned off: stop", true, on, BFD{}, false, true, bfdStop},
		{"session down: no new BFD session for stale routes", false, BFD{}, on, false, true, bfdKeep},
		{"new session took over", true, on, on, true, true, bfdKeep},
	}
	for _, tc := range tests {
		if got := bfdPlan(tc.running, tc.cur, tc.want, tc.established, tc.stale); got != tc.step {
			t.Errorf("%s: bfdPlan = %v, want %v", tc.name, got, tc.step)
		}
	}
}

// bfdRig is a helper rig whose neighbour runs BFD; the BFD session is a
// stand-in (its key names no session of the manager), enough for what
// the peer does with it.
func bfdRig(t *testing.T, gr GracefulRestart) (*helperRig, *peerBFD, *bool) {
	r := newHelperRig(t, gr)
	on := BFD{Enabled: true, MinTx: 300 * time.Millisecond, MinRx: 300 * time.Millisecond, Multiplier: 3}
	r.d.config().Neighbors[0].BFD = on
	r.d.bfd = bfd.NewManager(r.d.ctx, bfd.Options{Logger: slog.New(slog.DiscardHandler)})
	r.p.Established(nil, grNeg(120, true, v4)) // the session has no addresses: no BFD starts
	stopped := new(bool)
	pb := &peerBFD{cfg: on, key: bfd.Key{Peer: r.p.addr, Local: netip.MustParseAddr("198.51.100.1")}, stop: func() { *stopped = true }}
	r.p.bfd = pb
	r.announce("203.0.113.1/32")
	r.has("203.0.113.1/32")
	return r, pb, stopped
}

// TestHelperBFDGuardsStale: BFD outlives a session whose routes are kept
// for its restart; its path failing removes them at once.
func TestHelperBFDGuardsStale(t *testing.T) {
	down := bfd.Event{From: bfd.Up, To: bfd.Down, RemoteState: bfd.Up, Diag: bfd.DiagDetectionExpired}
	t.Run("path down while the routes wait", func(t *testing.T) {
		r, pb, stopped := bfdRig(t, grOn)
		r.p.Down(nil, io.EOF)
		r.has("203.0.113.1/32")
		if r.p.bfd != pb || *stopped {
			t.Fatal("BFD stopped with the session although stale routes wait")
		}
		r.d.bfdDown(r.p, pb, down)
		r.has()
		if r.p.staleID.Load() != 0 || r.outcome(grReset) != 1 || r.p.bfd != nil || !*stopped {
			t.Fatalf("after BFD down: stale %d, reset %v, bfd %v", r.p.staleID.Load(), r.outcome(grReset), r.p.bfd)
		}
	})
	t.Run("restart time runs out", func(t *testing.T) {
		fast := GracefulRestart{Enabled: true, RestartTime: 20 * time.Millisecond, StaleTime: time.Minute}
		r, _, stopped := bfdRig(t, fast)
		r.p.Down(nil, io.EOF)
		r.waitFor("the restart timer", func() bool {
			r.p.bfdMu.Lock()
			defer r.p.bfdMu.Unlock()
			return r.p.bfd == nil
		})
		if !*stopped || r.p.staleID.Load() != 0 {
			t.Fatal("BFD outlived the stale routes")
		}
	})
	t.Run("a NOTIFICATION keeps nothing: BFD stops", func(t *testing.T) {
		r, _, stopped := bfdRig(t, grOn)
		r.p.Down(nil, ceaseN)
		if r.p.bfd != nil || !*stopped {
			t.Fatal("BFD runs on with nothing to guard")
		}
	})
}

// TestRegraceCountsDisabled: stale routes that a reload turning graceful
// restart off removes count as "disabled".
func TestRegraceCountsDisabled(t *testing.T) {
	r := newHelperRig(t, grOn)
	cfg := r.d.config()
	cfg.Neighbors[0].Passive = true // the sessions started here never dial
	n := cfg.Neighbors[0]
	sc := sessionConfig(cfg, n.Address, n.PeerASN, n.Timers, true)
	sc.GracefulRestart = r.d.ourGR(n.GracefulRestart)
	r.p.sess = session.New(sc, r.p, nil)
	ctx, cancel := context.WithCancel(r.d.ctx)
	r.p.cancel = cancel
	if err := r.p.sess.Start(ctx); err != nil {
		t.Fatal(err)
	}
	r.p.Established(nil, grNeg(120, true, v4))
	r.announce("203.0.113.1/32")
	r.p.Down(nil, io.EOF)
	r.has("203.0.113.1/32")

	off := *cfg
	off.Neighbors = []Neighbor{n}
	off.Neighbors[0].GracefulRestart = GracefulRestart{}
	r.d.cfg.Store(&off)
	r.d.regrace()
	r.has()
	if r.outcome(grDisabled) != 1 || r.outcome(grReset) != 0 {
		t.Fatalf("disabled %v, reset %v", r.outcome(grDisabled), r.outcome(grReset))
	}
}

func TestReapable(t *testing.T) {
	old := time.Now().Add(-2 * time.Minute)
	mk := func(dynamic bool, created time.Time, stale uint32) *peer {
		p := &peer{dynamic: dynamic, created: created}
		p.sess = session.New(session.Config{LocalAS: 1, PeerAS: 1, RouterID: netip.MustParseAddr("198.51.100.1"),
			PeerAddr: netip.MustParseAddr("198.51.100.11"), Passive: true}, p, nil)
		p.staleID.Store(stale)
		return p
	}
	now := time.Now()
	tests := []struct {
		name string
		p    *peer
		want bool
	}{
		{"idle for two minutes", mk(true, old, 0), true},
		{"just created", mk(true, now, 0), false},
		{"stale routes wait for it", mk(true, old, 3), false},
		{"static", mk(false, old, 0), false},
	}
	for _, tc := range tests {
		if got := reapable(tc.p, now); got != tc.want {
			t.Errorf("%s: reapable = %v", tc.name, got)
		}
	}
}
