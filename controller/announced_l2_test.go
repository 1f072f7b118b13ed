package controller

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/lbmodel"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// owns is a report of a node owning addr, answering on interfaces (none:
// on no interface, for why).
func owns(node, addr, why string, interfaces ...string) nodeAnnouncement {
	return nodeAnnouncement{Node: node, L2: []l2Answer{{Addr: netip.MustParseAddr(addr), Interfaces: interfaces, LastError: why}}}
}

// holding is the Lease holders of addresses: address, node, address, node...
func holding(pairs ...string) map[netip.Addr]string {
	out := map[netip.Addr]string{}
	for i := 0; i+1 < len(pairs); i += 2 {
		out[netip.MustParseAddr(pairs[i])] = pairs[i+1]
	}
	return out
}

// holdClaimed makes, where f names no holders, the first node claiming
// each address its Lease's holder: the report of a live owner.
func holdClaimed(f *announceFacts) {
	if f.Holders != nil {
		return
	}
	f.Holders = map[netip.Addr]string{}
	for _, a := range f.Announcements {
		for _, l := range a.L2 {
			if _, ok := f.Holders[l.Addr]; !ok {
				f.Holders[l.Addr] = a.Node
			}
		}
	}
}

func l2adv(name string, pools ...string) lbmodel.L2Advertisement {
	return lbmodel.L2Advertisement{Name: name, Pools: pools}
}

// l2ready is an L2-only cluster: an L2AnnouncementPolicy of every pool, no
// BGPRouter, no BGPAnnouncementPolicy, an address from pool lan.
func l2ready(mod func(*announceFacts)) announceFacts {
	f := announceFacts{
		Generation:       2,
		Addresses:        served("lan", nil),
		L2Advertisements: []lbmodel.L2Advertisement{l2adv("all")},
		ReadyEndpoints:   1,
	}
	if mod != nil {
		mod(&f)
	}
	holdClaimed(&f)
	return f
}

func dualStack(f *announceFacts) {
	f.Addresses = []servedAddress{
		{Addr: netip.MustParseAddr("2001:db8::10"), Pool: "lan6"},
		{Addr: netip.MustParseAddr("203.0.113.10"), Pool: "lan"},
	}
}

func TestWhyNotAnnouncedL2(t *testing.T) {
	const noARP = "no node answers ARP for 203.0.113.10 yet"
	const noNDP = "no node answers NDP for 2001:db8::10 yet"
	siteA := func(f *announceFacts) {
		sel, _ := labels.Parse("site=a")
		f.L2Advertisements = []lbmodel.L2Advertisement{{Name: "site-a", PoolSelectors: []labels.Selector{sel}}}
	}
	// both is one pool in both modes, everything configured.
	both := func(mod func(*announceFacts)) announceFacts {
		return l2ready(func(f *announceFacts) {
			f.Peers, f.Advertisements = []string{"router-a"}, []lbmodel.Advertisement{adv("all", nil)}
			if mod != nil {
				mod(f)
			}
		})
	}
	tests := []struct {
		name   string
		f      announceFacts
		want   string
		reason string
	}{
		// L2 only: never a word about BGP.
		{"no owner yet", l2ready(nil), noARP, ReasonNotAnnounced},
		{"IPv6: NDP", l2ready(func(f *announceFacts) {
			f.Addresses = []servedAddress{{Addr: netip.MustParseAddr("2001:db8::10"), Pool: "lan6"}}
		}), noNDP, ReasonNotAnnounced},
		{"dual stack, sorted by address", l2ready(dualStack), noARP + "; " + noNDP, ReasonNotAnnounced},
		{"Local, no ready endpoint", l2ready(func(f *announceFacts) { f.Local, f.ReadyEndpoints = true, 0 }),
			msgLocalNoReady, ReasonNoReadyEndpoints},
		{"Cluster, no ready endpoint", l2ready(func(f *announceFacts) { f.ReadyEndpoints = 0 }),
			msgClusterNoReady, ReasonNoReadyEndpoints},
		{"policy of another pool", l2ready(func(f *announceFacts) {
			f.L2Advertisements = []lbmodel.L2Advertisement{l2adv("wan", "wan")}
		}), "no L2AnnouncementPolicy selects pool lan", ReasonNotAnnounced},
		{"selector not matching", l2ready(siteA), "no L2AnnouncementPolicy selects pool lan", ReasonNotAnnounced},
		{"selector matching", l2ready(func(f *announceFacts) {
			siteA(f)
			f.Addresses = served("lan", map[string]string{"site": "a"})
		}), noARP, ReasonNotAnnounced},
		{"address in no pool", l2ready(func(f *announceFacts) { f.Addresses = served("", nil) }),
			"203.0.113.10 is in no LoadBalancerPool", ReasonNotAnnounced},
		{"dual stack, one pool in L2: the other is not why", l2ready(func(f *announceFacts) {
			dualStack(f)
			f.L2Advertisements = []lbmodel.L2Advertisement{l2adv("v6", "lan6")}
		}), noNDP, ReasonNotAnnounced},
		{"the owner answers on no interface", l2ready(func(f *announceFacts) {
			f.Announcements = []nodeAnnouncement{owns("node2", "203.0.113.10", "no interface holds an address\nin 203.0.113.0/24")}
		}), "node2 owns 203.0.113.10 but answers on no interface: no interface holds an address in 203.0.113.0/24", ReasonNotAnnounced},
		{"an owner's report beats the endpoints", l2ready(func(f *announceFacts) {
			f.Local, f.ReadyEndpoints = true, 0
			f.Announcements = []nodeAnnouncement{owns("node2", "203.0.113.10", "")}
		}), "node2 owns 203.0.113.10 but answers on no interface", ReasonNotAnnounced},
		{"dual stack, one owner stuck", l2ready(func(f *announceFacts) {
			dualStack(f)
			f.Announcements = []nodeAnnouncement{owns("node2", "2001:db8::10", "")}
		}), "node2 owns 2001:db8::10 but answers on no interface; " + noARP, ReasonNotAnnounced},
		{"an L2-only report is no BGP report", l2ready(func(f *announceFacts) {
			f.Peers = []string{"router-a"}
			f.Announcements = []nodeAnnouncement{owns("node2", "203.0.113.10", "")}
		}), "node2 owns 203.0.113.10 but answers on no interface", ReasonNotAnnounced},
		// A claim whose node does not hold the address's Lease is stale:
		// the node was cut off, and whoever took over let go since.
		{"a stale claim: the Lease is held by nobody", l2ready(func(f *announceFacts) {
			f.Announcements, f.Holders = []nodeAnnouncement{owns("node1", "203.0.113.10", "", "eth0")}, holding("203.0.113.10", "")
		}), noARP, ReasonNotAnnounced},
		{"a stale claim: no Lease", l2ready(func(f *announceFacts) {
			f.Announcements, f.Holders = []nodeAnnouncement{owns("node1", "203.0.113.10", "", "eth0")}, holding()
		}), noARP, ReasonNotAnnounced},
		{"a stale claim: the Lease is held by another, not reporting yet", l2ready(func(f *announceFacts) {
			f.Announcements, f.Holders = []nodeAnnouncement{owns("node1", "203.0.113.10", "", "eth0")}, holding("203.0.113.10", "node2")
		}), noARP, ReasonNotAnnounced},
		{"a stale claim does not hide the endpoints", l2ready(func(f *announceFacts) {
			f.Local, f.ReadyEndpoints = true, 0
			f.Announcements, f.Holders = []nodeAnnouncement{owns("node1", "203.0.113.10", "down")}, holding("203.0.113.10", "")
		}), msgLocalNoReady, ReasonNoReadyEndpoints},
		{"withheld by its health check", l2ready(func(f *announceFacts) {
			f.Local = true
			f.Announcements = []nodeAnnouncement{{Node: "node1", HealthCheck: "kube-proxy says 0 local endpoints"}}
		}), "node1: kube-proxy says 0 local endpoints", ReasonHealthCheckFailing},

		// Both kinds of policy exist, for other pools.
		{"BGP in use, no policy of the pool", l2ready(func(f *announceFacts) {
			f.Peers = []string{"router-a"}
			f.L2Advertisements = []lbmodel.L2Advertisement{l2adv("wan", "wan")}
		}), "no BGPAnnouncementPolicy or L2AnnouncementPolicy selects pool lan", ReasonNotAnnounced},
		{"BGP policy of another pool, no router", l2ready(func(f *announceFacts) {
			f.Advertisements = []lbmodel.Advertisement{adv("wan", []string{"wan"})}
			f.L2Advertisements = []lbmodel.L2Advertisement{l2adv("wan", "wan")}
		}), "no BGPAnnouncementPolicy or L2AnnouncementPolicy selects pool lan", ReasonNotAnnounced},
		{"BGP for one family, L2 for the other", l2ready(func(f *announceFacts) {
			dualStack(f)
			f.Peers, f.Advertisements = []string{"router-a"}, []lbmodel.Advertisement{adv("v6", []string{"lan6"})}
			f.L2Advertisements = []lbmodel.L2Advertisement{l2adv("v4", "lan")}
		}), msgGeneric + "; " + noARP, ReasonNotAnnounced},

		// One pool in both modes: both parts.
		{"both, nobody yet", both(nil), msgGeneric + "; " + noARP, ReasonNotAnnounced},
		{"both, no BGPRouter", both(func(f *announceFacts) { f.Peers = nil }), msgNoPeer + "; " + noARP, ReasonNotAnnounced},
		{"both, the BGP policy names no router that exists", both(func(f *announceFacts) {
			f.Advertisements = []lbmodel.Advertisement{adv("a", nil, "gone")}
		}), "the BGPAnnouncementPolicies selecting pool lan (a) name no BGPRouter that exists; " + noARP, ReasonNotAnnounced},
		{"both, a node without session", both(func(f *announceFacts) {
			f.Announcements = []nodeAnnouncement{ann("node1", 1)}
		}), "node1 announces it but has no established BGP session; " + noARP, ReasonNotAnnounced},
		{"both, a node without session, the owner on no interface", both(func(f *announceFacts) {
			bgpAndL2 := owns("node1", "203.0.113.10", "")
			bgpAndL2.Prefixes = true
			f.Announcements = []nodeAnnouncement{bgpAndL2}
		}), "node1 announces it but has no established BGP session; node1 owns 203.0.113.10 but answers on no interface",
			ReasonNotAnnounced},
		{"both, the owner on no interface", both(func(f *announceFacts) {
			f.Announcements = []nodeAnnouncement{owns("node2", "203.0.113.10", "")}
		}), msgGeneric + "; node2 owns 203.0.113.10 but answers on no interface", ReasonNotAnnounced},
		{"both, Local, no ready endpoint", both(func(f *announceFacts) { f.Local, f.ReadyEndpoints = true, 0 }),
			msgLocalNoReady, ReasonNoReadyEndpoints},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := decideAnnounced(nil, tc.f).condition
			if c.Status != metav1.ConditionFalse || c.Reason != tc.reason || c.Message != tc.want {
				t.Errorf("condition %s/%s %q,\n want False/%s %q", c.Status, c.Reason, c.Message, tc.reason, tc.want)
			}
			if tc.f.Peers == nil && tc.f.Advertisements == nil && strings.Contains(c.Message, "BGP") {
				t.Errorf("a cluster that does not use BGP is told about it: %q", c.Message)
			}
		})
	}
}

func TestAnnouncedL2Message(t *testing.T) {
	const eth0 = "203.0.113.10 answered by node2 (ARP on eth0)"
	tests := []struct {
		name      string
		anns      []nodeAnnouncement
		want      string
		announcer string
		// holders are the Leases' holders; nil: each claimant holds.
		holders map[netip.Addr]string
	}{
		{"one owner", []nodeAnnouncement{owns("node2", "203.0.113.10", "", "eth0")}, eth0, "203.0.113.10 answered by node2", nil},
		{"BGP and L2", []nodeAnnouncement{ann("node1", 3, "router-a"), owns("node2", "203.0.113.10", "", "eth0")},
			"announced by node1 (3 endpoints) to router-a; " + eth0, "announced by node1; 203.0.113.10 answered by node2", nil},
		{"one node does both", []nodeAnnouncement{{Node: "node1", Peers: []string{"router-a"}, Endpoints: 1, Prefixes: true,
			L2: []l2Answer{{Addr: netip.MustParseAddr("203.0.113.10"), Interfaces: []string{"eth0"}}}}},
			"announced by node1 (1 endpoint) to router-a; 203.0.113.10 answered by node1 (ARP on eth0)",
			"announced by node1; 203.0.113.10 answered by node1", nil},
		{"dual stack: sorted by address, NDP for IPv6, interfaces sorted", []nodeAnnouncement{
			owns("node3", "2001:db8::10", "", "br-lan.10"), owns("node2", "203.0.113.10", "", "eth1", "eth0")},
			"203.0.113.10 answered by node2 (ARP on eth0, eth1); 2001:db8::10 answered by node3 (NDP on br-lan.10)",
			"203.0.113.10 answered by node2; 2001:db8::10 answered by node3", nil},
		{"a node reported twice counts once", []nodeAnnouncement{
			owns("node2", "203.0.113.10", "", "eth1"), owns("node2", "203.0.113.10", "", "eth0", "eth1")},
			"203.0.113.10 answered by node2 (ARP on eth0, eth1)", "203.0.113.10 answered by node2", nil},
		// A node cut off cannot take its claim back; the Lease passed on.
		// (Claims carry no time the decision reads, so claims made in
		// the same second, as the speakers truncate them, are no tie.)
		{"the holder's claim wins: the old owner is cut off", []nodeAnnouncement{
			owns("node1", "203.0.113.10", "", "eth0"), owns("node2", "203.0.113.10", "", "eth0")},
			eth0, "203.0.113.10 answered by node2", holding("203.0.113.10", "node2")},
		{"the holder's claim wins, whatever the order", []nodeAnnouncement{
			owns("node2", "203.0.113.10", "", "eth0"), owns("node1", "203.0.113.10", "", "eth9")},
			"203.0.113.10 answered by node1 (ARP on eth9)", "203.0.113.10 answered by node1", holding("203.0.113.10", "node1")},
		{"the holder answers on no interface; a stale claim does not stand in", []nodeAnnouncement{ann("node1", 1, "router-a"),
			owns("node1", "203.0.113.10", "", "eth0"), owns("node2", "203.0.113.10", "down")},
			"announced by node1 (1 endpoint) to router-a; node2 owns 203.0.113.10 but answers on no interface: down",
			"announced by node1", holding("203.0.113.10", "node2")},
		{"a stale claim of an address whose Lease is gone: BGP only", []nodeAnnouncement{ann("node1", 1, "router-a"),
			owns("node2", "203.0.113.10", "", "eth0")},
			"announced by node1 (1 endpoint) to router-a", "announced by node1", holding()},
		{"one address answered, one not; a lastError that looks like a part is not read", []nodeAnnouncement{
			owns("node2", "203.0.113.10", "", "eth0"),
			owns("node3", "2001:db8::10", "x; 2001:db8::10 answered by node9 (NDP on y)")},
			eth0 + "; node3 owns 2001:db8::10 but answers on no interface: x; 2001:db8::10 answered by node9 (NDP on y)",
			"203.0.113.10 answered by node2", nil},
		{"withheld by another node", []nodeAnnouncement{owns("node2", "203.0.113.10", "", "eth0"),
			{Node: "node4", HealthCheck: "503; 198.51.100.1 answered by node9"}},
			eth0 + "; withheld by node4: 503; 198.51.100.1 answered by node9", "203.0.113.10 answered by node2", nil},
		{"names a message could not parse", []nodeAnnouncement{owns("node2", "203.0.113.10", "", "a,b(c);d e")},
			"203.0.113.10 answered by node2 (ARP on a?b?c??d?e)", "203.0.113.10 answered by node2", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rev := slices.Clone(tc.anns)
			slices.Reverse(rev)
			for _, anns := range [][]nodeAnnouncement{tc.anns, rev} {
				a := decideAnnounced(nil, l2ready(func(f *announceFacts) { f.Announcements, f.Holders = anns, tc.holders }))
				c := a.condition
				if c.Status != metav1.ConditionTrue || c.Reason != ReasonAnnounced || c.Message != tc.want {
					t.Errorf("condition %s/%s %q,\n want True/%s %q", c.Status, c.Reason, c.Message, ReasonAnnounced, tc.want)
				}
				if got := announcersOf(&c); got != tc.announcer {
					t.Errorf("announcers read back %q, want %q", got, tc.announcer)
				}
				if a.eventReason != EventAnnouncedBy || a.note != tc.announcer {
					t.Errorf("event %s %q, want %s %q", a.eventReason, a.note, EventAnnouncedBy, tc.announcer)
				}
			}
		})
	}
}

// TestAnnouncedL2Sequence replays an L2 Service's life: each change of
// owner is one event naming the new owner, a failover whose old owner
// cannot take its claim back included; other changes are none.
func TestAnnouncedL2Sequence(t *testing.T) {
	svc := lb(nil)
	now := metav1.NewTime(t0)
	const addr = "203.0.113.10"
	node1, node2 := holding(addr, "node1"), holding(addr, "node2")
	cutOff := owns("node1", addr, "", "eth0", "eth1")
	steps := []struct {
		name    string
		anns    []nodeAnnouncement
		holders map[netip.Addr]string // nil: each claimant holds
		local   bool                  // ETP Local, no endpoint ready
		event   string
	}{
		{"nobody", nil, nil, false, ""},
		{"node1 takes over", []nodeAnnouncement{owns("node1", addr, "", "eth0")}, nil, false, "Normal AnnouncedBy 203.0.113.10 answered by node1"},
		{"node1 answers on one more interface", []nodeAnnouncement{cutOff}, nil, false, ""},
		{"node1 is cut off; node2 takes over", []nodeAnnouncement{cutOff, owns("node2", addr, "", "eth0")}, node2, false,
			"Normal AnnouncedBy 203.0.113.10 answered by node2"},
		// node2 lets go (its Local endpoint left): node1's stale claim
		// must not come back, and the endpoints are why.
		{"node2 releases; node1 is still cut off", []nodeAnnouncement{cutOff}, holding(addr, ""), true,
			"Warning NotAnnounced no longer announced: " + msgLocalNoReady},
		{"the Lease goes too", []nodeAnnouncement{cutOff}, holding(), true, ""},
		{"node2 takes over again", []nodeAnnouncement{cutOff, owns("node2", addr, "", "eth0")}, node2, false,
			"Normal AnnouncedBy 203.0.113.10 answered by node2"},
		{"node1 heals and takes over; node2's report lingers", []nodeAnnouncement{owns("node1", addr, "", "eth0"),
			owns("node2", addr, "", "eth0")}, node1, false, "Normal AnnouncedBy 203.0.113.10 answered by node1"},
		{"node2 takes over; node1's report goes", []nodeAnnouncement{owns("node2", addr, "", "eth0")}, nil, false,
			"Normal AnnouncedBy 203.0.113.10 answered by node2"},
		{"BGP joins", []nodeAnnouncement{ann("node3", 1, "r"), owns("node2", addr, "", "eth0")}, nil, false,
			"Normal AnnouncedBy announced by node3; 203.0.113.10 answered by node2"},
		{"L2 stops answering", []nodeAnnouncement{ann("node3", 1, "r"), owns("node2", addr, "gone")}, nil, false,
			"Normal AnnouncedBy announced by node3"},
		{"everything stops", nil, nil, false, "Warning NotAnnounced no longer announced: no node answers ARP for 203.0.113.10 yet"},
	}
	for _, st := range steps {
		f := l2ready(func(f *announceFacts) {
			f.Announcements, f.Holders = st.anns, st.holders
			if st.local {
				f.Local, f.ReadyEndpoints = true, 0
			}
		})
		a := decideAnnounced(meta.FindStatusCondition(svc.Status.Conditions, ConditionAnnounced), f)
		got := strings.TrimSpace(a.eventType + " " + a.eventReason + " " + a.note)
		if got != st.event {
			t.Errorf("%s: event %q, want %q", st.name, got, st.event)
		}
		a.apply(svc, now)
		again := decideAnnounced(meta.FindStatusCondition(svc.Status.Conditions, ConditionAnnounced), f)
		if again.eventReason != "" || again.apply(svc, now) {
			t.Errorf("%s: deciding again on what was written gives event %q or a change", st.name, again.note)
		}
	}
	if c := meta.FindStatusCondition(svc.Status.Conditions, ConditionAnnounced); c.Status != metav1.ConditionFalse {
		t.Errorf("last condition %+v", c)
	}
}

// TestAnnouncementOf: a ServiceAnnouncement's L2 answers as plain values;
// an address that does not parse is left out.
func TestAnnouncementOf(t *testing.T) {
	since := metav1.NewTime(t0)
	a := &v1alpha1.ServiceAnnouncement{Spec: v1alpha1.ServiceAnnouncementSpec{Service: "web", Node: "node2"},
		Status: v1alpha1.ServiceAnnouncementStatus{L2: []v1alpha1.L2Answer{
			{Address: "203.0.113.10", Interfaces: []string{"eth0"}, Since: &since},
			{Address: "not-an-address", Interfaces: []string{"eth0"}},
			{Address: "2001:db8::10", LastError: "no interface on 2001:db8::/64"},
		}}}
	got := announcementOf(a)
	if got.Node != "node2" || got.Prefixes || len(got.Peers) != 0 || len(got.L2) != 2 {
		t.Fatalf("%+v", got)
	}
	if l := got.L2[0]; l.Addr != netip.MustParseAddr("203.0.113.10") || len(l.Interfaces) != 1 {
		t.Errorf("%+v", l)
	}
	if l := got.L2[1]; l.Addr != netip.MustParseAddr("2001:db8::10") || l.LastError == "" {
		t.Errorf("%+v", l)
	}
}

// BenchmarkDecideAnnouncedL2: the condition of a dual-stack Service
// announced over BGP by 3 nodes and answered in L2 mode, decided again on
// what it wrote (the common reconcile: nothing changed).
func BenchmarkDecideAnnouncedL2(b *testing.B) {
	anns := []nodeAnnouncement{ann("node1", 2, "router-a"), ann("node2", 1, "router-a"), ann("node3", 1, "router-a"),
		owns("node2", "203.0.113.10", "", "eth0"), owns("node3", "2001:db8::10", "", "eth0", "eth1")}
	f := l2ready(func(f *announceFacts) { f.Announcements = anns })
	prev := decideAnnounced(nil, f).condition
	b.ReportAllocs()
	for b.Loop() {
		if a := decideAnnounced(&prev, f); a.eventReason != "" {
			b.Fatal(a.note)
		}
	}
}

// TestHoldersOf: each address's holder from its Leases; Leases that are
// not the speakers' address Leases are not read, and copies that disagree
// name nobody.
func TestHoldersOf(t *testing.T) {
	lease := func(addr, holder string, mod ...func(*coordinationv1.Lease)) coordinationv1.Lease {
		l := coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{
			Labels:      map[string]string{lbmodel.L2LeaseLabel: lbmodel.L2LeaseKindAddress},
			Annotations: map[string]string{lbmodel.L2LeaseAddressAnnotation: addr},
		}}
		if holder != "" {
			l.Spec.HolderIdentity = &holder
		}
		for _, m := range mod {
			m(&l)
		}
		return l
	}
	nodeKind := func(l *coordinationv1.Lease) { l.Labels[lbmodel.L2LeaseLabel] = "node" }
	tests := []struct {
		name   string
		leases []coordinationv1.Lease
		want   map[netip.Addr]string
	}{
		{"none", nil, holding()},
		{"held", []coordinationv1.Lease{lease("203.0.113.10", "node1"), lease("2001:db8::10", "node2")},
			holding("203.0.113.10", "node1", "2001:db8::10", "node2")},
		{"held by nobody", []coordinationv1.Lease{lease("203.0.113.10", "")}, holding("203.0.113.10", "")},
		{"IPv4-mapped and zoned addresses are keyed plain", []coordinationv1.Lease{lease("::ffff:203.0.113.10", "node1"),
			lease("fe80::1%eth0", "node2")}, holding("203.0.113.10", "node1", "fe80::1", "node2")},
		{"not an address Lease", []coordinationv1.Lease{lease("203.0.113.10", "node1", nodeKind)}, holding()},
		{"no address", []coordinationv1.Lease{lease("node1", "node1")}, holding()},
		{"copies agreeing", []coordinationv1.Lease{lease("203.0.113.10", "node1"), lease("203.0.113.10", "node1")},
			holding("203.0.113.10", "node1")},
		{"copies disagreeing name nobody", []coordinationv1.Lease{lease("203.0.113.10", "node1"), lease("203.0.113.10", "node2"),
			lease("203.0.113.10", "node1")}, holding("203.0.113.10", "")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := holdersOf(tc.leases); !maps.Equal(got, tc.want) {
				t.Errorf("holders %v, want %v", got, tc.want)
			}
		})
	}
}
