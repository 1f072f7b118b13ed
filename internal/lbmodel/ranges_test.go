package lbmodel

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseRange(t *testing.T) {
	r := func(first, last string) Range {
		return Range{First: netip.MustParseAddr(first), Last: netip.MustParseAddr(last)}
	}
	cases := []struct {
		in      string
		want    Range
		wantErr string
	}{
		{in: "203.0.113.0/24", want: r("203.0.113.0", "203.0.113.255")},
		{in: "203.0.113.7/32", want: r("203.0.113.7", "203.0.113.7")},
		{in: "0.0.0.0/0", want: r("0.0.0.0", "255.255.255.255")},
		{in: "198.51.100.128/25", want: r("198.51.100.128", "198.51.100.255")},
		{in: "2001:db8:100::/120", want: r("2001:db8:100::", "2001:db8:100::ff")},
		{in: "2001:db8::/32", want: r("2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")},
		{in: "2001:db8::/127", want: r("2001:db8::", "2001:db8::1")},
		{in: "203.0.113.10-203.0.113.20", want: r("203.0.113.10", "203.0.113.20")},
		{in: "203.0.113.10 - 203.0.113.20", want: r("203.0.113.10", "203.0.113.20")},
		{in: "203.0.113.10\t-203.0.113.20 ", want: r("203.0.113.10", "203.0.113.20")},
		{in: "203.0.113.10-203.0.113.10", want: r("203.0.113.10", "203.0.113.10")},
		{in: "2001:db8::ffff-2001:db8::1:0", want: r("2001:db8::ffff", "2001:db8::1:0")},
		{in: "203.0.113.9", want: r("203.0.113.9", "203.0.113.9")},
		{in: "2001:DB8::1", want: r("2001:db8::1", "2001:db8::1")},

		{in: "203.0.113.300/24", wantErr: "CIDR"},
		{in: "203.0.113.0/33", wantErr: "CIDR"},
		{in: "203.0.113.1/24", wantErr: "did you mean 203.0.113.0/24"},
		{in: "2001:db8::1/64", wantErr: "did you mean 2001:db8::/64"},
		{in: "::ffff:203.0.113.0/120", wantErr: "IPv4-mapped"},
		{in: "203.0.113.20-203.0.113.10", wantErr: "the start comes after the end"},
		{in: "2001:db8::1:0-2001:db8::ffff", wantErr: "the start comes after the end"},
		{in: "203.0.113.10-2001:db8::1", wantErr: "same family"},
		{in: "203.0.113.1-203.0.113.2-203.0.113.3", wantErr: "exactly one '-'"},
		{in: "-203.0.113.1", wantErr: "start"},
		{in: "203.0.113.1-", wantErr: "end"},
		{in: "203.0.113.1-x", wantErr: "end"},
		{in: "::ffff:203.0.113.1", wantErr: "IPv4-mapped"},
		{in: "::ffff:203.0.113.1-::ffff:203.0.113.2", wantErr: "IPv4-mapped"},
		{in: "fe80::1%eth0", wantErr: "zones"},
		{in: "203.0.113.010", wantErr: "leading zero"},
		{in: " 203.0.113.1", wantErr: "not a CIDR, a range or an address"},
		{in: "", wantErr: "not a CIDR, a range or an address"},
		{in: "pool-a", wantErr: "start"},
	}
	for _, tc := range cases {
		got, err := ParseRange(tc.in)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.wantErr == "" && got != tc.want:
			t.Errorf("%q: got %v, want %v", tc.in, got, tc.want)
		case tc.wantErr != "" && err == nil:
			t.Errorf("%q: accepted as %v, want an error containing %q", tc.in, got, tc.wantErr)
		case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
			t.Errorf("%q: error %q does not contain %q", tc.in, err, tc.wantErr)
		}
	}
}

func TestParseRanges(t *testing.T) {
	got, err := ParseRanges([]string{"203.0.113.0/30", "2001:db8::5-2001:db8::9", "198.51.100.1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"203.0.113.0-203.0.113.3", "2001:db8::5-2001:db8::9", "198.51.100.1"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("range %d: got %v, want %s", i, got[i], want[i])
		}
	}

	// Every bad entry is reported, by index; none is returned.
	got, err = ParseRanges([]string{"203.0.113.0/24", "203.0.113.1/24", "198.51.100.9-198.51.100.1"})
	if err == nil || got != nil {
		t.Fatalf("got %v, %v; want only an error", got, err)
	}
	for _, s := range []string{"spec.addresses[1]", "spec.addresses[2]"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
	if strings.Contains(err.Error(), "spec.addresses[0]") {
		t.Errorf("error %q names the good entry", err)
	}
}

func TestRangeContains(t *testing.T) {
	r, err := ParseRange("203.0.113.10-203.0.113.20")
	if err != nil {
		t.Fatal(err)
	}
	for s, want := range map[string]bool{
		"203.0.113.9": false, "203.0.113.10": true, "203.0.113.15": true,
		"203.0.113.20": true, "203.0.113.21": false, "::ffff:203.0.113.15": false,
		"2001:db8::a": false,
	} {
		if got := r.Contains(netip.MustParseAddr(s)); got != want {
			t.Errorf("Contains(%s) = %v, want %v", s, got, want)
		}
	}
}
