package session

import (
	"fmt"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
)

func TestIdleHold(t *testing.T) {
	const s = time.Second
	tests := []struct {
		first, most time.Duration
		failures    int
		want        time.Duration
	}{
		{5 * s, 120 * s, 0, 0},
		{5 * s, 120 * s, 1, 0}, // the first failure restarts as usual
		{5 * s, 120 * s, 2, 5 * s},
		{5 * s, 120 * s, 3, 10 * s},
		{5 * s, 120 * s, 4, 20 * s},
		{5 * s, 120 * s, 6, 80 * s},
		{5 * s, 120 * s, 7, 120 * s}, // capped
		{5 * s, 120 * s, 1000, 120 * s},
		{5 * s, -1, 10, 0},  // damping off
		{0, 120 * s, 10, 0}, // nothing to double
		{200 * s, 120 * s, 2, 120 * s},
	}
	for _, tc := range tests {
		if got := idleHold(tc.first, tc.most, tc.failures); got != tc.want {
			t.Errorf("idleHold(%v, %v, %d) = %v, want %v", tc.first, tc.most, tc.failures, got, tc.want)
		}
	}
}

// TestFailedCountsInARow: failures add up while sessions fail, and a session
// that stayed Established for MaxIdleHoldTime starts the count again.
func TestFailedCountsInARow(t *testing.T) {
	cfg := baseConfig(64512, 64512, idA)
	cfg.IdleHoldTime, cfg.MaxIdleHoldTime = time.Second, time.Minute
	cfg = cfg.withDefaults()
	r := &runner{p: New(cfg, newRecorder(), nil), cfg: cfg}
	t0 := time.Unix(1_000_000, 0)
	upgrade := &NotificationError{Notification: *wire.NewShutdown(wire.CeaseAdminShutdown, "upgrade")}
	ours := &NotificationError{Notification: *wire.NewShutdown(wire.CeaseAdminShutdown, "bye"), Sent: true}
	steps := []struct {
		established time.Duration // how long a session was up before failing; 0: none came up
		reason      error
		want        time.Duration
	}{
		{0, nil, 0},
		{0, nil, time.Second},
		{10 * time.Second, nil, 2 * time.Second}, // short-lived: still oscillating
		{0, nil, 4 * time.Second},
		{10 * time.Second, upgrade, 0}, // the peer's own Cease: no failure, the count stays
		{0, ours, 8 * time.Second},     // our Cease is no excuse for the peer
		{time.Minute, nil, 0},          // stable for MaxIdleHoldTime: first failure again
		{0, nil, time.Second},
	}
	now := t0
	for i, st := range steps {
		if st.established > 0 {
			r.estSince = now
			now = now.Add(st.established)
		}
		if got := r.failed(now, st.reason); got != st.want {
			t.Fatalf("step %d: hold %v, want %v", i, got, st.want)
		}
		if st.want > 0 && !r.holdUntil.Equal(now.Add(st.want)) {
			t.Fatalf("step %d: hold until %v", i, r.holdUntil)
		}
		now = now.Add(time.Second)
	}
}

// TestDampedPeerRefusesConnections: a passive peer whose sessions keep
// failing stays Idle after the second failure and closes incoming
// connections without an OPEN until the idle hold ends.
func TestDampedPeerRefusesConnections(t *testing.T) {
	leakCheck(t)
	cfg := baseConfig(64512, 64512, idA)
	cfg.IdleHoldTime = time.Hour
	rec := newRecorder()
	p, addr := passive(t, cfg, rec)
	for range 2 {
		f := dialFake(t, addr)
		f.expect(wire.TypeOpen, 2*time.Second)
		f.sendOpen(65000, 90, idB) // wrong AS
		f.expectNotification(wire.ErrCodeOpen, wire.ErrSubBadPeerAS, 2*time.Second)
		f.expectClosed(2 * time.Second)
		eventually(t, 2*time.Second, func() bool { return p.State() != OpenSent },
			func() string { return "still in OpenSent" })
	}
	f := dialFake(t, addr)
	if m, err := f.read(2 * time.Second); err == nil {
		t.Fatalf("damped peer answered with %s", wire.MessageTypeString(wire.MessageType(m)))
	}
	eventually(t, 2*time.Second, func() bool { return p.Info().RefusedDamped == 1 },
		func() string { return "RefusedDamped not counted" })
}

// TestDeliberateCeaseIsNoFailure: a peer that ends its sessions with a
// Cease / Administrative Shutdown (a node restarting its speaker for an
// upgrade) is never damped, however often it does so.
func TestDeliberateCeaseIsNoFailure(t *testing.T) {
	leakCheck(t)
	cfg := baseConfig(64512, 64512, idA)
	cfg.IdleHoldTime = time.Hour
	p, addr := passive(t, cfg, newRecorder())
	for i := range 4 {
		f := dialFake(t, addr)
		f.expect(wire.TypeOpen, 2*time.Second)
		f.sendOpen(64512, 90, idB)
		f.expect(wire.TypeKeepalive, 2*time.Second)
		f.sendKeepalive()
		eventually(t, 2*time.Second, func() bool { return p.State() == Established },
			func() string { return fmt.Sprintf("session %d not established: %v", i, p.State()) })
		f.write(wire.AppendNotification(nil, wire.NewShutdown(wire.CeaseAdminShutdown, "upgrade"), nil))
		f.expectClosed(2 * time.Second)
		eventually(t, 2*time.Second, func() bool { return p.State() != Established },
			func() string { return "still Established after the Cease" })
	}
	if n := p.Info().RefusedDamped; n != 0 {
		t.Fatalf("%d connections refused: a peer's administrative shutdowns were counted as failures", n)
	}
}
