package session

import (
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
	"golang.org/x/sys/unix"
)

// withTTL is a dialer or listener Control setting IP_TTL and IP_MINTTL.
func withTTL(ttl, minTTL int) func(string, string, syscall.RawConn) error {
	return func(_, _ string, rc syscall.RawConn) error {
		return control(rc, func(fd uintptr) error { return setTTL(fd, ttl, minTTL) })
	}
}

func setMinTTL(t *testing.T, nc net.Conn, minTTL int) {
	t.Helper()
	rc, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if err := control(rc, func(fd uintptr) error {
		return unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MINTTL, minTTL)
	}); err != nil {
		t.Fatal(err)
	}
}

// TestTTLSecurityAccepted checks GTSM on an accepted connection. Loopback
// does not decrement the TTL, so what a socket sends is what the other end
// sees: the fake insists on 255 from us, and we on 255 from it.
func TestTTLSecurityAccepted(t *testing.T) {
	leakCheck(t)
	for _, fakeTTL := range []int{255, 64} {
		t.Run(fmt.Sprint("fake sends TTL ", fakeTTL), func(t *testing.T) {
			cfg := baseConfig(64512, 64512, idA)
			cfg.TTLSecurity = true
			rec := newRecorder()
			p, addr := passive(t, cfg, rec)
			nc, err := (&net.Dialer{Control: withTTL(fakeTTL, 0)}).Dial("tcp4", addr.String())
			if err != nil {
				t.Fatal(err)
			}
			setMinTTL(t, nc, 255)
			f := newFake(t, nc)
			// Our OPEN arrives only if we send with TTL 255; it leaves after
			// the peer set its own minimum TTL, so the fake's OPEN is judged by it.
			f.expect(wire.TypeOpen, 2*time.Second)
			f.sendOpen(64512, 90, idB)
			if fakeTTL == 255 {
				f.expect(wire.TypeKeepalive, 2*time.Second)
				f.sendKeepalive()
				wait(t, rec.established, 2*time.Second, "established")
				return
			}
			expectNone(t, rec.established, time.Second, "established")
			if s := p.State(); s != OpenSent {
				t.Errorf("state %v: the fake's OPEN with TTL 64 got through", s)
			}
		})
	}
}

// TestTTLSecurityDialled checks that a GTSM peer dials with TTL 255: a
// listener that drops anything less accepts it, and refuses a plain peer.
func TestTTLSecurityDialled(t *testing.T) {
	leakCheck(t)
	for _, gtsm := range []bool{true, false} {
		t.Run(fmt.Sprint("GTSM ", gtsm), func(t *testing.T) {
			lc := net.ListenConfig{Control: withTTL(255, 255)}
			ln, err := lc.Listen(t.Context(), "tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			cfg := baseConfig(64512, 64512, idA)
			cfg.TTLSecurity = gtsm
			cfg.PeerPort = addrPort(ln.Addr()).Port()
			runPeer(t, New(cfg, newRecorder(), testLog(t, "P")))
			accepted := make(chan net.Conn, 1)
			go func() {
				if nc, err := ln.Accept(); err == nil {
					accepted <- nc
				}
			}()
			if !gtsm {
				expectNone(t, accepted, time.Second, "connection with TTL 64")
				return
			}
			f := newFake(t, wait(t, accepted, 2*time.Second, "connection"))
			f.expect(wire.TypeOpen, 2*time.Second)
		})
	}
}
