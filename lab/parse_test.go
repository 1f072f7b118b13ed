package lab

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

// Outputs of iproute2 6.1 on Linux 6.18, captured from real tables.
func TestParseRoutes(t *testing.T) {
	tests := []struct {
		name   string
		json   string
		family int
		q      RouteQuery
		want   []Route
	}{{
		name:   "single path, proto filtered so ip omits it",
		json:   `[{"dst":"203.0.113.1","gateway":"198.51.100.11","dev":"d0","metric":20,"flags":[]}]`,
		family: 4, q: RouteQuery{Proto: "bgp"},
		want: []Route{{Dst: pfx("203.0.113.1/32"), Type: "unicast", Table: "main", Proto: "bgp", Metric: 20,
			NextHops: []NextHop{{Gateway: addr("198.51.100.11"), Dev: "d0", Weight: 1}}}},
	}, {
		name: "weighted multipath, sorted by gateway",
		json: `[{"dst":"203.0.113.2","flags":[],"nexthops":[{"gateway":"198.51.100.12","dev":"d0","weight":3,"flags":[]},` +
			`{"gateway":"198.51.100.11","dev":"d0","weight":1,"flags":[]}]}]`,
		family: 4, q: RouteQuery{Proto: "186"},
		want: []Route{{Dst: pfx("203.0.113.2/32"), Type: "unicast", Table: "main", Proto: "186",
			NextHops: []NextHop{{Gateway: addr("198.51.100.11"), Dev: "d0", Weight: 1}, {Gateway: addr("198.51.100.12"), Dev: "d0", Weight: 3}}}},
	}, {
		name: "nexthop group dumped resolved",
		json: `[{"dst":"203.0.113.3","nhid":10,"flags":[],"nexthops":[{"gateway":"198.51.100.11","dev":"d0","weight":1,"flags":[]},` +
			`{"gateway":"198.51.100.12","dev":"d0","weight":5,"flags":[]}]},{"dst":"203.0.113.4","nhid":1,"gateway":"198.51.100.11","dev":"d0","flags":[]}]`,
		family: 4, q: RouteQuery{Proto: "bgp"},
		want: []Route{
			{Dst: pfx("203.0.113.3/32"), Type: "unicast", Table: "main", Proto: "bgp", NHID: 10,
				NextHops: []NextHop{{Gateway: addr("198.51.100.11"), Dev: "d0", Weight: 1}, {Gateway: addr("198.51.100.12"), Dev: "d0", Weight: 5}}},
			{Dst: pfx("203.0.113.4/32"), Type: "unicast", Table: "main", Proto: "bgp", NHID: 1,
				NextHops: []NextHop{{Gateway: addr("198.51.100.11"), Dev: "d0", Weight: 1}}},
		},
	}, {
		name: "ipv6, unfiltered: protocol present, default and connected routes, sorted",
		json: `[{"dst":"2001:db8:100::1","gateway":"2001:db8::11","dev":"eth0","protocol":"bird","metric":32,"flags":[],"pref":"medium"},` +
			`{"dst":"default","gateway":"2001:db8::1","dev":"eth0","metric":1024,"flags":[],"pref":"medium"},` +
			`{"dst":"2001:db8::/64","dev":"eth0","protocol":"kernel","metric":256,"flags":[],"pref":"medium"}]`,
		family: 6,
		want: []Route{
			{Dst: pfx("::/0"), Type: "unicast", Table: "main", Proto: "boot", Metric: 1024,
				NextHops: []NextHop{{Gateway: addr("2001:db8::1"), Dev: "eth0", Weight: 1}}},
			{Dst: pfx("2001:db8::/64"), Type: "unicast", Table: "main", Proto: "kernel", Metric: 256,
				NextHops: []NextHop{{Dev: "eth0", Weight: 1}}},
			{Dst: pfx("2001:db8:100::1/128"), Type: "unicast", Table: "main", Proto: "bird", Metric: 32,
				NextHops: []NextHop{{Gateway: addr("2001:db8::11"), Dev: "eth0", Weight: 1}}},
		},
	}, {
		name:   "blackhole in another table",
		json:   `[{"type":"blackhole","dst":"203.0.113.0/24","table":"100","protocol":"static","flags":[]}]`,
		family: 4, q: RouteQuery{Table: "all"},
		want: []Route{{Dst: pfx("203.0.113.0/24"), Type: "blackhole", Table: "100", Proto: "static"}},
	}, {
		name: "empty", json: `[]`, family: 4, want: []Route{},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRoutes([]byte(tt.json), tt.family, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%s\nwant\n%s", FormatRoutes(got), FormatRoutes(tt.want))
				t.Errorf("got %#v", got)
			}
		})
	}
}

func TestParseRoutesErrors(t *testing.T) {
	for _, in := range []string{
		`{`,
		`[{"dst":"nonsense"}]`,
		`[{"dst":"203.0.113.0/33"}]`,
		`[{"dst":"203.0.113.1","gateway":"x"}]`,
	} {
		if _, err := ParseRoutes([]byte(in), 4, RouteQuery{}); err == nil {
			t.Errorf("ParseRoutes(%s): no error", in)
		}
	}
}

func TestParseAddrs(t *testing.T) {
	in := `[{"ifindex":3,"ifname":"d0","addr_info":[` +
		`{"family":"inet","local":"198.51.100.1","prefixlen":24,"scope":"global"},` +
		`{"family":"inet6","local":"2001:db8::2","prefixlen":64,"scope":"global","tentative":true},` +
		`{"family":"inet6","local":"2001:db8::3","prefixlen":64,"scope":"global","tentative":true,"dadfailed":true},` +
		`{"family":"inet6","local":"2001:db8::1","prefixlen":64,"scope":"global","nodad":true}]}]`
	got, err := parseAddrs([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Addr{
		{Prefix: pfx("198.51.100.1/24")},
		{Prefix: netip.PrefixFrom(addr("2001:db8::2"), 64), Tentative: true},
		{Prefix: netip.PrefixFrom(addr("2001:db8::3"), 64), Tentative: true, DADFailed: true},
		{Prefix: netip.PrefixFrom(addr("2001:db8::1"), 64)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := parseAddrs([]byte(`[{"addr_info":[{"local":"bad","prefixlen":1}]}]`)); err == nil {
		t.Error("bad address parsed")
	}
}

func TestAddrsUsable(t *testing.T) {
	v4, v6 := pfx("198.51.100.1/24"), netip.PrefixFrom(addr("2001:db8::1"), 64)
	tests := []struct {
		name      string
		have      []Addr
		want      []netip.Prefix
		ok, fatal bool
	}{
		{"none wanted", nil, nil, true, false},
		{"all there", []Addr{{Prefix: v4}, {Prefix: v6}}, []netip.Prefix{v4, v6}, true, false},
		{"one missing", []Addr{{Prefix: v4}}, []netip.Prefix{v4, v6}, false, false},
		{"same address, other length", []Addr{{Prefix: pfx("198.51.100.1/32")}}, []netip.Prefix{v4}, false, false},
		{"tentative", []Addr{{Prefix: v4}, {Prefix: v6, Tentative: true}}, []netip.Prefix{v4, v6}, false, false},
		{"DAD failed is final", []Addr{{Prefix: v6, Tentative: true, DADFailed: true}}, []netip.Prefix{v6}, false, true},
	}
	for _, tt := range tests {
		ok, err := addrsUsable(tt.have, tt.want)
		if ok != tt.ok || (err != nil) != tt.fatal {
			t.Errorf("%s: %v, %v; want %v, fatal %v", tt.name, ok, err, tt.ok, tt.fatal)
		}
		if pe := (permanentError{}); err != nil && !errors.As(err, &pe) {
			t.Errorf("%s: error %v is not permanent", tt.name, err)
		}
	}
}

func TestSysctlPath(t *testing.T) {
	tests := map[string]string{
		"net.ipv4.ip_forward":                   "/proc/sys/net/ipv4/ip_forward",
		"net/ipv4/ip_forward":                   "/proc/sys/net/ipv4/ip_forward",
		"net/ipv6/conf/eth0.100/accept_dad":     "/proc/sys/net/ipv6/conf/eth0.100/accept_dad",
		"../../etc/passwd":                      "/proc/sys/etc/passwd",
		"net.ipv6.conf.all.forwarding":          "/proc/sys/net/ipv6/conf/all/forwarding",
		"/net/ipv6/conf/default/accept_dad/../": "/proc/sys/net/ipv6/conf/default",
	}
	for in, want := range tests {
		if got := sysctlPath(in); got != want {
			t.Errorf("sysctlPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPoll(t *testing.T) {
	t.Run("done after retries", func(t *testing.T) {
		n := 0
		err := Poll(context.Background(), time.Millisecond, func() (bool, error) {
			n++
			if n < 3 {
				return false, errors.New("not yet")
			}
			return true, nil
		})
		if err != nil || n != 3 {
			t.Fatalf("err %v after %d calls, want nil after 3", err, n)
		}
	})
	t.Run("permanent stops at once", func(t *testing.T) {
		boom := errors.New("boom")
		n := 0
		err := Poll(context.Background(), time.Millisecond, func() (bool, error) {
			n++
			return false, Permanent(boom)
		})
		if !errors.Is(err, boom) || n != 1 {
			t.Fatalf("err %v after %d calls, want boom after 1", err, n)
		}
	})
	t.Run("timeout names the last error", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		err := Poll(ctx, time.Millisecond, func() (bool, error) { return false, errors.New("daemon not up") })
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "daemon not up") {
			t.Fatalf("err %v, want deadline with the last error", err)
		}
	})
}

func TestCmdErrorCarriesOutput(t *testing.T) {
	_, err := runCmd(context.Background(), "sh", "-c", "echo diagnostic >&2; exit 3")
	var ce *CmdError
	if !errors.As(err, &ce) {
		t.Fatalf("err %v is not a *CmdError", err)
	}
	if !strings.Contains(err.Error(), "diagnostic") || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("error %q lacks the output or the status", err)
	}
}
