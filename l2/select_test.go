package l2

import (
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestSelect(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	pfx := func(s ...string) []netip.Prefix {
		var ps []netip.Prefix
		for _, x := range s {
			ps = append(ps, netip.MustParsePrefix(x))
		}
		return ps
	}
	ifs := []Interface{
		{Name: "lo", MAC: nil, Up: true, Loopback: true, Prefixes: pfx("127.0.0.1/8", "198.51.100.0/24")},
		{Name: "eth0", MAC: mac, Up: true, Prefixes: pfx("198.51.100.5/24", "2001:db8::5/64")},
		{Name: "eth1", MAC: mac, Up: true, Prefixes: pfx("203.0.113.5/24")},
		{Name: "eth2", MAC: mac, Up: false, Prefixes: pfx("198.51.100.6/24")},
		{Name: "wg0", MAC: nil, Up: true, Prefixes: pfx("198.51.100.7/24")},
		{Name: "kube-ipvs0", MAC: mac, Up: true, Prefixes: pfx("198.51.100.10/32", "2001:db8::10/128")},
		{Name: "br0", MAC: mac, Up: true, Prefixes: pfx("198.51.100.8/25")},
	}
	vip := netip.MustParseAddr("198.51.100.10")
	for _, tc := range []struct {
		name     string
		patterns []string
		addr     netip.Addr
		want     []string
	}{
		{"subnet", nil, vip, []string{"br0", "eth0"}},
		{"subnet v6", nil, netip.MustParseAddr("2001:db8::10"), []string{"eth0"}},
		{"mapped v4", nil, netip.MustParseAddr("::ffff:198.51.100.10"), []string{"br0", "eth0"}},
		{"outside /25", nil, netip.MustParseAddr("198.51.100.200"), []string{"eth0"}},
		{"no subnet", nil, netip.MustParseAddr("203.0.113.99"), []string{"eth1"}},
		{"nowhere", nil, netip.MustParseAddr("198.18.0.1"), nil},
		{"glob", []string{"eth*"}, vip, []string{"eth0", "eth1"}},
		{"exact", []string{"eth1"}, vip, []string{"eth1"}},
		{"glob never loopback, down or MAC-less", []string{"*"}, vip, []string{"br0", "eth0", "eth1", "kube-ipvs0"}},
		{"overlapping patterns", []string{"eth0", "eth?"}, vip, []string{"eth0", "eth1"}},
		{"bad glob matches itself only", []string{"eth["}, vip, nil},
		{"invalid addr", nil, netip.Addr{}, nil},
	} {
		if got := Select(ifs, tc.patterns, tc.addr); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestScheduleOffsets(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		s    Schedule
		want []time.Duration
	}{
		{Schedule{}, []time.Duration{0, 250 * ms, 750 * ms, 1750 * ms, 3750 * ms, 7750 * ms}},
		{Schedule{Repeats: 2, Interval: 100 * ms}, []time.Duration{0, 100 * ms, 300 * ms}},
		{Schedule{Repeats: -1}, []time.Duration{0}},
		{Schedule{Repeats: 2}, []time.Duration{0, 0, 0}},
	} {
		if got := tc.s.Offsets(); !slices.Equal(got, tc.want) {
			t.Errorf("%+v: got %v, want %v", tc.s, got, tc.want)
		}
	}
}

// TestNDPScheduleFollowsRFC4861: whatever is asked, unsolicited NA are at
// most MAX_NEIGHBOR_ADVERTISEMENT, at least RetransTimer apart.
func TestNDPScheduleFollowsRFC4861(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		s    Schedule
		want []time.Duration
	}{
		{Schedule{}, []time.Duration{0, s, 3 * s}},
		{DefaultSchedule, []time.Duration{0, s, 3 * s}},
		{Schedule{Repeats: 1, Interval: 1}, []time.Duration{0, s}},
		{Schedule{Repeats: 2}, []time.Duration{0, s, 3 * s}},
		{Schedule{Repeats: 9, Interval: 2 * s}, []time.Duration{0, 2 * s, 6 * s}},
		{Schedule{Repeats: -1}, []time.Duration{0}},
		{Schedule{Repeats: -1, Interval: time.Millisecond}, []time.Duration{0}},
	} {
		got := tc.s.forNDP().Offsets()
		if !slices.Equal(got, tc.want) {
			t.Errorf("%+v: got %v, want %v", tc.s, got, tc.want)
		}
		for i := 1; i < len(got); i++ {
			if got[i]-got[i-1] < retransTimer || i >= maxUnsolicitedNA {
				t.Errorf("%+v: %v breaks RFC 4861", tc.s, got)
			}
		}
	}
}

// runBPF interprets the subset of classic BPF the filters use, with the
// ancillary loads taken from pktType and vlan; it returns the accept length.
func runBPF(t *testing.T, prog []unix.SockFilter, pkt []byte, pktType, vlan uint32) uint32 {
	var acc uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, unix.BPF_LD | unix.BPF_H | unix.BPF_ABS, unix.BPF_LD | unix.BPF_B | unix.BPF_ABS:
			switch size := map[uint16]uint32{unix.BPF_W: 4, unix.BPF_H: 2, unix.BPF_B: 1}[in.Code&0x18]; {
			case in.K == skfAdPktType:
				acc = pktType
			case in.K == skfAdVLANTagPresent:
				acc = vlan
			case int(in.K+size) > len(pkt):
				return 0 // the kernel drops on an out-of-bounds load
			default:
				acc = 0
				for i := range size {
					acc = acc<<8 | uint32(pkt[in.K+i])
				}
			}
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K:
			pc += int(map[bool]uint8{true: in.Jt, false: in.Jf}[acc == in.K])
		case unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K:
			pc += int(map[bool]uint8{true: in.Jt, false: in.Jf}[acc > in.K])
		case unix.BPF_RET | unix.BPF_K:
			return in.K
		default:
			t.Fatalf("opcode %#x not interpreted", in.Code)
		}
	}
	t.Fatal("program ran off its end")
	return 0
}

func TestFilters(t *testing.T) {
	req := AppendARP(nil, arpRequest(cli4, vip4))
	reply := AppendARP(nil, arpReply(arpRequest(cli4, vip4), macA))
	ns := AppendNDP(nil, nsFor(vip6))
	na := AppendNDP(nil, unsolicitedNA(vip6, macA))
	badHop := nsFor(vip6)
	badHop.HopLimit = 64
	for _, tc := range []struct {
		name          string
		prog          []unix.SockFilter
		pkt           []byte
		pktType, vlan uint32
		pass          bool
	}{
		{"arp request", arpFilter, req, unix.PACKET_BROADCAST, 0, true},
		{"arp unicast request", arpFilter, req, unix.PACKET_HOST, 0, true},
		{"arp reply", arpFilter, reply, unix.PACKET_HOST, 0, false},
		{"arp outgoing", arpFilter, req, unix.PACKET_OUTGOING, 0, false},
		{"arp other host", arpFilter, req, unix.PACKET_OTHERHOST, 0, false},
		{"arp vlan", arpFilter, req, unix.PACKET_BROADCAST, 1, false},
		{"arp short", arpFilter, req[:20], unix.PACKET_BROADCAST, 0, false},
		{"ns in arp filter", arpFilter, ns, unix.PACKET_MULTICAST, 0, false},
		{"ns", nsFilter, ns, unix.PACKET_MULTICAST, 0, true},
		{"ns unicast", nsFilter, ns, unix.PACKET_HOST, 0, true},
		{"ns outgoing", nsFilter, ns, unix.PACKET_OUTGOING, 0, false},
		{"ns hop 64", nsFilter, AppendNDP(nil, badHop), unix.PACKET_MULTICAST, 0, false},
		{"na", nsFilter, na, unix.PACKET_MULTICAST, 0, false},
		{"arp in ns filter", nsFilter, req, unix.PACKET_BROADCAST, 0, false},
		{"ns vlan", nsFilter, ns, unix.PACKET_MULTICAST, 1, false},
	} {
		if got := runBPF(t, tc.prog, tc.pkt, tc.pktType, tc.vlan) != 0; got != tc.pass {
			t.Errorf("%s: pass %v, want %v", tc.name, got, tc.pass)
		}
	}
}
