package lbmodel

import (
	"errors"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// The pool rule, as the controller and every speaker apply it: oldest
// first, then by name; a pool is refused whole when invalid, when its name
// is taken, or when it overlaps a pool accepted before it.
func TestCheckPools(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pools    []Pool
		accepted []string // name: ranges
		problems []string
	}{{
		name:     "the older pool keeps the addresses, whatever the names",
		pools:    []Pool{pool("aa-new", 2, "203.0.113.8-203.0.113.20"), pool("zz-old", 1, "203.0.113.0/28")},
		accepted: []string{"zz-old: 203.0.113.0-203.0.113.15"},
		problems: []string{"pool aa-new: 203.0.113.8-203.0.113.20 overlaps 203.0.113.0-203.0.113.15 of pool zz-old"},
	}, {
		name:     "created in the same second: the name decides",
		pools:    []Pool{pool("b", 1, "203.0.113.0/28"), pool("a", 1, "203.0.113.15")},
		accepted: []string{"a: 203.0.113.15"},
		problems: []string{"pool b: 203.0.113.0-203.0.113.15 overlaps 203.0.113.15 of pool a"},
	}, {
		name:     "a refused pool blocks nothing: the third overlaps only the refused second",
		pools:    []Pool{pool("one", 1, "203.0.113.0/30"), pool("two", 2, "203.0.113.3-203.0.113.9"), pool("three", 3, "203.0.113.8")},
		accepted: []string{"one: 203.0.113.0-203.0.113.3", "three: 203.0.113.8"},
		problems: []string{"pool two: 203.0.113.3-203.0.113.9 overlaps 203.0.113.0-203.0.113.3 of pool one"},
	}, {
		name:     "families never overlap; adjacent and overlapping ranges merge",
		pools:    []Pool{pool("p", 1, "203.0.113.20-203.0.113.30", "2001:db8::/126", "203.0.113.10-203.0.113.19", "203.0.113.25-203.0.113.40", "2001:db8::4"), pool("v6", 2, "2001:db8::5")},
		accepted: []string{"p: 203.0.113.10-203.0.113.40 2001:db8::-2001:db8::4", "v6: 2001:db8::5"},
	}, {
		name:     "the top of the address space merges without wrapping",
		pools:    []Pool{pool("max", 1, "255.255.255.255", "255.255.255.254", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")},
		accepted: []string{"max: 255.255.255.254-255.255.255.255 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
	}, {
		name:     "a repeated name: the older is kept",
		pools:    []Pool{pool("p", 2, "198.51.100.1"), pool("p", 1, "198.51.100.2")},
		accepted: []string{"p: 198.51.100.2"},
		problems: []string{"pool p: name used by an earlier pool"},
	}, {
		name: "invalid pools, each reported",
		pools: []Pool{
			pool("", 1, "198.51.100.2"),
			{Name: "bad", Created: at(0), Ranges: []Range{{First: ip("198.51.100.9"), Last: ip("2001:db8::1")}, {First: ip("198.51.100.9"), Last: ip("198.51.100.1")}}},
			withAlloc(pool("negative", 0, "198.51.100.3"), ServiceAllocation{Priority: -1}),
			withAlloc(pool("ns", 0), ServiceAllocation{Namespaces: []string{""}}),
			withAlloc(pool("nilsel", 0), ServiceAllocation{ServiceSelectors: []labels.Selector{nil}}),
		},
		problems: []string{
			"pool bad: range 198.51.100.9-198.51.100.1: 198.51.100.9 comes after 198.51.100.1; range 198.51.100.9-2001:db8::1: 198.51.100.9 and 2001:db8::1 are of different families",
			"pool negative: serviceAllocation.priority -1 is negative",
			"pool nilsel: serviceAllocation: a missing selector",
			"pool ns: serviceAllocation.namespaces: empty name",
			"pool : empty name",
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			accepted, problems := CheckPools(tc.pools)
			var got []string
			for _, p := range accepted {
				var rs []string
				for _, r := range p.Ranges {
					rs = append(rs, r.String())
				}
				got = append(got, p.Name+": "+strings.Join(rs, " "))
			}
			if !slices.Equal(got, tc.accepted) {
				t.Errorf("accepted:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.accepted, "\n"))
			}
			got = nil
			for _, p := range problems {
				got = append(got, p.Error())
			}
			if !slices.Equal(got, tc.problems) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.problems, "\n"))
			}
		})
	}
}

func withAlloc(p Pool, sa ServiceAllocation) Pool {
	p.Allocation = &sa
	return p
}

// CheckPools copies what it normalises.
func TestCheckPoolsLeavesItsInput(t *testing.T) {
	in := withAlloc(pool("x", 1, "203.0.113.20", "203.0.113.10"), ServiceAllocation{Namespaces: []string{"a"}})
	out, _ := CheckPools([]Pool{in})
	out[0].Allocation.Namespaces = nil
	out[0].Ranges[0] = Range{}
	if in.Ranges[0].First != ip("203.0.113.20") || in.Allocation.Namespaces == nil {
		t.Error("CheckPools changed its input")
	}
}

func TestPoolsFrom(t *testing.T) {
	no := false
	manual := v1alpha1.LoadBalancerPool{ObjectMeta: meta("manual", 3), Spec: v1alpha1.LoadBalancerPoolSpec{
		Addresses: []string{"198.51.100.7", "2001:db8::/126"}, AutoAssign: &no, AvoidBuggyIPs: true,
		ServiceAllocation: &v1alpha1.ServiceAllocation{Priority: 2, Namespaces: []string{"dns"},
			ServiceSelectors: []metav1.LabelSelector{expr("app", metav1.LabelSelectorOpIn, "pihole")}},
	}}
	manual.Labels = map[string]string{"tier": "lan"}
	plain := v1alpha1.LoadBalancerPool{ObjectMeta: meta("plain", 1), Spec: v1alpha1.LoadBalancerPoolSpec{Addresses: []string{"203.0.113.0/28"}}}
	broken := v1alpha1.LoadBalancerPool{ObjectMeta: meta("broken", 4), Spec: v1alpha1.LoadBalancerPoolSpec{Addresses: []string{"203.0.113.1/24"}}}
	lower := v1alpha1.LoadBalancerPool{ObjectMeta: meta("lower", 5), Spec: v1alpha1.LoadBalancerPoolSpec{Addresses: []string{"198.51.100.64/28"},
		ServiceAllocation: &v1alpha1.ServiceAllocation{NamespaceSelectors: []metav1.LabelSelector{expr("team", "in", "a")}}}}

	pools, problems := PoolsFrom([]v1alpha1.LoadBalancerPool{manual, broken, plain, lower})
	if len(pools) != 2 || pools[0].Name != "manual" || pools[1].Name != "plain" {
		t.Fatalf("pools %+v: want manual, plain in the order given", pools)
	}
	if len(problems) != 2 || problems[0].Pool != "broken" || !strings.Contains(problems[0].Err.Error(), "spec.addresses[0]") ||
		problems[1].Pool != "lower" || !strings.Contains(problems[1].Err.Error(), `spec.serviceAllocation.namespaceSelectors[0]: "in" is not a valid`) {
		t.Fatalf("problems %v", problems)
	}
	m := pools[0]
	if m.AutoAssign || !m.AvoidBuggyIPs || len(m.Ranges) != 2 || !m.Created.Equal(at(3)) || m.Labels["tier"] != "lan" ||
		m.Allocation == nil || m.Allocation.Priority != 2 || len(m.Allocation.ServiceSelectors) != 1 {
		t.Errorf("manual pool converted to %+v", m)
	}
	if !m.Allocation.Admits("dns", nil, map[string]string{"app": "pihole"}) || m.Allocation.Admits("dns", nil, map[string]string{"app": "web"}) {
		t.Error("the converted service selector does not select as written")
	}
	if !pools[1].AutoAssign {
		t.Error("autoAssign unset must default to true")
	}
}

func TestAdmits(t *testing.T) {
	web, red := map[string]string{"app": "web"}, map[string]string{"team": "red"}
	for _, tc := range []struct {
		name      string
		sa        *ServiceAllocation
		ns        string
		nsLabels  map[string]string
		svcLabels map[string]string
		want      bool
	}{
		{"no serviceAllocation", nil, "x", nil, nil, true},
		{"empty serviceAllocation", &ServiceAllocation{Priority: 3}, "x", nil, nil, true},
		{"listed namespace", &ServiceAllocation{Namespaces: []string{"dns"}}, "dns", nil, nil, true},
		{"unlisted namespace", &ServiceAllocation{Namespaces: []string{"dns"}}, "web", nil, nil, false},
		{"namespace selected by labels", &ServiceAllocation{Namespaces: []string{"dns"}, NamespaceSelectors: []labels.Selector{sel("team=red")}}, "web", red, nil, true},
		{"namespace neither listed nor selected", &ServiceAllocation{NamespaceSelectors: []labels.Selector{sel("team=red")}}, "web", nil, nil, false},
		{"service selected", &ServiceAllocation{ServiceSelectors: []labels.Selector{sel("app in (db,web)")}}, "x", nil, web, true},
		{"service not selected", &ServiceAllocation{ServiceSelectors: []labels.Selector{sel("app notin (web)")}}, "x", nil, web, false},
		{"both must hold", &ServiceAllocation{Namespaces: []string{"dns"}, ServiceSelectors: []labels.Selector{sel("app")}}, "web", nil, web, false},
	} {
		if got := tc.sa.Admits(tc.ns, tc.nsLabels, tc.svcLabels); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestOverlapErrorNamesTheOlderPool(t *testing.T) {
	_, problems := CheckPools([]Pool{pool("new", 2, "203.0.113.5"), pool("old", 1, "203.0.113.0/29")})
	var oe *OverlapError
	if len(problems) != 1 || !errors.As(problems[0].Err, &oe) || oe.Pool != "old" || oe.Range.String() != "203.0.113.5" {
		t.Fatalf("problems %v", problems)
	}
}
