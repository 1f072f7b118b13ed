package reach

import (
	"net/netip"
	"strings"
	"testing"
)

func testState() *State {
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	return NewState(
		[]Link{
			{Index: 1, Name: "lo", Up: true, Loopback: true},
			{Index: 2, Name: "eth0", Up: true},
			{Index: 3, Name: "eth1", Up: false},
			{Index: 4, Name: "eth2", Up: true},
		},
		[]Address{
			{Local: a("127.0.0.1"), Subnet: p("127.0.0.1/8"), Link: 1},
			{Local: a("203.0.113.1"), Subnet: p("203.0.113.1/32"), Link: 1},
			{Local: a("198.51.100.1"), Subnet: p("198.51.100.1/25"), Link: 2},
			{Local: a("2001:db8:1::1"), Subnet: p("2001:db8:1::1/64"), Link: 2},
			{Local: a("fe80::1"), Subnet: p("fe80::1/64"), Link: 2},
			{Local: a("198.51.100.129"), Subnet: p("198.51.100.129/25"), Link: 3},
			// The same network on a link that is up and one that is down.
			{Local: a("203.0.113.65"), Subnet: p("203.0.113.64/26"), Link: 3},
			{Local: a("203.0.113.66"), Subnet: p("203.0.113.64/26"), Link: 4},
			{Local: a("203.0.113.254"), Subnet: p("203.0.113.254/31"), Link: 4},
		},
		[]Route{
			{Dst: p("2001:db8:ff::/48"), Link: 2},
			{Dst: p("203.0.113.128/26"), Link: 3}, // via a link that is down
			{Dst: p("203.0.113.128/25"), Link: 2},
			{Dst: p("0.0.0.0/0"), Link: 4},
		},
	)
}

func TestCheck(t *testing.T) {
	s := testState()
	for _, tc := range []struct {
		nh       string
		multihop bool
		want     Reason
	}{
		{"198.51.100.2", false, Usable},
		{"::ffff:198.51.100.2", false, Usable},
		{"2001:db8:1::2", false, Usable},
		{"fe80::2%eth0", false, Usable},
		{"fe80::2%2", false, Usable},
		{"203.0.113.70", false, Usable},  // one of two links up
		{"203.0.113.255", false, Usable}, // a /31 has no broadcast
		{"", false, Unspecified},
		{"0.0.0.0", false, Unspecified},
		{"::", false, Unspecified},
		{"127.0.0.2", false, Loopback},
		{"::1", false, Loopback},
		{"224.0.0.5", false, Multicast},
		{"ff02::2", false, Multicast},
		{"255.255.255.255", false, Broadcast},
		{"198.51.100.127", false, Broadcast},
		{"fe80::2", false, LinkLocalNoZone},
		{"fe80::2%eth9", false, NoSuchLink},
		{"fe80::2%9", false, NoSuchLink},
		{"fe80::2%eth1", false, LinkDown},
		{"fe80::2%lo", false, LinkDown},
		{"198.51.100.1", false, OwnAddress},
		{"203.0.113.1", false, OwnAddress}, // on lo
		{"2001:db8:1::1", false, OwnAddress},
		{"fe80::1%eth0", false, OwnAddress},
		{"198.51.100.130", false, LinkDown},
		{"198.51.100.130", true, Usable},     // the default route, via eth2
		{"203.0.113.10", false, Unreachable}, // a /32 on lo connects nothing
		{"2001:db8:ff::1", false, Unreachable},
		{"2001:db8:ff::1", true, Usable},
		{"2001:db8:fe::1", true, Unreachable}, // no IPv6 default route
		{"203.0.113.200", true, Usable},
		{"203.0.113.130", true, Unreachable}, // the longest match is down
	} {
		var nh netip.Addr
		if tc.nh != "" {
			nh = netip.MustParseAddr(tc.nh)
		}
		if got := s.Check(nh, tc.multihop); got != tc.want {
			t.Errorf("Check(%s, multihop %v) = %v, want %v", tc.nh, tc.multihop, got, tc.want)
		}
	}
}

func TestReasonString(t *testing.T) {
	for r := Usable; r <= Unreachable; r++ {
		if s := r.String(); s == "" || strings.HasPrefix(s, "reason(") {
			t.Errorf("reason %d has no name", r)
		}
	}
	if got := Unreachable.String(); got != "unreachable" {
		t.Errorf("Unreachable = %q, want BIRD's word", got)
	}
	if got := Reason(200).String(); got != "reason(200)" {
		t.Errorf("unknown reason = %q", got)
	}
}

func TestStateEqual(t *testing.T) {
	if !testState().Equal(testState()) {
		t.Fatal("equal snapshots differ")
	}
	other := NewState([]Link{{Index: 2, Name: "eth0", Up: false}}, nil, nil)
	if testState().Equal(other) || other.Equal(NewState([]Link{{Index: 2, Name: "eth0", Up: true}}, nil, nil)) {
		t.Fatal("different snapshots equal")
	}
}
