package router

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/bgplb/bgplb/bgp/wire"
)

func mustParse(t testing.TB, s string) *Config {
	t.Helper()
	c, err := Parse("t.yaml", []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPlanReload(t *testing.T) {
	const head = "asn: 64512\nrouterID: 198.51.100.1\nimport: {prefixes: [203.0.113.0/24]}\n"
	old := mustParse(t, head+`neighbors:
  - {address: 198.51.100.11, peerASN: 64512}
  - {address: 198.51.100.12, peerASN: 64512}
  - {address: 198.51.100.13, peerASN: 64512}
dynamicNeighbors:
  - {prefix: 198.51.100.128/25, peerASN: 64512}
  - {prefix: 2001:db8::/64, peerASN: 64512}
`)
	a := netip.MustParseAddr
	tests := []struct {
		name string
		cfg  string
		want ReloadPlan
	}{
		{"nothing changed", head + `neighbors:
  - {address: 198.51.100.11, peerASN: 64512}
  - {address: 198.51.100.12, peerASN: 64512}
  - {address: 198.51.100.13, peerASN: 64512}
dynamicNeighbors:
  - {prefix: 198.51.100.128/25, peerASN: 64512}
  - {prefix: 2001:db8::/64, peerASN: 64512}
`, ReloadPlan{Keep: []netip.Addr{a("198.51.100.11"), a("198.51.100.12"), a("198.51.100.13")}}},
		{"one neighbour edited, one removed, one added, a range dropped", head + `neighbors:
  - {address: 198.51.100.11, peerASN: 64512}
  - {address: 198.51.100.12, peerASN: 64512, password: s3cret}
  - {address: 198.51.100.14, peerASN: 64512}
dynamicNeighbors:
  - {prefix: 198.51.100.128/25, peerASN: 64513}
`, ReloadPlan{
			Add: []netip.Addr{a("198.51.100.14")}, Remove: []netip.Addr{a("198.51.100.13")},
			Restart: []netip.Addr{a("198.51.100.12")}, Keep: []netip.Addr{a("198.51.100.11")},
			RestartRanges: []netip.Prefix{netip.MustParsePrefix("198.51.100.128/25")},
			RemoveRanges:  []netip.Prefix{netip.MustParsePrefix("2001:db8::/64")},
		}},
		{"router ID changed restarts everything, import and fib flagged", "asn: 64512\nrouterID: 198.51.100.2\nimport: {prefixes: [203.0.113.0/25]}\nfib: {table: 100}\n" + `neighbors:
  - {address: 198.51.100.11, peerASN: 64512}
  - {address: 198.51.100.12, peerASN: 64512}
  - {address: 198.51.100.13, peerASN: 64512}
dynamicNeighbors:
  - {prefix: 198.51.100.128/25, peerASN: 64512}
  - {prefix: 2001:db8::/64, peerASN: 64512}
`, ReloadPlan{RestartAll: true, Reimport: true, FIB: true,
			Restart:       []netip.Addr{a("198.51.100.11"), a("198.51.100.12"), a("198.51.100.13")},
			RestartRanges: []netip.Prefix{netip.MustParsePrefix("198.51.100.128/25"), netip.MustParsePrefix("2001:db8::/64")},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := PlanReload(old, mustParse(t, tc.cfg)); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestReloadStops: a reload closes a session whose neighbour or range is
// gone with Cease / Peer De-configured, and one it restarts with Cease /
// Other Configuration Change (RFC 4486); it leaves the others alone.
func TestReloadStops(t *testing.T) {
	const head = "asn: 64512\nrouterID: 198.51.100.1\nimport: {prefixes: [203.0.113.0/24]}\n"
	old := mustParse(t, head+`neighbors:
  - {address: 198.51.100.11, peerASN: 64512}
  - {address: 198.51.100.12, peerASN: 64512}
  - {address: 198.51.100.13, peerASN: 64512}
dynamicNeighbors:
  - {prefix: 198.51.100.128/25, peerASN: 64512}
  - {prefix: 2001:db8::/64, peerASN: 64512}
`)
	a, pfx := netip.MustParseAddr, netip.MustParsePrefix
	peers := map[netip.Addr]*peer{}
	for _, s := range []string{"198.51.100.11", "198.51.100.12", "198.51.100.13"} {
		peers[a(s)] = &peer{addr: a(s)}
	}
	for _, d := range []struct{ addr, rng string }{{"198.51.100.130", "198.51.100.128/25"}, {"2001:db8::5", "2001:db8::/64"}} {
		peers[a(d.addr)] = &peer{addr: a(d.addr), dynamic: true, rangePfx: pfx(d.rng)}
	}
	const (
		deconf = wire.CeasePeerDeconfigured
		change = wire.CeaseOtherConfigChange
	)
	tests := []struct {
		name string
		cfg  string
		want map[string]uint8 // peer address: Cease subcode
	}{
		{"nothing changed", head + `neighbors:
  - {address: 198.51.100.11, peerASN: 64512}
  - {address: 198.51.100.12, peerASN: 64512}
  - {address: 198.51.100.13, peerASN: 64512}
dynamicNeighbors:
  - {prefix: 198.51.100.128/25, peerASN: 64512}
  - {prefix: 2001:db8::/64, peerASN: 64512}
`, map[string]uint8{}},
		{"one neighbour edited, one removed, a range edited, one removed", head + `neighbors:
  - {address: 198.51.100.11, peerASN: 64512}
  - {address: 198.51.100.12, peerASN: 64512, password: s3cret}
dynamicNeighbors:
  - {prefix: 198.51.100.128/25, peerASN: 64513}
`, map[string]uint8{"198.51.100.12": change, "198.51.100.13": deconf, "198.51.100.130": change, "2001:db8::5": deconf}},
		{"router ID changed restarts everything but what is gone", "asn: 64512\nrouterID: 198.51.100.2\nimport: {prefixes: [203.0.113.0/24]}\n" + `neighbors:
  - {address: 198.51.100.11, peerASN: 64512}
  - {address: 198.51.100.12, peerASN: 64512}
dynamicNeighbors:
  - {prefix: 2001:db8::/64, peerASN: 64512}
`, map[string]uint8{"198.51.100.11": change, "198.51.100.12": change, "198.51.100.13": deconf,
			"198.51.100.130": deconf, "2001:db8::5": change}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]uint8{}
			for p, n := range reloadStops(PlanReload(old, mustParse(t, tc.cfg)), peers) {
				if n.Code != wire.ErrCodeCease {
					t.Errorf("%v: %v, want a Cease", p.addr, n)
				}
				got[p.addr.String()] = n.Subcode
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}
