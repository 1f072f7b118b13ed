package l2

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"
)

// exchange writes frames on f in order, then reads until a frame for which
// done is true; every frame read before it goes to seen. Because the node
// handles one socket's frames in order, a request sent before the one done
// waits for has had its chance to be answered by then.
func exchange(t *testing.T, f *os.File, frames [][]byte, seen func([]byte), done func([]byte) bool) {
	t.Helper()
	for _, fr := range frames {
		if _, err := f.Write(fr); err != nil {
			t.Fatal(err)
		}
	}
	must(t, f.SetReadDeadline(time.Now().Add(10*time.Second)))
	buf := make([]byte, 2000)
	for {
		n, err := f.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("no answer within 10 s")
		}
		must(t, err)
		if done(buf[:n]) {
			return
		}
		seen(buf[:n])
	}
}

// noAnswerFrom fails the test on any ARP reply or neighbour advertisement
// from mac.
func noAnswerFrom(t *testing.T, mac MAC) func([]byte) {
	return func(b []byte) {
		if p, err := ParseARP(b); err == nil && p.Op == ARPReply && p.EthSrc == mac {
			t.Errorf("answered %+v", p)
		}
		// An unsolicited advertisement is the announcement (Set's), not an answer.
		if p, err := ParseNDP(b); err == nil && p.Type == NDPAdvertisement && p.EthSrc == mac && p.Flags&NASolicited != 0 {
			t.Errorf("answered %+v", p)
		}
	}
}

// is matches want, ignoring the padding short frames get on the wire.
func is(want []byte) func([]byte) bool {
	return func(b []byte) bool { return len(b) >= len(want) && bytes.Equal(b[:len(want)], want) }
}

func TestWireARP(t *testing.T) {
	t.Parallel()
	l := newTestLAN(t)
	a := announcer(t, l.node1, Schedule{Repeats: -1})
	must(t, a.Set([]Answer{{testVIP4, "eth0"}}))
	f := capture(t, l.client, "eth0")
	cmac := MAC{2, 0, 0, 0, 9, 1}
	other := netip.MustParseAddr("198.51.100.99")
	req := func(sender, target netip.Addr) []byte {
		return AppendARP(nil, ARP{EthDst: broadcastMAC, EthSrc: cmac, Op: ARPRequest, SenderMAC: cmac, SenderIP: sender, TargetIP: target})
	}
	probe := netip.IPv4Unspecified()
	exchange(t, f,
		[][]byte{req(cli4, other), req(testVIP4, testVIP4), req(probe, testVIP4)},
		noAnswerFrom(t, l.mac1),
		is(AppendARP(nil, arpReply(ARP{SenderMAC: cmac, SenderIP: probe, TargetIP: testVIP4}, l.mac1))))
}

func TestWireNDP(t *testing.T) {
	t.Parallel()
	l := newTestLAN(t)
	a := announcer(t, l.node1, Schedule{Repeats: -1})
	must(t, a.Set([]Answer{{testVIP6, "eth0"}}))
	f := capture(t, l.client, "eth0")
	cmac := MAC{2, 0, 0, 0, 9, 1}
	ns := func(src netip.Addr, hop uint8, target netip.Addr, unicast bool) NDP {
		p := NDP{
			EthDst: multicastMAC(solicitedNode(target)), EthSrc: cmac, Src: src, Dst: solicitedNode(target),
			HopLimit: hop, Type: NDPSolicitation, Target: target, LinkAddr: cmac, HasLinkAddr: !src.IsUnspecified(),
		}
		if unicast {
			p.EthDst, p.Dst = l.mac1, target
		}
		return p
	}
	bad1 := netip.MustParseAddr("2001:db8::bad1")
	bad2 := netip.MustParseAddr("2001:db8::bad2")
	// A unicast probe (neighbour unreachability detection) is what an
	// ICMPv6 socket would miss: the node does not have the VIP.
	// (The answer to duplicate address detection looks exactly like the
	// announcement; TestDADFails checks it through the client's kernel.)
	nud := ns(cli6, 255, testVIP6, true)
	mcast := ns(cli6, 255, testVIP6, false)
	for _, last := range []NDP{nud, mcast} {
		exchange(t, f,
			[][]byte{
				AppendNDP(nil, ns(bad1, 64, testVIP6, false)),                             // hop limit: invalid
				AppendNDP(nil, ns(bad2, 255, netip.MustParseAddr("2001:db8::99"), false)), // not ours
				AppendNDP(nil, last),
			},
			noAnswerFrom(t, l.mac1),
			is(AppendNDP(nil, naReply(last, l.mac1))))
	}
	if st := a.Status(); len(st) != 1 || st[0].Answered != 2 {
		t.Errorf("status %+v", st)
	}
}

// TestDADFails: a client that tries to configure an answered address finds
// it in use.
func TestDADFails(t *testing.T) {
	t.Parallel()
	l := newTestLAN(t)
	a := announcer(t, l.node1, Schedule{Repeats: -1})
	must(t, a.Set([]Answer{{testVIP6, "eth0"}}))
	must(t, l.client.SetSysctls(l.ctx, map[string]string{
		"net/ipv6/conf/eth0/accept_dad": "1", "net/ipv6/conf/eth0/dad_transmits": "1",
	}))
	must(t, l.client.IP(l.ctx, "addr", "add", "2001:db8::10/64", "dev", "eth0"))
	var last []byte
	err := pollAddrs(l, func(out []byte) bool { last = out; return containsAll(string(out), "2001:db8::10", "dadfailed") })
	if err != nil {
		t.Fatalf("DAD did not fail: %s: %v", last, err)
	}
}

// BenchmarkWireARPRoundTrip is one ARP request from the client's raw
// socket to the node's answer read back, through two veths and a bridge.
func BenchmarkWireARPRoundTrip(b *testing.B) {
	benchWire(b, func(l *testLAN) (req, reply []byte) {
		cmac := MAC{2, 0, 0, 0, 9, 1}
		q := ARP{EthDst: broadcastMAC, EthSrc: cmac, Op: ARPRequest, SenderMAC: cmac, SenderIP: cli4, TargetIP: testVIP4}
		return AppendARP(nil, q), AppendARP(nil, arpReply(q, l.mac1))
	})
}

// BenchmarkWireNSRoundTrip is BenchmarkWireARPRoundTrip for a multicast
// neighbour solicitation.
func BenchmarkWireNSRoundTrip(b *testing.B) {
	benchWire(b, func(l *testLAN) (req, reply []byte) {
		cmac := MAC{2, 0, 0, 0, 9, 1}
		q := NDP{
			EthDst: multicastMAC(solicitedNode(testVIP6)), EthSrc: cmac, Src: cli6, Dst: solicitedNode(testVIP6),
			HopLimit: 255, Type: NDPSolicitation, Target: testVIP6, LinkAddr: cmac, HasLinkAddr: true,
		}
		return AppendNDP(nil, q), AppendNDP(nil, naReply(q, l.mac1))
	})
}

func benchWire(b *testing.B, frames func(*testLAN) (req, reply []byte)) {
	l := newTestLAN(b)
	a := announcer(b, l.node1, Schedule{Repeats: -1})
	must(b, a.Set([]Answer{{testVIP4, "eth0"}, {testVIP6, "eth0"}}))
	f := capture(b, l.client, "eth0")
	req, reply := frames(l)
	match := is(reply)
	buf := make([]byte, 2000)
	b.ResetTimer()
	for b.Loop() {
		if _, err := f.Write(req); err != nil {
			b.Fatal(err)
		}
		must(b, f.SetReadDeadline(time.Now().Add(10*time.Second)))
		for {
			n, err := f.Read(buf)
			must(b, err)
			if match(buf[:n]) {
				break
			}
		}
	}
}
