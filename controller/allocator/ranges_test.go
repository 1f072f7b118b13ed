package allocator

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestRangeSize(t *testing.T) {
	max := uint64(math.MaxUint64)
	for _, tc := range []struct {
		r     string
		avoid bool
		want  uint64
	}{
		{"203.0.113.0/24", false, 256},
		{"203.0.113.0/24", true, 254},
		{"203.0.113.255", true, 0},
		{"203.0.113.0-203.0.113.0", true, 0},
		{"203.0.113.254-203.0.114.1", true, 2},
		{"0.0.0.0/0", false, 1 << 32},
		{"0.0.0.0/0", true, 1<<32 - 2*(1<<24)},
		{"2001:db8::/128", true, 1},
		{"2001:db8::/120", true, 256},
		{"2001:db8::/65", false, 1 << 63},
		{"2001:db8::1-2001:db8::ffff:ffff:ffff:ffff", false, max}, // exactly 2^64-1
		{"2001:db8::/64", false, max},                             // 2^64: saturated
		{"2001:db8::/32", false, max},
		{"2001:db8::ffff:ffff:ffff:fff0-2001:db8:0:1::f", false, 32}, // borrow across the halves
		{"2001:db8::ffff:ffff:ffff:ffff-2001:db8:0:1::", false, 2},
		{"2001:db8::8-2001:db8:0:1::7", false, max}, // 2^64 across the halves
		{"2001:db8::8-2001:db8:0:1::6", false, max},
		{"::/0", false, max},
	} {
		if got := rng(t, tc.r).size(tc.avoid); got != tc.want {
			t.Errorf("%s avoid=%v: %d, want %d", tc.r, tc.avoid, got, tc.want)
		}
	}
}

// The buggy-address arithmetic against counting one by one.
func TestRangeSizeAgainstCounting(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		lo := r.Uint32N(1 << 20)
		hi := lo + r.Uint32N(1200)
		if r.IntN(10) == 0 {
			lo, hi = math.MaxUint32-r.Uint32N(600), math.MaxUint32
		}
		rg := Range{First: addr4(lo), Last: addr4(hi)}
		var n uint64
		for x := rg.First; ; x = x.Next() {
			if !buggy(x) {
				n++
			}
			if x == rg.Last {
				break
			}
		}
		if got := rg.size(true); got != n {
			t.Fatalf("%v: %d, counted %d", rg, got, n)
		}
	}
}

func addr4(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func TestCheckPools(t *testing.T) {
	p := func(name string, ranges ...string) Pool { return mkPool(name, ranges...) }
	accepted, problems := CheckPools([]Pool{
		p("merge", "203.0.113.20-203.0.113.30", "2001:db8::/126", "203.0.113.10-203.0.113.19", "203.0.113.25-203.0.113.40", "2001:db8::4"),
		p("merge", "198.51.100.1"),
		p("overlaps", "198.51.100.0/24", "203.0.113.40"),
		p("", "198.51.100.2"),
		{Name: "bad", Ranges: []Range{{First: ip("198.51.100.9"), Last: ip("2001:db8::1")}}},
		withAlloc(p("negative", "198.51.100.3"), ServiceAllocation{Priority: -1}),
		withAlloc(p("selector", "198.51.100.4"), ServiceAllocation{ServiceSelectors: []Selector{{MatchExpressions: []Requirement{{Key: "a", Operator: "Like"}}}}}),
		withAlloc(p("nsselector", "198.51.100.4"), ServiceAllocation{NamespaceSelectors: []Selector{{MatchExpressions: []Requirement{{Key: "a", Operator: OpIn}}}}}),
		withAlloc(p("ns", "198.51.100.4"), ServiceAllocation{Namespaces: []string{""}}),
		p("after", "198.51.100.0/24", "2001:db8::5"),
		p("max", "255.255.255.255", "255.255.255.254", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
	})
	wantRanges := map[string][]string{
		"merge": {"203.0.113.10-203.0.113.40", "2001:db8::-2001:db8::4"},
		"after": {"198.51.100.0-198.51.100.255", "2001:db8::5"},
		"max":   {"255.255.255.254-255.255.255.255", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
	}
	var names []string
	for _, a := range accepted {
		names = append(names, a.Name)
		var got []string
		for _, r := range a.Ranges {
			got = append(got, r.String())
		}
		if !slices.Equal(got, wantRanges[a.Name]) {
			t.Errorf("%s: ranges %v, want %v", a.Name, got, wantRanges[a.Name])
		}
	}
	if !slices.Equal(names, []string{"merge", "after", "max"}) {
		t.Errorf("accepted %v", names)
	}
	wantProblems := []string{
		"pool merge: name used by an earlier pool",
		"pool overlaps: 203.0.113.40 overlaps 203.0.113.10-203.0.113.40 of pool merge",
		"pool : empty name",
		"pool bad: ranges[0]: 198.51.100.9 and 2001:db8::1 are of different families",
		"pool negative: serviceAllocation.priority -1 is negative",
		`pool selector: serviceAllocation.serviceSelectors[0]: matchExpressions[0]: unknown operator "Like"`,
		"pool nsselector: serviceAllocation.namespaceSelectors[0]: matchExpressions[0]: In needs values",
		"pool ns: serviceAllocation.namespaces: empty name",
	}
	var got []string
	for _, pr := range problems {
		got = append(got, pr.Error())
	}
	if !slices.Equal(got, wantProblems) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantProblems, "\n"))
	}
	// The caller's pool is not changed by normalisation.
	in := p("x", "203.0.113.20", "203.0.113.10")
	sa := ServiceAllocation{Namespaces: []string{"a"}}
	in.Allocation = &sa
	out, _ := CheckPools([]Pool{in})
	out[0].Allocation.Namespaces = nil
	if in.Ranges[0].First != ip("203.0.113.20") || sa.Namespaces == nil {
		t.Error("CheckPools changed its input")
	}
}

func TestSelector(t *testing.T) {
	l := map[string]string{"app": "web", "tier": "edge"}
	for _, tc := range []struct {
		name string
		sel  Selector
		want bool
	}{
		{"empty matches all", Selector{}, true},
		{"matchLabels", Selector{MatchLabels: map[string]string{"app": "web"}}, true},
		{"matchLabels differs", Selector{MatchLabels: map[string]string{"app": "db"}}, false},
		{"matchLabels missing", Selector{MatchLabels: map[string]string{"team": ""}}, false},
		{"In", Selector{MatchExpressions: []Requirement{{Key: "app", Operator: OpIn, Values: []string{"db", "web"}}}}, true},
		{"In missing key", Selector{MatchExpressions: []Requirement{{Key: "x", Operator: OpIn, Values: []string{""}}}}, false},
		{"NotIn", Selector{MatchExpressions: []Requirement{{Key: "app", Operator: OpNotIn, Values: []string{"web"}}}}, false},
		{"NotIn missing key", Selector{MatchExpressions: []Requirement{{Key: "x", Operator: OpNotIn, Values: []string{"a"}}}}, true},
		{"Exists", Selector{MatchExpressions: []Requirement{{Key: "tier", Operator: OpExists}}}, true},
		{"DoesNotExist", Selector{MatchExpressions: []Requirement{{Key: "tier", Operator: OpDoesNotExist}}}, false},
		{"all must hold", Selector{MatchLabels: map[string]string{"app": "web"},
			MatchExpressions: []Requirement{{Key: "tier", Operator: OpDoesNotExist}}}, false},
		{"unknown operator fails closed", Selector{MatchExpressions: []Requirement{{Key: "app", Operator: "Like"}}}, false},
	} {
		if got := tc.sel.Matches(l); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	for _, bad := range []Requirement{
		{Key: "", Operator: OpExists},
		{Key: "a", Operator: OpNotIn},
		{Key: "a", Operator: OpExists, Values: []string{"x"}},
		{Key: "a", Operator: OpDoesNotExist, Values: []string{"x"}},
		{Key: "a", Operator: "Gt", Values: []string{"1"}},
	} {
		if (Selector{MatchExpressions: []Requirement{bad}}).Validate() == nil {
			t.Errorf("%+v validated", bad)
		}
	}
}
