package controller

// Integration tests of the Announced condition against the shared API
// server. ServiceAnnouncements are written by hand, as a speaker would
// write them; BGPRouters and BGPAnnouncementPolicies are cluster-wide, so each
// test names its own after its namespace and removes them.

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// announcedIs is a waitService predicate: ConditionAnnounced with this
// status and exactly this message, for the Service's generation.
func announcedIs(status metav1.ConditionStatus, msg string) func(*corev1.Service) bool {
	reason := ReasonAnnounced
	switch {
	case msg == msgLocalNoReady || msg == msgClusterNoReady:
		reason = ReasonNoReadyEndpoints
	case status == metav1.ConditionFalse:
		reason = ReasonNotAnnounced
	}
	return func(s *corev1.Service) bool {
		c := meta.FindStatusCondition(s.Status.Conditions, ConditionAnnounced)
		return c != nil && c.Status == status && c.Reason == reason && c.Message == msg && c.ObservedGeneration == s.Generation
	}
}

// cleanup deletes o when the test ends.
func (k *kube) cleanup(t testing.TB, o client.Object) {
	t.Cleanup(func() {
		if err := k.c.Delete(context.Background(), o); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting %T %s: %v", o, o.GetName(), err)
		}
	})
}

// bgpRouter creates a BGPRouter, removed when the test ends.
func (k *kube) bgpRouter(t testing.TB, name string) *v1alpha1.BGPRouter {
	t.Helper()
	p := &v1alpha1.BGPRouter{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.BGPRouterSpec{MyASN: 64512, PeerASN: 64513, PeerAddress: "198.51.100.254"}}
	if err := k.c.Create(context.Background(), p); err != nil {
		t.Fatalf("creating BGPRouter %s: %v", name, err)
	}
	k.cleanup(t, p)
	return p
}

// bgpAnnouncementPolicy creates a BGPAnnouncementPolicy, removed when the
// test ends.
func (k *kube) bgpAnnouncementPolicy(t testing.TB, name string, spec v1alpha1.BGPAnnouncementPolicySpec) {
	t.Helper()
	a := &v1alpha1.BGPAnnouncementPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	if err := k.c.Create(context.Background(), a); err != nil {
		t.Fatalf("creating BGPAnnouncementPolicy %s: %v", name, err)
	}
	k.cleanup(t, a)
}

// update reads o afresh, changes it and writes it back, retrying on
// conflict.
func (k *kube) update(t testing.TB, o client.Object, mod func()) {
	t.Helper()
	for i := 0; ; i++ {
		if err := k.c.Get(context.Background(), client.ObjectKeyFromObject(o), o); err != nil {
			t.Fatalf("getting %T %s: %v", o, o.GetName(), err)
		}
		mod()
		err := k.c.Update(context.Background(), o)
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) || i == 20 {
			t.Fatalf("updating %T %s: %v", o, o.GetName(), err)
		}
	}
}

// readySlice creates an EndpointSlice of Service svc in ns with one ready
// endpoint on node, as the EndpointSlice controller would.
func (k *kube) readySlice(t testing.TB, ns, svc, node string) *discoveryv1.EndpointSlice {
	t.Helper()
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: svc + "-" + node,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"198.51.100.250"}, NodeName: &node}},
	}
	if err := k.c.Create(context.Background(), slice); err != nil {
		t.Fatalf("creating EndpointSlice %s/%s: %v", ns, slice.Name, err)
	}
	return slice
}

// announce writes the ServiceAnnouncement the speaker on node writes while
// it announces Service svc in ns to peers (none: no established session),
// as the speaker names it: <service>.<node>.
func (k *kube) announce(t testing.TB, ns, svc, node string, endpoints int32, peers ...string) {
	t.Helper()
	k.report(t, ns, svc, node, func(st *v1alpha1.ServiceAnnouncementStatus) {
		*st = v1alpha1.ServiceAnnouncementStatus{Prefixes: []string{"203.0.113.0/24"}, Peers: peers, Endpoints: endpoints}
	})
}

// report writes the ServiceAnnouncement of node for Service svc in ns
// (creating it, named as the speaker names it: <service>.<node>), its
// status changed by mod.
func (k *kube) report(t testing.TB, ns, svc, node string, mod func(*v1alpha1.ServiceAnnouncementStatus)) {
	t.Helper()
	ctx := context.Background()
	a := &v1alpha1.ServiceAnnouncement{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: svc + "." + node,
			Labels: map[string]string{v1alpha1.LabelService: svc, v1alpha1.LabelNode: node}},
		Spec: v1alpha1.ServiceAnnouncementSpec{Service: svc, Node: node},
	}
	err := k.c.Create(ctx, a)
	if apierrors.IsAlreadyExists(err) {
		err = k.c.Get(ctx, client.ObjectKeyFromObject(a), a)
	}
	if err != nil {
		t.Fatalf("writing ServiceAnnouncement %s/%s: %v", ns, a.Name, err)
	}
	mod(&a.Status)
	if err := k.c.Status().Update(ctx, a); err != nil {
		t.Fatalf("writing the status of ServiceAnnouncement %s/%s: %v", ns, a.Name, err)
	}
}

// withdraw deletes the ServiceAnnouncement of node for svc, as the speaker
// does when it stops announcing.
func (k *kube) withdraw(t testing.TB, ns, svc, node string) {
	t.Helper()
	a := &v1alpha1.ServiceAnnouncement{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: svc + "." + node}}
	if err := k.c.Delete(context.Background(), a); err != nil {
		t.Fatalf("deleting ServiceAnnouncement %s/%s: %v", ns, a.Name, err)
	}
}

// checkOnce fails if any event of a Service with reason was recorded more
// than once (the recorder folds repeats into a series).
func (k *kube) checkOnce(t testing.TB, ns, name, reason string, want ...string) {
	t.Helper()
	var got []string
	for _, e := range k.eventList(t, ns, name) {
		if e.Reason != reason {
			continue
		}
		got = append(got, e.Message)
		if e.Series != nil || e.Count > 1 {
			t.Errorf("Service %s/%s: event %s %q was repeated: %+v %d", ns, name, reason, e.Message, e.Series, e.Count)
		}
	}
	for _, w := range want {
		if !strings.Contains(strings.Join(got, "\n"), w) {
			t.Errorf("Service %s/%s: no %s event %q; got %q", ns, name, reason, w, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("Service %s/%s: %d %s events, want %d: %q", ns, name, len(got), reason, len(want), got)
	}
}

// configureStepByStep creates a BGPRouter named router and a
// BGPAnnouncementPolicy for pool p (selected by its label) one step at a time,
// checking at each the reason Service svc in ns shows; it returns the
// peer.
func (k *kube) configureStepByStep(t *testing.T, ns, svc, router, label string, p *v1alpha1.LoadBalancerPool) *v1alpha1.BGPRouter {
	t.Helper()
	want := func(msg string) {
		t.Helper()
		k.waitService(t, ns, svc, msg, announcedIs(metav1.ConditionFalse, msg))
	}
	value := p.Labels[label]
	peer := k.bgpRouter(t, router)
	want("no BGPAnnouncementPolicy exists")
	adv := router + "-adv"
	k.bgpAnnouncementPolicy(t, adv, v1alpha1.BGPAnnouncementPolicySpec{IPPools: []string{p.Name + "-other"}})
	want("no BGPAnnouncementPolicy selects pool " + p.Name)
	a := &v1alpha1.BGPAnnouncementPolicy{ObjectMeta: metav1.ObjectMeta{Name: adv}}
	k.update(t, a, func() {
		a.Spec.IPPools = nil
		a.Spec.IPPoolSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{label: value}}}
	})
	want(msgGeneric)
	// Advertisements select pools by label: the pool's labels count.
	k.update(t, p, func() { p.Labels = nil })
	want("no BGPAnnouncementPolicy selects pool " + p.Name)
	k.update(t, p, func() { p.Labels = map[string]string{label: value} })
	want(msgGeneric)
	// An edit the API server lets through but the model refuses (operator
	// `in` in lower case) leaves the last good version in force, as on the
	// speakers: it selects by label, so the pool losing its labels tells,
	// where the broken version would select the pool by name.
	k.update(t, a, func() {
		a.Spec.IPPools = []string{p.Name}
		a.Spec.IPPoolSelectors = []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: label, Operator: "in", Values: []string{value}}}}}
	})
	k.update(t, p, func() { p.Labels = nil })
	want("no BGPAnnouncementPolicy selects pool " + p.Name)
	k.update(t, a, func() { a.Spec.IPPoolSelectors = nil }) // fixed: by name
	want(msgGeneric)
	k.update(t, p, func() { p.Labels = map[string]string{label: value} })
	return peer
}

// TestAnnounced: the Announced condition follows the configuration and
// the speakers' reports, with one event per change of the announcing
// nodes, and goes when the Service is no longer served.
func TestAnnounced(t *testing.T) {
	k := startKube(t)
	ns := k.env.Namespace(t)
	sfx := ns[len(ns)-5:]
	const label = "test.bgplb.io/announced"
	pool := "ann-" + sfx
	p := k.pool(t, pool, []string{"203.0.113.32/29"}, func(p *v1alpha1.LoadBalancerPool) { p.Labels = map[string]string{label: sfx} })
	x := k.runController(t, RunOptions{Options: Options{HandleUnclassed: true}})
	want := func(status metav1.ConditionStatus, msg string) {
		t.Helper()
		k.waitService(t, ns, "web", msg, announcedIs(status, msg))
	}

	k.service(t, ns, "web")
	k.readySlice(t, ns, "web", "node1")
	k.waitService(t, ns, "web", "an address", allocatedIPs("203.0.113.32"))
	want(metav1.ConditionFalse, msgNothing)

	router := "ann-router-" + sfx
	peer := k.configureStepByStep(t, ns, "web", router, label, p)

	// Reports about other Services do not count.
	k.announce(t, ns, "webx", "node9", 1, router)
	// The speakers announce.
	k.announce(t, ns, "web", "node1", 3, router)
	want(metav1.ConditionTrue, "announced by node1 (3 endpoints) to "+router)
	k.waitEvent(t, ns, "web", EventAnnouncedBy, "announced by node1")
	// Peers are the sorted union of the nodes' (a peer that does not exist
	// here is reported all the same: the speakers know better).
	router2 := "ann-z-router-" + sfx
	k.announce(t, ns, "web", "node2", 1, router2, router)
	want(metav1.ConditionTrue, "announced by node1 (3 endpoints), node2 (1 endpoint) to "+router+", "+router2)
	k.waitEvent(t, ns, "web", EventAnnouncedBy, "announced by node1, node2")
	// Another endpoint count is news for the condition, not for an event.
	k.announce(t, ns, "web", "node1", 4, router)
	want(metav1.ConditionTrue, "announced by node1 (4 endpoints), node2 (1 endpoint) to "+router+", "+router2)
	// A restarted controller tells nothing again (checkOnce below).
	x.stop(t)
	k.runController(t, RunOptions{Options: Options{HandleUnclassed: true}})
	k.settled(t, ns)
	want(metav1.ConditionTrue, "announced by node1 (4 endpoints), node2 (1 endpoint) to "+router+", "+router2)

	// They stop, one after the other.
	k.withdraw(t, ns, "web", "node1")
	want(metav1.ConditionTrue, "announced by node2 (1 endpoint) to "+router+", "+router2)
	k.waitEvent(t, ns, "web", EventAnnouncedBy, "announced by node2")
	k.withdraw(t, ns, "web", "node2")
	want(metav1.ConditionFalse, msgGeneric)
	k.waitWarning(t, ns, "web", EventNotAnnounced, "no longer announced: "+msgGeneric)
	// A node that would announce but has no session up.
	k.announce(t, ns, "web", "node3", 2)
	want(metav1.ConditionFalse, "node3 announces it but has no established BGP session")
	k.withdraw(t, ns, "web", "node3")
	if err := k.c.Delete(context.Background(), peer); err != nil {
		t.Fatal(err)
	}
	want(metav1.ConditionFalse, "no BGPRouter exists")

	k.settled(t, ns)
	k.checkOnce(t, ns, "web", EventAnnouncedBy, "announced by node1", "announced by node1, node2", "announced by node2")
	k.checkOnce(t, ns, "web", EventNotAnnounced, "no longer announced: "+msgGeneric)

	// No longer served: both conditions go.
	k.updateService(t, ns, "web", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP })
	k.waitService(t, ns, "web", "bgplb's conditions removed", func(s *corev1.Service) bool {
		return len(s.Status.Conditions) == 0
	})
}

// TestAnnouncedLocal: with externalTrafficPolicy Local, the controller
// reads the Service's EndpointSlices to say why no node announces it.
func TestAnnouncedLocal(t *testing.T) {
	k := startKube(t)
	ns := k.env.Namespace(t)
	sfx := ns[len(ns)-5:]
	k.pool(t, "annlocal-"+sfx, []string{"198.51.100.136/29"})
	router := "annlocal-router-" + sfx
	k.bgpRouter(t, router)
	k.bgpAnnouncementPolicy(t, "annlocal-adv-"+sfx, v1alpha1.BGPAnnouncementPolicySpec{})
	k.runController(t, RunOptions{Options: Options{HandleUnclassed: true}})

	k.service(t, ns, "local", withLocalTraffic)
	k.service(t, ns, "cluster")
	k.waitService(t, ns, "local", "an address", allocated)
	k.waitService(t, ns, "local", "no endpoint", announcedIs(metav1.ConditionFalse, msgLocalNoReady))
	// Cluster, with no endpoint anywhere: withdrawn, and said so.
	k.waitService(t, ns, "cluster", "no endpoint anywhere", announcedIs(metav1.ConditionFalse, msgClusterNoReady))
	clusterSlice := k.readySlice(t, ns, "cluster", "node2")
	k.waitService(t, ns, "cluster", "the generic reason", announcedIs(metav1.ConditionFalse, msgGeneric))

	// A slice whose only endpoint is not ready yet.
	no, yes := false, true
	node := "node1"
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "local-x1",
			Labels: map[string]string{discoveryv1.LabelServiceName: "local"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"198.51.100.250"}, NodeName: &node,
			Conditions: discoveryv1.EndpointConditions{Ready: &no}}},
	}
	if err := k.c.Create(context.Background(), slice); err != nil {
		t.Fatal(err)
	}
	k.settled(t, ns)
	k.waitService(t, ns, "local", "still no ready endpoint", announcedIs(metav1.ConditionFalse, msgLocalNoReady))
	k.update(t, slice, func() { slice.Endpoints[0].Conditions = discoveryv1.EndpointConditions{Ready: &yes} })
	k.waitService(t, ns, "local", "a ready endpoint", announcedIs(metav1.ConditionFalse, msgGeneric))
	// Terminating and no longer serving does not count; still serving
	// while terminating does when nothing else is ready (kube-proxy's
	// fallback).
	k.update(t, slice, func() {
		slice.Endpoints[0].Conditions = discoveryv1.EndpointConditions{Ready: &no, Serving: &no, Terminating: &yes}
	})
	k.waitService(t, ns, "local", "only a terminating endpoint", announcedIs(metav1.ConditionFalse, msgLocalNoReady))
	k.update(t, slice, func() {
		slice.Endpoints[0].Conditions = discoveryv1.EndpointConditions{Ready: &no, Serving: &yes, Terminating: &yes}
	})
	k.waitService(t, ns, "local", "a terminating endpoint still serving", announcedIs(metav1.ConditionFalse, msgGeneric))
	k.update(t, slice, func() { slice.Endpoints[0].Conditions = discoveryv1.EndpointConditions{} })
	k.waitService(t, ns, "local", "a ready endpoint again", announcedIs(metav1.ConditionFalse, msgGeneric))

	k.announce(t, ns, "local", node, 1, router)
	k.waitService(t, ns, "local", "announced", announcedIs(metav1.ConditionTrue, "announced by node1 (1 endpoint) to "+router))
	k.waitEvent(t, ns, "local", EventAnnouncedBy, "announced by node1")
	// The speaker stops; then the endpoint goes: a new reason, no new
	// event.
	k.withdraw(t, ns, "local", node)
	k.waitService(t, ns, "local", "withdrawn", announcedIs(metav1.ConditionFalse, msgGeneric))
	k.waitWarning(t, ns, "local", EventNotAnnounced, "no longer announced: "+msgGeneric)
	if err := k.c.Delete(context.Background(), slice); err != nil {
		t.Fatal(err)
	}
	k.waitService(t, ns, "local", "no endpoint again", announcedIs(metav1.ConditionFalse, msgLocalNoReady))
	k.settled(t, ns)
	k.checkOnce(t, ns, "local", EventAnnouncedBy, "announced by node1")
	k.checkOnce(t, ns, "local", EventNotAnnounced, "no longer announced: "+msgGeneric)
	if evs := k.events(t, ns, "cluster"); len(evs) != 1 {
		t.Errorf("the Cluster Service has events %q, want only its allocation", evs)
	}
	// The Cluster Service's last endpoint goes.
	if err := k.c.Delete(context.Background(), clusterSlice); err != nil {
		t.Fatal(err)
	}
	k.waitService(t, ns, "cluster", "no endpoint anywhere again", announcedIs(metav1.ConditionFalse, msgClusterNoReady))
}
