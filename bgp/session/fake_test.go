package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
)

// passive runs a passive peer for 127.0.0.1 behind a listener and returns
// it with the listener's address, for fakes to dial.
func passive(t *testing.T, cfg Config, h Handler) (*Peer, netip.AddrPort) {
	t.Helper()
	cfg.Passive = true
	p := New(cfg, h, testLog(t, "P"))
	l := listen(t, map[netip.Addr]*Peer{loopback: p})
	runPeer(t, p)
	return p, l.Addrs()[0]
}

func TestOpenRefused(t *testing.T) {
	leakCheck(t)
	cases := []struct {
		name     string
		cfg      func(*Config)
		act      func(f *fake)
		code     uint8
		sub      uint8
		noReopen bool
	}{
		{"wrong peer AS", nil, func(f *fake) { f.sendOpen(65000, 90, idB) }, wire.ErrCodeOpen, wire.ErrSubBadPeerAS, false},
		{"iBGP with our router ID", nil, func(f *fake) { f.sendOpen(64512, 90, idA) }, wire.ErrCodeOpen, wire.ErrSubBadBGPIdentifier, false},
		{"hold time below minimum", func(c *Config) { c.MinHoldTime = 10 * time.Second },
			func(f *fake) { f.sendOpen(64512, 3, idB) }, wire.ErrCodeOpen, wire.ErrSubUnacceptableHoldTime, false},
		{"hold time 1 s", nil, func(f *fake) {
			b, _ := wire.AppendOpen(nil, wire.NewOpen(64512, 90, idB, wire.Capabilities{}))
			b[wire.HeaderLen+4] = 1 // hold time low byte
			f.write(b)
		}, wire.ErrCodeOpen, wire.ErrSubUnacceptableHoldTime, false},
		{"UPDATE before OPEN", nil, func(f *fake) { f.write(updates(f.t, 1, wire.Options{})) },
			wire.ErrCodeFSM, wire.ErrSubFSMUnexpectedOpenSent, false},
		{"KEEPALIVE in OpenSent", nil, func(f *fake) { f.sendKeepalive() },
			wire.ErrCodeFSM, wire.ErrSubFSMUnexpectedOpenSent, false},
		{"bad marker", nil, func(f *fake) {
			b := wire.AppendKeepalive(nil)
			b[3] = 0
			f.write(b)
		}, wire.ErrCodeHeader, wire.ErrSubConnNotSynchronized, false},
		{"second OPEN in OpenConfirm", nil, func(f *fake) {
			f.sendOpen(64512, 90, idB)
			f.expect(wire.TypeKeepalive, 2*time.Second)
			f.sendOpen(64512, 90, idB)
		}, wire.ErrCodeFSM, wire.ErrSubFSMUnexpectedOpenConfirm, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(64512, 64512, idA)
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			rec := newRecorder()
			p, addr := passive(t, cfg, rec)
			f := dialFake(t, addr)
			f.expect(wire.TypeOpen, 2*time.Second)
			tc.act(f)
			f.expectNotification(tc.code, tc.sub, 2*time.Second)
			f.expectClosed(2 * time.Second)
			var ne *NotificationError
			if err := p.Info().LastError; !errors.As(err, &ne) || !ne.Sent || ne.Notification.Code != tc.code {
				t.Errorf("last error %v", err)
			}
			expectNone(t, rec.established, 0, "established")
			// The passive peer takes the next connection at once.
			f2 := dialFake(t, addr)
			f2.establish(64512, 90, idB)
			wait(t, rec.established, 2*time.Second, "established on the second try")
		})
	}
}

func TestHoldTimerExpires(t *testing.T) {
	leakCheck(t)
	cfg := baseConfig(64512, 64512, idA)
	cfg.HoldTime = 3 * time.Second
	rec := newRecorder()
	_, addr := passive(t, cfg, rec)
	f := dialFake(t, addr)
	f.establish(64512, 90, idB)
	n := wait(t, rec.established, 2*time.Second, "established")
	if n.HoldTime != 3*time.Second || n.KeepaliveTime != time.Second {
		t.Fatalf("hold %v keepalive %v", n.HoldTime, n.KeepaliveTime)
	}
	start := time.Now()
	// The fake says nothing more; the peer keeps sending KEEPALIVEs (about
	// one a second) until its hold timer expires.
	keepalives := 0
	var notif *wire.Notification
	for notif == nil {
		m, err := f.read(5 * time.Second)
		if err != nil {
			t.Fatalf("after %d keepalives: %v", keepalives, err)
		}
		switch m := m.(type) {
		case wire.Keepalive:
			keepalives++
		case *wire.Notification:
			notif = m
		}
	}
	elapsed := time.Since(start)
	if notif.Code != wire.ErrCodeHoldTimer {
		t.Errorf("NOTIFICATION %v, want Hold Timer Expired", notif)
	}
	if elapsed < 2900*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("hold timer expired after %v, want about 3s", elapsed)
	}
	if keepalives < 2 || keepalives > 4 {
		t.Errorf("%d keepalives in 3 s, want 2 to 4 (jittered 1 s interval)", keepalives)
	}
	if err := wait(t, rec.down, 2*time.Second, "down"); !errors.Is(err, ErrHoldTimerExpired) {
		t.Errorf("down: %v", err)
	}
}

func TestZeroHoldTimeMeansNoKeepalives(t *testing.T) {
	leakCheck(t)
	cfg := baseConfig(64512, 64512, idA)
	cfg.HoldTime = 3 * time.Second
	rec := newRecorder()
	p, addr := passive(t, cfg, rec)
	f := dialFake(t, addr)
	f.establish(64512, 0, idB)
	if n := wait(t, rec.established, 2*time.Second, "established"); n.HoldTime != 0 || n.KeepaliveTime != 0 {
		t.Fatalf("hold %v keepalive %v, want 0", n.HoldTime, n.KeepaliveTime)
	}
	if m, err := f.read(2 * time.Second); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("got %v %v, want silence", m, err)
	}
	if p.State() != Established {
		t.Errorf("state %v", p.State())
	}
}

func TestMalformedUpdates(t *testing.T) {
	leakCheck(t)
	rec := newRecorder()
	_, addr := passive(t, baseConfig(64512, 64512, idA), rec)
	f := dialFake(t, addr)
	f.establish(64512, 90, idB)
	wait(t, rec.established, 2*time.Second, "established")

	good := updates(t, 2, wire.Options{AS4: true})
	// RFC 7606 §7.1: a bad ORIGIN value is treat-as-withdraw.
	bad := bytes.Clone(good)
	i := bytes.Index(bad, []byte{wire.FlagTransitive, wire.AttrOrigin, 1, 0})
	if i < 0 {
		t.Fatal("no ORIGIN in the encoded UPDATE")
	}
	bad[i+3] = 7
	f.write(bad)
	u := wait(t, rec.updates, 2*time.Second, "treat-as-withdraw update")
	if u.action != wire.TreatAsWithdraw || len(u.nlri) != 2 {
		t.Errorf("got %v, want treat-as-withdraw of 2 prefixes", u)
	}
	f.write(good)
	if u := wait(t, rec.updates, 2*time.Second, "good update"); u.action != wire.ActionNone || len(u.nlri) != 2 {
		t.Errorf("got %v", u)
	}
	expectNone(t, rec.down, 0, "down")

	// A withdrawn-routes length past the message resets the session.
	reset := bytes.Clone(good)
	reset[wire.HeaderLen] = 0xff
	f.write(reset)
	f.expectNotification(wire.ErrCodeUpdate, wire.ErrSubMalformedAttrList, 2*time.Second)
	err := wait(t, rec.down, 2*time.Second, "down")
	if !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("down: %v, want a malformation", err)
	}
}

func TestPanicResetsOnlyThatPeer(t *testing.T) {
	leakCheck(t)
	second := netip.MustParseAddr("127.0.0.2")
	r1, r2 := newRecorder(), newRecorder()
	var once sync.Once
	r1.onUpdate = func(*wire.Update, wire.Action) error {
		once.Do(func() { panic("handler bug") })
		return nil
	}
	c1, c2 := baseConfig(64512, 64512, idA), baseConfig(64512, 64512, idA)
	c1.Passive, c2.Passive, c2.PeerAddr = true, true, second
	p1, p2 := New(c1, r1, testLog(t, "P1")), New(c2, r2, testLog(t, "P2"))
	l := listen(t, map[netip.Addr]*Peer{loopback: p1, second: p2})
	runPeer(t, p1)
	runPeer(t, p2)
	f1 := dialFake(t, l.Addrs()[0])
	nc, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: second.AsSlice()}}).Dial("tcp4", l.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	f2 := newFake(t, nc)
	f1.establish(64512, 90, idB)
	f2.establish(64512, 90, netip.MustParseAddr("198.51.100.3"))
	wait(t, r1.established, 2*time.Second, "P1 established")
	wait(t, r2.established, 2*time.Second, "P2 established")

	f1.write(updates(t, 1, wire.Options{AS4: true}))
	n := f1.expectNotification(wire.ErrCodeCease, wire.CeaseAdminReset, 2*time.Second)
	if msg, _ := n.ShutdownMessage(); msg != "internal error" {
		t.Errorf("shutdown message %q", msg)
	}
	wait(t, r1.down, 2*time.Second, "P1 down")

	// P2 never noticed, and P1 takes a new session.
	f2.write(updates(t, 1, wire.Options{AS4: true}))
	wait(t, r2.updates, 2*time.Second, "P2 update")
	expectNone(t, r2.down, 0, "P2 down")
	f3 := dialFake(t, l.Addrs()[0])
	f3.establish(64512, 90, idB)
	wait(t, r1.established, 2*time.Second, "P1 established again")
	f3.write(updates(t, 1, wire.Options{AS4: true}))
	wait(t, r1.updates, 2*time.Second, "P1 update after the panic")
	if p1.State() != Established || p2.State() != Established {
		t.Errorf("states %v %v", p1.State(), p2.State())
	}
}

func TestSendHoldTimer(t *testing.T) {
	leakCheck(t)
	cfg := baseConfig(64512, 64512, idA)
	cfg.SendHoldTime = time.Second
	rec := newRecorder()
	p, addr := passive(t, cfg, rec)
	// The fake reads the OPEN exchange, then never reads again from a tiny
	// receive window, while it keeps sending KEEPALIVEs: only the send
	// hold timer can notice.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return control(rc, func(fd uintptr) error {
			return syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	nc, err := d.Dial("tcp4", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	f := newFake(t, nc)
	f.establish(64512, 90, idB)
	n := wait(t, rec.established, 2*time.Second, "established")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); wg.Wait() })
	wg.Go(func() {
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := nc.Write(wire.AppendKeepalive(nil)); err != nil {
					return
				}
			}
		}
	})
	msgs := updates(t, 1000, n.Tx)
	start := time.Now()
	wg.Go(func() {
		for p.Send(context.Background(), msgs) == nil {
		}
	})
	err = wait(t, rec.down, 10*time.Second, "down")
	if !errors.Is(err, ErrSendHoldTimerExpired) {
		t.Errorf("down: %v, want send hold timer expired", err)
	}
	if el := time.Since(start); el < time.Second {
		t.Errorf("down after %v, before the send hold time", el)
	}
}

// TestSendToRefusesAnotherSession: SendTo delivers only on the session it
// names; once that session is gone, its bytes never reach the next one.
func TestSendToRefusesAnotherSession(t *testing.T) {
	leakCheck(t)
	rec := newRecorder()
	p, addr := passive(t, baseConfig(64512, 64512, idA), rec)
	ctx := context.Background()
	f1 := dialFake(t, addr)
	f1.establish(64512, 90, idB)
	tx := wait(t, rec.established, 2*time.Second, "established").Tx
	n1 := p.Info().Negotiated
	if err := p.SendTo(ctx, n1, updates(t, 1, tx)); err != nil {
		t.Fatalf("SendTo the current session: %v", err)
	}
	f1.expect(wire.TypeUpdate, 2*time.Second)
	lookalike := *n1
	for _, n := range []*Negotiated{&lookalike, nil} {
		if err := p.SendTo(ctx, n, updates(t, 1, tx)); !errors.Is(err, ErrSessionChanged) {
			t.Errorf("SendTo %p: %v, want ErrSessionChanged", n, err)
		}
	}

	f1.nc.Close()
	wait(t, rec.down, 2*time.Second, "down")
	if err := p.SendTo(ctx, n1, updates(t, 1, tx)); !errors.Is(err, ErrSessionChanged) {
		t.Errorf("SendTo while down: %v, want ErrSessionChanged", err)
	}
	f2 := dialFake(t, addr)
	f2.establish(64512, 90, idB)
	wait(t, rec.established, 2*time.Second, "established again")
	n2 := p.Info().Negotiated
	if err := p.SendTo(ctx, n1, updates(t, 2, tx)); !errors.Is(err, ErrSessionChanged) {
		t.Errorf("SendTo the old session: %v, want ErrSessionChanged", err)
	}
	if err := p.SendTo(ctx, n2, updates(t, 1, tx)); err != nil {
		t.Fatalf("SendTo the new session: %v", err)
	}
	u := f2.expect(wire.TypeUpdate, 2*time.Second).(*wire.Update)
	if u.NLRI.Len() != 1 {
		t.Errorf("the new session got %d prefixes, want the 1 sent to it", u.NLRI.Len())
	}
	if m, err := f2.read(200 * time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the new session got %v %v, want nothing more", m, err)
	}
}

// TestCloseWritesQueuedUpdatesFirst: UPDATEs queued before Close reach
// the peer, before the NOTIFICATION. The writer is held inside a write to a
// pipe nobody reads until both the queue and the NOTIFICATION wait for it;
// a writer that picked between them at random would drop the queue about
// every other round.
func TestCloseWritesQueuedUpdatesFirst(t *testing.T) {
	leakCheck(t)
	const rounds, queued = 12, 20
	for round := range rounds {
		t.Run(fmt.Sprint("round ", round), func(t *testing.T) {
			cfg := baseConfig(64512, 64512, idA)
			cfg.Passive = true
			rec := newRecorder()
			p := New(cfg, rec, testLog(t, "P"))
			runPeer(t, p)
			ours, theirs := net.Pipe()
			p.Accept(ours)
			f := newFake(t, theirs)
			f.establish(64512, 90, idB)
			tx := wait(t, rec.established, 2*time.Second, "established").Tx
			p.mu.Lock()
			c := p.out
			p.mu.Unlock()

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := p.Send(ctx, updates(t, 1, tx)); err != nil {
				t.Fatal(err)
			}
			// Reading part of the first UPDATE proves the writer is inside
			// its write, which returns only once the rest is read.
			hdr := make([]byte, wire.HeaderLen)
			_ = theirs.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := io.ReadFull(theirs, hdr); err != nil {
				t.Fatal(err)
			}
			for range queued {
				if err := p.Send(ctx, updates(t, 1, tx)); err != nil {
					t.Fatal(err)
				}
			}
			closed := make(chan error, 1)
			go func() {
				closed <- p.Close(ctx, &wire.Notification{Code: wire.ErrCodeCease, Subcode: wire.CeasePeerDeconfigured})
			}()
			eventually(t, 2*time.Second, func() bool {
				c.q.mu.Lock()
				defer c.q.mu.Unlock()
				return c.q.final != nil
			},
				func() string { return "the NOTIFICATION was not queued" })
			h, err := wire.ParseHeader(hdr, nil)
			if err != nil || h.Type != wire.TypeUpdate {
				t.Fatalf("first message %+v %v, want an UPDATE", h, err)
			}
			if _, err := io.ReadFull(theirs, make([]byte, int(h.Length)-wire.HeaderLen)); err != nil {
				t.Fatal(err)
			}
			got := 1
			for {
				m, err := f.read(2 * time.Second)
				if err != nil {
					t.Fatalf("after %d UPDATEs: %v", got, err)
				}
				if n, ok := m.(*wire.Notification); ok {
					if n.Subcode != wire.CeasePeerDeconfigured {
						t.Errorf("NOTIFICATION %v", n)
					}
					break
				}
				if wire.MessageType(m) == wire.TypeUpdate {
					got++
				}
			}
			theirs.Close()
			if got != 1+queued {
				t.Fatalf("%d UPDATEs before the NOTIFICATION, want %d", got, 1+queued)
			}
			if err := wait(t, closed, 5*time.Second, "Close"); err != nil {
				t.Fatal(err)
			}
			if n := p.Info().UpdatesOut; n != 1+queued {
				t.Errorf("UpdatesOut %d, want %d", n, 1+queued)
			}
		})
	}
}
