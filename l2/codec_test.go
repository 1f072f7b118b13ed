package l2

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

var (
	macA = MAC{0x02, 0, 0, 0, 0, 0xa}
	macB = MAC{0x02, 0, 0, 0, 0, 0xb}
	vip4 = netip.MustParseAddr("198.51.100.10")
	cli4 = netip.MustParseAddr("198.51.100.2")
	vip6 = netip.MustParseAddr("2001:db8::10")
	cli6 = netip.MustParseAddr("2001:db8::2")
)

func arpRequest(sender netip.Addr, target netip.Addr) ARP {
	return ARP{EthDst: broadcastMAC, EthSrc: macB, Op: ARPRequest, SenderMAC: macB, SenderIP: sender, TargetIP: target}
}

func nsFor(target netip.Addr) NDP {
	return NDP{
		EthDst: multicastMAC(solicitedNode(target)), EthSrc: macB,
		Src: cli6, Dst: solicitedNode(target), HopLimit: 255, Type: NDPSolicitation,
		Target: target, LinkAddr: macB, HasLinkAddr: true,
	}
}

func TestARPRoundTrip(t *testing.T) {
	for _, p := range []ARP{
		arpRequest(cli4, vip4),
		arpRequest(netip.IPv4Unspecified(), vip4), // RFC 5227 probe
		arpReply(arpRequest(cli4, vip4), macA),
		gratuitousARP(vip4, macA),
	} {
		b := AppendARP(nil, p)
		if len(b) != arpFrameLen {
			t.Fatalf("len %d", len(b))
		}
		got, err := ParseARP(append(b, make([]byte, 18)...)) // padded to 60
		if err != nil || got != p {
			t.Errorf("round trip %+v: got %+v, %v", p, got, err)
		}
	}
}

func TestARPReplyShape(t *testing.T) {
	r := arpReply(arpRequest(cli4, vip4), macA)
	want := ARP{EthDst: macB, EthSrc: macA, Op: ARPReply, SenderMAC: macA, SenderIP: vip4, TargetMAC: macB, TargetIP: cli4}
	if r != want {
		t.Errorf("reply %+v, want %+v", r, want)
	}
	g := gratuitousARP(vip4, macA)
	if g.EthDst != broadcastMAC || g.SenderIP != vip4 || g.TargetIP != vip4 || g.Op != ARPRequest || g.TargetMAC != (MAC{}) {
		t.Errorf("gratuitous %+v", g)
	}
}

func TestParseARPErrors(t *testing.T) {
	good := AppendARP(nil, arpRequest(cli4, vip4))
	mod := func(i int, v byte) []byte { b := bytes.Clone(good); b[i] = v; return b }
	for name, tc := range map[string]struct {
		b   []byte
		err error
	}{
		"short":     {good[:41], errShort},
		"empty":     {nil, errShort},
		"ethertype": {mod(13, 0x00), errEtherType},
		"htype":     {mod(15, 6), errARPHeader},
		"ptype":     {mod(16, 0x86), errARPHeader},
		"hlen":      {mod(18, 8), errARPHeader},
		"plen":      {mod(19, 16), errARPHeader},
	} {
		if _, err := ParseARP(tc.b); !errors.Is(err, tc.err) {
			t.Errorf("%s: err %v, want %v", name, err, tc.err)
		}
	}
}

func TestNDPRoundTrip(t *testing.T) {
	dad := nsFor(vip6)
	dad.Src, dad.HasLinkAddr, dad.LinkAddr = netip.IPv6Unspecified(), false, MAC{}
	for _, p := range []NDP{
		nsFor(vip6),
		dad,
		naReply(nsFor(vip6), macA),
		naReply(dad, macA),
		unsolicitedNA(vip6, macA),
	} {
		got, err := ParseNDP(AppendNDP(nil, p))
		if err != nil || got != p {
			t.Errorf("round trip %+v:\n got %+v, %v", p, got, err)
		}
	}
}

func TestNAShapes(t *testing.T) {
	na := naReply(nsFor(vip6), macA)
	if na.EthDst != macB || na.Dst != cli6 || na.Flags != NASolicited|NAOverride || na.LinkAddr != macA || na.Src != vip6 || na.HopLimit != 255 {
		t.Errorf("solicited NA %+v", na)
	}
	dad := nsFor(vip6)
	dad.Src, dad.HasLinkAddr = netip.IPv6Unspecified(), false
	na = naReply(dad, macA)
	if na.EthDst != allNodesMAC || na.Dst != allNodes || na.Flags != NAOverride {
		t.Errorf("NA to DAD %+v", na)
	}
	u := unsolicitedNA(vip6, macA)
	if u.EthDst != allNodesMAC || u.Dst != allNodes || u.Flags != NAOverride || !u.HasLinkAddr || u.LinkAddr != macA {
		t.Errorf("unsolicited NA %+v", u)
	}
	noSLLA := nsFor(vip6)
	noSLLA.HasLinkAddr = false // unicast NUD probes may omit it: answer the frame's source
	if na := naReply(noSLLA, macA); na.EthDst != macB {
		t.Errorf("NA without SLLA goes to %v", na.EthDst)
	}
}

func TestParseNDPErrors(t *testing.T) {
	good := AppendNDP(nil, nsFor(vip6))
	mod := func(i int, v byte) []byte { b := bytes.Clone(good); b[i] = v; return b }
	opt := etherHeaderLen + ipv6HeaderLen + nsLen
	dad := nsFor(vip6)
	dad.Src = netip.IPv6Unspecified() // keeps its SLLA: invalid
	dadUnicast := nsFor(vip6)
	dadUnicast.Src, dadUnicast.Dst, dadUnicast.HasLinkAddr = netip.IPv6Unspecified(), vip6, false
	mcastTarget := nsFor(vip6)
	mcastTarget.Target = allNodes
	for name, tc := range map[string]struct {
		b   []byte
		err error
	}{
		"short":          {good[:60], errShort},
		"ethertype":      {mod(12, 0x08), errEtherType},
		"version":        {mod(14, 0x40), errIPv6Version},
		"payload long":   {mod(19, 200), errLength},
		"next header":    {mod(20, 17), errNotNDP},
		"hop limit":      {mod(21, 64), errHopLimit},
		"icmp type":      {mod(54, 128), errNotNDP},
		"icmp code":      {mod(55, 1), errNotNDP},
		"checksum":       {mod(60, 0xee), errChecksum},
		"option len 0":   {fixSum(mod(opt+1, 0)), errOption},
		"option too big": {fixSum(mod(opt+1, 2)), errOption},
		"dad with slla":  {AppendNDP(nil, dad), errDADSource},
		"dad unicast":    {AppendNDP(nil, dadUnicast), errDADSource},
		"mcast target":   {AppendNDP(nil, mcastTarget), errTarget},
	} {
		if _, err := ParseNDP(tc.b); !errors.Is(err, tc.err) {
			t.Errorf("%s: err %v, want %v", name, err, tc.err)
		}
	}
}

// fixSum recomputes the ICMPv6 checksum of a frame a test corrupted, so
// that the check under test is the one that fails. Frames too short or
// with a payload length beyond the frame are returned as they are.
func fixSum(b []byte) []byte {
	if len(b) < etherHeaderLen+ipv6HeaderLen+4 {
		return b
	}
	ip := b[etherHeaderLen:]
	plen := int(ip[4])<<8 | int(ip[5])
	if plen < 4 || ipv6HeaderLen+plen > len(ip) {
		return b
	}
	icmp := ip[ipv6HeaderLen : ipv6HeaderLen+plen]
	icmp[2], icmp[3] = 0, 0
	s := checksum(netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40])), icmp)
	icmp[2], icmp[3] = byte(s>>8), byte(s)
	return b
}

func TestSolicitedNode(t *testing.T) {
	g := solicitedNode(netip.MustParseAddr("2001:db8::abcd:1234:5678"))
	if g != netip.MustParseAddr("ff02::1:ff34:5678") || !isSolicitedNode(g) || isSolicitedNode(allNodes) {
		t.Errorf("solicited-node %v", g)
	}
	if m := multicastMAC(g); m != (MAC{0x33, 0x33, 0xff, 0x34, 0x56, 0x78}) {
		t.Errorf("mac %v", m)
	}
}

func TestParseNoAllocs(t *testing.T) {
	a := AppendARP(nil, arpRequest(cli4, vip4))
	n := AppendNDP(nil, nsFor(vip6))
	aout := make([]byte, 0, 128)
	nout := make([]byte, 0, 128)
	if allocs := testing.AllocsPerRun(100, func() {
		r, _ := ParseARP(a)
		aout = AppendARP(aout[:0], arpReply(r, macA))
		s, _ := ParseNDP(n)
		nout = AppendNDP(nout[:0], naReply(s, macA))
	}); allocs != 0 {
		t.Errorf("parse+reply allocates %v times", allocs)
	}
}

func FuzzParseARP(f *testing.F) {
	f.Add(AppendARP(nil, arpRequest(cli4, vip4)))
	f.Add(AppendARP(nil, gratuitousARP(vip4, macA)))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseARP(b)
		if err != nil {
			return
		}
		again, err := ParseARP(AppendARP(nil, p))
		if err != nil || again != p {
			t.Fatalf("re-encode of %+v: %+v, %v", p, again, err)
		}
	})
}

func FuzzParseNDP(f *testing.F) {
	f.Add(AppendNDP(nil, nsFor(vip6)))
	f.Add(AppendNDP(nil, unsolicitedNA(vip6, macA)))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseNDP(b)
		// With the checksum made right, the fuzzer gets past it to the
		// length, option and address checks.
		p, err := ParseNDP(fixSum(bytes.Clone(b)))
		if err != nil {
			return
		}
		// Options other than ours are dropped on re-encode; what we read
		// must survive.
		again, err := ParseNDP(AppendNDP(nil, p))
		if err != nil || again != p {
			t.Fatalf("re-encode of %+v: %+v, %v", p, again, err)
		}
		if p.Type == NDPSolicitation {
			if _, err := ParseNDP(AppendNDP(nil, naReply(p, macA))); err != nil {
				t.Fatalf("our reply to %+v does not parse: %v", p, err)
			}
		}
	})
}

func BenchmarkARPParseReply(b *testing.B) {
	frame := AppendARP(nil, arpRequest(cli4, vip4))
	out := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		r, err := ParseARP(frame)
		if err != nil {
			b.Fatal(err)
		}
		out = AppendARP(out[:0], arpReply(r, macA))
	}
}

func BenchmarkNSParseReply(b *testing.B) {
	frame := AppendNDP(nil, nsFor(vip6))
	out := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		s, err := ParseNDP(frame)
		if err != nil {
			b.Fatal(err)
		}
		out = AppendNDP(out[:0], naReply(s, macA))
	}
}
