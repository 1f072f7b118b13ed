package announce

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/session"
)

// grPeer is loopPeer announcing graceful restart, the R bit when
// restarting.
func grPeer(name string, r *receiver, restarting bool) PeerConfig {
	c := loopPeer(name, r, 64512)
	c.Session.GracefulRestart = &session.GracefulRestart{Time: 120 * time.Second, Forwarding: true, Restarting: restarting}
	return c
}

func restartAnnouncer(t *testing.T, a *Announcer) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kept, err := a.Restart(ctx, "restarting")
	if err != nil {
		t.Fatal(err)
	}
	return kept
}

// TestLoopbackGracefulRestart is the restarting speaker of RFC 4724
// against a helper: Restart leaves the session without a NOTIFICATION and
// withdraws nothing, so the helper keeps the routes; the next process
// comes up with the R bit, sends its set and End-of-RIB, and what it no
// longer announces goes at that End-of-RIB.
func TestLoopbackGracefulRestart(t *testing.T) {
	r := newReceiverGR(t, 64512, "198.51.100.1", loopback, true)
	a := New(Options{RouterID: speakerID, Log: testLog(t, "first")})
	a.Announce("r1", hostRoutes(3, 1))
	if err := a.SetPeers([]PeerConfig{grPeer("r1", r, false)}); err != nil {
		t.Fatal(err)
	}
	runAnnouncer(t, a)
	r.waitFor(t, "the full set and End-of-RIB", func(r *receiver) bool { return len(r.rib) == 4 && len(r.eor) == 2 })
	if st := statusOf(t, a, "r1", synced); !st.GracefulRestart {
		t.Errorf("status does not say graceful restart: %+v", st)
	}
	if kept := restartAnnouncer(t, a); !slices.Equal(kept, []string{"r1"}) {
		t.Errorf("Restart kept %v, want [r1]", kept)
	}
	r.waitFor(t, "the session's end", func(r *receiver) bool { return len(r.downs) == 1 })
	r.mu.Lock()
	var ne *session.NotificationError
	gotNotification := errors.As(r.downs[0], &ne)
	kept, restarts := len(r.rib), slices.Clone(r.restarts)
	r.mu.Unlock()
	if gotNotification || kept != 4 {
		t.Fatalf("after Restart: the helper got %v and keeps %d routes, want no NOTIFICATION and 4", r.downs[0], kept)
	}

	b := New(Options{RouterID: speakerID, Log: testLog(t, "second")})
	b.Announce("r1", hostRoutes(2, 1)) // one IPv4 route fewer than before
	if err := b.SetPeers([]PeerConfig{grPeer("r1", r, true)}); err != nil {
		t.Fatal(err)
	}
	runAnnouncer(t, b)
	r.waitFor(t, "the new session's set and End-of-RIB", func(r *receiver) bool {
		return r.ups == 2 && len(r.eor) == 2 && len(r.rib) == 3 && len(r.stale) == 0
	})
	r.mu.Lock()
	restarts = slices.Clone(r.restarts)
	r.mu.Unlock()
	if !slices.Equal(restarts, []bool{false, true}) {
		t.Errorf("R bits of the sessions: %v, want [false true]", restarts)
	}
}

// TestLoopbackRestartWithoutGR: a session without graceful restart
// withdraws and closes with Cease on Restart, as on Shutdown.
func TestLoopbackRestartWithoutGR(t *testing.T) {
	for _, tc := range []struct {
		name   string
		helper bool // the receiver announces graceful restart
		ours   bool // the announcer does
	}{{"peer without graceful restart", false, true}, {"speaker without graceful restart", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newReceiverGR(t, 64512, "198.51.100.1", loopback, tc.helper)
			a := New(Options{RouterID: speakerID, Log: testLog(t, "announcer")})
			a.Announce("r1", hostRoutes(3, 0))
			c := loopPeer("r1", r, 64512)
			if tc.ours {
				c = grPeer("r1", r, false)
			}
			if err := a.SetPeers([]PeerConfig{c}); err != nil {
				t.Fatal(err)
			}
			runAnnouncer(t, a)
			r.waitFor(t, "the full set", func(r *receiver) bool { return len(r.rib) == 3 && len(r.eor) > 0 })
			if kept := restartAnnouncer(t, a); len(kept) != 0 {
				t.Errorf("Restart kept %v", kept)
			}
			r.waitFor(t, "withdrawals, then Cease", func(r *receiver) bool { return len(r.downs) == 1 })
			r.mu.Lock()
			defer r.mu.Unlock()
			var ne *session.NotificationError
			if !errors.As(r.downs[0], &ne) || r.ribAtEnd[0] != 0 {
				t.Errorf("session ended with %v holding %d routes, want a Cease and none", r.downs[0], r.ribAtEnd[0])
			}
		})
	}
}

func TestSameSessionIgnoresRestartBit(t *testing.T) {
	x := session.Config{LocalAS: 1, GracefulRestart: &session.GracefulRestart{Time: time.Minute, Restarting: true}}
	y := x
	y.GracefulRestart = &session.GracefulRestart{Time: time.Minute}
	if !sameSession(x, y) {
		t.Error("the R bit alone restarts the session")
	}
	y.GracefulRestart = &session.GracefulRestart{Time: 2 * time.Minute}
	if sameSession(x, y) {
		t.Error("a new restart time does not restart the session")
	}
	y.GracefulRestart = nil
	if sameSession(x, y) {
		t.Error("turning graceful restart off does not restart the session")
	}
}
