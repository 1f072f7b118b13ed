package v1alpha1

import (
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ruleCase is an object spec and what the API server must say about it:
// nothing (field == ""), or an error on field whose text holds msg.
type ruleCase struct {
	name  string
	spec  string
	field string
	msg   string
}

func runRuleCases(t *testing.T, kind string, cases []ruleCase) {
	t.Helper()
	v := newObjectValidator(t, kind)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := fmt.Sprintf("apiVersion: bgplb.io/v1alpha1\nkind: %s\nmetadata: {name: x}\nspec:\n%s", kind, indent(tc.spec))
			checkErrors(t, v.validate(t, doc), tc.field, tc.msg)
		})
	}
}

func checkErrors(t *testing.T, errs field.ErrorList, wantField, wantMsg string) {
	t.Helper()
	if wantField == "" {
		if len(errs) > 0 {
			t.Fatalf("refused: %v", errs.ToAggregate())
		}
		return
	}
	for _, e := range errs {
		if e.Field == wantField && strings.Contains(e.Error(), wantMsg) {
			return
		}
	}
	t.Fatalf("want an error on %s containing %q, got %v", wantField, wantMsg, errs.ToAggregate())
}

func indent(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n") + "\n"
}

func TestLoadBalancerPoolRules(t *testing.T) {
	const addr0 = "spec.addresses[0]"
	runRuleCases(t, "LoadBalancerPool", []ruleCase{
		{name: "v4 cidr", spec: `addresses: ["203.0.113.0/24"]`},
		{name: "v6 cidr", spec: `addresses: ["2001:db8:100::/120"]`},
		{name: "mixed list", spec: `addresses: ["203.0.113.0/28", "2001:db8::1-2001:db8::ff", "198.51.100.7"]`},
		{name: "v4 range", spec: `addresses: ["203.0.113.10-203.0.113.20"]`},
		{name: "range with spaces", spec: `addresses: ["203.0.113.10 - 203.0.113.20"]`},
		{name: "one-address range", spec: `addresses: ["203.0.113.10-203.0.113.10"]`},
		{name: "v6 range differing in the last bit", spec: `addresses: ["2001:db8::fffe-2001:db8::ffff"]`},
		{name: "v6 range across 64 bits", spec: `addresses: ["2001:db8::ffff:ffff:ffff:ffff-2001:db8:0:1::"]`},
		{name: "whole v4 space", spec: `addresses: ["0.0.0.0-255.255.255.255"]`},
		{name: "whole v6 space", spec: `addresses: ["::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]`},
		{name: "/0", spec: `addresses: ["0.0.0.0/0"]`},
		{name: "all options", spec: `
addresses: ["203.0.113.0/24"]
autoAssign: false
avoidBuggyIPs: true
serviceAllocation:
  priority: 10
  namespaces: [web]
  namespaceSelectors: [{matchLabels: {team: a}}]
  serviceSelectors: [{matchExpressions: [{key: tier, operator: In, values: [front]}]}]`},

		{name: "octet out of range", spec: `addresses: ["203.0.113.300/24"]`, field: addr0, msg: "must be a CIDR"},
		{name: "prefix too long", spec: `addresses: ["203.0.113.0/33"]`, field: addr0, msg: "must be a CIDR"},
		{name: "host bits", spec: `addresses: ["203.0.113.1/24"]`, field: addr0, msg: "no bits set after its prefix length"},
		{name: "v6 host bits", spec: `addresses: ["2001:db8::1/64"]`, field: addr0, msg: "no bits set after its prefix length"},
		{name: "reversed range", spec: `addresses: ["203.0.113.20-203.0.113.10"]`, field: addr0, msg: "must not come after its end"},
		{name: "reversed by one", spec: `addresses: ["203.0.113.11-203.0.113.10"]`, field: addr0, msg: "must not come after its end"},
		{name: "reversed v6", spec: `addresses: ["2001:db8::1:0-2001:db8::ffff"]`, field: addr0, msg: "must not come after its end"},
		{name: "mixed-family range", spec: `addresses: ["203.0.113.10-2001:db8::1"]`, field: addr0, msg: "same family"},
		{name: "two dashes", spec: `addresses: ["203.0.113.1-203.0.113.2-203.0.113.3"]`, field: addr0, msg: "must be a CIDR"},
		{name: "garbage", spec: `addresses: ["pool-a"]`, field: addr0, msg: "must be a CIDR"},
		{name: "empty entry", spec: `addresses: [""]`, field: addr0, msg: "must be a CIDR"},
		{name: "v4-mapped", spec: `addresses: ["::ffff:203.0.113.1"]`, field: addr0, msg: "must be a CIDR"},
		{name: "zone", spec: `addresses: ["fe80::1%eth0"]`, field: addr0, msg: "must be a CIDR"},
		{name: "leading zero", spec: `addresses: ["203.0.113.010"]`, field: addr0, msg: "must be a CIDR"},
		{name: "second entry named", spec: `addresses: ["203.0.113.0/24", "198.51.100.9-198.51.100.1"]`, field: "spec.addresses[1]", msg: "must not come after its end"},
		{name: "no addresses", spec: `addresses: []`, field: "spec.addresses", msg: "at least 1"},
		{name: "duplicate entry", spec: `addresses: ["203.0.113.0/24", "203.0.113.0/24"]`, field: "spec.addresses[1]", msg: "Duplicate"},
		{name: "negative priority", spec: "addresses: [203.0.113.0/24]\nserviceAllocation: {priority: -1}", field: "spec.serviceAllocation.priority", msg: "greater than or equal to 0"},
	})
}

func TestLoadBalancerPoolDefaults(t *testing.T) {
	v := newObjectValidator(t, "LoadBalancerPool")
	doc := "apiVersion: bgplb.io/v1alpha1\nkind: LoadBalancerPool\nmetadata: {name: x}\nspec: {addresses: [203.0.113.0/24]}\n"
	if errs := v.validate(t, doc); len(errs) > 0 {
		t.Fatal(errs.ToAggregate())
	}
	// The Go-side default must agree with the CRD's.
	var spec LoadBalancerPoolSpec
	if !spec.AutoAssignEnabled() {
		t.Error("AutoAssignEnabled of an unset autoAssign is false; the CRD defaults it to true")
	}
	f := false
	spec.AutoAssign = &f
	if spec.AutoAssignEnabled() {
		t.Error("AutoAssignEnabled ignores autoAssign: false")
	}
	if got := defaultOf(t, v, "autoAssign"); got != true {
		t.Errorf("CRD default of autoAssign = %v, want true", got)
	}
}

// defaultOf is the CRD's default for a top-level spec field.
func defaultOf(t *testing.T, v *objectValidator, name string) any {
	t.Helper()
	p, ok := v.structural.Properties["spec"].Properties[name]
	if !ok {
		t.Fatalf("no spec.%s", name)
	}
	if p.Default.Object == nil {
		return nil
	}
	return p.Default.Object
}

func TestBGPRouterRules(t *testing.T) {
	const base = "myASN: 64512\npeerASN: 64512\npeerAddress: 198.51.100.1\n"
	runRuleCases(t, "BGPRouter", []ruleCase{
		{name: "minimal", spec: base},
		{name: "4-octet ASNs, eBGP multihop", spec: "myASN: 4200000000\npeerASN: 4294967295\npeerAddress: 2001:db8::1\nebgpMultiHop: 3\nsourceAddress: 2001:db8::2"},
		{name: "all options", spec: base + `
peerPort: 1179
holdTime: 9s
keepaliveTime: 3s
connectTime: 5s
passwordSecret: {name: peer-pw, namespace: bgplb-system, key: pw}
sourceAddress: 198.51.100.2
nodeSelectors: [{matchLabels: {rack: r1}}]
bfdPolicy: fast
gracefulRestart: true`},
		{name: "hold 0, keepalive 0", spec: base + "holdTime: \"0\"\nkeepaliveTime: 0s"},
		{name: "keepalive equals hold", spec: base + "holdTime: 1m30s\nkeepaliveTime: 90s"},

		{name: "peerASN 0", spec: "myASN: 64512\npeerASN: 0\npeerAddress: 198.51.100.1", field: "spec.peerASN", msg: "greater than or equal to 1"},
		{name: "peerASN over 32 bits", spec: "myASN: 64512\npeerASN: 4294967296\npeerAddress: 198.51.100.1", field: "spec.peerASN", msg: "less than or equal to 4294967295"},
		{name: "myASN missing", spec: "peerASN: 64512\npeerAddress: 198.51.100.1", field: "spec.myASN", msg: "Required"},
		{name: "bad peer address", spec: "myASN: 64512\npeerASN: 64512\npeerAddress: 198.51.100.256", field: "spec.peerAddress", msg: "must be an IPv4 or IPv6 address"},
		{name: "peer address with zone", spec: "myASN: 64512\npeerASN: 64512\npeerAddress: fe80::1%eth0", field: "spec.peerAddress", msg: "without a zone"},
		{name: "keepalive over hold", spec: base + "holdTime: 9s\nkeepaliveTime: 10s", field: "spec.keepaliveTime", msg: "keepaliveTime must not exceed holdTime"},
		{name: "keepalive with hold 0", spec: base + "holdTime: 0s\nkeepaliveTime: 1s", field: "spec.keepaliveTime", msg: "must not exceed holdTime"},
		{name: "hold below 3s", spec: base + "holdTime: 2s", field: "spec.holdTime", msg: "holdTime must be 0 or between 3s and 65535s"},
		{name: "hold over 16 bits", spec: base + "holdTime: 65536s", field: "spec.holdTime", msg: "between 3s and 65535s"},
		{name: "hold not a duration", spec: base + "holdTime: soon", field: "spec.holdTime", msg: "should match"},
		{name: "negative keepalive", spec: base + "keepaliveTime: -1s", field: "spec.keepaliveTime", msg: "should match"},
		{name: "connect 0", spec: base + "connectTime: 0s", field: "spec.connectTime", msg: "between 1s and 65535s"},
		{name: "port 0", spec: base + "peerPort: 0", field: "spec.peerPort", msg: "greater than or equal to 1"},
		{name: "source of other family", spec: base + "sourceAddress: 2001:db8::2", field: "spec.sourceAddress", msg: "same family as peerAddress"},
		{name: "multihop on iBGP", spec: base + "ebgpMultiHop: 2", field: "spec.ebgpMultiHop", msg: "only to eBGP"},
		{name: "multihop TTL 0", spec: "myASN: 64512\npeerASN: 64513\npeerAddress: 198.51.100.1\nebgpMultiHop: 0", field: "spec.ebgpMultiHop", msg: "greater than or equal to 1"},
		{name: "secret without name", spec: base + "passwordSecret: {key: pw}", field: "spec.passwordSecret.name", msg: "Required"},
	})
}

func TestBGPRouterDefaults(t *testing.T) {
	v := newObjectValidator(t, "BGPRouter")
	if got := defaultOf(t, v, "peerPort"); got != int64(179) {
		t.Errorf("peerPort default %v (%T), want 179", got, got)
	}
	key := v.structural.Properties["spec"].Properties["passwordSecret"].Properties["key"].Default.Object
	if key != "password" {
		t.Errorf("passwordSecret.key default %v, want password", key)
	}
}

func TestBGPAnnouncementPolicyRules(t *testing.T) {
	runRuleCases(t, "BGPAnnouncementPolicy", []ruleCase{
		{name: "empty", spec: "{}"},
		{name: "all options", spec: `
ipPools: [a, b]
ipPoolSelectors: [{matchLabels: {announce: bgp}}]
aggregationLength: 24
aggregationLengthV6: 64
localPref: 4294967295
communities: ["64512:100", "65535:65535", "0:0", no-export, graceful-shutdown, blackhole]
largeCommunities: ["4294967295:0:4294967295", "64512:1:100"]
peers: [router-a]
nodeSelectors: [{matchLabels: {rack: r1}}]`},

		{name: "community AS too big", spec: `communities: ["65536:1"]`, field: "spec.communities[0]", msg: "at most 65535"},
		{name: "community value too big", spec: `communities: ["1:65536"]`, field: "spec.communities[0]", msg: "at most 65535"},
		{name: "community one number", spec: `communities: ["64512"]`, field: "spec.communities[0]", msg: "well-known community name"},
		{name: "unknown well-known name", spec: `communities: ["no-exports"]`, field: "spec.communities[0]", msg: "well-known community name"},
		{name: "community with sign", spec: `communities: ["+1:2"]`, field: "spec.communities[0]", msg: "AS:value"},
		{name: "large community two parts", spec: `largeCommunities: ["1:2"]`, field: "spec.largeCommunities[0]", msg: "three numbers"},
		{name: "large community too big", spec: `largeCommunities: ["4294967296:1:1"]`, field: "spec.largeCommunities[0]", msg: "at most 4294967295"},
		{name: "aggregation over 32", spec: `aggregationLength: 33`, field: "spec.aggregationLength", msg: "less than or equal to 32"},
		{name: "v6 aggregation over 128", spec: `aggregationLengthV6: 129`, field: "spec.aggregationLengthV6", msg: "less than or equal to 128"},
		{name: "negative local pref", spec: `localPref: -1`, field: "spec.localPref", msg: "greater than or equal to 0"},
		{name: "local pref over 32 bits", spec: `localPref: 4294967296`, field: "spec.localPref", msg: "less than or equal to 4294967295"},
	})
	v := newObjectValidator(t, "BGPAnnouncementPolicy")
	if got := defaultOf(t, v, "aggregationLength"); got != int64(32) {
		t.Errorf("aggregationLength default %v, want 32", got)
	}
	if got := defaultOf(t, v, "aggregationLengthV6"); got != int64(128) {
		t.Errorf("aggregationLengthV6 default %v, want 128", got)
	}
}

func TestL2AnnouncementPolicyRules(t *testing.T) {
	runRuleCases(t, "L2AnnouncementPolicy", []ruleCase{
		{name: "empty", spec: "{}"},
		{name: "all options", spec: "ipPools: [a]\nipPoolSelectors: [{matchLabels: {mode: l2}}]\ninterfaces: [eth0, enp3s0f1, br-lan.10]\nnodeSelectors: [{matchLabels: {rack: r1}}]"},
		{name: "interface name too long", spec: `interfaces: ["abcdefghijklmnop"]`, field: "spec.interfaces[0]", msg: "more than 15"},
		{name: "interface with slash", spec: `interfaces: ["eth0/1"]`, field: "spec.interfaces[0]", msg: "should match"},
		{name: "interface dot", spec: `interfaces: ["."]`, field: "spec.interfaces[0]", msg: "must be an interface name"},
	})
}

func TestBFDPolicyRules(t *testing.T) {
	runRuleCases(t, "BFDPolicy", []ruleCase{
		{name: "defaults", spec: "{}"},
		{name: "all options", spec: "receiveInterval: 10\ntransmitInterval: 60000\ndetectMultiplier: 255\nechoMode: true\npassiveMode: true"},
		{name: "receive too fast", spec: "receiveInterval: 9", field: "spec.receiveInterval", msg: "greater than or equal to 10"},
		{name: "transmit too slow", spec: "transmitInterval: 60001", field: "spec.transmitInterval", msg: "less than or equal to 60000"},
		{name: "multiplier 1", spec: "detectMultiplier: 1", field: "spec.detectMultiplier", msg: "greater than or equal to 2"},
		{name: "multiplier 256", spec: "detectMultiplier: 256", field: "spec.detectMultiplier", msg: "less than or equal to 255"},
	})
	v := newObjectValidator(t, "BFDPolicy")
	for name, want := range map[string]int64{"receiveInterval": 300, "transmitInterval": 300, "detectMultiplier": 3} {
		if got := defaultOf(t, v, name); got != want {
			t.Errorf("%s default %v, want %d", name, got, want)
		}
	}
}

// TestLoadBalancerPoolRulesWithinCostBudget fills a pool to maxItems with the
// entries that cost the order rule most (IPv6 ranges whose ends differ only
// in the last bit, so the search runs to the end) and checks that the
// server's runtime budget is not what refuses or admits it.
func TestLoadBalancerPoolRulesWithinCostBudget(t *testing.T) {
	v := newObjectValidator(t, "LoadBalancerPool")
	for _, tc := range []struct {
		name, format, msg string
	}{
		{name: "in order", format: `"2001:db8:%x::ffff:ffff:ffff:fffe - 2001:db8:%x::ffff:ffff:ffff:ffff"`},
		{name: "reversed", format: `"2001:db8:%x::ffff:ffff:ffff:ffff - 2001:db8:%x::ffff:ffff:ffff:fffe"`, msg: "must not come after its end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var entries []string
			for i := range 32 {
				entries = append(entries, fmt.Sprintf(tc.format, i, i))
			}
			doc := "apiVersion: bgplb.io/v1alpha1\nkind: LoadBalancerPool\nmetadata: {name: x}\nspec: {addresses: [" + strings.Join(entries, ", ") + "]}\n"
			errs := v.validate(t, doc)
			for _, e := range errs {
				if strings.Contains(e.Error(), "cost") || strings.Contains(e.Error(), "budget") {
					t.Fatalf("over the budget: %v", e)
				}
			}
			if tc.msg == "" {
				checkErrors(t, errs, "", "")
				return
			}
			if len(errs) != 32 {
				t.Errorf("%d errors, want one per entry: %v", len(errs), errs.ToAggregate())
			}
			checkErrors(t, errs, "spec.addresses[31]", tc.msg)
		})
	}
}
