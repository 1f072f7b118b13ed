package router

import (
	"net/netip"
	"reflect"
	"testing"
)

func mustParse(t *testing.T, s string) *Config {
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
