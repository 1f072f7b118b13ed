package session

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"
)

// gtsmLab builds four namespaces: srv, a client one hop away (near), a
// router and a client behind the router (far, two hops), in IPv4 and IPv6.
type gtsmLab struct{ srv, near, far string }

func newGTSMLab(t *testing.T) gtsmLab {
	t.Helper()
	srv, near, rtr, far := netns(t), netns(t), netns(t), netns(t)
	for _, ns := range []string{srv, near, rtr, far} {
		run(t, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	}
	run(t, "ip", "netns", "exec", rtr, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	link := func(a, an, b, bn, a4, b4, a6, b6 string) {
		run(t, "ip", "-n", a, "link", "add", an, "type", "veth", "peer", "name", bn, "netns", b)
		for _, x := range [][3]string{{a, an, a4}, {b, bn, b4}, {a, an, a6}, {b, bn, b6}} {
			run(t, "ip", "-n", x[0], "addr", "add", x[2], "dev", x[1])
		}
		run(t, "ip", "-n", a, "link", "set", an, "up")
		run(t, "ip", "-n", b, "link", "set", bn, "up")
	}
	link(srv, "s1", near, "c1", "198.51.100.1/30", "198.51.100.2/30", "2001:db8:1::1/64", "2001:db8:1::2/64")
	link(srv, "s2", rtr, "r1", "198.51.100.5/30", "198.51.100.6/30", "2001:db8:2::1/64", "2001:db8:2::2/64")
	link(rtr, "r2", far, "c2", "198.51.100.9/30", "198.51.100.10/30", "2001:db8:3::1/64", "2001:db8:3::2/64")
	run(t, "ip", "-n", srv, "route", "add", "198.51.100.8/30", "via", "198.51.100.6")
	run(t, "ip", "-n", srv, "route", "add", "2001:db8:3::/64", "via", "2001:db8:2::2")
	run(t, "ip", "-n", far, "route", "add", "default", "via", "198.51.100.9")
	run(t, "ip", "-n", far, "-6", "route", "add", "default", "via", "2001:db8:3::1")
	return gtsmLab{srv: srv, near: near, far: far}
}

// dialIn connects from namespace ns with TTL 255, as a GTSM peer does. The
// listener resets what it accepts (no peer is dispatched), so a reset is a
// connection made too.
func dialIn(t *testing.T, ns string, to netip.AddrPort, timeout time.Duration) error {
	t.Helper()
	var err error
	inNetns(t, ns, func() {
		var nc net.Conn
		d := net.Dialer{Control: withTTL(255, 0), Timeout: timeout}
		if nc, err = d.Dial("tcp", to.String()); err == nil {
			nc.Close()
		}
	})
	if errors.Is(err, syscall.ECONNRESET) {
		return nil
	}
	return err
}

// TestListenerMinTTL: with a minimum TTL of 255 on the listening socket
// (GTSM for peers one hop away), the kernel drops the SYNs of a peer behind
// a router, whose TTL arrives as 254, so no connection exists; a direct
// peer connects. Without it, both connect, which shows the far one is
// reachable at all.
func TestListenerMinTTL(t *testing.T) {
	leakCheck(t)
	lab := newGTSMLab(t)
	refuse := func(netip.AddrPort, netip.AddrPort) (*Peer, bool) { return nil, false }
	for _, fam := range []struct {
		name      string
		wildcard  string
		near, far netip.Addr
	}{
		{"IPv4", "0.0.0.0:0", netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.5")},
		{"IPv6", "[::]:0", netip.MustParseAddr("2001:db8:1::1"), netip.MustParseAddr("2001:db8:2::1")},
	} {
		t.Run(fam.name, func(t *testing.T) {
			var l, l2 *Listener
			var err error
			inNetns(t, lab.srv, func() {
				l, err = Listen([]netip.AddrPort{netip.MustParseAddrPort(fam.wildcard)}, refuse, nil)
				if err == nil {
					l2, err = ListenWithOptions([]netip.AddrPort{netip.MustParseAddrPort(fam.wildcard)}, refuse, nil,
						ListenOptions{MinTTL: 255})
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			wg.Go(func() { _ = l.Run(t.Context()) })
			wg.Go(func() { _ = l2.Run(t.Context()) })
			t.Cleanup(func() { l.Close(); l2.Close(); wg.Wait() })
			port, port2 := l.Addrs()[0].Port(), l2.Addrs()[0].Port()
			near, far := netip.AddrPortFrom(fam.near, port), netip.AddrPortFrom(fam.far, port)

			// No minimum TTL: the far peer gets through (once neighbour
			// discovery has settled).
			eventually(t, 10*time.Second, func() bool { return dialIn(t, lab.far, far, time.Second) == nil },
				func() string { return "far peer cannot connect even without a minimum TTL" })
			if err := dialIn(t, lab.near, near, 2*time.Second); err != nil {
				t.Fatalf("near peer: %v", err)
			}

			if err := l.SetMinTTL(255); err != nil {
				t.Fatal(err)
			}
			if err := dialIn(t, lab.far, far, time.Second); err == nil {
				t.Fatal("far peer connected through SetMinTTL(255)")
			}
			if err := dialIn(t, lab.near, near, 2*time.Second); err != nil {
				t.Fatalf("near peer with SetMinTTL(255): %v", err)
			}
			// The option sets it before the socket listens.
			if err := dialIn(t, lab.far, netip.AddrPortFrom(fam.far, port2), time.Second); err == nil {
				t.Fatal("far peer connected through ListenOptions.MinTTL 255")
			}
			if err := dialIn(t, lab.near, netip.AddrPortFrom(fam.near, port2), 2*time.Second); err != nil {
				t.Fatalf("near peer with ListenOptions.MinTTL 255: %v", err)
			}
			// 0 lifts the check again.
			if err := l.SetMinTTL(0); err != nil {
				t.Fatal(err)
			}
			if err := dialIn(t, lab.far, far, 2*time.Second); err != nil {
				t.Fatalf("far peer after SetMinTTL(0): %v", err)
			}
		})
	}
}
