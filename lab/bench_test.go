package lab_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/labtest"
)

// BenchmarkNewLAN measures building (and tearing down) the seed's topology:
// a router, two nodes and a client on one LAN.
func BenchmarkNewLAN(b *testing.B) {
	labtest.Require(b)
	hosts := []lab.HostSpec{
		{Name: "router", Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/24"), netip.MustParsePrefix("2001:db8::1/64")}},
		{Name: "node1", Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.11/24"), netip.MustParsePrefix("2001:db8::11/64")}},
		{Name: "node2", Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.12/24"), netip.MustParsePrefix("2001:db8::12/64")}},
		{Name: "client", Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.100/24"), netip.MustParsePrefix("2001:db8::100/64")}},
	}
	for b.Loop() {
		l, _, err := lab.NewLAN(context.Background(), "bb", hosts...)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseRoutes measures reading a 10k-route `ip -j route` dump, half
// of it ECMP, as the router tests do after every change.
func BenchmarkParseRoutes(b *testing.B) {
	var sb strings.Builder
	sb.WriteByte('[')
	for i := range 10000 {
		if i > 0 {
			sb.WriteByte(',')
		}
		dst := fmt.Sprintf("203.0.%d.%d", i/256, i%256)
		if i%2 == 0 {
			fmt.Fprintf(&sb, `{"dst":%q,"gateway":"198.51.100.11","dev":"eth0","metric":20,"flags":[]}`, dst)
		} else {
			fmt.Fprintf(&sb, `{"dst":%q,"nhid":7,"flags":[],"nexthops":[{"gateway":"198.51.100.11","dev":"eth0","weight":1,"flags":[]},{"gateway":"198.51.100.12","dev":"eth0","weight":1,"flags":[]}]}`, dst)
		}
	}
	sb.WriteByte(']')
	in := []byte(sb.String())
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		rs, err := lab.ParseRoutes(in, 4, lab.RouteQuery{Proto: "bgp"})
		if err != nil || len(rs) != 10000 {
			b.Fatal(len(rs), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10000, "ns/route")
}
