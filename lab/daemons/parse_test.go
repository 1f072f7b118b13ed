package daemons

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		t.Fatalf("testdata/%s is empty", name)
	}
	return b
}

var (
	p11, p12, p13 = addr("198.51.100.11"), addr("198.51.100.12"), addr("198.51.100.13")
	// The routes every capture received: ECMP-able 203.0.113.50/32 and
	// 2001:db8:100::50/128 from both gobgpds (the .11 path best), 203.0.113.51/32 from .11.
	capturedRoutes = []Route{
		{Prefix: pfx("203.0.113.50/32"), NextHop: p11, Peer: p11, Best: true},
		{Prefix: pfx("203.0.113.50/32"), NextHop: p12, Peer: p12},
		{Prefix: pfx("203.0.113.51/32"), NextHop: p11, Peer: p11, Best: true},
		{Prefix: pfx("2001:db8:100::50/128"), NextHop: addr("2001:db8::11"), Peer: p11, Best: true},
		{Prefix: pfx("2001:db8:100::50/128"), NextHop: addr("2001:db8::12"), Peer: p12},
	}
	capturedNames = map[string]netip.Addr{"n198_51_100_11": p11, "n198_51_100_12": p12, "n198_51_100_13": p13}
)

func checkRoutes(t *testing.T, got, want []Route) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("routes:\n got %v\nwant %v", got, want)
	}
}

func TestParseGoBGPNeighbors(t *testing.T) {
	got, err := parseGoBGPNeighbors(readTestdata(t, "gobgp-neighbor.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Session{{p11, Established}, {p12, Established}, {p13, Active}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	tests := []struct {
		in   string
		want State
	}{
		{`[{"conf":{"neighbor_address":"198.51.100.11"},"state":{"session_state":"ESTABLISHED"}}]`, Established},
		{`[{"conf":{"neighbor_address":"198.51.100.11"},"state":{"session_state":4}}]`, OpenSent},
		{`[{"conf":{"neighbor_address":"198.51.100.11"},"state":{}}]`, Idle},
	}
	for _, tt := range tests {
		ss, err := parseGoBGPNeighbors([]byte(tt.in))
		if err != nil || len(ss) != 1 || ss[0].State != tt.want {
			t.Errorf("%s: %v %v, want %s", tt.in, ss, err, tt.want)
		}
	}
	if _, err := parseGoBGPNeighbors([]byte(`[{"conf":{"neighbor_address":"x"}}]`)); err == nil {
		t.Error("bad neighbour address parsed")
	}
}

func TestParseGoBGPRib(t *testing.T) {
	var got []Route
	for _, f := range []string{"gobgp-rib-ipv4.json", "gobgp-rib-ipv6.json"} {
		rs, err := parseGoBGPRib(readTestdata(t, f))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rs...)
	}
	sortRoutes(got)
	checkRoutes(t, got, capturedRoutes)
}

func TestParseBIRDProtocols(t *testing.T) {
	got, err := parseBIRDProtocols(readTestdata(t, "bird-protocols.txt"), capturedNames)
	if err != nil {
		t.Fatal(err)
	}
	want := []Session{{p11, Established}, {p12, Established}, {p13, Connect}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// An ISO time format puts two words in the Since column; a disabled
	// protocol has no BGP state at all.
	in := "n198_51_100_11 BGP ---  up  2026-11-25 19:21:52  Established\n" +
		"n198_51_100_12 BGP ---  down  2026-11-25 19:21:52\n" +
		"other BGP --- up 19:21:52 Established\n"
	got, err = parseBIRDProtocols([]byte(in), capturedNames)
	if err != nil {
		t.Fatal(err)
	}
	want = []Session{{p11, Established}, {p12, Idle}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestParseBIRDRoutes(t *testing.T) {
	got, err := parseBIRDRoutes(readTestdata(t, "bird-route-all.txt"), capturedNames)
	if err != nil {
		t.Fatal(err)
	}
	checkRoutes(t, got, capturedRoutes)
	if _, err := parseBIRDRoutes([]byte("Table master4:\nnot-a-prefix unicast [x 1] *\n"), capturedNames); err == nil {
		t.Error("bad prefix parsed")
	}
}

func TestParseFRR(t *testing.T) {
	ss, err := parseFRRNeighbors(readTestdata(t, "frr-neighbors.json"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []Session{{p11, Established}, {p12, Established}, {p13, Connect}}; !reflect.DeepEqual(ss, want) {
		t.Errorf("sessions %v, want %v", ss, want)
	}
	var got []Route
	for _, f := range []string{"frr-ipv4.json", "frr-ipv6.json"} {
		rs, err := parseFRRRoutes(readTestdata(t, f))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rs...)
	}
	sortRoutes(got)
	checkRoutes(t, got, capturedRoutes)

	// A link-local next hop listed first must not hide the global one; an
	// invalid path is never best.
	in := `{"routes":{"2001:db8:100::9/128":[{"valid":false,"bestpath":true,"peerId":"2001:db8::12",` +
		`"nexthops":[{"ip":"fe80::1","scope":"link-local"},{"ip":"2001:db8::12","scope":"global"}]}]}}`
	got, err = parseFRRRoutes([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	checkRoutes(t, got, []Route{{Prefix: pfx("2001:db8:100::9/128"), NextHop: addr("2001:db8::12"), Peer: addr("2001:db8::12")}})
}

func TestExaRIBCapture(t *testing.T) {
	rib := newExaRIB([]Neighbor{{Address: p11}, {Address: p12}, {Address: p13}})
	if err := rib.applyAll(readTestdata(t, "exabgp-events.jsonl")); err != nil {
		t.Fatal(err)
	}
	if got, want := rib.sessions(), []Session{{p11, Established}, {p12, Established}, {p13, Idle}}; !reflect.DeepEqual(got, want) {
		t.Errorf("sessions %v, want %v", got, want)
	}
	// ExaBGP selects nothing: every received path counts as best.
	want := make([]Route, len(capturedRoutes))
	for i, r := range capturedRoutes {
		r.Best = true
		want[i] = r
	}
	checkRoutes(t, rib.received(), want)
}

func TestExaRIB(t *testing.T) {
	const (
		up   = `{"type":"state","neighbor":{"address":{"peer":"2001:db8::12"},"state":"up"}}`
		down = `{"type":"state","neighbor":{"address":{"peer":"2001:db8::12"},"state":"down","reason":"x"}}`
		conn = `{"type":"state","neighbor":{"address":{"peer":"2001:db8::12"},"state":"connected"}}`
		ann  = `{"type":"update","neighbor":{"address":{"peer":"2001:db8::12"},"message":{"update":{"announce":` +
			`{"ipv6 unicast":{"2001:db8::12":[{"nlri":"2001:db8:100::12/128"}],"fe80::12":[{"nlri":"2001:db8:100::12/128"}]},` +
			`"ipv4 unicast":{"198.51.100.12":["203.0.113.12/32"]}}}}}}`
		wd = `{"type":"update","neighbor":{"address":{"peer":"2001:db8::12"},"message":{"update":{"withdraw":` +
			`{"ipv4 unicast":[{"nlri":"203.0.113.12/32"}]}}}}}`
		eor = `{"type":"update","neighbor":{"address":{"peer":"2001:db8::12"},"message":{"eor":{"afi":"ipv4","safi":"unicast"}}}}`
	)
	peer := addr("2001:db8::12")
	v6 := Route{Prefix: pfx("2001:db8:100::12/128"), NextHop: peer, Peer: peer, Best: true}
	v4 := Route{Prefix: pfx("203.0.113.12/32"), NextHop: addr("198.51.100.12"), Peer: peer, Best: true}
	tests := []struct {
		name   string
		lines  string
		state  State
		routes []Route
	}{
		{"nothing yet", "", Idle, nil},
		{"connecting", conn + "\n", Connect, nil},
		{"up with routes; global next hop beats link-local", up + "\n" + ann + "\n" + eor + "\n", Established, []Route{v4, v6}},
		{"withdraw", up + "\n" + ann + "\n" + wd + "\n", Established, []Route{v6}},
		{"down drops the peer's routes", up + "\n" + ann + "\n" + down + "\n", Idle, nil},
		{"torn last line waits", up + "\n" + ann[:40], Established, nil},
		{"acknowledgements ignored", "done\n" + up + "\nerror\n", Established, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rib := newExaRIB([]Neighbor{{Address: peer}})
			if err := rib.applyAll([]byte(tt.lines)); err != nil {
				t.Fatal(err)
			}
			if got := rib.sessions(); len(got) != 1 || got[0].State != tt.state {
				t.Errorf("sessions %v, want %s", got, tt.state)
			}
			checkRoutes(t, rib.received(), tt.routes)
		})
	}
	if err := newExaRIB(nil).applyAll([]byte("{broken\n")); err == nil {
		t.Error("a broken complete line was accepted")
	}
}

func TestHasAndLacksRoutes(t *testing.T) {
	rs := capturedRoutes
	tests := []struct {
		name string
		cond func([]Route) bool
		want bool
	}{
		{"best from anyone", HasRoutes(netip.Addr{}, netip.Addr{}, pfx("203.0.113.50/32"), pfx("203.0.113.51/32")), true},
		{"best from .11 via .11", HasRoutes(p11, p11, pfx("203.0.113.50/32")), true},
		{"only a non-best path from .12", HasRoutes(p12, netip.Addr{}, pfx("203.0.113.50/32")), false},
		{"wrong next hop", HasRoutes(p11, p12, pfx("203.0.113.51/32")), false},
		{"missing prefix", HasRoutes(netip.Addr{}, netip.Addr{}, pfx("203.0.113.99/32")), false},
		{"lacks missing", LacksRoutes(pfx("203.0.113.99/32")), true},
		{"lacks present", LacksRoutes(pfx("203.0.113.99/32"), pfx("203.0.113.51/32")), false},
	}
	for _, tt := range tests {
		if got := tt.cond(rs); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{ASN: 64512, RouterID: addr("198.51.100.1"), Local4: addr("198.51.100.1"), Local6: addr("2001:db8::1"),
		Neighbors: []Neighbor{{Address: p11, ASN: 64512}, {Address: addr("2001:db8::11"), ASN: 64513, Families: []Family{IPv6}}}}
	if err := ok.validate(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no ASN", func(c *Config) { c.ASN = 0 }, "ASN"},
		{"IPv6 router ID", func(c *Config) { c.RouterID = addr("2001:db8::1") }, "router ID"},
		{"Local4 not IPv4", func(c *Config) { c.Local4 = addr("2001:db8::1") }, "Local4"},
		{"Local6 mapped IPv4", func(c *Config) { c.Local6 = addr("::ffff:198.51.100.1") }, "Local6"},
		{"short hold", func(c *Config) { c.HoldTime = 1 }, "hold"},
		{"neighbour without ASN", func(c *Config) { c.Neighbors[0].ASN = 0 }, "ASN are required"},
		{"duplicate neighbour", func(c *Config) { c.Neighbors[1].Address = p11 }, "twice"},
		{"bad family", func(c *Config) { c.Neighbors[0].Families = []Family{5} }, "family"},
		{"quoting password", func(c *Config) { c.Neighbors[0].Password = `a"b` }, "password"},
	}
	for _, tt := range tests {
		c := ok
		c.Neighbors = append([]Neighbor(nil), ok.Neighbors...)
		tt.mod(&c)
		if err := c.validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error about %q", tt.name, err, tt.want)
		}
	}
	if _, err := (Config{Local4: addr("198.51.100.1")}).nextHop(pfx("2001:db8:100::1/128")); err == nil {
		t.Error("an IPv6 announcement without Local6 got a next hop")
	}
}

func TestFRRNetworkCommands(t *testing.T) {
	got := frrNetworkCommands(64512, "no network", []netip.Prefix{pfx("2001:db8:100::1/128"), pfx("203.0.113.1/32"), pfx("203.0.113.2/32")})
	want := []string{"configure terminal", "router bgp 64512",
		"address-family ipv4 unicast", "no network 203.0.113.1/32", "no network 203.0.113.2/32", "exit-address-family",
		"address-family ipv6 unicast", "no network 2001:db8:100::1/128", "exit-address-family", "end"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if got := frrNetworkCommands(1, "network", nil); got != nil {
		t.Errorf("no prefixes gave %q", got)
	}
}

func TestPrefixSet(t *testing.T) {
	var s prefixSet
	s = s.add(pfx("203.0.113.1/32"), pfx("2001:db8:100::1/128"), pfx("203.0.113.1/32"), pfx("203.0.113.2/32"))
	if want := (prefixSet{pfx("203.0.113.1/32"), pfx("2001:db8:100::1/128"), pfx("203.0.113.2/32")}); !reflect.DeepEqual(s, want) {
		t.Fatalf("add: %v, want %v", s, want)
	}
	s = s.remove(pfx("203.0.113.1/32"), pfx("203.0.113.9/32"))
	if got, want := s.family(IPv4), []netip.Prefix{pfx("203.0.113.2/32")}; !reflect.DeepEqual(got, want) {
		t.Errorf("IPv4 after remove: %v, want %v", got, want)
	}
	if got, want := s.family(IPv6), []netip.Prefix{pfx("2001:db8:100::1/128")}; !reflect.DeepEqual(got, want) {
		t.Errorf("IPv6 after remove: %v, want %v", got, want)
	}
}
