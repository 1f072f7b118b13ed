package fib

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
)

var (
	mustAddr   = netip.MustParseAddr
	mustPrefix = netip.MustParsePrefix
)

// hops builds next hops from "addr" or "addr*weight" strings.
func hops(specs ...string) []NextHop {
	var out []NextHop
	for _, s := range specs {
		a, w, _ := strings.Cut(s, "*")
		h := NextHop{Addr: mustAddr(a)}
		if w != "" {
			fmt.Sscan(w, &h.Weight)
		}
		out = append(out, h)
	}
	return out
}

func weightsOf(h []NextHop) []uint32 {
	var w []uint32
	for _, x := range h {
		w = append(w, x.Weight)
	}
	return w
}

func withWeights(w ...uint32) []NextHop {
	h := make([]NextHop, len(w))
	for i := range w {
		h[i] = NextHop{Addr: netip.AddrFrom4([4]byte{198, 51, 100, byte(2 + i)}), Weight: w[i]}
	}
	return h
}

func TestNormalizeWeights(t *testing.T) {
	tests := []struct {
		name string
		in   []uint32
		want []uint32
	}{
		{"single hop is unweighted", []uint32{7}, []uint32{0}},
		{"all zero", []uint32{0, 0, 0}, []uint32{0, 0, 0}},
		{"equal weights are unweighted", []uint32{5, 5}, []uint32{0, 0}},
		{"one zero makes the set unweighted", []uint32{0, 10, 20}, []uint32{0, 0, 0}},
		{"small ratios kept", []uint32{1, 2, 3}, []uint32{1, 2, 3}},
		{"reduced by gcd", []uint32{100, 300}, []uint32{1, 3}},
		{"link bandwidth scale", []uint32{125_000_000, 1_250_000_000}, []uint32{1, 10}},
		{"max weight fits", []uint32{1, 256}, []uint32{1, 256}},
		{"scaled to 256", []uint32{1, 1000}, []uint32{1, 256}},
		{"reduced before scaling", []uint32{300, 1000}, []uint32{3, 10}},
		{"scaled and rounded", []uint32{300, 1001}, []uint32{77, 256}},
		{"tiny share keeps weight 1", []uint32{1, 1_000_000}, []uint32{1, 256}},
		{"scaled then reduced", []uint32{511, 1022, 1023}, []uint32{1, 2, 2}},
		{"indistinguishable after scaling", []uint32{1_000_000, 1_000_001}, []uint32{0, 0}},
		{"uint32 max", []uint32{1<<32 - 1, 1 << 31}, []uint32{2, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := withWeights(tt.in...)
			normalizeWeights(h)
			if got := weightsOf(h); !slices.Equal(got, tt.want) {
				t.Errorf("normalizeWeights(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// TestNormalizeWeightsProperties checks on random sets that results are in
// range, normalizing is idempotent, exact ratios survive, and scaling all
// weights by a factor changes nothing.
func TestNormalizeWeightsProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		n := 2 + rng.IntN(6)
		in := make([]uint32, n)
		for j := range in {
			switch i % 3 {
			case 0:
				in[j] = 1 + rng.Uint32N(40)
			case 1:
				in[j] = 1 + rng.Uint32N(5000)
			default:
				in[j] = rng.Uint32()
			}
		}
		h := withWeights(in...)
		normalizeWeights(h)
		got := weightsOf(h)
		allZero := !slices.ContainsFunc(got, func(w uint32) bool { return w != 0 })
		for _, w := range got {
			if !allZero && (w < 1 || w > MaxWeight) {
				t.Fatalf("%v -> %v: weight out of range", in, got)
			}
		}
		again := slices.Clone(h)
		normalizeWeights(again)
		if !slices.Equal(weightsOf(again), got) {
			t.Fatalf("%v -> %v -> %v: not idempotent", in, got, weightsOf(again))
		}
		if slices.Max(in) <= MaxWeight && !allZero {
			for j := range in {
				for k := range in {
					if uint64(in[j])*uint64(got[k]) != uint64(in[k])*uint64(got[j]) {
						t.Fatalf("%v -> %v: ratio %d:%d changed", in, got, j, k)
					}
				}
			}
			f := 1 + rng.Uint32N(1000)
			scaled := make([]uint32, n)
			for j := range in {
				scaled[j] = in[j] * f
			}
			hs := withWeights(scaled...)
			normalizeWeights(hs)
			if !slices.Equal(weightsOf(hs), got) {
				t.Fatalf("%v x%d -> %v, want %v", in, f, weightsOf(hs), got)
			}
		}
	}
}

func TestCanonical(t *testing.T) {
	tests := []struct {
		name string
		in   Route
		want Route
	}{
		{
			"masks the prefix and sorts",
			Route{mustPrefix("203.0.113.7/24"), hops("198.51.100.3", "198.51.100.2")},
			Route{mustPrefix("203.0.113.0/24"), hops("198.51.100.2", "198.51.100.3")},
		},
		{
			"merges a repeated gateway, adding its weights",
			Route{mustPrefix("203.0.113.1/32"), hops("198.51.100.2*1", "198.51.100.3*1", "198.51.100.2*1")},
			Route{mustPrefix("203.0.113.1/32"), hops("198.51.100.2*2", "198.51.100.3*1")},
		},
		{
			"a repeated unweighted gateway stays unweighted",
			Route{mustPrefix("203.0.113.1/32"), hops("198.51.100.2", "198.51.100.2*5", "198.51.100.3*5")},
			Route{mustPrefix("203.0.113.1/32"), hops("198.51.100.2", "198.51.100.3")},
		},
		{
			"unmaps IPv4-mapped gateways",
			Route{mustPrefix("203.0.113.1/32"), hops("::ffff:198.51.100.2")},
			Route{mustPrefix("203.0.113.1/32"), hops("198.51.100.2")},
		},
		{
			"IPv6 sorts after IPv4",
			Route{mustPrefix("203.0.113.1/32"), hops("2001:db8::2*2", "198.51.100.2*4")},
			Route{mustPrefix("203.0.113.1/32"), hops("198.51.100.2*2", "2001:db8::2*1")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Route{tt.in.Prefix, slices.Clone(tt.in.NextHops)}
			got := Canonical(tt.in)
			if got.Prefix != tt.want.Prefix || !slices.Equal(got.NextHops, tt.want.NextHops) {
				t.Errorf("Canonical(%v) = %v, want %v", tt.in, got, tt.want)
			}
			if !slices.Equal(in.NextHops, tt.in.NextHops) {
				t.Errorf("Canonical modified its argument")
			}
		})
	}
}

func TestCanonicalHopsNoAllocs(t *testing.T) {
	in := hops("198.51.100.4*3", "198.51.100.2*1", "198.51.100.3*2")
	buf := make([]NextHop, 0, 16)
	if n := testing.AllocsPerRun(100, func() { buf = canonicalHops(buf[:0], in) }); n != 0 {
		t.Errorf("canonicalHops allocates %v times", n)
	}
}

func TestValidateRoute(t *testing.T) {
	tests := []struct {
		prefix string
		hops   []NextHop
		ok     bool
	}{
		{"203.0.113.1/32", hops("198.51.100.2"), true},
		{"203.0.113.1/32", hops("2001:db8::2"), true}, // RFC 8950
		{"2001:db8:100::1/128", hops("2001:db8::2"), true},
		{"2001:db8:100::1/128", hops("198.51.100.2"), false},
		{"203.0.113.1/32", hops("0.0.0.0"), false},
		{"203.0.113.1/32", hops("224.0.0.1"), false},
		{"203.0.113.1/32", hops("127.0.0.1"), false},
		{"203.0.113.1/32", []NextHop{{}}, false},
		// Link-local gateways need their interface, and only they take one.
		{"203.0.113.1/32", hops("fe80::1%d0"), true}, // RFC 8950 over a LAN
		{"2001:db8:100::1/128", hops("fe80::1%d0"), true},
		{"2001:db8:100::1/128", hops("fe80::1%7"), true},
		{"2001:db8:100::1/128", hops("fe80::1"), false},
		{"203.0.113.1/32", hops("fe80::1"), false},
		{"2001:db8:100::1/128", hops("2001:db8::2%d0"), false},
		{"2001:db8:100::1/128", hops("fe80::1%interface-name-too-long"), false},
		{"2001:db8:100::1/128", []NextHop{{Addr: mustAddr("fe80::1").WithZone("d0\x00x")}}, false},
		{"2001:db8:100::1/128", []NextHop{{Addr: mustAddr("fe80::1").WithZone("d 0")}}, false},
		{"2001:db8:100::1/128", hops("fe80::1%.."), false},
	}
	for _, tt := range tests {
		err := validateRoute(mustPrefix(tt.prefix), canonicalHops(nil, tt.hops))
		if (err == nil) != tt.ok {
			t.Errorf("validateRoute(%s, %v) = %v, want ok=%v", tt.prefix, tt.hops, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidRoute) {
			t.Errorf("validateRoute error %v is not ErrInvalidRoute", err)
		}
	}
	if err := validateRoute(netip.Prefix{}, nil); !errors.Is(err, ErrInvalidRoute) {
		t.Errorf("zero prefix: %v", err)
	}
}

func route(p string, h ...string) Route { return Route{mustPrefix(p), hops(h...)} }

func change(p string, h ...string) Change { return Change{mustPrefix(p), hops(h...)} }

func TestDiff(t *testing.T) {
	tests := []struct {
		name             string
		current, desired []Route
		want             []Change
	}{
		{"both empty", nil, nil, nil},
		{
			"add",
			nil,
			[]Route{route("203.0.113.2/32", "198.51.100.2"), route("203.0.113.1/32", "198.51.100.2")},
			[]Change{change("203.0.113.1/32", "198.51.100.2"), change("203.0.113.2/32", "198.51.100.2")},
		},
		{
			"unchanged",
			[]Route{route("203.0.113.1/32", "198.51.100.2", "198.51.100.3")},
			[]Route{route("203.0.113.1/32", "198.51.100.3", "198.51.100.2")},
			nil,
		},
		{
			"rescaled weights are unchanged",
			[]Route{route("203.0.113.1/32", "198.51.100.2*1", "198.51.100.3*3")},
			[]Route{route("203.0.113.1/32", "198.51.100.2*1000", "198.51.100.3*3000")},
			nil,
		},
		{
			"weight change replaces",
			[]Route{route("203.0.113.1/32", "198.51.100.2*1", "198.51.100.3*3")},
			[]Route{route("203.0.113.1/32", "198.51.100.2*1", "198.51.100.3*2")},
			[]Change{change("203.0.113.1/32", "198.51.100.2*1", "198.51.100.3*2")},
		},
		{
			"next hop removal replaces",
			[]Route{route("2001:db8:100::1/128", "2001:db8::2", "2001:db8::3")},
			[]Route{route("2001:db8:100::1/128", "2001:db8::3")},
			[]Change{change("2001:db8:100::1/128", "2001:db8::3")},
		},
		{
			"adds before deletes",
			[]Route{route("203.0.113.1/32", "198.51.100.2")},
			[]Route{route("203.0.113.9/32", "198.51.100.2")},
			[]Change{change("203.0.113.9/32", "198.51.100.2"), {Prefix: mustPrefix("203.0.113.1/32")}},
		},
		{
			"desired without next hops is absent",
			[]Route{route("203.0.113.1/32", "198.51.100.2")},
			[]Route{{Prefix: mustPrefix("203.0.113.1/32")}},
			[]Change{{Prefix: mustPrefix("203.0.113.1/32")}},
		},
		{
			"current without next hops is replaced",
			[]Route{{Prefix: mustPrefix("203.0.113.1/32")}},
			[]Route{route("203.0.113.1/32", "198.51.100.2")},
			[]Change{change("203.0.113.1/32", "198.51.100.2")},
		},
		{
			"last desired wins",
			nil,
			[]Route{route("203.0.113.1/32", "198.51.100.2"), route("203.0.113.1/32", "198.51.100.3")},
			[]Change{change("203.0.113.1/32", "198.51.100.3")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Diff(tt.current, tt.desired)
			if !changesEqual(got, canonicalChanges(tt.want)) {
				t.Errorf("Diff =\n%v\nwant\n%v", got, tt.want)
			}
		})
	}
}

func canonicalChanges(cs []Change) []Change {
	var out []Change
	for _, c := range cs {
		out = append(out, Change{c.Prefix.Masked(), canonicalHops(nil, c.NextHops)})
	}
	return out
}

func changesEqual(a, b []Change) bool {
	return slices.EqualFunc(a, b, func(x, y Change) bool {
		return x.Prefix == y.Prefix && slices.Equal(x.NextHops, y.NextHops)
	})
}

// diffSlow is Diff's obviously-correct twin: it renders each canonical
// route as text and compares strings, with quadratic searches.
func diffSlow(current, desired []Route) []Change {
	render := func(r Route) string { return fmt.Sprint(Canonical(r).NextHops) }
	lastDesired := func(p netip.Prefix) (Route, bool) {
		var found Route
		ok := false
		for _, r := range desired {
			if r.Prefix.Masked() == p {
				found, ok = r, len(r.NextHops) > 0
			}
		}
		return found, ok
	}
	var set, del []Change
	seen := map[netip.Prefix]bool{}
	for _, d := range desired {
		p := d.Prefix.Masked()
		if seen[p] {
			continue
		}
		seen[p] = true
		want, ok := lastDesired(p)
		if !ok {
			continue
		}
		same := false
		for _, c := range current {
			if c.Prefix.Masked() == p {
				same = len(c.NextHops) > 0 && render(c) == render(want)
			}
		}
		if !same {
			set = append(set, Change{p, Canonical(want).NextHops})
		}
	}
	for _, c := range current {
		p := c.Prefix.Masked()
		if _, ok := lastDesired(p); !ok && !slices.ContainsFunc(del, func(x Change) bool { return x.Prefix == p }) {
			del = append(del, Change{Prefix: p})
		}
	}
	less := func(s []Change) func(i, j int) bool {
		return func(i, j int) bool { return comparePrefix(s[i].Prefix, s[j].Prefix) < 0 }
	}
	sort.Slice(set, less(set))
	sort.Slice(del, less(del))
	return append(set, del...)
}

func randomRoutes(rng *rand.Rand, n int) []Route {
	gws := hops("198.51.100.2", "198.51.100.3", "198.51.100.4", "2001:db8::2", "2001:db8::3")
	rs := make([]Route, 0, n)
	for range n {
		var p netip.Prefix
		if rng.IntN(2) == 0 {
			p = netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(rng.IntN(16))}), 32)
		} else {
			p = netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x01, 15: byte(rng.IntN(16))}), 128)
		}
		var hs []NextHop
		for range rng.IntN(4) {
			h := gws[rng.IntN(len(gws))]
			if rng.IntN(3) == 0 {
				h.Weight = uint32(rng.IntN(4))
			}
			hs = append(hs, h)
		}
		rs = append(rs, Route{p, hs})
	}
	return rs
}

func TestDiffMatchesSlow(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 3000 {
		cur, want := randomRoutes(rng, rng.IntN(20)), randomRoutes(rng, rng.IntN(20))
		if i%4 == 0 { // mostly the same, as in steady state
			want = append(slices.Clone(cur), randomRoutes(rng, 2)...)
		}
		fast, slow := Diff(cur, want), diffSlow(cur, want)
		if !changesEqual(fast, slow) {
			t.Fatalf("current %v\ndesired %v\nDiff %v\nslow %v", cur, want, fast, slow)
		}
		// Applying the diff to current gives desired.
		if again := Diff(applyChanges(cur, fast), want); len(again) != 0 {
			t.Fatalf("current %v desired %v: after the diff, %v remain", cur, want, again)
		}
	}
}

// applyChanges is what a perfect FIB would hold after changes.
func applyChanges(cur []Route, cs []Change) []Route {
	m := map[netip.Prefix][]NextHop{}
	for _, r := range cur {
		m[r.Prefix.Masked()] = r.NextHops
	}
	for _, c := range cs {
		if c.Delete() {
			delete(m, c.Prefix)
		} else {
			m[c.Prefix] = c.NextHops
		}
	}
	var out []Route
	for p, h := range m {
		out = append(out, Route{p, h})
	}
	return out
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed)) }
