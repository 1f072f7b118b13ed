package announce

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/bgplb/bgplb/bgp/wire"
)

var (
	addr   = netip.MustParseAddr
	prefix = netip.MustParsePrefix
	both   = []wire.Family{wire.IPv4Unicast, wire.IPv6Unicast}
)

func u32(v uint32) *uint32 { return &v }

// host4 is 203.0.113.0/24 and upwards (198.51.100.0/24 past 256), host6 2001:db8:100::/48.
func host4(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, byte(113 + i>>8), byte(i)}), 32)
}

func host6(i int) netip.Prefix {
	b := addr("2001:db8:100::").As16()
	b[14], b[15] = byte(i>>8), byte(i)
	return netip.PrefixFrom(netip.AddrFrom16(b), 128)
}

func TestCheckRoute(t *testing.T) {
	for _, tc := range []struct {
		r    Route
		want string // substring of the reason; "" for valid
	}{
		{Route{Prefix: prefix("203.0.113.1/32")}, ""},
		{Route{Prefix: prefix("2001:db8:100::/48"), Bandwidth: 3}, ""},
		{Route{Prefix: prefix("0.0.0.0/0")}, ""},
		{Route{}, "invalid prefix"},
		{Route{Prefix: netip.PrefixFrom(addr("203.0.113.1"), 33)}, "invalid prefix"},
		{Route{Prefix: prefix("203.0.113.1/24")}, "host bits set (did you mean 203.0.113.0/24?)"},
		{Route{Prefix: prefix("::ffff:203.0.113.1/128")}, "IPv4-mapped"},
		{Route{Prefix: prefix("203.0.113.1/32"), Bandwidth: -1}, "bandwidth"},
		{Route{Prefix: prefix("203.0.113.1/32"), Bandwidth: float32(math.NaN())}, "bandwidth"},
		{Route{Prefix: prefix("203.0.113.1/32"), Bandwidth: float32(math.Inf(1))}, "bandwidth"},
	} {
		got := checkRoute(&tc.r)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("checkRoute(%+v) = %q, want %q", tc.r, got, tc.want)
		}
	}
}

// TestNormalize: community sets are canonical, duplicates merge or are
// skipped, invalid routes are reported in order.
func TestNormalize(t *testing.T) {
	c1, c2 := wire.NewCommunity(64512, 1), wire.NewCommunity(64512, 2)
	l1 := wire.LargeCommunity{Global: 64512, Local1: 1, Local2: 2}
	l2 := wire.LargeCommunity{Global: 64512, Local1: 1, Local2: 3}
	rs := []Route{
		{Prefix: host4(1), Communities: []wire.Community{c2, c1, c2}, LargeCommunities: []wire.LargeCommunity{l2, l1}},
		{Prefix: host4(2), Communities: []wire.Community{c1, c2}, LargeCommunities: []wire.LargeCommunity{l1, l2, l1}},
		{Prefix: host4(3), LocalPref: u32(DefaultLocalPref)},
		{Prefix: host4(4)},
		{Prefix: prefix("203.0.113.9/24")},
		{Prefix: host4(1), Communities: []wire.Community{c1, c2}, LargeCommunities: []wire.LargeCommunity{l1, l2}}, // same set
		{Prefix: host4(2), Bandwidth: 1}, // other attributes
		{Prefix: host4(5), LocalPref: u32(200)},
	}
	var n normalizer
	ws, skipped := n.normalize(rs, nil, nil)
	if got := prefixesOf(ws); !slices.Equal(got, []netip.Prefix{host4(1), host4(2), host4(3), host4(4), host4(5)}) {
		t.Fatalf("wanted %v", got)
	}
	if ws[0].attrs != ws[1].attrs {
		t.Errorf("the same community sets in another order gave other attributes: %+v / %+v", ws[0].attrs.Value(), ws[1].attrs.Value())
	}
	if ws[2].attrs != ws[3].attrs {
		t.Error("LocalPref 100 and no LocalPref differ")
	}
	if ws[3].attrs == ws[4].attrs || ws[0].attrs == ws[3].attrs {
		t.Error("different attributes share a handle")
	}
	a := ws[0].attrs.Value()
	if got := a.appendCommunities(nil); !slices.Equal(got, []wire.Community{c1, c2}) {
		t.Errorf("communities %v", got)
	}
	if got := a.appendLarge(nil); !slices.Equal(got, []wire.LargeCommunity{l1, l2}) {
		t.Errorf("large communities %v", got)
	}
	if len(skipped) != 2 || skipped[0].Prefix != prefix("203.0.113.9/24") || skipped[1].Prefix != host4(2) ||
		!strings.Contains(skipped[1].Reason, "other attributes") {
		t.Errorf("skipped %+v", skipped)
	}
}

func prefixesOf(ws []wanted) []netip.Prefix {
	out := make([]netip.Prefix, len(ws))
	for i, w := range ws {
		out[i] = w.prefix
	}
	return out
}

func TestNewTarget(t *testing.T) {
	l4, l6 := addr("198.51.100.11"), addr("2001:db8::11")
	n4, n6 := addr("198.51.100.99"), addr("2001:db8::99")
	for _, tc := range []struct {
		name              string
		local, cfg4, cfg6 netip.Addr
		ext               bool
		nh4, nh6          netip.Addr
	}{
		{"IPv4 session", l4, netip.Addr{}, netip.Addr{}, false, l4, netip.Addr{}},
		{"IPv4 session, NextHop6", l4, netip.Addr{}, n6, false, l4, n6},
		{"IPv4 session, both set", l4, n4, n6, false, n4, n6},
		{"v4-mapped local", netip.AddrFrom16(l4.As16()), netip.Addr{}, netip.Addr{}, false, l4, netip.Addr{}},
		{"IPv6 session", l6, netip.Addr{}, netip.Addr{}, false, netip.Addr{}, l6},
		{"IPv6 session, extended next hop", l6, netip.Addr{}, netip.Addr{}, true, l6, l6},
		{"IPv6 session, NextHop4", l6, n4, netip.Addr{}, true, n4, l6},
	} {
		got := newTarget(both, tc.local, tc.cfg4, tc.cfg6, tc.ext)
		if got.nh4 != tc.nh4 || got.nh6 != tc.nh6 || (got.nh4.IsValid() == (got.why4 != "")) || (got.nh6.IsValid() == (got.why6 != "")) {
			t.Errorf("%s: %+v", tc.name, got)
		}
	}
	tg := newTarget([]wire.Family{wire.IPv4Unicast}, l4, netip.Addr{}, n6, false)
	if _, why := tg.resolve(&wanted{prefix: host6(1)}); !strings.Contains(why, "ipv6-unicast not negotiated") {
		t.Errorf("IPv6 without the family: %q", why)
	}
}

// slowDiff is the obviously-correct twin of adjRIBOut.diff: the wanted set
// as a map, compared with the old one both ways.
func slowDiff(old map[netip.Prefix]path, wants []wanted, t *target) (rib, announce map[netip.Prefix]path, withdraw map[netip.Prefix]bool) {
	rib, announce, withdraw = map[netip.Prefix]path{}, map[netip.Prefix]path{}, map[netip.Prefix]bool{}
	for _, w := range wants {
		if p, why := t.resolve(&w); why == "" {
			rib[w.prefix] = p
		}
	}
	for pfx, p := range rib {
		if o, ok := old[pfx]; !ok || o != p {
			announce[pfx] = p
		}
	}
	for pfx := range old {
		if _, ok := rib[pfx]; !ok {
			withdraw[pfx] = true
		}
	}
	return rib, announce, withdraw
}

// twinAttrs are the attribute sets the randomized tests draw from; two
// of them are the same set in another order.
var twinAttrs = []Route{
	{}, {LocalPref: u32(200)}, {Bandwidth: 1}, {Bandwidth: 3},
	{Communities: []wire.Community{1, 2}}, {Communities: []wire.Community{2, 1}},
	{LargeCommunities: []wire.LargeCommunity{{Global: 1, Local1: 2, Local2: 3}}},
}

// nextSet returns the next desired set of a random sequence: half the time
// the previous prefixes in the same order with a few new attributes (the
// fast path), else a fresh random set, sometimes sorted.
func nextSet(rng *rand.Rand, prev []Route) []Route {
	if rng.IntN(2) == 0 && prev != nil {
		rs := slices.Clone(prev)
		for range rng.IntN(3) {
			if len(rs) > 0 {
				i := rng.IntN(len(rs))
				p := rs[i].Prefix
				rs[i] = twinAttrs[rng.IntN(len(twinAttrs))]
				rs[i].Prefix = p
			}
		}
		return rs
	}
	rs := []Route{}
	for range rng.IntN(60) {
		r := twinAttrs[rng.IntN(len(twinAttrs))]
		if rng.IntN(2) == 0 {
			r.Prefix = host4(rng.IntN(40))
		} else {
			r.Prefix = host6(rng.IntN(40))
		}
		rs = append(rs, r)
	}
	if rng.IntN(3) == 0 {
		slices.SortFunc(rs, func(a, b Route) int { return a.Prefix.Compare(b.Prefix) })
	}
	return rs
}

// TestDiffTwin runs random sequences of desired sets and sessions through
// the diff and its slow twin.
func TestDiffTwin(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	targets := []target{
		newTarget(both, addr("198.51.100.11"), netip.Addr{}, addr("2001:db8::11"), false),
		newTarget(both, addr("198.51.100.11"), netip.Addr{}, netip.Addr{}, false),
		newTarget(both, addr("198.51.100.12"), netip.Addr{}, addr("2001:db8::12"), false),
		newTarget([]wire.Family{wire.IPv4Unicast}, addr("198.51.100.11"), netip.Addr{}, addr("2001:db8::11"), false),
		newTarget(both, addr("2001:db8::11"), netip.Addr{}, netip.Addr{}, true),
	}
	var n normalizer
	var c changes
	for run := range 50 {
		o, slow := newAdjRIBOut(), map[netip.Prefix]path{}
		var rs []Route
		tg := &targets[0]
		for step := range 40 {
			rs = nextSet(rng, rs)
			if rng.IntN(4) == 0 {
				tg = &targets[rng.IntN(len(targets))]
			}
			ws, _ := n.normalize(rs, nil, nil)
			c.reset()
			o.diff(ws, tg, int64(step), &c)
			var announce map[netip.Prefix]path
			var withdraw map[netip.Prefix]bool
			slow, announce, withdraw = slowDiff(slow, ws, tg)
			if err := compareDiff(o, &c, ws, tg, slow, announce, withdraw); err != nil {
				t.Fatalf("run %d step %d: %v", run, step, err)
			}
		}
	}
}

// compareDiff checks one diff against the twin's results.
func compareDiff(o *adjRIBOut, c *changes, ws []wanted, tg *target, slow, announce map[netip.Prefix]path, withdraw map[netip.Prefix]bool) error {
	gotA := map[netip.Prefix]path{}
	for _, a := range c.announce {
		if _, dup := gotA[a.prefix]; dup {
			return fmt.Errorf("%v announced twice", a.prefix)
		}
		gotA[a.prefix] = a.path
	}
	gotW := map[netip.Prefix]bool{}
	for _, p := range c.withdraw {
		gotW[p] = true
	}
	var wantSkipped, gotSkipped []netip.Prefix
	for _, w := range ws {
		if _, why := tg.resolve(&w); why != "" {
			wantSkipped = append(wantSkipped, w.prefix)
		}
	}
	for _, s := range c.skipped {
		gotSkipped = append(gotSkipped, s.Prefix)
	}
	gotRIB := map[netip.Prefix]path{}
	for p, e := range o.routes {
		gotRIB[p] = e.path
	}
	switch {
	case !maps.Equal(gotA, announce):
		return fmt.Errorf("announced %v, want %v", gotA, announce)
	case !maps.Equal(gotW, withdraw):
		return fmt.Errorf("withdrew %v, want %v", gotW, withdraw)
	case !slices.Equal(gotSkipped, wantSkipped):
		return fmt.Errorf("skipped %v, want %v", gotSkipped, wantSkipped)
	case !maps.Equal(gotRIB, slow):
		return fmt.Errorf("Adj-RIB-Out of %d routes, want %d", len(gotRIB), len(slow))
	}
	return nil
}

// TestResendAll: after a ROUTE-REFRESH every route is announced again, and
// what was no longer wanted is still withdrawn.
func TestResendAll(t *testing.T) {
	tg := newTarget(both, addr("198.51.100.11"), netip.Addr{}, addr("2001:db8::11"), false)
	var n normalizer
	ws, _ := n.normalize(hostRoutes(10, 2), nil, nil)
	o := newAdjRIBOut()
	var c changes
	o.diff(ws, &tg, 1, &c)
	for _, tc := range []struct {
		ws       []wanted
		announce int
		withdraw []netip.Prefix
	}{
		{ws, 12, nil},                          // the same set: the fast path must not apply
		{ws[1:], 11, []netip.Prefix{host4(0)}}, // one route fewer
	} {
		o.resendAll()
		c.reset()
		o.diff(tc.ws, &tg, 2, &c)
		if len(c.announce) != tc.announce || !slices.Equal(c.withdraw, tc.withdraw) {
			t.Errorf("after resendAll: %d announced, withdrawn %v", len(c.announce), c.withdraw)
		}
	}
}

// TestDiffSteadyStateNoAlloc: re-applying the same desired set (the common
// case when the planner re-plans and nothing moved) allocates nothing.
func TestDiffSteadyStateNoAlloc(t *testing.T) {
	rs := make([]Route, 1000)
	comms := []wire.Community{wire.NewCommunity(64512, 7)}
	for i := range rs {
		rs[i] = Route{Prefix: host4(i), Communities: comms}
	}
	var n normalizer
	ws, _ := n.normalize(rs, nil, nil)
	o := newAdjRIBOut()
	tg := newTarget(both, addr("198.51.100.11"), netip.Addr{}, netip.Addr{}, false)
	var c changes
	o.diff(ws, &tg, 1, &c)
	if len(c.announce) != len(rs) {
		t.Fatalf("first diff announced %d", len(c.announce))
	}
	var skipped []SkippedRoute
	allocs := testing.AllocsPerRun(20, func() {
		ws, skipped = n.normalize(rs, ws[:0], skipped[:0])
		c.reset()
		o.diff(ws, &tg, 2, &c)
	})
	if allocs != 0 || !c.empty() {
		t.Errorf("steady state: %v allocations, changes %+v", allocs, c)
	}
}

func ExampleAnnouncer_SetPeers() {
	a := New(Options{RouterID: netip.MustParseAddr("198.51.100.11")})
	// Routes may be announced before their peer is configured: they wait.
	a.Announce("router-1", []Route{{Prefix: netip.MustParsePrefix("203.0.113.10/32")}})
	err := a.SetPeers([]PeerConfig{{Name: "router-1"}}) // no peer address
	fmt.Println(err != nil)
	for _, s := range a.Status() {
		fmt.Printf("%s %v refused: %v\n", s.Name, s.State, s.LastError != "")
	}
	// Output:
	// true
	// router-1 Idle refused: true
}
