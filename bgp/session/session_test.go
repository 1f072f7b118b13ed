package session

import (
	"context"
	"errors"
	"fmt"
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
