package l2

import (
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/bgplb/bgplb/lab/labtest"
)

func TestAssemble(t *testing.T) {
	p := netip.MustParsePrefix
	ifs := []Interface{{Name: "eth1", Index: 3}, {Name: "lo", Index: 1}, {Name: "eth0", Index: 2}}
	addrs := []ifaceAddr{
		{2, p("198.51.100.1/24")}, {1, p("127.0.0.1/8")}, {2, p("2001:db8::1/64")},
		{9, p("203.0.113.9/24")}, // its interface came after the link dump
		{3, p("203.0.113.1/24")},
	}
	want := []Interface{
		{Name: "lo", Index: 1, Prefixes: []netip.Prefix{p("127.0.0.1/8")}},
		{Name: "eth0", Index: 2, Prefixes: []netip.Prefix{p("198.51.100.1/24"), p("2001:db8::1/64")}},
		{Name: "eth1", Index: 3, Prefixes: []netip.Prefix{p("203.0.113.1/24")}},
	}
	if got := assemble(ifs, addrs); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if got := assemble(nil, addrs); len(got) != 0 {
		t.Errorf("no interfaces: %+v", got)
	}
}

// BenchmarkInterfaces lists a namespace of 301 interfaces, each with an
// address, by the two dumps of Interfaces and, for comparison, by
// net.Interfaces and an address dump per interface.
func BenchmarkInterfaces(b *testing.B) {
	ctx := labtest.Context(b, time.Minute)
	ns := labtest.Netns(b, "l2if")
	var cmds [][]string
	for i := range 150 {
		a, z := fmt.Sprintf("v%da", i), fmt.Sprintf("v%dz", i)
		cmds = append(cmds, []string{"link", "add", a, "type", "veth", "peer", "name", z},
			[]string{"addr", "add", fmt.Sprintf("198.18.%d.1/24", i), "dev", a},
			[]string{"addr", "add", fmt.Sprintf("198.19.%d.1/24", i), "dev", z})
	}
	must(b, ns.IPBatch(ctx, cmds...))
	for _, bc := range []struct {
		name string
		list func() (int, error)
	}{
		{"two-dumps", func() (int, error) { ifs, err := Interfaces(); return len(ifs), err }},
		{"net.Interfaces", netInterfaces},
	} {
		b.Run(bc.name, func(b *testing.B) {
			must(b, ns.Do(func() error {
				for b.Loop() {
					n, err := bc.list()
					if err != nil {
						return err
					}
					if n != 301 {
						return fmt.Errorf("%d interfaces", n)
					}
				}
				return nil
			}))
		})
	}
}

// netInterfaces is how Interfaces used to list: one address dump for each
// interface.
func netInterfaces() (int, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return 0, err
	}
	for _, ifi := range ifs {
		if _, err := ifi.Addrs(); err != nil {
			return 0, err
		}
	}
	return len(ifs), nil
}
