package session

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestMD5 checks TCP-MD5 between two peers on loopback: the kernel signs
// and verifies every segment, so a matching key establishes and a wrong or
// missing one never gets past the SYN.
func TestMD5(t *testing.T) {
	leakCheck(t)
	cases := []struct {
		name        string
		listenerKey netip.Prefix
		listenerPwd string
		peerPwd     string
		established bool
	}{
		{"host key matches", netip.MustParsePrefix("127.0.0.1/32"), "s3cret", "s3cret", true},
		{"range key matches", netip.MustParsePrefix("127.0.0.0/8"), "dynamic-range", "dynamic-range", true},
		{"wrong password", netip.MustParsePrefix("127.0.0.1/32"), "s3cret", "wrong", false},
		{"peer without password", netip.MustParsePrefix("127.0.0.1/32"), "s3cret", "", false},
		{"listener without password", netip.MustParsePrefix("127.0.0.1/32"), "", "s3cret", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rb, ra := newRecorder(), newRecorder()
			cb := baseConfig(64512, 64512, idB)
			cb.Passive, cb.Password = true, tc.listenerPwd
			b := New(cb, rb, testLog(t, "B"))
			l := listen(t, map[netip.Addr]*Peer{loopback: b})
			if tc.listenerPwd != "" {
				if err := l.SetPassword(tc.listenerKey, tc.listenerPwd); err != nil {
					t.Fatal(err)
				}
			}
			ca := baseConfig(64512, 64512, idA)
			ca.PeerPort, ca.Password = port(l), tc.peerPwd
			a := New(ca, ra, testLog(t, "A"))
			runPeer(t, b)
			runPeer(t, a)
			if tc.established {
				wait(t, ra.established, 3*time.Second, "A established")
				wait(t, rb.established, 3*time.Second, "B established")
				return
			}
			expectNone(t, ra.established, time.Second, "A established")
			expectNone(t, rb.established, 0, "B established")
			if s := b.State(); s != Active {
				t.Errorf("B state %v: a connection got through", s)
			}
		})
	}
	t.Run("removing the key", func(t *testing.T) {
		l := listen(t, map[netip.Addr]*Peer{})
		p := netip.MustParsePrefix("127.0.0.1/32")
		if err := l.SetPassword(p, "x"); err != nil {
			t.Fatal(err)
		}
		if _, err := net.DialTimeout("tcp4", l.Addrs()[0].String(), 300*time.Millisecond); err == nil {
			t.Fatal("an unsigned connection got through a keyed listener")
		}
		if err := l.SetPassword(p, ""); err != nil {
			t.Fatal(err)
		}
		nc, err := net.DialTimeout("tcp4", l.Addrs()[0].String(), time.Second)
		if err != nil {
			t.Fatalf("after removing the key: %v", err)
		}
		nc.Close()
	})
}
