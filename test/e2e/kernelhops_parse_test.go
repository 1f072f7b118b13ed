package e2e

import (
	"net/netip"
	"reflect"
	"testing"
)

// TestParseHops reads gateways in every form `ip -j route` prints them:
// RTA_GATEWAY, RTA_VIA (an IPv4 route via inet6) and multipath, with
// host routes printed without their length.
func TestParseHops(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     map[netip.Prefix][]hop
	}{
		{"gateway", `[{"dst":"2001:db8:100::41","gateway":"2001:db8::11","dev":"eth0","flags":[]}]`,
			map[netip.Prefix][]hop{prefix("2001:db8:100::41/128"): {{addr("2001:db8::11"), "eth0"}}}},
		{"via inet6", `[{"dst":"203.0.113.5","via":{"family":"inet6","host":"2001:db8::11"},"dev":"d0","flags":[]}]`,
			map[netip.Prefix][]hop{prefix("203.0.113.5/32"): {{addr("2001:db8::11"), "d0"}}}},
		{"multipath, sorted", `[{"dst":"203.0.113.0/24","flags":[],"nexthops":[
			{"via":{"family":"inet6","host":"2001:db8::12"},"dev":"d0","weight":1,"flags":[]},
			{"gateway":"198.51.100.11","dev":"d1","weight":1,"flags":[]}]}]`,
			map[netip.Prefix][]hop{prefix("203.0.113.0/24"): {{addr("198.51.100.11"), "d1"}, {addr("2001:db8::12"), "d0"}}}},
		{"link-local", `[{"dst":"203.0.113.7","via":{"family":"inet6","host":"fe80::1"},"dev":"eth1","flags":[]}]`,
			map[netip.Prefix][]hop{prefix("203.0.113.7/32"): {{addr("fe80::1"), "eth1"}}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := map[netip.Prefix][]hop{}
			if err := parseHops([]byte(c.in), got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
	for _, bad := range []string{`{`, `[{"dst":"nonsense"}]`, `[{"dst":"203.0.113.1","dev":"eth0"}]`} {
		if err := parseHops([]byte(bad), map[netip.Prefix][]hop{}); err == nil {
			t.Errorf("parseHops(%s): no error", bad)
		}
	}
}
