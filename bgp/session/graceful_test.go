package session

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
)

func TestGracefulRestartNegotiation(t *testing.T) {
	for _, tc := range []struct {
		name          string
		local, peer   *GracefulRestart
		peerFamilies  []wire.Family
		wantGR        bool
		wantTime      time.Duration
		wantV6, wantN bool
	}{
		{name: "neither"},
		{name: "only we", local: &GracefulRestart{Time: 120 * time.Second}},
		{name: "only the peer", peer: &GracefulRestart{Time: 120 * time.Second}},
		{name: "both", local: &GracefulRestart{}, peer: &GracefulRestart{Time: 120 * time.Second, Forwarding: true},
			wantGR: true, wantTime: 120 * time.Second, wantV6: true},
		{name: "families intersect", local: &GracefulRestart{}, peer: &GracefulRestart{Time: 30 * time.Second},
			peerFamilies: []wire.Family{wire.IPv4Unicast}, wantGR: true, wantTime: 30 * time.Second},
		{name: "N bit needs both", local: &GracefulRestart{Notification: true}, peer: &GracefulRestart{Time: 5 * time.Second},
			wantGR: true, wantTime: 5 * time.Second, wantV6: true},
		{name: "N bit", local: &GracefulRestart{Notification: true}, peer: &GracefulRestart{Notification: true},
			wantGR: true, wantV6: true, wantN: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lc := baseConfig(64512, 64513, idA)
			lc.GracefulRestart = tc.local
			pc := baseConfig(64513, 64512, idB)
			pc.GracefulRestart = tc.peer
			pc.Families = tc.peerFamilies
			n, err := negotiate(lc.withDefaults(), localOpen(lc.withDefaults()), localOpen(pc.withDefaults()))
			if err != nil {
				t.Fatal(err)
			}
			if (n.GracefulRestart != nil) != tc.wantGR || n.RestartTime() != tc.wantTime || n.GRNotification != tc.wantN {
				t.Fatalf("GR %+v, time %v, N %v", n.GracefulRestart, n.RestartTime(), n.GRNotification)
			}
			if !tc.wantGR {
				return
			}
			if ok, fwd := n.GRFamily(wire.IPv4Unicast); !ok || fwd != tc.peer.Forwarding {
				t.Errorf("IPv4 unicast: %v, forwarding %v", ok, fwd)
			}
			if ok, _ := n.GRFamily(wire.IPv6Unicast); ok != tc.wantV6 {
				t.Errorf("IPv6 unicast: %v", ok)
			}
		})
	}
}

func TestKeepsRoutes(t *testing.T) {
	gr := &Negotiated{GracefulRestart: &wire.GracefulRestart{Families: []wire.GRFamily{{Family: wire.IPv4Unicast}}}}
	grN := &Negotiated{GracefulRestart: gr.GracefulRestart, GRNotification: true}
	noFamilies := &Negotiated{GracefulRestart: &wire.GracefulRestart{}}
	received := func(code, sub uint8) error {
		return &NotificationError{Notification: wire.Notification{Code: code, Subcode: sub}}
	}
	for _, tc := range []struct {
		name   string
		n      *Negotiated
		reason error
		want   bool
	}{
		{"no GR", &Negotiated{}, ErrConnectionClosed, false},
		{"nil", nil, ErrConnectionClosed, false},
		{"no family", noFamilies, ErrConnectionClosed, false},
		{"connection closed", gr, ErrConnectionClosed, true},
		{"the peer opened a new session", gr, ErrPeerRestarted, true},
		{"wrapped TCP error", gr, errors.Join(errors.New("read: connection reset by peer")), true},
		{"our shutdown", gr, ErrShutdown, false},
		{"hold timer", gr, ErrHoldTimerExpired, false},
		{"hold timer, N bit", grN, ErrHoldTimerExpired, true},
		{"notification", gr, received(wire.ErrCodeCease, wire.CeaseAdminShutdown), false},
		{"notification, N bit", grN, received(wire.ErrCodeCease, wire.CeaseAdminShutdown), true},
		{"hard reset, N bit", grN, received(wire.ErrCodeCease, wire.CeaseHardReset), false},
	} {
		if got := tc.n.KeepsRoutes(tc.reason); got != tc.want {
			t.Errorf("%s: KeepsRoutes(%v) = %v", tc.name, tc.reason, got)
		}
	}
}

// TestAbandonKeepsRoutes: a speaker restarting with graceful restart
// leaves without a NOTIFICATION, the peer sees a session end that keeps
// routes, and the next process's first OPEN carries the R bit, its later
// ones not.
func TestAbandonKeepsRoutes(t *testing.T) {
	leakCheck(t)
	ca := baseConfig(64512, 64513, idA)
	ca.GracefulRestart = &GracefulRestart{Time: 60 * time.Second, Forwarding: true}
	cb := baseConfig(64513, 64512, idB)
	cb.GracefulRestart = &GracefulRestart{}
	a, ra, rb, nb := grPair(t, &ca, cb)
	if nb.RestartTime() != 60*time.Second || nb.GracefulRestart.Restarting {
		t.Fatalf("B negotiated %+v", nb.GracefulRestart)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Abandon(ctx); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, ra.down, time.Second, "A down"); !errors.Is(err, ErrShutdown) {
		t.Errorf("A down: %v", err)
	}
	errB := wait(t, rb.down, 5*time.Second, "B down")
	if !nb.KeepsRoutes(errB) {
		t.Fatalf("B down with %v: routes not kept", errB)
	}

	// The restarted process: the R bit on its first session only.
	ca.GracefulRestart.Restarting = true
	a2 := New(ca, ra, testLog(t, "A2"))
	runPeer(t, a2)
	wait(t, ra.established, 5*time.Second, "A2 established")
	nb2 := wait(t, rb.established, 5*time.Second, "B established again")
	if g := nb2.GracefulRestart; g == nil || !g.Restarting {
		t.Fatalf("B saw %+v, want the R bit", g)
	}
	o, err := wire.DecodeOpen(a2.open[wire.HeaderLen:])
	if err != nil {
		t.Fatal(err)
	}
	if g := o.Caps.GracefulRestart; g == nil || g.Restarting || g.Time != 60 || len(g.Families) != 2 || !g.Families[0].Forwarding {
		t.Errorf("A2's next OPEN has %+v, want no R bit and the rest kept", g)
	}
}

// TestStillRestarting: the R bit leaves the OPEN once the restart it
// marks is over by other means than this session coming up.
func TestStillRestarting(t *testing.T) {
	for _, still := range []bool{true, false} {
		t.Run(map[bool]string{true: "still waiting", false: "wait over"}[still], func(t *testing.T) {
			leakCheck(t)
			ca := baseConfig(64512, 64513, idA)
			ca.GracefulRestart = &GracefulRestart{Restarting: true, StillRestarting: func() bool { return still }}
			cb := baseConfig(64513, 64512, idB)
			cb.GracefulRestart = &GracefulRestart{Time: 60 * time.Second}
			_, _, _, nb := grPair(t, &ca, cb)
			if g := nb.GracefulRestart; g == nil || g.Restarting != still {
				t.Fatalf("B saw %+v, want the R bit %v", g, still)
			}
		})
	}
}

// grPair runs A (config ca, given B's port) against a passive B (cb)
// listening on loopback until both are established: A, both recorders,
// and what B negotiated.
func grPair(t *testing.T, ca *Config, cb Config) (a *Peer, ra, rb *recorder, nb Negotiated) {
	t.Helper()
	cb.Passive = true
	ra, rb = newRecorder(), newRecorder()
	b := New(cb, rb, testLog(t, "B"))
	l := listen(t, map[netip.Addr]*Peer{loopback: b})
	ca.PeerPort = port(l)
	a = New(*ca, ra, testLog(t, "A"))
	runPeer(t, b)
	runPeer(t, a)
	wait(t, ra.established, 5*time.Second, "A established")
	nb = wait(t, rb.established, 5*time.Second, "B established")
	return a, ra, rb, nb
}

// grOpen is an OPEN with graceful restart for IPv4 unicast, the R bit as
// restarting.
func grOpen(t *testing.T, id netip.Addr, restarting bool) []byte {
	t.Helper()
	o := wire.NewOpen(64512, 90, id, wire.Capabilities{
		Multiprotocol: []wire.Family{wire.IPv4Unicast, wire.IPv6Unicast},
		GracefulRestart: &wire.GracefulRestart{Time: 60, Restarting: restarting,
			Families: []wire.GRFamily{{Family: wire.IPv4Unicast, Forwarding: true}}}})
	b, err := wire.AppendOpen(nil, o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestNewOpenWhileEstablished: a peer that negotiated graceful restart and
// opens a new session while its old one looks established to us (its TCP
// connection died without a FIN) restarted: the old session ends as a
// restart, its routes kept, and the new one comes up, at once rather than
// at the hold timer. Without graceful restart the established session
// stays (RFC 4271 §6.8).
func TestNewOpenWhileEstablished(t *testing.T) {
	for _, withGR := range []bool{true, false} {
		t.Run(map[bool]string{true: "graceful restart", false: "no graceful restart"}[withGR], func(t *testing.T) {
			leakCheck(t)
			cfg := baseConfig(64512, 64512, idA)
			cfg.Families = []wire.Family{wire.IPv4Unicast, wire.IPv6Unicast}
			cfg.GracefulRestart = &GracefulRestart{}
			rec := newRecorder()
			_, addr := passive(t, cfg, rec)
			open := func(f *fake) {
				if withGR {
					f.write(grOpen(t, idB, false))
				} else {
					f.sendOpen(64512, 90, idB)
				}
			}
			old := dialFake(t, addr)
			old.expect(wire.TypeOpen, 2*time.Second)
			open(old)
			old.expect(wire.TypeKeepalive, 2*time.Second)
			old.sendKeepalive()
			n1 := wait(t, rec.established, 2*time.Second, "first session")

			// The restarted peer dials again; the old connection stays
			// open, as one whose end nobody saw.
			f := dialFake(t, addr)
			if !withGR {
				f.expectNotification(wire.ErrCodeCease, wire.CeaseCollision, 2*time.Second)
				expectNone(t, rec.down, 200*time.Millisecond, "the established session down")
				return
			}
			f.expect(wire.TypeOpen, 2*time.Second)
			open(f)
			reason := wait(t, rec.down, 2*time.Second, "the old session down")
			if !errors.Is(reason, ErrPeerRestarted) || !n1.KeepsRoutes(reason) {
				t.Fatalf("old session ended with %v: routes not kept", reason)
			}
			old.expectClosed(2 * time.Second)
			f.expect(wire.TypeKeepalive, 2*time.Second)
			f.sendKeepalive()
			wait(t, rec.established, 2*time.Second, "the new session")
		})
	}
}

func TestPeerRestarted(t *testing.T) {
	r := &Negotiated{GracefulRestart: &wire.GracefulRestart{Restarting: true}}
	noR := &Negotiated{GracefulRestart: &wire.GracefulRestart{}}
	in, out := &conn{incoming: true}, &conn{}
	for _, tc := range []struct {
		name      string
		c, old    *conn
		n         *Negotiated
		restarted bool
	}{
		{"the peer dialled again", in, in, noR, true},
		{"we dialled again", out, out, noR, true},
		{"opposite directions: a collision", in, out, noR, false},
		{"opposite directions, the R bit", in, out, r, true},
		{"opposite directions, no capability", out, in, &Negotiated{}, false},
	} {
		if got := peerRestarted(tc.c, tc.old, tc.n); got != tc.restarted {
			t.Errorf("%s: peerRestarted = %v", tc.name, got)
		}
	}
}
