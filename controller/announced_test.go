package controller

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

// Facts builders for the table below.

func served(pool string, poolLabels map[string]string) []servedAddress {
	return []servedAddress{{Addr: netip.MustParseAddr("203.0.113.10"), Pool: pool, PoolLabels: poolLabels}}
}

func ann(node string, endpoints int32, peers ...string) nodeAnnouncement {
	return nodeAnnouncement{Node: node, Peers: peers, Endpoints: endpoints}
}

func adv(name string, pools []string, peers ...string) lbmodel.Advertisement {
	return lbmodel.Advertisement{Name: name, Pools: pools, Peers: peers}
}

func selectorAdv(name, selector string) lbmodel.Advertisement {
	sel, err := labels.Parse(selector)
	if err != nil {
		panic(err)
	}
	return lbmodel.Advertisement{Name: name, PoolSelectors: []labels.Selector{sel}}
}

// ready is the usual configuration: a peer, an advertisement of every
// pool, an address from pool lan.
func ready(mod func(*announceFacts)) announceFacts {
	f := announceFacts{
		Generation:     4,
		Addresses:      served("lan", nil),
		Peers:          []string{"router-a"},
		Advertisements: []lbmodel.Advertisement{adv("all", nil)},
		ReadyEndpoints: 1,
	}
	if mod != nil {
		mod(&f)
	}
	return f
}

func TestWhyNotAnnounced(t *testing.T) {
	tests := []struct {
		name string
		f    announceFacts
		want string
	}{
		{"no address", ready(func(f *announceFacts) { f.Addresses = nil; f.Peers = nil }), "no address assigned yet"},
		{"no peer", ready(func(f *announceFacts) { f.Peers = nil }), "no BGPRouter exists"},
		{"no advertisement", ready(func(f *announceFacts) { f.Advertisements = nil }), "no BGPAnnouncementPolicy exists"},
		{"advertisement of another pool", ready(func(f *announceFacts) {
			f.Advertisements = []lbmodel.Advertisement{adv("other", []string{"wan"})}
		}), "no BGPAnnouncementPolicy selects pool lan"},
		{"selector not matching", ready(func(f *announceFacts) {
			f.Addresses = served("lan", map[string]string{"site": "b"})
			f.Advertisements = []lbmodel.Advertisement{selectorAdv("site-a", "site=a")}
		}), "no BGPAnnouncementPolicy selects pool lan"},
		{"selector matching", ready(func(f *announceFacts) {
			f.Addresses = served("lan", map[string]string{"site": "a"})
			f.Advertisements = []lbmodel.Advertisement{selectorAdv("site-a", "site=a")}
		}), msgGeneric},
		{"invalid selector selects nothing", ready(func(f *announceFacts) {
			f.Advertisements = []lbmodel.Advertisement{{Name: "bad", PoolSelectors: []labels.Selector{labels.Nothing()}}}
		}), "no BGPAnnouncementPolicy selects pool lan"},
		{"advertisements name only missing peers", ready(func(f *announceFacts) {
			f.Advertisements = []lbmodel.Advertisement{adv("b", []string{"lan"}, "gone"), adv("a", nil, "typo")}
		}), "the BGPAnnouncementPolicies selecting pool lan (a, b) name no BGPRouter that exists"},
		{"one advertisement names a peer that exists", ready(func(f *announceFacts) {
			f.Advertisements = []lbmodel.Advertisement{adv("b", []string{"lan"}, "gone"), adv("a", nil, "gone", "router-a")}
		}), msgGeneric},
		{"address outside every pool", ready(func(f *announceFacts) { f.Addresses = served("", nil) }),
			"203.0.113.10 is in no LoadBalancerPool"},
		{"dual stack, neither pool advertised", ready(func(f *announceFacts) {
			f.Addresses = []servedAddress{
				{Addr: netip.MustParseAddr("203.0.113.10"), Pool: "lan"},
				{Addr: netip.MustParseAddr("2001:db8::10"), Pool: "lan6"},
				{Addr: netip.MustParseAddr("2001:db8::11"), Pool: "lan6"},
			}
			f.Advertisements = []lbmodel.Advertisement{adv("wan", []string{"wan"})}
		}), "no BGPAnnouncementPolicy selects pool lan; no BGPAnnouncementPolicy selects pool lan6"},
		{"dual stack, one pool advertised", ready(func(f *announceFacts) {
			f.Addresses = []servedAddress{
				{Addr: netip.MustParseAddr("203.0.113.10"), Pool: "lan"},
				{Addr: netip.MustParseAddr("2001:db8::10"), Pool: "lan6"},
			}
			f.Advertisements = []lbmodel.Advertisement{adv("v6", []string{"lan6"})}
		}), msgGeneric},
		{"a node announces to no established peer", ready(func(f *announceFacts) {
			f.Announcements = []nodeAnnouncement{ann("node1", 2)}
		}), "node1 announces it but has no established BGP session"},
		{"nodes announce to no established peer", ready(func(f *announceFacts) {
			f.Announcements = []nodeAnnouncement{ann("node2", 2), ann("node1", 0), ann("node2", 1)}
			f.Local = true
		}), "node1, node2 announce it but none has an established BGP session"},
		{"Local, no ready endpoint", ready(func(f *announceFacts) { f.Local, f.ReadyEndpoints = true, 0 }), msgLocalNoReady},
		{"Local, a ready endpoint", ready(func(f *announceFacts) { f.Local = true }), msgGeneric},
		{"Cluster, no ready endpoint", ready(func(f *announceFacts) { f.ReadyEndpoints = 0 }), msgClusterNoReady},
		{"Cluster, a ready endpoint", ready(nil), msgGeneric},
		// A node that reports the Service explains more than the count.
		{"Cluster, no ready endpoint, a node announces", ready(func(f *announceFacts) {
			f.ReadyEndpoints, f.Announcements = 0, []nodeAnnouncement{ann("node1", 0)}
		}), "node1 announces it but has no established BGP session"},
		// The more general cause wins.
		{"nothing configured beats Local", ready(func(f *announceFacts) {
			f.Peers, f.Advertisements, f.Local = nil, nil, true
		}), msgNothing},
		{"no peer beats an advertisement of another pool and Local", ready(func(f *announceFacts) {
			f.Peers, f.Advertisements, f.Local = nil, []lbmodel.Advertisement{adv("other", []string{"wan"})}, true
		}), "no BGPRouter exists"},
		{"advertisement beats Local", ready(func(f *announceFacts) {
			f.Advertisements, f.Local = []lbmodel.Advertisement{adv("other", []string{"wan"})}, true
		}), "no BGPAnnouncementPolicy selects pool lan"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := decideAnnounced(nil, tc.f)
			c := a.condition
			reason := ReasonNotAnnounced
			if tc.want == msgLocalNoReady || tc.want == msgClusterNoReady {
				reason = ReasonNoReadyEndpoints
			}
			if c.Type != ConditionAnnounced || c.Status != metav1.ConditionFalse || c.Reason != reason ||
				c.ObservedGeneration != tc.f.Generation {
				t.Errorf("condition %+v, want False/%s for generation %d", c, reason, tc.f.Generation)
			}
			if c.Message != tc.want {
				t.Errorf("message %q, want %q", c.Message, tc.want)
			}
			if a.eventReason != "" {
				t.Errorf("event %s %q for a Service that never was announced", a.eventReason, a.note)
			}
		})
	}
}

func TestAnnouncedMessage(t *testing.T) {
	tests := []struct {
		name      string
		anns      []nodeAnnouncement
		want      string
		announcer string
	}{
		{"one node", []nodeAnnouncement{ann("node1", 1, "router-a")},
			"announced by node1 (1 endpoint) to router-a", "node1"},
		{"sorted, union of peers, empty peers skipped", []nodeAnnouncement{
			ann("node2", 1, "router-a"), ann("node3", 5), ann("node1", 3, "router-b", "router-a")},
			"announced by node1 (3 endpoints), node2 (1 endpoint) to router-a, router-b", "node1, node2"},
		{"no local endpoint (Cluster)", []nodeAnnouncement{ann("n", 0, "r")},
			"announced by n (0 endpoints) to r", "n"},
		{"a node reported twice counts once", []nodeAnnouncement{ann("n", 2, "r1"), ann("n", 3, "r2")},
			"announced by n (3 endpoints) to r1, r2", "n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rev := slices.Clone(tc.anns)
			slices.Reverse(rev)
			for _, anns := range [][]nodeAnnouncement{tc.anns, rev} {
				c := decideAnnounced(nil, announceFacts{Announcements: anns}).condition
				if c.Status != metav1.ConditionTrue || c.Reason != ReasonAnnounced || c.Message != tc.want {
					t.Errorf("condition %s/%s %q, want True/%s %q", c.Status, c.Reason, c.Message, ReasonAnnounced, tc.want)
				}
				if got := announcersOf(&c); got != "announced by "+tc.announcer {
					t.Errorf("announcers read back %q, want %q", got, tc.announcer)
				}
			}
		})
	}
}

// TestAnnouncedMessageLimits: a Service announced by every node of a large
// cluster to many peers keeps a short message, and the announcing set still
// reads back as the event names it.
func TestAnnouncedMessageLimits(t *testing.T) {
	var anns []nodeAnnouncement
	var peers []string
	for i := range 25 {
		peers = append(peers, fmt.Sprintf("router-%02d", i))
	}
	for i := range 300 {
		anns = append(anns, ann(fmt.Sprintf("node-%03d.example.com", i), int32(i%3), peers...))
	}
	a := decideAnnounced(nil, announceFacts{Announcements: anns})
	msg := a.condition.Message
	if !strings.HasPrefix(msg, "announced by node-000.example.com (0 endpoints), node-001.example.com (1 endpoint), ") ||
		!strings.Contains(msg, "node-009.example.com (0 endpoints), and 290 more to router-00, ") ||
		!strings.HasSuffix(msg, "router-09, and 15 more") {
		t.Errorf("message %q", msg)
	}
	if len(msg) > 1000 {
		t.Errorf("message of %d bytes", len(msg))
	}
	want := "node-000.example.com, node-001.example.com, node-002.example.com, node-003.example.com, node-004.example.com, " +
		"node-005.example.com, node-006.example.com, node-007.example.com, node-008.example.com, node-009.example.com, and 290 more"
	if got := announcersOf(&a.condition); got != "announced by "+want {
		t.Errorf("announcers read back %q, want %q", got, want)
	}
	if a.note != "announced by "+want {
		t.Errorf("event %q", a.note)
	}
	// One node fewer: the count changes, and so does the set the event
	// names.
	b := decideAnnounced(&a.condition, announceFacts{Announcements: anns[:299]})
	if b.eventReason != EventAnnouncedBy || !strings.HasSuffix(b.note, "and 289 more") {
		t.Errorf("event %s %q, want %s ending with 289 more", b.eventReason, b.note, EventAnnouncedBy)
	}
}

func TestAnnouncedEvents(t *testing.T) {
	trueCond := func(msg string) *metav1.Condition {
		return &metav1.Condition{Type: ConditionAnnounced, Status: metav1.ConditionTrue, Reason: ReasonAnnounced, Message: msg}
	}
	falseCond := &metav1.Condition{Type: ConditionAnnounced, Status: metav1.ConditionFalse, Reason: ReasonNotAnnounced, Message: msgGeneric}
	one := []nodeAnnouncement{ann("node1", 3, "router-a")}
	two := []nodeAnnouncement{ann("node1", 3, "router-a"), ann("node2", 1, "router-a")}
	tests := []struct {
		name       string
		prev       *metav1.Condition
		f          announceFacts
		wantType   string
		wantReason string
		wantNote   string
	}{
		{"first announced", nil, ready(func(f *announceFacts) { f.Announcements = one }),
			corev1.EventTypeNormal, EventAnnouncedBy, "announced by node1"},
		{"announced after False", falseCond, ready(func(f *announceFacts) { f.Announcements = two }),
			corev1.EventTypeNormal, EventAnnouncedBy, "announced by node1, node2"},
		{"a node joins", trueCond("announced by node1 (3 endpoints) to router-a"),
			ready(func(f *announceFacts) { f.Announcements = two }),
			corev1.EventTypeNormal, EventAnnouncedBy, "announced by node1, node2"},
		{"a node leaves", trueCond("announced by node1 (3 endpoints), node2 (1 endpoint) to router-a"),
			ready(func(f *announceFacts) { f.Announcements = one }),
			corev1.EventTypeNormal, EventAnnouncedBy, "announced by node1"},
		{"same nodes, other endpoints and peers: no event",
			trueCond("announced by node1 (1 endpoint), node2 (7 endpoints) to router-b"),
			ready(func(f *announceFacts) { f.Announcements = two }), "", "", ""},
		{"drops to none", trueCond("announced by node1 (3 endpoints) to router-a"),
			ready(func(f *announceFacts) { f.Local, f.ReadyEndpoints = true, 0 }),
			corev1.EventTypeWarning, EventNotAnnounced, "no longer announced: " + msgLocalNoReady},
		{"drops to none, Cluster without endpoints", trueCond("announced by node1 (3 endpoints) to router-a"),
			ready(func(f *announceFacts) { f.ReadyEndpoints = 0 }),
			corev1.EventTypeWarning, EventNotAnnounced, "no longer announced: " + msgClusterNoReady},
		{"drops to a node without session", trueCond("announced by node1 (3 endpoints) to router-a"),
			ready(func(f *announceFacts) { f.Announcements = []nodeAnnouncement{ann("node1", 3)} }),
			corev1.EventTypeWarning, EventNotAnnounced, "no longer announced: node1 announces it but has no established BGP session"},
		{"still none, other reason: no event", falseCond, ready(func(f *announceFacts) { f.Peers = nil }), "", "", ""},
		{"never announced: no event", nil, ready(nil), "", "", ""},
		{"a condition not ours to parse", &metav1.Condition{Type: ConditionAnnounced, Status: metav1.ConditionTrue,
			Reason: "SomethingElse", Message: "announced by node1 (3 endpoints) to router-a"},
			ready(func(f *announceFacts) { f.Announcements = one }),
			corev1.EventTypeNormal, EventAnnouncedBy, "announced by node1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := decideAnnounced(tc.prev, tc.f)
			if a.eventType != tc.wantType || a.eventReason != tc.wantReason || a.note != tc.wantNote {
				t.Errorf("event %q %q %q, want %q %q %q", a.eventType, a.eventReason, a.note, tc.wantType, tc.wantReason, tc.wantNote)
			}
		})
	}
}

// TestAnnouncedSequence replays the conditions decideAnnounced writes:
// each change of the announcing nodes gives one event, and deciding again
// on what it wrote gives none.
func TestAnnouncedSequence(t *testing.T) {
	svc := lb(nil)
	now := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	steps := []struct {
		anns  []nodeAnnouncement
		event string
	}{
		{nil, ""},
		{[]nodeAnnouncement{ann("b", 1, "r")}, "Normal AnnouncedBy announced by b"},
		{[]nodeAnnouncement{ann("b", 2, "r")}, ""},
		{[]nodeAnnouncement{ann("b", 2, "r"), ann("a", 0, "r")}, "Normal AnnouncedBy announced by a, b"},
		{[]nodeAnnouncement{ann("a", 0, "r")}, "Normal AnnouncedBy announced by a"},
		{nil, "Warning NotAnnounced no longer announced: " + msgGeneric},
		{nil, ""},
	}
	var events []string
	for i, st := range steps {
		f := ready(func(f *announceFacts) { f.Announcements = st.anns })
		a := decideAnnounced(meta.FindStatusCondition(svc.Status.Conditions, ConditionAnnounced), f)
		got := strings.TrimSpace(a.eventType + " " + a.eventReason + " " + a.note)
		if got != st.event {
			t.Errorf("step %d: event %q, want %q", i, got, st.event)
		}
		events = append(events, got)
		a.apply(svc, now)
		again := decideAnnounced(meta.FindStatusCondition(svc.Status.Conditions, ConditionAnnounced), f)
		if again.eventReason != "" || again.apply(svc, now) {
			t.Errorf("step %d: deciding again on what was written gives event %q or a change", i, again.note)
		}
	}
}

func TestAnnouncedApply(t *testing.T) {
	then := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	now := metav1.NewTime(then.Add(time.Hour))
	svc := lb(nil)
	svc.Status.Conditions = []metav1.Condition{{Type: ConditionAllocated, Status: metav1.ConditionTrue, Reason: ReasonAllocated, LastTransitionTime: then}}
	a := decideAnnounced(nil, ready(nil))
	if !a.apply(svc, then) || a.apply(svc, now) {
		t.Fatal("apply: want a change once, then none")
	}
	// Same status, new message: the transition time stays.
	b := decideAnnounced(meta.FindStatusCondition(svc.Status.Conditions, ConditionAnnounced), ready(func(f *announceFacts) { f.Peers = nil }))
	if !b.apply(svc, now) {
		t.Fatal("apply missed a new message")
	}
	c := meta.FindStatusCondition(svc.Status.Conditions, ConditionAnnounced)
	if !c.LastTransitionTime.Equal(&then) || c.Message != msgNoPeer {
		t.Errorf("condition %+v, want message %q since %v", c, msgNoPeer, then)
	}
	if len(svc.Status.Conditions) != 2 || meta.FindStatusCondition(svc.Status.Conditions, ConditionAllocated).LastTransitionTime != then {
		t.Errorf("the other condition was disturbed: %+v", svc.Status.Conditions)
	}
	// A new generation alone is a change.
	d := decideAnnounced(c, ready(func(f *announceFacts) { f.Peers, f.Generation = nil, 5 }))
	if !d.apply(svc, now) {
		t.Error("apply missed a new observedGeneration")
	}
	// clearStatus takes both conditions away.
	if !clearStatus(svc, nil) || len(svc.Status.Conditions) != 0 {
		t.Errorf("clearStatus left %+v", svc.Status.Conditions)
	}
}

func TestReadyEndpoints(t *testing.T) {
	yes, no := ptr(true), ptr(false)
	node := ptr("node1")
	ep := func(nodeName *string, ready, serving, terminating *bool) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Addresses: []string{"10.0.0.1"}, NodeName: nodeName,
			Conditions: discoveryv1.EndpointConditions{Ready: ready, Serving: serving, Terminating: terminating}}
	}
	tests := []struct {
		name string
		eps  []discoveryv1.Endpoint
		want int
	}{
		{"ready", []discoveryv1.Endpoint{ep(node, yes, yes, no)}, 1},
		{"nil conditions count as ready and serving", []discoveryv1.Endpoint{ep(node, nil, nil, nil)}, 1},
		{"not ready", []discoveryv1.Endpoint{ep(node, no, nil, nil)}, 0},
		{"ready but not serving", []discoveryv1.Endpoint{ep(node, yes, no, nil)}, 0},
		// kube-proxy's fallback: with no ready endpoint, those serving
		// while terminating count (a one-replica rolling update).
		{"not ready, serving (terminating)", []discoveryv1.Endpoint{ep(node, no, yes, yes)}, 1},
		{"ready but terminating", []discoveryv1.Endpoint{ep(node, yes, yes, yes)}, 1},
		{"terminating, not serving", []discoveryv1.Endpoint{ep(node, no, no, yes)}, 0},
		{"terminating beside a ready one", []discoveryv1.Endpoint{ep(node, no, yes, yes), ep(ptr("node2"), yes, nil, nil)}, 1},
		{"on no node", []discoveryv1.Endpoint{ep(nil, yes, yes, no), ep(ptr(""), yes, yes, no)}, 0},
		{"several", []discoveryv1.Endpoint{ep(node, yes, nil, nil), ep(ptr("node2"), nil, nil, no), ep(node, no, nil, nil)}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Split across two slices: the count is over all of them.
			mid := len(tc.eps) / 2
			ss := []discoveryv1.EndpointSlice{{Endpoints: tc.eps[:mid]}, {Endpoints: tc.eps[mid:]}}
			if got := lbmodel.ReadyEndpoints(ss); got != tc.want {
				t.Errorf("readyEndpoints = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestEndpointSliceCache: the cache keeps of a slice only what the
// controller reads, and keeping it twice changes nothing.
func TestEndpointSliceCache(t *testing.T) {
	transform := endpointSliceCache().Transform
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "web-x", Labels: map[string]string{discoveryv1.LabelServiceName: "web"},
			Annotations:   map[string]string{"endpoints.kubernetes.io/last-change-trigger-time": "x"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager"}}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, NodeName: ptr("node1"), Zone: ptr("a"),
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: "web-1"},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}}},
		Ports: []discoveryv1.EndpointPort{{Port: ptr(int32(80))}},
	}
	for range 2 {
		out, err := transform(s)
		if err != nil {
			t.Fatal(err)
		}
		s = out.(*discoveryv1.EndpointSlice)
		// The pod's name and addresses stay: they make a pod listed by two
		// slices (one per family) count once.
		want := discoveryv1.Endpoint{NodeName: ptr("node1"), Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)},
			Addresses: []string{"10.0.0.1"}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "web-1"}}
		if len(s.Endpoints) != 1 || !reflect.DeepEqual(s.Endpoints[0], want) {
			t.Errorf("endpoints %+v, want %+v", s.Endpoints, want)
		}
		if s.ManagedFields != nil || s.Annotations != nil || s.Ports != nil || s.Labels[discoveryv1.LabelServiceName] != "web" {
			t.Errorf("slice %+v", s.ObjectMeta)
		}
		if lbmodel.ReadyEndpoints([]discoveryv1.EndpointSlice{*s}) != 1 {
			t.Error("the slimmed slice lost its ready endpoint")
		}
	}
	if _, err := transform("not a slice"); err != nil {
		t.Error(err)
	}
	if !endpointSliceCache().Label.Matches(labels.Set{discoveryv1.LabelServiceName: "web"}) ||
		endpointSliceCache().Label.Matches(labels.Set{"other": "x"}) {
		t.Error("the cache should hold exactly the slices of Services")
	}
}
