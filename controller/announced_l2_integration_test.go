package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/lbmodel"
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

// hold writes, as the speakers' election does, the Lease of addr in ns
// held by node ("": by nobody).
func (k *kube) hold(t testing.TB, ns, addr, node string) {
	t.Helper()
	ctx := context.Background()
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "l2-addr-" + strings.NewReplacer(".", "-", ":", "-").Replace(addr)}}
	err := k.c.Get(ctx, client.ObjectKeyFromObject(l), l)
	switch {
	case apierrors.IsNotFound(err):
		l.Labels = map[string]string{lbmodel.L2LeaseLabel: lbmodel.L2LeaseKindAddress}
		l.Annotations = map[string]string{lbmodel.L2LeaseAddressAnnotation: addr}
		l.Spec.HolderIdentity = ptrTo(node)
		err = k.c.Create(ctx, l)
	case err == nil:
		l.Spec.HolderIdentity = ptrTo(node)
		err = k.c.Update(ctx, l)
	}
	if err != nil {
		t.Fatalf("writing the Lease of %s: %v", addr, err)
	}
}

func ptrTo(node string) *string {
	if node == "" {
		return nil
	}
	return &node
}

// TestAnnouncedL2: the Announced condition of a Service in L2 mode follows
// the owners the speakers report, counting only the claim of the node
// holding the address's Lease, with one event per change of owner (a
// failover whose old owner cannot take its report back included, and a
// release after it, which must not bring the old owner's claim back), and
// explains an L2-only cluster without a word about BGP; a pool in both
// modes gets both parts.
func TestAnnouncedL2(t *testing.T) {
	k := startKube(t)
	ns := k.env.Namespace(t)
	sfx := ns[len(ns)-5:]
	pool := "l2-" + sfx
	k.pool(t, pool, []string{"198.51.100.152/29"})
	opts := RunOptions{Options: Options{HandleUnclassed: true, L2LeaseNamespace: ns}}
	x := k.runController(t, opts)
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
	// off, cannot take its report back: node2 alone is the owner. The
	// claims carry the same second (the speakers truncate it): the Lease
	// decides, and its change alone is looked at again.
	t1 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k.hold(t, ns, addr, "node1")
	k.answer(t, ns, "web", "node1", addr, t1, "", "eth0")
	want(metav1.ConditionTrue, addr+" answered by node1 (ARP on eth0)")
	k.waitEvent(t, ns, "web", EventAnnouncedBy, addr+" answered by node1")
	k.answer(t, ns, "web", "node2", addr, t1, "", "eth1", "eth0")
	k.settled(t, ns)
	want(metav1.ConditionTrue, addr+" answered by node1 (ARP on eth0)")
	k.hold(t, ns, addr, "node2")
	want(metav1.ConditionTrue, addr+" answered by node2 (ARP on eth0, eth1)")
	k.waitEvent(t, ns, "web", EventAnnouncedBy, addr+" answered by node2")

	// node2 lets go (a restart, a policy change) while node1 is still
	// cut off: node1's stale claim must not come back.
	const released = "no node answers ARP for " + addr + " yet"
	k.withdraw(t, ns, "web", "node2")
	k.hold(t, ns, addr, "")
	want(metav1.ConditionFalse, released)
	k.waitWarning(t, ns, "web", EventNotAnnounced, "no longer announced: "+released)
	// node3 takes over; node1's report goes at last.
	k.hold(t, ns, addr, "node3")
	k.answer(t, ns, "web", "node3", addr, t1, "", "eth1", "eth0")
	want(metav1.ConditionTrue, addr+" answered by node3 (ARP on eth0, eth1)")
	k.waitEvent(t, ns, "web", EventAnnouncedBy, addr+" answered by node3")
	k.withdraw(t, ns, "web", "node1")
	k.settled(t, ns)
	// A restarted controller tells nothing again (checkOnce below).
	x.stop(t)
	k.runController(t, opts)
	k.settled(t, ns)
	want(metav1.ConditionTrue, addr+" answered by node3 (ARP on eth0, eth1)")

	// node3 loses its interfaces: it owns the address, nobody hears it.
	const why = "no interface holds an address in the subnet of 198.51.100.152"
	stuck := "node3 owns " + addr + " but answers on no interface: " + why
	k.answer(t, ns, "web", "node3", addr, t1, why)
	want(metav1.ConditionFalse, stuck)
	k.waitWarning(t, ns, "web", EventNotAnnounced, "no longer announced: "+stuck)

	// The pool in BGP too: both parts, then both announce.
	router := "l2-router-" + sfx
	k.bgpRouter(t, router)
	k.bgpAnnouncementPolicy(t, "l2-bgp-"+sfx, v1alpha1.BGPAnnouncementPolicySpec{IPPools: []string{pool}})
	want(metav1.ConditionFalse, msgGeneric+"; "+stuck)
	k.withdraw(t, ns, "web", "node3")
	want(metav1.ConditionFalse, msgGeneric+"; "+released)
	k.hold(t, ns, addr, "node4")
	k.announce(t, ns, "web", "node4", 1, router)
	k.answer(t, ns, "web", "node4", addr, t1.Add(time.Minute), "", "eth0")
	both := "announced by node4 (1 endpoint) to " + router + "; " + addr + " answered by node4 (ARP on eth0)"
	want(metav1.ConditionTrue, both)
	k.waitEvent(t, ns, "web", EventAnnouncedBy, "announced by node4; "+addr+" answered by node4")

	k.settled(t, ns)
	// The BGP announcement may be seen before the L2 answer or with it.
	var bgpFirst []string
	for _, e := range k.eventList(t, ns, "web") {
		if e.Reason == EventAnnouncedBy && e.Message == "announced by node4" {
			bgpFirst = append(bgpFirst, e.Message)
		}
	}
	k.checkOnce(t, ns, "web", EventAnnouncedBy, append([]string{addr + " answered by node1", addr + " answered by node2",
		addr + " answered by node3", "announced by node4; " + addr + " answered by node4"}, bgpFirst...)...)
	k.checkOnce(t, ns, "web", EventNotAnnounced, "no longer announced: "+released, "no longer announced: "+stuck)
}
