package speaker

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/internal/lbmodel"
	"github.com/bgplb/bgplb/speaker/announce"
	"github.com/bgplb/bgplb/speaker/plan"
)

func ptr[T any](v T) *T { return &v }

func lbService(name string, etp corev1.ServiceExternalTrafficPolicy, ips ...string) corev1.Service {
	s := corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "dns", Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: etp},
	}
	for _, ip := range ips {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
	return s
}

func slice(svc string, eps ...discoveryv1.Endpoint) discoveryv1.EndpointSlice {
	return discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "dns", Name: svc + "-x", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		Endpoints:  eps,
	}
}

func ep(node string, ready, serving, terminating *bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{NodeName: &node,
		Conditions: discoveryv1.EndpointConditions{Ready: ready, Serving: serving, Terminating: terminating}}
}

func TestBuildSnapshot(t *testing.T) {
	yes, no := ptr(true), ptr(false)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node1", Labels: map[string]string{"zone": "a"}},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
	other := lbService("other", "", "203.0.113.9")
	other.Spec.LoadBalancerClass = ptr("example.com/lb")
	overlapped := v1alpha1.LoadBalancerPool{ObjectMeta: metav1.ObjectMeta{Name: "refused"}, Spec: v1alpha1.LoadBalancerPoolSpec{Addresses: []string{"203.0.113.0/24"}},
		Status: v1alpha1.LoadBalancerPoolStatus{Conditions: []metav1.Condition{{Type: v1alpha1.LoadBalancerPoolConditionReady, Status: metav1.ConditionFalse}}}}
	o := objects{
		node: node,
		services: []corev1.Service{
			lbService("pihole", corev1.ServiceExternalTrafficPolicyLocal, "203.0.113.53"),
			lbService("pending", ""),
			other,
		},
		slices: []discoveryv1.EndpointSlice{slice("pihole",
			ep("node1", nil, nil, nil),  // unset conditions: ready and serving
			ep("node1", yes, yes, no),   // counted
			ep("node1", no, yes, nil),   // not ready
			ep("node1", yes, yes, yes),  // terminating
			ep("node2", yes, nil, nil),  // another node
			ep("node1", yes, no, nil))}, // not serving
		pools: []v1alpha1.LoadBalancerPool{
			{ObjectMeta: metav1.ObjectMeta{Name: "lan", Labels: map[string]string{"k": "v"}}, Spec: v1alpha1.LoadBalancerPoolSpec{Addresses: []string{"203.0.113.50-203.0.113.60"}}},
			overlapped,
		},
		peers: []v1alpha1.BGPRouter{{ObjectMeta: metav1.ObjectMeta{Name: "router"}, Spec: v1alpha1.BGPRouterSpec{PeerAddress: "198.51.100.1"}}},
		advertisements: []v1alpha1.BGPAnnouncementPolicy{
			{ObjectMeta: metav1.ObjectMeta{Name: "good"}, Spec: v1alpha1.BGPAnnouncementPolicySpec{Communities: []string{"64512:100"}, LocalPref: ptr(int64(200))}},
		},
	}
	lg := &lastGood{}
	c := buildSnapshot(o, true, lg)
	if !c.snap.Node.Ready || c.snap.Node.Name != "node1" {
		t.Errorf("node %+v", c.snap.Node)
	}
	if len(c.snap.Services) != 1 || c.snap.Services[0].Name != "pihole" || c.snap.Services[0].TrafficPolicy != lbmodel.Local {
		t.Fatalf("services %+v: want only pihole (pending has no address, other is not ours)", c.snap.Services)
	}
	if got := c.snap.Services[0].Endpoints; got["node1"].Pods() != 2 || got["node2"].Pods() != 1 {
		t.Errorf("endpoints %v, want node1:2 node2:1", got)
	}
	if len(c.snap.Pools) != 2 {
		t.Errorf("pools %+v: every pool that parses goes to the planner, which applies the pool rule", c.snap.Pools)
	}
	if a := c.snap.Advertisements; len(a) != 1 || *a[0].LocalPref != 200 || len(a[0].Communities) != 1 {
		t.Errorf("advertisements %+v", a)
	}

	// A bad edit keeps the last good advertisement in force.
	o.advertisements[0].Spec.Communities = []string{"64512:100", "nonsense"}
	c = buildSnapshot(o, true, lg)
	if len(c.snap.Advertisements) != 1 || len(c.snap.Advertisements[0].Communities) != 1 {
		t.Errorf("bad edit: advertisements %+v, want the last good one", c.snap.Advertisements)
	}
	if len(c.problems) != 1 || !strings.Contains(c.problems[0], "BGPAnnouncementPolicy good") ||
		!strings.Contains(c.problems[0], "nonsense") || !strings.Contains(c.problems[0], "last valid version") {
		t.Errorf("problems %q", c.problems)
	}
	// A new advertisement that is bad from the start is left out.
	o.advertisements = append(o.advertisements, v1alpha1.BGPAnnouncementPolicy{ObjectMeta: metav1.ObjectMeta{Name: "bad"},
		Spec: v1alpha1.BGPAnnouncementPolicySpec{LargeCommunities: []string{"1:2"}}})
	c = buildSnapshot(o, true, lg)
	if len(c.snap.Advertisements) != 1 || len(c.problems) != 2 {
		t.Errorf("advertisements %d, problems %q", len(c.snap.Advertisements), c.problems)
	}
	// Unclassed Services are the controller's choice too.
	if c = buildSnapshot(o, false, lg); len(c.snap.Services) != 0 {
		t.Errorf("unclassed Services announced with handleUnclassed=false")
	}
}

func TestPeerConfig(t *testing.T) {
	addrs := []netip.Addr{netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("2001:db8:51::11")}
	p := &v1alpha1.BGPRouter{ObjectMeta: metav1.ObjectMeta{Name: "router"}, Spec: v1alpha1.BGPRouterSpec{
		MyASN: 64512, PeerASN: 64512, PeerAddress: "198.51.100.1", PeerPort: 179,
		HoldTime: &metav1.Duration{Duration: 9 * time.Second}, KeepaliveTime: &metav1.Duration{Duration: 3 * time.Second},
		PasswordSecret: &v1alpha1.SecretKeyReference{Name: "bgp"},
	}}
	var asked string
	secret := func(ns, name, key string) (string, error) {
		asked = ns + "/" + name + "/" + key
		return "s3cret", nil
	}
	mp, err := lbmodel.PeerFrom(p)
	if err != nil {
		t.Fatal(err)
	}
	c, err := peerConfig(&mp, localNode{name: "node1", addrs: addrs}, "bgplb-system", secret)
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Session; s.PeerAddr != netip.MustParseAddr("198.51.100.1") || s.RouterID != addrs[0] || s.LocalAS != 64512 ||
		s.HoldTime != 9*time.Second || s.KeepaliveTime != 3*time.Second || s.Password != "s3cret" {
		t.Errorf("session %+v", c.Session)
	}
	if asked != "bgplb-system/bgp/password" {
		t.Errorf("secret looked up as %q", asked)
	}
	if c.NextHop6 != addrs[1] {
		t.Errorf("IPv6 next hop over an IPv4 session %v, want %v", c.NextHop6, addrs[1])
	}
}

// An IPv6-only node peers without an IPv4 address for its router ID.
func TestRouterID(t *testing.T) {
	v4 := []netip.Addr{netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("2001:db8:51::11")}
	v6only := []netip.Addr{netip.MustParseAddr("2001:db8:51::11")}
	derived := derivedRouterID("node6")
	for _, tc := range []struct {
		name                string
		specID, source, ann string
		addrs               []netip.Addr
		want                netip.Addr
		err                 string
	}{
		{name: "the node's IPv4 address", addrs: v4, want: v4[0]},
		{name: "an IPv4 source address", source: "198.51.100.99", addrs: v4, want: netip.MustParseAddr("198.51.100.99")},
		{name: "IPv6-only node: derived from its name", addrs: v6only, want: derived},
		{name: "IPv6-only node, IPv6 source: derived", source: "2001:db8:51::11", addrs: v6only, want: derived},
		{name: "no address at all: derived", want: derived},
		{name: "the node's annotation", ann: "192.0.2.7", addrs: v4, want: netip.MustParseAddr("192.0.2.7")},
		{name: "the peer's routerID wins", specID: "192.0.2.9", ann: "192.0.2.7", addrs: v6only, want: netip.MustParseAddr("192.0.2.9")},
		{name: "a bad annotation is refused", ann: "2001:db8::1", addrs: v4, err: `annotation bgplb.io/router-id "2001:db8::1"`},
		{name: "0.0.0.0 is refused", specID: "0.0.0.0", addrs: v4, err: `spec.routerID "0.0.0.0"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The session's family follows the source, else the node's.
			peer := "198.51.100.1"
			if !slices.ContainsFunc(tc.addrs, netip.Addr.Is4) || tc.source != "" && netip.MustParseAddr(tc.source).Is6() {
				peer = "2001:db8:51::1"
			}
			mp, err := lbmodel.PeerFrom(&v1alpha1.BGPRouter{ObjectMeta: metav1.ObjectMeta{Name: "router"}, Spec: v1alpha1.BGPRouterSpec{
				MyASN: 64512, PeerASN: 64512, PeerAddress: peer, SourceAddress: tc.source, RouterID: tc.specID}})
			if err != nil {
				t.Fatal(err)
			}
			c, err := peerConfig(&mp, localNode{name: "node6", addrs: tc.addrs, routerID: tc.ann}, "bgplb-system", nil)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Session.RouterID != tc.want {
				t.Errorf("router ID %v, want %v", c.Session.RouterID, tc.want)
			}
		})
	}
	if derived == derivedRouterID("node7") || !derived.Is4() || derived.IsUnspecified() || derived != derivedRouterID("node6") {
		t.Errorf("derived IDs: node6 %v, node7 %v", derived, derivedRouterID("node7"))
	}
}

// A node registered with only IPv6 addresses gets a router ID from its
// Node object alone.
func TestRouterIDOfIPv6OnlyNode(t *testing.T) {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "v6-node"}, Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: "2001:db8:51::12"}, {Type: corev1.NodeHostName, Address: "v6-node"}}}}
	mp, err := lbmodel.PeerFrom(&v1alpha1.BGPRouter{ObjectMeta: metav1.ObjectMeta{Name: "router"},
		Spec: v1alpha1.BGPRouterSpec{MyASN: 64512, PeerASN: 64512, PeerAddress: "2001:db8:51::1"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := peerConfig(&mp, localNodeOf("v6-node", n), "bgplb-system", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Session.RouterID != derivedRouterID("v6-node") {
		t.Errorf("router ID %v", c.Session.RouterID)
	}
	n.Annotations = map[string]string{AnnotationRouterID: "192.0.2.12"}
	if c, err = peerConfig(&mp, localNodeOf("v6-node", n), "bgplb-system", nil); err != nil || c.Session.RouterID != netip.MustParseAddr("192.0.2.12") {
		t.Errorf("annotated: %v %v", c.Session.RouterID, err)
	}
}

func TestDesiredReports(t *testing.T) {
	pihole, web := lbmodel.Key{Namespace: "dns", Name: "pihole"}, lbmodel.Key{Namespace: "web", Name: "site"}
	res := plan.Result{Peers: map[string][]plan.Route{
		"r1": {{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Services: []lbmodel.Key{pihole, web}},
			{Prefix: netip.MustParsePrefix("2001:db8:53::53/128"), Services: []lbmodel.Key{pihole}}},
		"r2":   {{Prefix: netip.MustParsePrefix("203.0.113.53/32"), Services: []lbmodel.Key{pihole}}},
		"down": {{Prefix: netip.MustParsePrefix("203.0.113.80/32"), Services: []lbmodel.Key{web}}},
	}}
	st := []announce.PeerStatus{
		{Name: "r1", Addr: netip.MustParseAddr("198.51.100.1"), State: session.Established, Announced: 2},
		{Name: "r2", Addr: netip.MustParseAddr("198.51.100.2"), State: session.Established, Announced: 1},
		{Name: "down", Addr: netip.MustParseAddr("198.51.100.3"), State: session.Active, LastError: "connection refused"},
	}
	r1BFD := &v1alpha1.BGPSessionBFD{State: "Up"}
	want := desiredReports("node1", res, map[lbmodel.Key]int32{pihole: 3}, st, map[string]*v1alpha1.BGPSessionBFD{"r1": r1BFD}, nil)
	anns, sess := want.anns, want.sessions
	p := anns[nsName("dns", "pihole.node1")]
	if strings.Join(p.status.Prefixes, ",") != "2001:db8:53::53/128,203.0.113.0/24,203.0.113.53/32" ||
		strings.Join(p.status.Peers, ",") != "r1,r2" || p.service != "pihole" || p.status.Endpoints != 3 {
		t.Errorf("pihole %+v", p)
	}
	w := anns[nsName("web", "site.node1")]
	if strings.Join(w.status.Prefixes, ",") != "203.0.113.0/24" || strings.Join(w.status.Peers, ",") != "r1" {
		t.Errorf("web %+v: the route to a peer that is down must not count", w)
	}
	if len(anns) != 2 {
		t.Errorf("%d announcements, want 2", len(anns))
	}
	if s := sess["node1.down"]; s.State != "Active" || s.LastError != "connection refused" || s.PeerAddress != "198.51.100.3" {
		t.Errorf("session report %+v", s)
	}
	if s := sess["node1.r1"]; s.State != "Established" || s.PrefixesAnnounced != 2 || s.BFD != r1BFD {
		t.Errorf("session report %+v", s)
	}
	if s := sess["node1.r2"]; s.BFD != nil {
		t.Errorf("session report %+v: BFD for a peer without", s)
	}
}

func TestNames(t *testing.T) {
	long := strings.Repeat("n", 100)
	if v := labelValue(long); len(v) > 63 || v == labelValue(long+"x") {
		t.Errorf("labelValue %q", v)
	}
	if n := objectName(strings.Repeat("s", 63), strings.Repeat("n", 253)); len(n) > 253 {
		t.Errorf("objectName %d chars", len(n))
	}
	if objectName("pihole", "node1") != "pihole.node1" {
		t.Error("short names are joined as they are")
	}
}

func nsName(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}

// Settings the speaker does not honour yet are named, not silently dropped.
func TestGracefulRestartSetting(t *testing.T) {
	p := &lbmodel.Peer{Name: "router"}
	if g := gracefulRestart(p, time.Minute, true); g != nil {
		t.Errorf("peer without spec.gracefulRestart: %+v", g)
	}
	p.Spec.GracefulRestart = true
	for _, restarting := range []bool{false, true} {
		g := gracefulRestart(p, time.Minute, restarting)
		if g == nil || g.Time != time.Minute || !g.Forwarding || g.Restarting != restarting || g.Notification || g.StillRestarting != nil {
			t.Errorf("restarting %v: %+v", restarting, g)
		}
	}
}

// A bad edit of a BGPRouter (the operator `in` in lower case, which the API
// server lets through) keeps its last good version peering, and says so.
func TestBadPeerSelectorKeepsTheLastGood(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node1", Labels: map[string]string{"zone": "a"}},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
	peer := v1alpha1.BGPRouter{ObjectMeta: metav1.ObjectMeta{Name: "router", UID: "p1", Generation: 1},
		Spec: v1alpha1.BGPRouterSpec{PeerAddress: "198.51.100.1", NodeSelectors: []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "zone", Operator: metav1.LabelSelectorOpIn, Values: []string{"a"}}}}}}}
	o := objects{node: node, peers: []v1alpha1.BGPRouter{peer}}
	lg := &lastGood{}
	if res := plan.Plan(buildSnapshot(o, true, lg).snap); len(res.Peers) != 1 {
		t.Fatalf("valid peer: sessions %v", res.Peers)
	}
	o.peers[0].Generation = 2
	o.peers[0].Spec.NodeSelectors[0].MatchExpressions[0].Operator = "in"
	c := buildSnapshot(o, true, lg)
	if res := plan.Plan(c.snap); len(res.Peers) != 1 {
		t.Errorf("bad edit: sessions %v, want the last good peer kept", res.Peers)
	}
	if len(c.problems) != 1 || !strings.Contains(c.problems[0], `BGPRouter router: spec.nodeSelectors[0]: "in" is not a valid`) ||
		!strings.Contains(c.problems[0], "(generation 1) stays in force") {
		t.Errorf("problems %q", c.problems)
	}
	// A speaker started after the bad edit has no good version to keep.
	if c := buildSnapshot(o, true, &lastGood{}); len(c.snap.Peers) != 0 || !strings.Contains(c.problems[0], "not used until it is fixed") {
		t.Errorf("fresh speaker: peers %v, problems %q", c.snap.Peers, c.problems)
	}
}

// The pool rule holds on the speaker alone, whatever the pools' status
// says: with the controller down a pool created meanwhile (no status yet)
// takes nothing from an older one, and a stale Overlap verdict on a pool
// whose older rival has gone does not keep it out.
func TestPoolRuleWithoutController(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node1"},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
	created := func(sec int) metav1.ObjectMeta {
		return metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, sec, 0, time.UTC))}
	}
	pool := func(name string, sec int, addrs ...string) v1alpha1.LoadBalancerPool {
		p := v1alpha1.LoadBalancerPool{ObjectMeta: created(sec), Spec: v1alpha1.LoadBalancerPoolSpec{Addresses: addrs}}
		p.Name = name
		return p
	}
	old := pool("zz-old", 1, "203.0.113.0/24")
	newer := pool("aa-new", 2, "203.0.113.50-203.0.113.60") // sorts first by name; no status: the controller is down
	ad := func(name, pool string) v1alpha1.BGPAnnouncementPolicy {
		return v1alpha1.BGPAnnouncementPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.BGPAnnouncementPolicySpec{IPPools: []string{pool}}}
	}
	o := objects{
		node:           node,
		services:       []corev1.Service{lbService("pihole", "", "203.0.113.53")},
		slices:         []discoveryv1.EndpointSlice{slice("pihole", ep("node2", nil, nil, nil))},
		pools:          []v1alpha1.LoadBalancerPool{newer, old},
		peers:          []v1alpha1.BGPRouter{{ObjectMeta: metav1.ObjectMeta{Name: "r-old"}, Spec: v1alpha1.BGPRouterSpec{PeerAddress: "198.51.100.1"}}, {ObjectMeta: metav1.ObjectMeta{Name: "r-new"}, Spec: v1alpha1.BGPRouterSpec{PeerAddress: "198.51.100.2"}}},
		advertisements: []v1alpha1.BGPAnnouncementPolicy{ad("old", "zz-old"), ad("new", "aa-new")},
	}
	o.advertisements[0].Spec.Peers, o.advertisements[1].Spec.Peers = []string{"r-old"}, []string{"r-new"}
	res := plan.Plan(buildSnapshot(o, true, &lastGood{}).snap)
	if len(res.Peers["r-old"]) != 1 || len(res.Peers["r-new"]) != 0 {
		t.Errorf("routes %v: 203.0.113.53 is the older pool's, announced to r-old only", res.Peers)
	}
	if !slices.ContainsFunc(res.Problems, func(p string) bool {
		return strings.Contains(p, `LoadBalancerPool "aa-new" overlaps the older LoadBalancerPool "zz-old"`)
	}) {
		t.Errorf("problems %q", res.Problems)
	}

	// The older pool is deleted while the controller is down; aa-new still
	// shows the controller's last verdict (Overlap), which is stale.
	newer.Status.Conditions = []metav1.Condition{{Type: v1alpha1.LoadBalancerPoolConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.LoadBalancerPoolReasonOverlap}}
	o.pools = []v1alpha1.LoadBalancerPool{newer}
	o.services[0].Status.LoadBalancer.Ingress[0].IP = "203.0.113.55"
	res = plan.Plan(buildSnapshot(o, true, &lastGood{}).snap)
	if len(res.Peers["r-new"]) != 1 || len(res.Peers["r-old"]) != 0 {
		t.Errorf("routes %v: with zz-old gone, aa-new is in use", res.Peers)
	}
}
