package session

import (
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
)

// TestCollision drives RFC 4271 §6.8 by hand: our peer (active, and
// listening) has an outgoing connection in OpenSent when the fake opens a
// second one to our listener; the fake's OPEN on that one triggers the
// decision, which depends on which BGP Identifier is higher.
func TestCollision(t *testing.T) {
	leakCheck(t)
	low, high := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.200")
	cases := []struct {
		name         string
		fakeID       netip.Addr
		keepIncoming bool
	}{
		{"peer ID higher keeps the peer's connection", high, true},
		{"our ID higher keeps ours", low, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ourID := netip.MustParseAddr("198.51.100.100")
			// The fake's listener, which our peer dials.
			fl, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { fl.Close() })
			cfg := baseConfig(64512, 64512, ourID)
			cfg.PeerPort = addrPort(fl.Addr()).Port()
			cfg.ConnectRetry = time.Minute // one attempt only
			rec := newRecorder()
			p := New(cfg, rec, testLog(t, "P"))
			l := listen(t, map[netip.Addr]*Peer{loopback: p})
			runPeer(t, p)

			accepted, err := fl.Accept()
			if err != nil {
				t.Fatal(err)
			}
			out := newFake(t, accepted) // our outgoing connection
			out.expect(wire.TypeOpen, 2*time.Second)
			in := dialFake(t, l.Addrs()[0]) // our incoming one
			in.expect(wire.TypeOpen, 2*time.Second)
			if s := p.State(); s != OpenSent {
				t.Fatalf("state %v with two connections in the OPEN exchange", s)
			}
			in.sendOpen(64512, 90, tc.fakeID)

			winner, loser := in, out
			if !tc.keepIncoming {
				winner, loser = out, in
			}
			loser.expectNotification(wire.ErrCodeCease, wire.CeaseCollision, 2*time.Second)
			loser.expectClosed(2 * time.Second)
			if !tc.keepIncoming {
				winner.sendOpen(64512, 90, tc.fakeID)
			}
			winner.expect(wire.TypeKeepalive, 2*time.Second)
			winner.sendKeepalive()
			n := wait(t, rec.established, 2*time.Second, "established")
			if got := n.Local.Port() == port(l); got != tc.keepIncoming {
				t.Errorf("established on local %v (listener %v): incoming=%v, want %v", n.Local, port(l), got, tc.keepIncoming)
			}
			if p.State() != Established {
				t.Errorf("state %v", p.State())
			}
		})
	}
}

func TestConnectionWhileEstablishedIsRefused(t *testing.T) {
	leakCheck(t)
	rec := newRecorder()
	p, addr := passive(t, baseConfig(64512, 64512, idA), rec)
	f := dialFake(t, addr)
	f.establish(64512, 90, idB)
	wait(t, rec.established, 2*time.Second, "established")
	f2 := dialFake(t, addr)
	f2.expectNotification(wire.ErrCodeCease, wire.CeaseCollision, 2*time.Second)
	f2.expectClosed(2 * time.Second)
	// The established session is untouched.
	f.write(updates(t, 1, wire.Options{AS4: true}))
	wait(t, rec.updates, 2*time.Second, "update")
	expectNone(t, rec.down, 0, "down")
	if p.State() != Established {
		t.Errorf("state %v", p.State())
	}
}

// TestSimultaneousOpen starts two active peers that also listen: both
// connect at once, and they must settle on one and the same connection.
func TestSimultaneousOpen(t *testing.T) {
	leakCheck(t)
	ra, rb := newRecorder(), newRecorder()
	ca, cb := baseConfig(64512, 64513, idA), baseConfig(64513, 64512, idB)
	ca.ConnectRetry, cb.ConnectRetry = time.Second, time.Second
	// Each side's listener must exist before either peer dials.
	var pa, pb atomic.Pointer[Peer]
	la := listenFunc(t, func(netip.AddrPort, netip.AddrPort) (*Peer, bool) { return pa.Load(), true })
	lb := listenFunc(t, func(netip.AddrPort, netip.AddrPort) (*Peer, bool) { return pb.Load(), true })
	ca.PeerPort, cb.PeerPort = port(lb), port(la)
	a, b := New(ca, ra, testLog(t, "A")), New(cb, rb, testLog(t, "B"))
	pa.Store(a)
	pb.Store(b)
	runPeer(t, a)
	runPeer(t, b)
	// The first try may end with both connections closed: one side is
	// already Established on a connection while the other, still in
	// OpenConfirm there, resolves the collision by router ID (RFC 4271
	// §6.8 keeps an Established connection), so each closes one. The retry
	// settles. What must hold is that they end on one and the same
	// connection, and that it stays up.
	same := func() bool {
		ia, ib := a.Info(), b.Info()
		return ia.State == Established && ib.State == Established && ia.Local == ib.Remote && ia.Remote == ib.Local
	}
	eventually(t, 10*time.Second, same, func() string {
		ia, ib := a.Info(), b.Info()
		return fmt.Sprintf("A %v on %v-%v, B %v on %v-%v: not one Established connection",
			ia.State, ia.Local, ia.Remote, ib.State, ib.Local, ib.Remote)
	})
	for _, ch := range []chan error{ra.down, rb.down} {
		for len(ch) > 0 {
			<-ch // the first try's, if it failed
		}
	}
	expectNone(t, ra.down, time.Second, "A down")
	expectNone(t, rb.down, 0, "B down")
	if !same() {
		t.Fatal("the settled connection changed")
	}
}
