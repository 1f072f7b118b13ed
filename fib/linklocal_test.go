package fib

import (
	"errors"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// Unit tests of link-local gateways with an interface (zone); the
// namespace tests are in linklocal_ns_test.go.

func TestZonedHopsStayDistinct(t *testing.T) {
	got := Canonical(route("2001:db8:100::1/128", "fe80::2%e0", "fe80::2%d0", "fe80::2%d0", "2001:db8::2")).NextHops
	want := hops("2001:db8::2", "fe80::2%d0", "fe80::2%e0")
	if !slices.Equal(got, want) {
		t.Errorf("Canonical = %v, want %v", got, want)
	}
	tab := newNHTable(1, 100)
	a, _, _ := tab.acquire(hops("fe80::2%d0"), nil)
	b, _, _ := tab.acquire(hops("fe80::2%e0"), nil)
	if a == b {
		t.Errorf("fe80::2%%d0 and fe80::2%%e0 share object %d", a)
	}
	if got, _ := tab.hops(b); !slices.Equal(got, hops("fe80::2%e0")) {
		t.Errorf("object %d stands for %v", b, got)
	}
}

// TestZonedRouteMessages writes routes with link-local gateways and their
// interfaces and reads them back through a link table: the interface is the
// zone again, one the table does not know is named by its index, and global
// gateways get no zone whatever their interface.
func TestZonedRouteMessages(t *testing.T) {
	links := newLinkTable([]kernelLink{{index: 3, name: "d0"}, {index: 5, name: "e0"}})
	tests := []struct {
		name   string
		prefix string
		hops   []NextHop
		oifs   []int32
		want   []NextHop
	}{
		{"single", "2001:db8:100::1/128", hops("fe80::2"), []int32{5}, hops("fe80::2%e0")},
		{"ipv4 via link-local", "203.0.113.1/32", hops("fe80::2"), []int32{3}, hops("fe80::2%d0")},
		{"unknown interface", "2001:db8:100::1/128", hops("fe80::2"), []int32{9}, hops("fe80::2%9")},
		{"global with interface", "2001:db8:100::1/128", hops("2001:db8::2"), []int32{3}, hops("2001:db8::2")},
		{"multipath", "2001:db8:100::/64", hops("2001:db8::2", "fe80::2*2", "fe80::2*3"), []int32{0, 3, 5},
			hops("2001:db8::2*1", "fe80::2%d0*2", "fe80::2%e0*3")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m msgBuf
			m.addRoute(1, 0, testKey, mustPrefix(tt.prefix), 0, tt.hops, tt.oifs)
			msg := oneMsg(t, m.b)
			r, _, err := parseRoute(msg.data, nil, links)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(r.hops, tt.want) {
				t.Errorf("read back %v, want %v", r.hops, tt.want)
			}
			if len(tt.hops) == 1 && r.oif != tt.oifs[0] {
				t.Errorf("RTA_OIF %d, want %d", r.oif, tt.oifs[0])
			}
			r, _, _ = parseRoute(msg.data, nil, nil)
			for _, h := range r.hops {
				if h.Addr.Zone() != "" {
					t.Errorf("no table, yet %v has a zone", h.Addr)
				}
			}
		})
	}
}

func TestLinkTableNames(t *testing.T) {
	links := newLinkTable([]kernelLink{{index: 3, name: "d0"}, {index: 4, name: "7"}})
	for in, want := range map[string]string{
		"fe80::2%3":   "fe80::2%d0", // an index reads back as its name
		"fe80::2%7":   "fe80::2%7",  // a name that looks like an index stays
		"fe80::2%d0":  "fe80::2%d0",
		"fe80::2%9":   "fe80::2%9", // unknown: as given
		"2001:db8::2": "2001:db8::2",
	} {
		if got := links.named(mustAddr(in)); got != mustAddr(want) {
			t.Errorf("named(%s) = %v, want %s", in, got, want)
		}
	}
	if got := links.zone(mustAddr("fe80::2"), 3); got != mustAddr("fe80::2%d0") {
		t.Errorf("zone = %v", got)
	}
	if got := links.zone(mustAddr("198.51.100.2"), 3); got != mustAddr("198.51.100.2") {
		t.Errorf("zone of an IPv4 gateway = %v", got)
	}
}

func TestParseLink(t *testing.T) {
	var m msgBuf
	m.getLink(5, 0, "e0")
	msg := oneMsg(t, m.b)
	if msg.typ != unix.RTM_GETLINK || msg.flags&unix.NLM_F_DUMP != 0 {
		t.Fatalf("header %+v", msg)
	}
	// An answer is laid out as the request: ifinfomsg, then IFLA_IFNAME.
	data := slices.Clone(msg.data)
	ne.PutUint32(data[4:], 12)
	ne.PutUint32(data[8:], unix.IFF_UP)
	l, err := parseLink(data)
	if err != nil || l != (kernelLink{index: 12, name: "e0", up: true}) {
		t.Errorf("parseLink = %+v, %v", l, err)
	}
	if _, err := parseLink(data[:10]); !errors.Is(err, errMalformed) {
		t.Errorf("short message: %v", err)
	}
	m.reset()
	m.getLink(6, 0, "")
	if msg := oneMsg(t, m.b); msg.flags&unix.NLM_F_DUMP != unix.NLM_F_DUMP {
		t.Errorf("a request for every link is not a dump: %+v", msg)
	}
}
