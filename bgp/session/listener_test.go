package session

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
)

func TestUnderLimits(t *testing.T) {
	tests := []struct {
		total, fromSource, maxTotal, maxPerSource int
		want                                      bool
	}{
		{0, 0, 1, 1, true},
		{1, 0, 1, 8, false},
		{3, 2, 10, 2, false},
		{3, 1, 10, 2, true},
		{5000, 5000, -1, -1, true},
		{9, 9, 10, -1, true},
	}
	for _, tc := range tests {
		if got := underLimits(tc.total, tc.fromSource, tc.maxTotal, tc.maxPerSource); got != tc.want {
			t.Errorf("underLimits%v = %v", tc, got)
		}
	}
}

func TestRateLog(t *testing.T) {
	var r rateLog
	t0 := time.Unix(1000, 0)
	for i, st := range []struct {
		at   time.Duration
		ok   bool
		held int
	}{{0, true, 0}, {time.Second, false, 0}, {2 * time.Second, false, 0}, {10 * time.Second, true, 2}, {11 * time.Second, false, 0}} {
		held, ok := r.allow(t0.Add(st.at), 10*time.Second)
		if ok != st.ok || held != st.held {
			t.Errorf("step %d: %d %v, want %d %v", i, held, ok, st.held, st.ok)
		}
	}
}

// dynamicListener runs a listener whose Dispatch creates a passive peer per
// connection, as the router does for dynamic neighbours.
func dynamicListener(t *testing.T, o ListenOptions, rec *recorder) *Listener {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	l, err := ListenWithOptions([]netip.AddrPort{netip.AddrPortFrom(loopback, 0)}, func(remote, _ netip.AddrPort) (*Peer, bool) {
		cfg := baseConfig(64512, 64512, idA)
		cfg.Passive, cfg.PeerAddr = true, remote.Addr()
		p := New(cfg, rec, nil)
		wg.Go(func() { _ = p.Run(ctx) })
		return p, true
	}, testLog(t, "L"), o)
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { _ = l.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return l
}

// dialFrom connects from a loopback source address.
func dialFrom(t *testing.T, src netip.Addr, to netip.AddrPort) *fake {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}, Timeout: 2 * time.Second}
	nc, err := d.Dial("tcp4", to.String())
	if err != nil {
		t.Fatal(err)
	}
	return newFake(t, nc)
}

// dialRefused checks that a connection from src is closed without an OPEN
// (the reset may already fail the dial).
func dialRefused(t *testing.T, src netip.Addr, to netip.AddrPort) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}, Timeout: 2 * time.Second}
	nc, err := d.Dial("tcp4", to.String())
	if errors.Is(err, syscall.ECONNRESET) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	f := newFake(t, nc)
	m, err := f.read(2 * time.Second)
	if err == nil {
		t.Fatalf("got %s, want the connection refused", wire.MessageTypeString(wire.MessageType(m)))
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("connection still open")
	}
}

// TestListenerBoundsPendingConnections: connections that never finish the
// OPEN exchange are capped per source and in all, and closed after
// OpenTimeout; a session that is established leaves the count.
func TestListenerBoundsPendingConnections(t *testing.T) {
	leakCheck(t)
	rec := newRecorder()
	srcA, srcB := netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")
	l := dynamicListener(t, ListenOptions{MaxPending: 3, MaxPendingPerSource: 2, OpenTimeout: time.Hour}, rec)
	addr := l.Addrs()[0]

	// Two silent connections from A are taken (each gets our OPEN), the
	// third from A is over the per-source cap.
	var silent []*fake
	for range 2 {
		f := dialFrom(t, srcA, addr)
		f.expect(wire.TypeOpen, 2*time.Second)
		silent = append(silent, f)
	}
	dialRefused(t, srcA, addr)
	// B may have one: the global cap is 3.
	fb := dialFrom(t, srcB, addr)
	fb.expect(wire.TypeOpen, 2*time.Second)
	dialRefused(t, srcB, addr)
	if s := l.Stats(); s.Refused != 2 || s.Pending != 3 {
		t.Fatalf("stats %+v, want 2 refused, 3 pending", s)
	}
	// B's session comes up: it is no longer pending, so A may connect again.
	fb.sendOpen(64512, 90, idB)
	fb.expect(wire.TypeKeepalive, 2*time.Second)
	fb.sendKeepalive()
	wait(t, rec.established, 2*time.Second, "established")
	eventually(t, 2*time.Second, func() bool { return l.Stats().Pending == 2 }, func() string { return fmt.Sprint(l.Stats()) })
	// A closing its silent connection frees its slot too.
	silent[0].nc.Close()
	eventually(t, 2*time.Second, func() bool { return l.Stats().Pending == 1 }, func() string { return fmt.Sprint(l.Stats()) })
	dialFrom(t, srcA, addr).expect(wire.TypeOpen, 2*time.Second)
}

// TestListenerOpenTimeout: an accepted connection that sends no OPEN is
// closed after OpenTimeout, not the OpenSent hold time of 4 minutes.
func TestListenerOpenTimeout(t *testing.T) {
	leakCheck(t)
	l := dynamicListener(t, ListenOptions{OpenTimeout: 200 * time.Millisecond}, newRecorder())
	f := dialFrom(t, loopback, l.Addrs()[0])
	f.expect(wire.TypeOpen, 2*time.Second)
	f.expectClosed(3 * time.Second)
	eventually(t, 2*time.Second, func() bool { s := l.Stats(); return s.OpenTimeouts == 1 && s.Pending == 0 },
		func() string { return fmt.Sprint(l.Stats()) })
}
