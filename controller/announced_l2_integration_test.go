package controller

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// l2Policy creates an L2AnnouncementPolicy, removed when the test ends.
func (k *kube) l2Policy(t testing.TB, name string, spec v1alpha1.L2AnnouncementPolicySpec) *v1alpha1.L2AnnouncementPolicy {
	t.Helper()
	a := &v1alpha1.L2AnnouncementPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	if err := k.c.Create(context.Background(), a); err != nil {
		t.Fatalf("creating L2AnnouncementPolicy %s: %v", name, err)
	}
	k.cleanup(t, a)
	return a
}

// answer writes, as the speaker on node does when it owns addr of Service
// svc in ns, status.l2 of its ServiceAnnouncement: it answers on
// interfaces (none: on no interface, for why) since since. The rest of
// the status is kept.
func (k *kube) answer(t testing.TB, ns, svc, node, addr string, since time.Time, why string, interfaces ...string) {
	t.Helper()
	k.report(t, ns, svc, node, func(st *v1alpha1.ServiceAnnouncementStatus) {
		s := metav1.NewTime(since)
		st.L2 = []v1alpha1.L2Answer{{Address: addr, Interfaces: interfaces, Since: &s, LastError: why}}
	})
}

// TestAnnouncedL2: the Announced condition of a Service in L2 mode follows
// the owners the speakers report, with one event per change of owner (a
// failover whose old owner cannot take its report back included), and
// explains an L2-only cluster without a word about BGP; a pool in both
// modes gets both parts.
func TestAnnouncedL2(t *testing.T) {
	k := startKube(t)
	ns := k.env.Namespace(t)
	sfx := ns[len(ns)-5:]
	pool := "l2-" + sfx
	k.pool(t, pool, []string{"198.51.100.152/29"})
	x := k.runController(t, RunOptions{Options: Options{HandleUnclassed: true}})
	want := func(status metav1.ConditionStatus, msg string) {
		t.Helper()
		k.waitService(t, ns, "web", msg, announcedIs(status, msg))
	}
	const addr = "198.51.100.152"

	k.service(t, ns, "web")
	k.readySlice(t, ns, "web", "node1")
	k.waitService(t, ns, "web", "an address", allocatedIPs(addr))
	want(metav1.ConditionFalse, msgNothing)
	// A policy of another pool, then of this one.
	l2 := k.l2Policy(t, "l2-policy-"+sfx, v1alpha1.L2AnnouncementPolicySpec{IPPools: []string{pool + "-other"}})
	want(metav1.ConditionFalse, "no L2AnnouncementPolicy selects pool "+pool)
	k.update(t, l2, func() { l2.Spec.IPPools = []string{pool} })
	want(metav1.ConditionFalse, "no node answers ARP for "+addr+" yet")

	// node1 is elected and answers; node2 takes over while node1, cut
	// off, cannot take its report back: node2 alone is the owner.
	t1 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k.answer(t, ns, "web", "node1", addr, t1, "", "eth0")
	want(metav1.ConditionTrue, addr+" answered by node1 (ARP on eth0)")
	k.waitEvent(t, ns, "web", EventAnnouncedBy, addr+" answered by node1")
	k.answer(t, ns, "web", "node2", addr, t1.Add(time.Second), "", "eth1", "eth0")
	want(metav1.ConditionTrue, addr+" answered by node2 (ARP on eth0, eth1)")
	k.waitEvent(t, ns, "web", EventAnnouncedBy, addr+" answered by node2")
	k.withdraw(t, ns, "web", "node1")
	k.settled(t, ns)
	// A restarted controller tells nothing again (checkOnce below).
	x.stop(t)
	k.runController(t, RunOptions{Options: Options{HandleUnclassed: true}})
	k.settled(t, ns)
	want(metav1.ConditionTrue, addr+" answered by node2 (ARP on eth0, eth1)")

	// node2 loses its interfaces: it owns the address, nobody hears it.
	const why = "no interface holds an address in the subnet of 198.51.100.152"
	stuck := "node2 owns " + addr + " but answers on no interface: " + why
	k.answer(t, ns, "web", "node2", addr, t1.Add(time.Second), why)
	want(metav1.ConditionFalse, stuck)
	k.waitWarning(t, ns, "web", EventNotAnnounced, "no longer announced: "+stuck)

	// The pool in BGP too: both parts, then both announce.
	router := "l2-router-" + sfx
	k.bgpRouter(t, router)
	k.bgpAnnouncementPolicy(t, "l2-bgp-"+sfx, v1alpha1.BGPAnnouncementPolicySpec{IPPools: []string{pool}})
	want(metav1.ConditionFalse, msgGeneric+"; "+stuck)
	k.withdraw(t, ns, "web", "node2")
	want(metav1.ConditionFalse, msgGeneric+"; no node answers ARP for "+addr+" yet")
	k.announce(t, ns, "web", "node3", 1, router)
	k.answer(t, ns, "web", "node3", addr, t1.Add(time.Minute), "", "eth0")
	both := "announced by node3 (1 endpoint) to " + router + "; " + addr + " answered by node3 (ARP on eth0)"
	want(metav1.ConditionTrue, both)
	k.waitEvent(t, ns, "web", EventAnnouncedBy, "announced by node3; "+addr+" answered by node3")

	k.settled(t, ns)
	// The BGP announcement may be seen before the L2 answer or with it.
	var bgpFirst []string
	for _, e := range k.eventList(t, ns, "web") {
		if e.Reason == EventAnnouncedBy && e.Message == "announced by node3" {
			bgpFirst = append(bgpFirst, e.Message)
		}
	}
	k.checkOnce(t, ns, "web", EventAnnouncedBy, append([]string{addr + " answered by node1", addr + " answered by node2",
		"announced by node3; " + addr + " answered by node3"}, bgpFirst...)...)
	k.checkOnce(t, ns, "web", EventNotAnnounced, "no longer announced: "+stuck)
}
