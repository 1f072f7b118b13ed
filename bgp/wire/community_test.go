package wire

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestParseCommunity(t *testing.T) {
	good := []struct {
		in   string
		want Community
	}{
		{"64512:100", NewCommunity(64512, 100)},
		{"0:0", 0},
		{"65535:65535", 0xffffffff},
		{"00001:00002", NewCommunity(1, 2)}, // the CRD's pattern allows leading zeros
		{"65535:65281", CommunityNoExport},
		{"no-export", CommunityNoExport},
		{"no-advertise", CommunityNoAdvertise},
		{"no-export-subconfed", CommunityNoExportSubconfed},
		{"no-peer", CommunityNoPeer},
		{"blackhole", CommunityBlackhole},
		{"graceful-shutdown", CommunityGracefulShutdown},
		{"accept-own", CommunityAcceptOwn},
		{"llgr-stale", CommunityLLGRStale},
		{"no-llgr", CommunityNoLLGR},
	}
	for _, tc := range good {
		got, err := ParseCommunity(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseCommunity(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	bad := []struct{ in, wantErr string }{
		{"", `community "": want AS:value`},
		{"64512", `community "64512": want AS:value`},
		{"NO-EXPORT", `community "NO-EXPORT": want AS:value`},
		{"64512:70000", `community "64512:70000": 70000 is more than 65535`},
		{"70000:1", `70000 is more than 65535`},
		{"123456:1", `"123456" is not a number of 1 to 5 digits`},
		{"1:2:3", `"2:3" is not a number of 1 to 5 digits`},
		{":1", `"" is not a number`},
		{"+1:2", `"+1" is not a number`},
		{"-1:2", `"-1" is not a number`},
		{" 1:2", `" 1" is not a number`},
		{"1_0:2", `"1_0" is not a number`},
		{"0x1:2", `"0x1" is not a number`},
	}
	for _, tc := range bad {
		_, err := ParseCommunity(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ParseCommunity(%q) error = %v; want one containing %q", tc.in, err, tc.wantErr)
		}
	}
}

func TestParseLargeCommunity(t *testing.T) {
	good := []struct {
		in   string
		want LargeCommunity
	}{
		{"64512:1:100", LargeCommunity{Global: 64512, Local1: 1, Local2: 100}},
		{"0:0:0", LargeCommunity{}},
		{"4294967295:4294967295:4294967295", LargeCommunity{Global: 1<<32 - 1, Local1: 1<<32 - 1, Local2: 1<<32 - 1}},
	}
	for _, tc := range good {
		got, err := ParseLargeCommunity(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseLargeCommunity(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	bad := []struct{ in, wantErr string }{
		{"", `large community "": want three numbers`},
		{"1:2", `large community "1:2": want three numbers`},
		{"1:2:3:4", `want three numbers`},
		{"no-export", `want three numbers`},
		{"4294967296:1:1", `large community "4294967296:1:1": 4294967296 is more than 4294967295`},
		{"1:12345678901:1", `"12345678901" is not a number of 1 to 10 digits`},
		{"1::1", `"" is not a number`},
		{"1:-2:1", `"-2" is not a number`},
	}
	for _, tc := range bad {
		_, err := ParseLargeCommunity(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ParseLargeCommunity(%q) error = %v; want one containing %q", tc.in, err, tc.wantErr)
		}
	}
}

// Every community survives String then ParseCommunity, and every name in
// the table reads back as its community: one table for both directions.
func TestCommunityRoundTrip(t *testing.T) {
	cases := []Community{0, 1, NewCommunity(64512, 100), 0xffffffff, 0xffff0002, 0xfffeffff}
	for c := range communityNames {
		cases = append(cases, c, c-1, c+1)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		cases = append(cases, Community(r.Uint32()))
	}
	for _, c := range cases {
		got, err := ParseCommunity(c.String())
		if err != nil || got != c {
			t.Errorf("ParseCommunity(%q) = %v, %v; want %#x", c.String(), got, err, uint32(c))
		}
	}
	names := CommunityNames()
	slices.Sort(names)
	want := []string{"accept-own", "blackhole", "graceful-shutdown", "llgr-stale", "no-advertise",
		"no-export", "no-export-subconfed", "no-llgr", "no-peer"}
	if !slices.Equal(names, want) {
		t.Errorf("CommunityNames() = %v, want %v", names, want)
	}
	for _, n := range names {
		if c, err := ParseCommunity(n); err != nil || c.String() != n {
			t.Errorf("name %q reads as %v (%v), which prints as %q", n, c, err, c.String())
		}
	}
}

func TestLargeCommunityRoundTrip(t *testing.T) {
	cases := []LargeCommunity{{}, {Global: 64512, Local1: 1, Local2: 100}, {Global: 1<<32 - 1, Local1: 1<<32 - 1, Local2: 1<<32 - 1}}
	r := rand.New(rand.NewPCG(3, 4))
	for range 1000 {
		cases = append(cases, LargeCommunity{Global: r.Uint32(), Local1: r.Uint32(), Local2: r.Uint32()})
	}
	for _, c := range cases {
		got, err := ParseLargeCommunity(c.String())
		if err != nil || got != c {
			t.Errorf("ParseLargeCommunity(%q) = %v, %v; want %v", c.String(), got, err, c)
		}
	}
}
