package daemons

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseFRRBFDPeers(t *testing.T) {
	out := `[{"multihop":false,"peer":"198.51.100.21","local":"198.51.100.22","status":"up","diagnostic":"ok","remote-diagnostic":"administratively down"},
	 {"multihop":true,"peer":"2001:db8::21","status":"down"},{"peer":"not-an-address","status":"up"}]`
	got, err := parseFRRBFDPeers([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []BFDState{{Peer: netip.MustParseAddr("198.51.100.21"), State: "up", Diag: "ok", RemoteDiag: "administratively down"},
		{Peer: netip.MustParseAddr("2001:db8::21"), State: "down"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v want %v", got, want)
	}
	if _, err := parseFRRBFDPeers([]byte("% Unknown command")); err == nil {
		t.Error("garbage parsed")
	}
}

func TestParseBIRDBFDSessions(t *testing.T) {
	out := `BIRD 2.0.12 ready.
bfd1:
IP address                Interface  State      Since         Interval  Timeout
198.51.100.21             eth0       Up         15:14:16.740    0.050    0.150
2001:db8::21              eth0       Init       15:14:16.740    1.000    0.000
198.51.100.99             ---        Down       15:14:16.740    1.000    0.000
`
	got, err := parseBIRDBFDSessions([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []BFDState{{Peer: netip.MustParseAddr("198.51.100.21"), State: "up"},
		{Peer: netip.MustParseAddr("2001:db8::21"), State: "init"},
		{Peer: netip.MustParseAddr("198.51.100.99"), State: "down"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v want %v", got, want)
	}
}

func TestBFDConfigs(t *testing.T) {
	peers := []BFDPeer{
		{Peer: netip.MustParseAddr("198.51.100.21"), Local: netip.MustParseAddr("198.51.100.22"), Interval: 50 * time.Millisecond},
		{Peer: netip.MustParseAddr("2001:db8::21"), Local: netip.MustParseAddr("2001:db8::22"), Interface: "eth0", Passive: true},
		{Peer: netip.MustParseAddr("203.0.113.1"), Local: netip.MustParseAddr("198.51.100.22"), Multihop: true, Mult: 5},
	}
	frr := frrBFDConfig(peers)
	for _, want := range []string{
		" peer 198.51.100.21 local-address 198.51.100.22\n  receive-interval 50\n  transmit-interval 50\n  detect-multiplier 3\n",
		" peer 2001:db8::21 local-address 2001:db8::22 interface eth0\n  receive-interval 300\n",
		"  passive-mode\n",
		" peer 203.0.113.1 multihop local-address 198.51.100.22\n  receive-interval 300\n  transmit-interval 300\n  detect-multiplier 5\n",
	} {
		if !strings.Contains(frr, want) {
			t.Errorf("frr config lacks %q:\n%s", want, frr)
		}
	}
	bird := birdBFDConfig(netip.MustParseAddr("198.51.100.22"), peers)
	for _, want := range []string{
		`interface "*" { min rx interval 50 ms; min tx interval 50 ms; idle tx interval 1000 ms; multiplier 3; };`,
		`multihop { min rx interval 300 ms; min tx interval 300 ms; idle tx interval 1000 ms; multiplier 5; };`,
		"neighbor 198.51.100.21 local 198.51.100.22;",
		`neighbor 2001:db8::21 dev "eth0" local 2001:db8::22;`,
		"neighbor 203.0.113.1 local 198.51.100.22 multihop on;",
	} {
		if !strings.Contains(bird, want) {
			t.Errorf("bird config lacks %q:\n%s", want, bird)
		}
	}
	if strings.Count(bird, "interface \"*\"") != 1 {
		t.Errorf("one interface block:\n%s", bird)
	}
}
