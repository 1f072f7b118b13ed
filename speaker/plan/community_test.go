package plan

import (
	"strings"
	"testing"

	"github.com/bgplb/bgplb/bgp/wire"
)

func TestParseCommunity(t *testing.T) {
	good := []struct {
		in   string
		want wire.Community
	}{
		{"64512:100", wire.NewCommunity(64512, 100)},
		{"0:0", 0},
		{"65535:65535", 0xffffffff},
		{"00001:00002", wire.NewCommunity(1, 2)}, // the CRD's pattern allows leading zeros
		{"65535:65281", wire.CommunityNoExport},
		{"no-export", wire.CommunityNoExport},
		{"no-advertise", wire.CommunityNoAdvertise},
		{"no-export-subconfed", wire.CommunityNoExportSubconfed},
		{"no-peer", wire.CommunityNoPeer},
		{"blackhole", wire.CommunityBlackhole},
		{"graceful-shutdown", wire.CommunityGracefulShutdown},
		{"accept-own", wire.CommunityAcceptOwn},
		{"llgr-stale", wire.CommunityLLGRStale},
		{"no-llgr", wire.CommunityNoLLGR},
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
		want wire.LargeCommunity
	}{
		{"64512:1:100", wire.LargeCommunity{Global: 64512, Local1: 1, Local2: 100}},
		{"0:0:0", wire.LargeCommunity{}},
		{"4294967295:4294967295:4294967295", wire.LargeCommunity{Global: 1<<32 - 1, Local1: 1<<32 - 1, Local2: 1<<32 - 1}},
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

// The list parsers report every bad entry by index and return nothing on
// error, so an advertisement is never used with half its communities.
func TestParseCommunityLists(t *testing.T) {
	got, err := ParseCommunities([]string{"64512:1", "no-export"})
	if err != nil || len(got) != 2 || got[0] != wire.NewCommunity(64512, 1) || got[1] != wire.CommunityNoExport {
		t.Errorf("ParseCommunities(good) = %v, %v", got, err)
	}
	got, err = ParseCommunities([]string{"64512:1", "bad", "1:99999"})
	if got != nil || err == nil {
		t.Fatalf("ParseCommunities(bad) = %v, %v; want nil and an error", got, err)
	}
	for _, want := range []string{`spec.communities[1]: community "bad"`, `spec.communities[2]: community "1:99999"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ParseCommunities error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "[0]") {
		t.Errorf("ParseCommunities error %q blames a good entry", err)
	}
	large, err := ParseLargeCommunities([]string{"1:2:3", "1:2"})
	if large != nil || err == nil || !strings.Contains(err.Error(), `spec.largeCommunities[1]: large community "1:2"`) {
		t.Errorf("ParseLargeCommunities(bad) = %v, %v", large, err)
	}
	if c, err := ParseCommunities(nil); c != nil || err != nil {
		t.Errorf("ParseCommunities(nil) = %v, %v; want nil, nil", c, err)
	}
}
