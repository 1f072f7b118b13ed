package seed

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"
)

func TestFreeAPILink(t *testing.T) {
	p := netip.MustParsePrefix
	for _, c := range []struct {
		name string
		used []netip.Prefix
		want netip.Prefix
	}{
		{"empty root", nil, p("198.51.100.64/29")},
		{"unrelated", []netip.Prefix{p("10.0.0.2/8"), p("127.0.0.1/8"), p("::1/128"), p("198.51.100.130/30")}, p("198.51.100.64/29")},
		{"first taken", []netip.Prefix{p("198.51.100.65/29")}, p("198.51.100.72/29")},
		{"a /30 inside the second", []netip.Prefix{p("198.51.100.65/29"), p("198.51.100.77/30")}, p("198.51.100.80/29")},
		{"a /32 inside the first", []netip.Prefix{p("198.51.100.69/32")}, p("198.51.100.72/29")},
		{"the client's /29 is never used", []netip.Prefix{p("198.51.100.65/27")}, p("198.51.100.104/29")},
		{"a wide prefix covers all", []netip.Prefix{p("198.51.100.5/24")}, netip.Prefix{}},
		{"all but the last", []netip.Prefix{p("198.51.100.65/27"), p("198.51.100.105/29"), p("198.51.100.113/29")}, p("198.51.100.120/29")},
		{"all", []netip.Prefix{p("198.51.100.65/27"), p("198.51.100.97/28"), p("198.51.100.113/28")}, netip.Prefix{}},
	} {
		got, ok := freeAPILink(c.used)
		if got != c.want || ok != c.want.IsValid() {
			t.Errorf("%s: %v %v, want %v", c.name, got, ok, c.want)
		}
	}
}

func TestHostTable(t *testing.T) {
	a := netip.MustParseAddr
	want := map[string][2]netip.Addr{
		Router:  {a("198.51.100.1"), a("2001:db8:51::1")},
		Router2: {a("198.51.100.2"), a("2001:db8:51::2")},
		Node1:   {a("198.51.100.11"), a("2001:db8:51::11")},
		Node2:   {a("198.51.100.12"), a("2001:db8:51::12")},
		Client:  {a("198.51.100.100"), a("2001:db8:51::100")},
	}
	for _, routers := range []int{1, 2} {
		hs := hostTable(routers)
		if len(hs) != 3+routers {
			t.Fatalf("%d routers: %d hosts", routers, len(hs))
		}
		for _, h := range hs {
			if w := want[h.Name]; h.Addr4 != w[0] || h.Addr6 != w[1] || !LAN4.Contains(h.Addr4) || !LAN6.Contains(h.Addr6) {
				t.Errorf("%s: %s %s, want %s %s", h.Name, h.Addr4, h.Addr6, w[0], w[1])
			}
		}
	}
	s := &Seed{ID: "seed123456", opts: Options{Routers: 1}, api: netip.MustParsePrefix("198.51.100.72/29")}
	if s.APIServerAddr() != a("198.51.100.73") || s.NodeAPIAddr(Node1) != a("198.51.100.74") || s.NodeAPIAddr(Node2) != a("198.51.100.75") {
		t.Errorf("API addresses %s %s %s", s.APIServerAddr(), s.NodeAPIAddr(Node1), s.NodeAPIAddr(Node2))
	}
	if got := RouterName(2); got != Router2 {
		t.Errorf("RouterName(2) = %q", got)
	}
	if !slices.Equal(s.Nodes(), []string{Node1, Node2}) {
		t.Errorf("Nodes() = %v", s.Nodes())
	}
	if len(rootIfname("seab12cd34x")) > 15 {
		t.Error("the longest ID makes a root interface name over 15 characters")
	}
}

func TestPodPlan(t *testing.T) {
	s := &Seed{opts: Options{Routers: 1}}
	for node, want := range map[string]string{Node1: "198.18.1.0/24", Node2: "198.18.2.0/24", Client: "invalid Prefix"} {
		if got := s.PodCIDR(node).String(); got != want {
			t.Errorf("PodCIDR(%s) = %s, want %s", node, got, want)
		}
	}
	for _, p := range []netip.Prefix{s.PodCIDR(Node1), s.PodCIDR(Node2)} {
		if !ClusterCIDR.Contains(p.Addr()) || slices.ContainsFunc(ServiceCIDRs(), func(c netip.Prefix) bool { return c.Overlaps(p) }) {
			t.Errorf("%s: outside the cluster range or inside a Service range", p)
		}
	}
	got := podRoutes(s.Nodes(), s.PodCIDR, s.NodeAddr)
	want := map[string][][]string{
		Node1: {{"route", "replace", "198.18.2.0/24", "via", "198.51.100.12"}},
		Node2: {{"route", "replace", "198.18.1.0/24", "via", "198.51.100.11"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("podRoutes = %v, want %v", got, want)
	}
}
