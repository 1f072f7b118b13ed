package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
)

// pair starts B passive behind a listener and A connecting to it; it
// returns both once established.
func pair(t *testing.T, ca, cb Config) (a, b *Peer, ra, rb *recorder, na, nb Negotiated) {
	t.Helper()
	return pairWith(t, ca, cb, nil, nil)
}

// pairWith is pair with the given recorders (nil for new ones).
func pairWith(t *testing.T, ca, cb Config, ra, rb *recorder) (a, b *Peer, _, _ *recorder, na, nb Negotiated) {
	t.Helper()
	if ra == nil {
		ra = newRecorder()
	}
	if rb == nil {
		rb = newRecorder()
	}
	cb.Passive = true
	b = New(cb, rb, testLog(t, "B"))
	l := listen(t, map[netip.Addr]*Peer{loopback: b})
	ca.PeerPort = port(l)
	a = New(ca, ra, testLog(t, "A"))
	runPeer(t, b)
	runPeer(t, a)
	na = wait(t, ra.established, 5*time.Second, "A established")
	nb = wait(t, rb.established, 5*time.Second, "B established")
	return a, b, ra, rb, na, nb
}

func TestTwoPeersExchangeUpdates(t *testing.T) {
	leakCheck(t)
	ca := baseConfig(64512, 64512, idA)
	ca.ExtendedMessage, ca.RouteRefresh = true, true
	cb := baseConfig(64512, 64512, idB)
	cb.HoldTime = 30 * time.Second
	cb.ExtendedMessage = true
	a, b, ra, rb, na, nb := pair(t, ca, cb)

	if a.State() != Established || b.State() != Established {
		t.Fatalf("states %v %v", a.State(), b.State())
	}
	if na.HoldTime != 9*time.Second || nb.HoldTime != 9*time.Second || na.KeepaliveTime != 3*time.Second {
		t.Errorf("hold %v/%v keepalive %v, want 9s/9s/3s", na.HoldTime, nb.HoldTime, na.KeepaliveTime)
	}
	if !na.ExtendedMessage || !na.Rx.ExtendedMessage || na.RouteRefresh || na.External || na.PeerID != idB {
		t.Errorf("A negotiated %+v", na)
	}
	if nb.Remote.Port() == 0 || nb.Remote != na.Local {
		t.Errorf("endpoints: A local %v, B remote %v", na.Local, nb.Remote)
	}

	// 2000 routes need several 4096-byte messages without extended
	// messages; with them, one. Both must arrive whole.
	msgs := updates(t, 2000, na.Tx)
	eor := (&wire.Encoder{Options: na.Tx}).AppendEndOfRIB(nil, wire.IPv4Unicast)
	if err := a.Send(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(context.Background(), eor); err != nil {
		t.Fatal(err)
	}
	got := 0
	for got < 2000 {
		u := wait(t, rb.updates, 5*time.Second, "updates")
		if u.action != wire.ActionNone || u.nextHop != netip.MustParseAddr("198.51.100.11") {
			t.Fatalf("update %v", u)
		}
		got += len(u.nlri)
	}
	if got != 2000 {
		t.Errorf("got %d prefixes, want 2000", got)
	}
	if f := wait(t, rb.eor, 5*time.Second, "End-of-RIB"); f != wire.IPv4Unicast {
		t.Errorf("End-of-RIB for %v", f)
	}
	// A's writer counts after its write returns, which may be after B read.
	var ia, ib Info
	eventually(t, time.Second, func() bool {
		ia, ib = a.Info(), b.Info()
		return ia.UpdatesOut >= 2 && ib.UpdatesIn == ia.UpdatesOut && ib.MsgsIn >= ib.UpdatesIn+2
	}, func() string {
		return fmt.Sprintf("counters: A out %d/%d msgs, B in %d/%d msgs", ia.UpdatesOut, ia.MsgsOut, ib.UpdatesIn, ib.MsgsIn)
	})
	if ia.Negotiated == nil || ia.Since.IsZero() || ia.Remote.Port() != nb.Local.Port() {
		t.Errorf("A info %+v", ia)
	}
	// Send refuses what is not an UPDATE.
	if err := a.Send(context.Background(), wire.AppendKeepalive(nil)); err == nil {
		t.Error("Send accepted a KEEPALIVE")
	}
	expectNone(t, ra.down, 100*time.Millisecond, "A down")
}

func TestShutdownMessageReachesPeer(t *testing.T) {
	leakCheck(t)
	a, b, ra, rb, _, _ := pair(t, baseConfig(64512, 64513, idA), baseConfig(64513, 64512, idB))
	const msg = "maintenance: router replaced, back at 14:00 ✓"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx, msg); err != nil {
		t.Fatal(err)
	}
	errA := wait(t, ra.down, time.Second, "A down")
	if !errors.Is(errA, ErrShutdown) {
		t.Errorf("A down: %v", errA)
	}
	errB := wait(t, rb.down, 5*time.Second, "B down")
	var ne *NotificationError
	if !errors.As(errB, &ne) || ne.Sent {
		t.Fatalf("B down: %v, want a received NOTIFICATION", errB)
	}
	if got, ok := ne.Notification.ShutdownMessage(); !ok || got != msg || ne.Notification.Subcode != wire.CeaseAdminShutdown {
		t.Errorf("shutdown message %q (%v), want %q", got, ne.Notification, msg)
	}
	if a.State() != Idle {
		t.Errorf("A state after Shutdown: %v", a.State())
	}
	if err := b.Info().LastError; !errors.As(err, &ne) {
		t.Errorf("B last error %v", err)
	}
	// A is stopped for good: B stays down, and Send fails.
	expectNone(t, rb.established, 800*time.Millisecond, "B established again")
	if err := a.Send(ctx, updates(t, 1, wire.Options{})); !errors.Is(err, ErrNotEstablished) {
		t.Errorf("Send after Shutdown: %v", err)
	}
}

func TestHandlerErrorResetsAndActivePeerReconnects(t *testing.T) {
	leakCheck(t)
	var calls atomic.Int32
	rb := newRecorder()
	rb.onUpdate = func(*wire.Update, wire.Action) error {
		if calls.Add(1) == 1 {
			return &NotificationError{Notification: wire.Notification{Code: wire.ErrCodeCease, Subcode: wire.CeaseMaxPrefixes}}
		}
		return nil
	}
	a, _, ra, _, na, _ := pairWith(t, baseConfig(64512, 64512, idA), baseConfig(64512, 64512, idB), nil, rb)
	if err := a.Send(context.Background(), updates(t, 3, na.Tx)); err != nil {
		t.Fatal(err)
	}
	errA := wait(t, ra.down, 5*time.Second, "A down")
	var ne *NotificationError
	if !errors.As(errA, &ne) || ne.Sent || ne.Notification.Code != wire.ErrCodeCease || ne.Notification.Subcode != wire.CeaseMaxPrefixes {
		t.Fatalf("A down: %v, want received Cease / Maximum Number of Prefixes", errA)
	}
	errB := wait(t, rb.down, 5*time.Second, "B down")
	if !errors.As(errB, &ne) || !ne.Sent {
		t.Fatalf("B down: %v, want the NOTIFICATION B sent", errB)
	}
	// Both come back on their own: A reconnects after ConnectRetry.
	na = wait(t, ra.established, 5*time.Second, "A re-established")
	wait(t, rb.established, 5*time.Second, "B re-established")
	if err := a.Send(context.Background(), updates(t, 3, na.Tx)); err != nil {
		t.Fatal(err)
	}
	if u := wait(t, rb.updates, 5*time.Second, "update after reconnect"); len(u.nlri) != 3 {
		t.Errorf("update %v", u)
	}
	if f := a.Info().Flaps; f != 1 {
		t.Errorf("A flaps %d, want 1", f)
	}
}

// TestCloseSendsItsNotification: Close ends the session with the
// NOTIFICATION it is given, Shutdown with Cease / Administrative Shutdown
// and its message; either way the peer is stopped for good.
func TestCloseSendsItsNotification(t *testing.T) {
	leakCheck(t)
	cases := []struct {
		name  string
		close func(ctx context.Context, p *Peer) error
		sub   uint8
		msg   string // the shutdown communication, if any
	}{
		{"peer de-configured", func(ctx context.Context, p *Peer) error {
			return p.Close(ctx, &wire.Notification{Code: wire.ErrCodeCease, Subcode: wire.CeasePeerDeconfigured})
		}, wire.CeasePeerDeconfigured, ""},
		{"other configuration change", func(ctx context.Context, p *Peer) error {
			return p.Close(ctx, &wire.Notification{Code: wire.ErrCodeCease, Subcode: wire.CeaseOtherConfigChange})
		}, wire.CeaseOtherConfigChange, ""},
		{"nil is administrative shutdown", func(ctx context.Context, p *Peer) error { return p.Close(ctx, nil) },
			wire.CeaseAdminShutdown, ""},
		{"Shutdown", func(ctx context.Context, p *Peer) error { return p.Shutdown(ctx, "going away") },
			wire.CeaseAdminShutdown, "going away"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, _, ra, rb, _, _ := pair(t, baseConfig(64512, 64513, idA), baseConfig(64513, 64512, idB))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := tc.close(ctx, a); err != nil {
				t.Fatal(err)
			}
			var ne *NotificationError
			errA := wait(t, ra.down, time.Second, "A down")
			if !errors.Is(errA, ErrShutdown) || !errors.As(errA, &ne) || !ne.Sent || ne.Notification.Subcode != tc.sub {
				t.Errorf("A down: %v", errA)
			}
			errB := wait(t, rb.down, 5*time.Second, "B down")
			if !errors.As(errB, &ne) || ne.Sent || ne.Notification.Code != wire.ErrCodeCease || ne.Notification.Subcode != tc.sub {
				t.Fatalf("B down: %v, want a received %s", errB, wire.CodeString(wire.ErrCodeCease, tc.sub))
			}
			if msg, _ := ne.Notification.ShutdownMessage(); msg != tc.msg {
				t.Errorf("shutdown message %q, want %q", msg, tc.msg)
			}
			if a.State() != Idle {
				t.Errorf("A state after Close: %v", a.State())
			}
			expectNone(t, rb.established, 800*time.Millisecond, "B established again")
			if err := a.Close(ctx, nil); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

// TestRunInvalidConfig: a Run that refuses its config still stops the
// peer: Close and Shutdown return at once, incoming connections are
// closed, and Run cannot be started again.
func TestRunInvalidConfig(t *testing.T) {
	leakCheck(t)
	cases := []struct {
		name string
		cfg  func(*Config)
	}{
		{"no local AS", func(c *Config) { c.LocalAS = 0 }},
		{"hold time 1s", func(c *Config) { c.HoldTime = time.Second }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(64512, 64512, idA)
			tc.cfg(&cfg)
			p := New(cfg, newRecorder(), testLog(t, "P"))
			if err := p.Run(context.Background()); !errors.Is(err, ErrConfig) {
				t.Fatalf("Run: %v, want a config error", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			start := time.Now()
			if err := p.Shutdown(ctx, "bye"); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
			if err := p.Close(ctx, nil); err != nil {
				t.Errorf("Close: %v", err)
			}
			if el := time.Since(start); el > time.Second {
				t.Errorf("Shutdown and Close took %v", el)
			}
			ours, theirs := net.Pipe()
			defer theirs.Close()
			p.Accept(ours)
			_ = theirs.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := theirs.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
				t.Errorf("connection accepted by a stopped peer: read %v", err)
			}
			if err := p.Run(context.Background()); !errors.Is(err, ErrAlreadyRunning) {
				t.Errorf("second Run: %v", err)
			}
		})
	}
}
