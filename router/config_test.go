package router

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The example config, as documented: it must load unchanged.
const exampleConfig = `asn: 64512
routerID: 198.51.100.1
listen: ["0.0.0.0:179", "[::]:179"]
neighbors:                      # static peers
  - address: 198.51.100.11
    peerASN: 64512
    password: ""                # TCP-MD5 when set
    passive: true
dynamicNeighbors:               # any peer from this range may connect
  - prefix: 198.51.100.0/24
    peerASN: 64512
import:
  prefixes: ["203.0.113.0/24", "2001:db8:100::/48"]   # only routes inside these
  maxPrefixLength: {ipv4: 32, ipv6: 128}
  minPrefixLength: {ipv4: 32, ipv6: 128}
  maxPrefixes: 10000            # per peer
fib: {table: 254, metric: 20, ecmp: true}
api: {socket: /run/bgplb/router.sock}
metrics: {address: "127.0.0.1:9473"}
`

func TestParseExample(t *testing.T) {
	c, err := Parse("router.yaml", []byte(exampleConfig))
	if err != nil {
		t.Fatal(err)
	}
	if c.ASN != 64512 || c.RouterID != netip.MustParseAddr("198.51.100.1") || len(c.Listen) != 2 {
		t.Fatalf("top level: %+v", c)
	}
	n := c.Neighbors[0]
	if n.Address != netip.MustParseAddr("198.51.100.11") || n.PeerASN != 64512 || !n.Passive || n.Port != 179 {
		t.Fatalf("neighbor: %+v", n)
	}
	if d := c.DynamicNeighbors[0]; d.Prefix != netip.MustParsePrefix("198.51.100.0/24") || d.PeerASN != 64512 {
		t.Fatalf("dynamic: %+v", d)
	}
	if len(c.Import.Prefixes) != 2 || c.Import.MaxPrefixes != 10000 || c.Import.MinPrefixLength != (PerFamily{32, 128}) {
		t.Fatalf("import: %+v", c.Import)
	}
	if c.FIB != (FIBConfig{Table: 254, Metric: 20, ECMP: true, GraceTime: DefaultGraceTime, NextHopObjects: "auto",
		Protocol: 186, ResyncInterval: DefaultResyncInterval,
		Resilient: ResilientConfig{Enabled: true, Buckets: DefaultBuckets, IdleTimer: DefaultIdleTimer}}) {
		t.Fatalf("fib: %+v", c.FIB)
	}
	if c.API.Socket != "/run/bgplb/router.sock" || c.Metrics.Address != "127.0.0.1:9473" {
		t.Fatalf("api/metrics: %+v %+v", c.API, c.Metrics)
	}
}

func TestParseDefaults(t *testing.T) {
	c, err := Parse("min.yaml", []byte("asn: 64512\nrouterID: 198.51.100.1\nimport: {prefixes: [203.0.113.0/24]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Import.MaxPrefixes != DefaultMaxPrefixes || c.Import.MaxPrefixLength != (PerFamily{32, 128}) ||
		c.FIB.Table != DefaultTable || c.FIB.Metric != DefaultMetric || !c.FIB.ECMP || c.API.Socket != DefaultSocket ||
		len(c.Listen) != 2 {
		t.Fatalf("defaults: %+v", c)
	}
}

// TestParseErrors checks that each bad config is refused with an error naming
// the field and its line.
func TestParseErrors(t *testing.T) {
	base := "asn: 64512\nrouterID: 198.51.100.1\nimport: {prefixes: [203.0.113.0/24]}\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"empty file", "", "x.yaml: asn: is required"},
		{"asn zero", "asn: 0\nrouterID: 198.51.100.1\nimport: {prefixes: [203.0.113.0/24]}\n", "x.yaml:1: asn: \"0\" is not a whole number in 1..4294967295"},
		{"asn text", "asn: sixty\nrouterID: 198.51.100.1\nimport: {prefixes: [203.0.113.0/24]}\n", "x.yaml:1: asn:"},
		{"router id v6", "asn: 1\nrouterID: 2001:db8::1\nimport: {prefixes: [203.0.113.0/24]}\n", "x.yaml:2: routerID: 2001:db8::1: a router ID is an IPv4 address"},
		{"bad neighbor address", base + "neighbors:\n  - address: 198.51.100.300\n    peerASN: 64512\n", "x.yaml:5: neighbors[0].address: \"198.51.100.300\" is not an IP address"},
		{"missing peerASN", base + "neighbors:\n  - address: 198.51.100.3\n", "x.yaml: neighbors[0].peerASN: is required"},
		{"unknown key", base + "neighbours: []\n", "x.yaml:4: neighbours: unknown key (known here: api, asn, dynamicNeighbors, fib,"},
		{"unknown nested key", base + "fib:\n  table: 254\n  bogus: 1\n", "x.yaml:6: fib.bogus: unknown key (known here: ecmp, graceTime, metric, nextHopObjects, protocol, resilient, resyncInterval, table)"},
		{"resilient unknown key", base + "fib: {resilient: {buckets: 64, idle: 5s}}\n", "x.yaml:4: fib.resilient.idle: unknown key (known here: buckets, enabled, idleTimer, unbalancedTimer)"},
		{"resilient one bucket", base + "fib: {resilient: {buckets: 1}}\n", "x.yaml:4: fib.resilient.buckets: \"1\" is not a whole number in 256..8192"},
		{"resilient fewer buckets than members", base + "fib: {resilient: {buckets: 255}}\n", "x.yaml:4: fib.resilient.buckets: \"255\" is not a whole number in 256..8192"},
		{"resilient too many buckets", base + "fib: {resilient: {buckets: 8193}}\n", "fib.resilient.buckets: \"8193\" is not a whole number in 256..8192"},
		{"resilient fractional timer", base + "fib: {resilient: {idleTimer: 1500ms}}\n", "x.yaml:4: fib.resilient.idleTimer: 1.5s: must be whole seconds"},
		{"resilient idle timer 0", base + "fib: {resilient: {idleTimer: 0}}\n", "x.yaml:4: fib.resilient.idleTimer: 0: a bucket must be idle for at least 1s"},
		{"resilient not a bool", base + "fib: {resilient: {enabled: sometimes}}\n", "x.yaml:4: fib.resilient.enabled: \"sometimes\" is not true or false"},
		{"unknown key in a list item", base + "neighbors:\n  - {address: 198.51.100.3, peerASN: 1}\n  - address: 198.51.100.4\n    peerASN: 1\n    holdtime: 9s\n", "x.yaml:8: neighbors[1].holdtime: unknown key"},
		{"unknown key in a dynamic range", base + "dynamicNeighbors:\n  - {prefix: 198.51.100.0/24, peerASN: 1, maxpeers: 3}\n", "x.yaml:5: dynamicNeighbors[0].maxpeers: unknown key"},
		{"list where a mapping belongs", base + "fib: [254]\n", "x.yaml:4: fib: must be a mapping"},
		{"mapping where a list belongs", base + "neighbors: {address: 198.51.100.3}\n", "x.yaml:4: neighbors: must be a list"},
		{"hold time 0 with keepalives", base + "neighbors:\n  - {address: 198.51.100.3, peerASN: 1, holdTime: 0, keepaliveTime: 30s}\n", "x.yaml:5: neighbors[0].keepaliveTime: 30s: holdTime 0 sends no keepalives"},
		{"protocol reserved", base + "fib: {protocol: 4}\n", "x.yaml:4: fib.protocol: 4: protocols 0 to 4 belong to the kernel and static routes"},
		{"protocol by a reserved name", base + "fib: {protocol: static}\n", "x.yaml:4: fib.protocol: static: protocols 0 to 4"},
		{"protocol unknown", base + "fib: {protocol: bgpd}\n", "x.yaml:4: fib.protocol: \"bgpd\" is neither a number in 5..255 nor a protocol name"},
		{"protocol too big", base + "fib: {protocol: 256}\n", "x.yaml:4: fib.protocol: \"256\" is neither"},
		{"resync too often", base + "fib:\n  resyncInterval: 1s\n", "x.yaml:5: fib.resyncInterval: 1s: must be at least 10s"},
		{"resync not a duration", base + "fib: {resyncInterval: often}\n", "x.yaml:4: fib.resyncInterval: \"often\" is not a duration"},
		{"max peers zero", base + "dynamicNeighbors:\n  - {prefix: 198.51.100.0/24, peerASN: 1, maxPeers: 0}\n", "x.yaml:5: dynamicNeighbors[0].maxPeers: \"0\" is not a whole number in 1.."},
		{"ttl security not a bool", base + "dynamicNeighbors:\n  - {prefix: 198.51.100.0/24, peerASN: 1, ttlSecurity: maybe}\n", "x.yaml:5: dynamicNeighbors[0].ttlSecurity: \"maybe\" is not true or false"},
		{"max sessions zero", base + "limits: {maxSessions: 0}\n", "x.yaml:4: limits.maxSessions: \"0\" is not a whole number in 1.."},
		{"max sessions below the static neighbors", base + "limits: {maxSessions: 1}\nneighbors:\n  - {address: 198.51.100.3, peerASN: 1}\n  - {address: 198.51.100.4, peerASN: 1}\n",
			"x.yaml:4: limits.maxSessions: 1 leaves no room for the 2 static neighbors"},
		{"duplicate neighbor", base + "neighbors:\n  - {address: 198.51.100.3, peerASN: 1}\n  - {address: 198.51.100.3, peerASN: 2}\n", "x.yaml:6: neighbors[1].address: 198.51.100.3 is already configured in neighbors[0]"},
		{"hold time 2s", base + "neighbors:\n  - {address: 198.51.100.3, peerASN: 1, holdTime: 2s}\n", "x.yaml:5: neighbors[0].holdTime: 2s: must be 0 or at least 3s"},
		{"host bits in range", base + "dynamicNeighbors:\n  - {prefix: 198.51.100.1/24, peerASN: 1}\n", "x.yaml:5: dynamicNeighbors[0].prefix: 198.51.100.1/24 has host bits set (did you mean 198.51.100.0/24?)"},
		{"overlapping ranges", base + "dynamicNeighbors:\n  - {prefix: 198.51.100.0/24, peerASN: 1}\n  - {prefix: 198.51.100.128/25, peerASN: 1}\n", "x.yaml:6: dynamicNeighbors[1].prefix: 198.51.100.128/25 overlaps dynamicNeighbors[0].prefix"},
		{"no import prefixes", "asn: 1\nrouterID: 198.51.100.1\n", "x.yaml: import.prefixes: is required"},
		{"min above max", base[:len(base)-2] + ", minPrefixLength: {ipv4: 32}, maxPrefixLength: {ipv4: 24}}\n", "import.minPrefixLength.ipv4: 32 exceeds maxPrefixLength.ipv4 24"},
		{"bad listen", base + "listen: [\"0.0.0.0\"]\n", "x.yaml:4: listen[0]: \"0.0.0.0\" is not an address:port"},
		{"next hop mode", base + "fib: {nextHopObjects: maybe}\n", "x.yaml:4: fib.nextHopObjects: \"maybe\": must be auto, on or off"},
		{"syntax", "asn: [1\n", "x.yaml"},
		{"password too long", base + "neighbors:\n  - {address: 198.51.100.3, peerASN: 1, password: " + strings.Repeat("p", 81) + "}\n", "neighbors[0].password: longer than 80 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\ndoes not contain %q", err, tc.want)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatal("no FieldError in the chain")
			}
		})
	}
}

func TestParseTimers(t *testing.T) {
	c, err := Parse("t.yaml", []byte("asn: 1\nrouterID: 198.51.100.1\nimport: {prefixes: [203.0.113.0/24]}\n"+
		"neighbors:\n  - {address: 198.51.100.3, peerASN: 1, holdTime: 9, keepaliveTime: 3s, connectRetry: 1m, sourceAddress: 198.51.100.1, sourcePort: 1179}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Neighbors[0].Timers; got != (Timers{Hold: 9 * time.Second, Keepalive: 3 * time.Second, ConnectRetry: time.Minute}) {
		t.Fatalf("timers %+v", got)
	}
	if n := c.Neighbors[0]; n.SourceAddress != netip.MustParseAddr("198.51.100.1") || n.SourcePort != 1179 {
		t.Fatalf("source %v:%d", n.SourceAddress, n.SourcePort)
	}
}

// TestParseNewFields: holdTime 0 is RFC 4271's "no hold timer", not the
// default; the fib, limits and GTSM settings of issue 11 and their defaults.
func TestParseNewFields(t *testing.T) {
	c, err := Parse("t.yaml", []byte(`asn: 1
routerID: 198.51.100.1
import: {prefixes: [203.0.113.0/24]}
neighbors:
  - {address: 198.51.100.3, peerASN: 1, holdTime: 0}
  - {address: 198.51.100.4, peerASN: 1}
dynamicNeighbors:
  - {prefix: 198.51.100.128/25, peerASN: 1, ttlSecurity: true, maxPeers: 50, holdTime: 0s}
  - {prefix: 2001:db8::/64, peerASN: 1}
fib: {protocol: bird, resyncInterval: 1m}
limits: {maxSessions: 5000}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Neighbors[0].Timers; got != (Timers{NoHold: true}) {
		t.Errorf("holdTime 0: %+v", got)
	}
	if got := c.Neighbors[1].Timers; got != (Timers{}) {
		t.Errorf("no holdTime: %+v", got)
	}
	if sc := sessionConfig(c, c.Neighbors[0].Address, 1, c.Neighbors[0].Timers, false); !sc.DisableHoldTime || sc.HoldTime != 0 {
		t.Errorf("holdTime 0 reaches the session as %+v", sc)
	}
	if sc := sessionConfig(c, c.Neighbors[1].Address, 1, c.Neighbors[1].Timers, false); sc.DisableHoldTime {
		t.Error("a neighbour without holdTime has its hold timer disabled")
	}
	d0, d1 := c.DynamicNeighbors[0], c.DynamicNeighbors[1]
	if !d0.TTLSecurity || d0.MaxPeers != 50 || !d0.Timers.NoHold || d1.TTLSecurity || d1.MaxPeers != DefaultMaxPeers {
		t.Errorf("dynamic ranges: %+v %+v", d0, d1)
	}
	if c.FIB.Protocol != 12 || c.FIB.ResyncInterval != time.Minute || c.Limits.MaxSessions != 5000 {
		t.Errorf("fib %+v, limits %+v", c.FIB, c.Limits)
	}
	if fc := fibConfig(c, ""); fc.Protocol != 12 {
		t.Errorf("fib.protocol does not reach the FIB: %+v", fc)
	}
	c, err = Parse("t.yaml", []byte("asn: 1\nrouterID: 198.51.100.1\nimport: {prefixes: [203.0.113.0/24]}\nfib: {protocol: 200}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.FIB.Protocol != 200 || c.Limits.MaxSessions != DefaultMaxSessions {
		t.Errorf("protocol by number: %+v, limits %+v", c.FIB, c.Limits)
	}
}

func TestParseResilient(t *testing.T) {
	c, err := Parse("t.yaml", []byte("asn: 1\nrouterID: 198.51.100.1\nimport: {prefixes: [203.0.113.0/24]}\n"+
		"fib: {resilient: {buckets: 512, idleTimer: 30s, unbalancedTimer: 5m}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := ResilientConfig{Enabled: true, Buckets: 512, IdleTimer: 30 * time.Second, UnbalancedTimer: 5 * time.Minute}
	if c.FIB.Resilient != want {
		t.Errorf("fib.resilient = %+v, want %+v", c.FIB.Resilient, want)
	}
	fc := fibConfig(c, "")
	if r := fc.Resilient; r.Off || r.Buckets != 512 || r.IdleTimer != 30*time.Second || r.UnbalancedTimer != 5*time.Minute {
		t.Errorf("fib.resilient does not reach the FIB: %+v", r)
	}
	c, err = Parse("t.yaml", []byte("asn: 1\nrouterID: 198.51.100.1\nimport: {prefixes: [203.0.113.0/24]}\nfib: {resilient: {enabled: false}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !fibConfig(c, "").Resilient.Off {
		t.Errorf("fib.resilient.enabled: false does not turn them off")
	}
}

func TestParseRTProtos(t *testing.T) {
	m := map[string]uint8{"bgp": 186, "static": 4}
	parseRTProtos("# comment\n\n200\tlb   # ours\n0x10 hexa\nbogus line\n300 toobig\n186 bgp-alias\n196  static\n201 lb\n", m)
	want := map[string]uint8{"bgp": 186, "static": 4, "lb": 200, "hexa": 16, "bgp-alias": 186}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got %v, want %v", m, want)
	}
}

func TestImportCheck(t *testing.T) {
	im := Import{
		Prefixes:        []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8:100::/48")},
		MinPrefixLength: PerFamily{32, 128}, MaxPrefixLength: PerFamily{32, 128},
	}
	wide := im
	wide.MinPrefixLength = PerFamily{0, 0}
	tests := []struct {
		im   *Import
		p    string
		want Verdict
	}{
		{&im, "203.0.113.10/32", Accept},
		{&im, "2001:db8:100::10/128", Accept},
		{&im, "203.0.113.0/24", RejectTooShort},
		{&wide, "203.0.113.0/24", Accept},
		{&wide, "203.0.112.0/23", RejectOutside},
		{&im, "198.51.100.7/32", RejectOutside},
		{&im, "2001:db8:200::1/128", RejectOutside},
		{&im, "0.0.0.0/0", RejectDefault},
		{&wide, "0.0.0.0/0", RejectDefault},
		{&wide, "::/0", RejectDefault},
	}
	for _, tc := range tests {
		if got := tc.im.Check(netip.MustParsePrefix(tc.p)); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.p, got, tc.want)
		}
	}
}

// The shipped example must always load.
func TestDeployExampleLoads(t *testing.T) {
	if _, err := LoadFile("../deploy/router/router.yaml"); err != nil {
		t.Fatal(err)
	}
}

// TestParseReportsEverything: an unknown key does not hide the other
// mistakes; all come in file order, each with its line and path.
func TestParseReportsEverything(t *testing.T) {
	_, err := Parse("r.yaml", []byte(`asn: 64512
routerID: 198.51.100.1
dynamicNeighbors:
  - {prefix: 198.51.100.0/24, peerASN: 64512, ttlSecurity: maybe}
limits: {maxSessions: 0}
fib:
  protocol: kernel
  bogus: 1
`))
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v", err)
	}
	var got []string
	for _, e := range ce.Errs {
		got = append(got, fmt.Sprintf("%d %s", e.Line, e.Field))
	}
	want := []string{"4 dynamicNeighbors[0].ttlSecurity", "5 limits.maxSessions", "7 fib.protocol", "8 fib.bogus", "0 import.prefixes"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

// TestParseAnchors: YAML anchors, aliases and merge keys are not unknown
// keys; what they bring in is checked where it lands.
func TestParseAnchors(t *testing.T) {
	c, err := Parse("a.yaml", []byte(`asn: 1
routerID: 198.51.100.1
import: {prefixes: [203.0.113.0/24]}
neighbors:
  - &n1 {address: 198.51.100.3, peerASN: 1, holdTime: 9s}
  - <<: *n1
    address: 198.51.100.4
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Neighbors) != 2 || c.Neighbors[1].Address != netip.MustParseAddr("198.51.100.4") || c.Neighbors[1].Timers.Hold != 9*time.Second {
		t.Fatalf("neighbors %+v", c.Neighbors)
	}
	_, err = Parse("a.yaml", []byte(`asn: 1
routerID: 198.51.100.1
import: {prefixes: [203.0.113.0/24]}
neighbors:
  - &n1 {address: 198.51.100.3, peerASN: 1, holdtime: 9s}
  - <<: *n1
    address: 198.51.100.4
`))
	if err == nil || !strings.Contains(err.Error(), "a.yaml:5: neighbors[0].holdtime: unknown key") {
		t.Fatalf("error %v", err)
	}
}
