package lbmodel

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp/wire"
)

func TestAdvertisementFrom(t *testing.T) {
	i32 := func(v int32) *int32 { return &v }
	i64 := func(v int64) *int64 { return &v }
	for _, tc := range []struct {
		name    string
		spec    v1alpha1.BGPAnnouncementPolicySpec
		check   func(Advertisement) bool
		wantErr []string
	}{{
		name: "empty: every pool, peer and node, host routes",
		check: func(a Advertisement) bool {
			return a.SelectsPool("any", nil) && a.SelectsNode(nil) && a.SendsToAny([]string{"r"}) && a.AggregationLength == 0 && a.LocalPref == nil
		},
	}, {
		name: "everything set",
		spec: v1alpha1.BGPAnnouncementPolicySpec{IPPools: []string{"lan"}, AggregationLength: i32(24), AggregationLengthV6: i32(64),
			LocalPref: i64(200), Communities: []string{"no-export", "64512:100"}, LargeCommunities: []string{"64512:1:2"},
			Peers: []string{"r1"}, NodeSelectors: []metav1.LabelSelector{expr("zone", metav1.LabelSelectorOpIn, "a")}},
		check: func(a Advertisement) bool {
			return a.AggregationLength == 24 && a.AggregationLengthV6 == 64 && *a.LocalPref == 200 &&
				slices.Equal(a.Communities, []wire.Community{wire.CommunityNoExport, wire.NewCommunity(64512, 100)}) &&
				slices.Equal(a.LargeCommunities, []wire.LargeCommunity{{Global: 64512, Local1: 1, Local2: 2}}) &&
				a.SelectsNode(labels.Set{"zone": "a"}) && !a.SelectsNode(labels.Set{"zone": "b"}) &&
				a.SelectsPool("lan", nil) && !a.SelectsPool("dmz", nil)
		},
	}, {
		name:    "operator in lower case in nodeSelectors",
		spec:    v1alpha1.BGPAnnouncementPolicySpec{NodeSelectors: []metav1.LabelSelector{{}, expr("zone", "in", "a")}},
		wantErr: []string{`spec.nodeSelectors[1]: "in" is not a valid label selector operator`},
	}, {
		name:    "operator in lower case in ipPoolSelectors",
		spec:    v1alpha1.BGPAnnouncementPolicySpec{IPPoolSelectors: []metav1.LabelSelector{expr("tier", "notin", "a")}},
		wantErr: []string{`spec.ipPoolSelectors[0]: "notin" is not a valid`},
	}, {
		name:    "every bad community, by index",
		spec:    v1alpha1.BGPAnnouncementPolicySpec{Communities: []string{"64512:1", "NO-EXPORT", "1:99999"}, LargeCommunities: []string{"1:2"}},
		wantErr: []string{`spec.communities[1]: community "NO-EXPORT"`, `spec.communities[2]: community "1:99999"`, `spec.largeCommunities[0]: large community "1:2"`},
	}, {
		name:    "bounds the CRD sets, bypassed",
		spec:    v1alpha1.BGPAnnouncementPolicySpec{AggregationLength: i32(33), AggregationLengthV6: i32(-1), LocalPref: i64(1 << 32)},
		wantErr: []string{"aggregationLength 33 is not between 1 and 32", "aggregationLengthV6 -1 is not between 1 and 128", "spec.localPref 4294967296"},
	}} {
		a, err := AdvertisementFrom(&v1alpha1.BGPAnnouncementPolicy{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Spec: tc.spec})
		if len(tc.wantErr) == 0 {
			if err != nil || a.Name != "x" || !tc.check(a) {
				t.Errorf("%s: %+v, %v", tc.name, a, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted as %+v", tc.name, a)
			continue
		}
		for _, w := range tc.wantErr {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tc.name, err, w)
			}
		}
		if strings.Contains(err.Error(), "communities[0]") {
			t.Errorf("%s: error %q blames a good entry", tc.name, err)
		}
	}
}

func TestSelectsPool(t *testing.T) {
	lan := labels.Set{"tier": "lan"}
	for _, tc := range []struct {
		name string
		a    Advertisement
		pool string
		want bool
	}{
		{"neither names nor selectors: every pool", Advertisement{}, "p", true},
		{"named", Advertisement{Pools: []string{"a", "p"}}, "p", true},
		{"not named", Advertisement{Pools: []string{"a"}}, "p", false},
		{"selected", Advertisement{PoolSelectors: []labels.Selector{sel("tier=lan")}}, "p", true},
		{"not selected", Advertisement{PoolSelectors: []labels.Selector{sel("tier=dmz")}}, "p", false},
		{"named or selected", Advertisement{Pools: []string{"a"}, PoolSelectors: []labels.Selector{sel("tier=lan")}}, "p", true},
		{"a selector that matches nothing does not open it to all", Advertisement{PoolSelectors: []labels.Selector{labels.Nothing()}}, "p", false},
	} {
		if got := tc.a.SelectsPool(tc.pool, lan); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSendsToAny(t *testing.T) {
	for _, tc := range []struct {
		peers, exist []string
		want         bool
	}{
		{nil, []string{"r1"}, true},
		{nil, nil, false},
		{[]string{"r2", "r1"}, []string{"r1"}, true},
		{[]string{"typo"}, []string{"r1"}, false},
	} {
		a := Advertisement{Peers: tc.peers}
		if got := a.SendsToAny(tc.exist); got != tc.want {
			t.Errorf("peers %v, existing %v: %v, want %v", tc.peers, tc.exist, got, tc.want)
		}
	}
}

// The CRD's CEL rule lists the well-known community names by hand; they
// must be bgp/wire's, the one table that parses and prints them.
func TestCRDCommunityNames(t *testing.T) {
	raw, err := os.ReadFile("../../config/crd/bases/bgplb.io_bgpannouncementpolicies.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var rules []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if r, ok := v["rule"].(string); ok && strings.HasPrefix(r, "self in [") {
				rules = append(rules, r)
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	if len(rules) != 1 {
		t.Fatalf("%d community name rules in the CRD, want 1: %q", len(rules), rules)
	}
	list, _, _ := strings.Cut(strings.TrimPrefix(rules[0], "self in ["), "]")
	var crd []string
	for _, m := range regexp.MustCompile(`'([^']*)'`).FindAllStringSubmatch(list, -1) {
		crd = append(crd, m[1])
	}
	names := wire.CommunityNames()
	slices.Sort(crd)
	slices.Sort(names)
	if !slices.Equal(crd, names) {
		t.Errorf("the CRD accepts %v, bgp/wire knows %v", crd, names)
	}
}
