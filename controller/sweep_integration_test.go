package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// node creates a Node object (no kubelet behind it), removed when the test
// ends.
func (k *kube) node(t testing.TB, name string) *corev1.Node {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := k.c.Create(context.Background(), n); err != nil {
		t.Fatalf("creating Node %s: %v", name, err)
	}
	k.cleanup(t, n)
	return n
}

// session writes the BGPSessionStatus the speaker on node writes for
// peer, named as the speaker names it: <node>.<peer>.
func (k *kube) session(t testing.TB, node, peer string) *v1alpha1.BGPSessionStatus {
	t.Helper()
	s := &v1alpha1.BGPSessionStatus{
		ObjectMeta: metav1.ObjectMeta{Name: node + "." + peer, Labels: map[string]string{v1alpha1.LabelNode: node}},
		Spec:       v1alpha1.BGPSessionStatusSpec{Node: node, Peer: peer},
	}
	if err := k.c.Create(context.Background(), s); err != nil {
		t.Fatalf("creating BGPSessionStatus %s: %v", s.Name, err)
	}
	k.cleanup(t, s)
	return s
}

// waitGone waits until o no longer exists.
func (k *kube) waitGone(t testing.TB, o client.Object, why string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := k.c.Get(context.Background(), client.ObjectKeyFromObject(o), o)
		if apierrors.IsNotFound(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%T %s still exists after 30s (%s; err %v)", o, o.GetName(), why, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSweepStaleReports: the reports of a node that is deleted, or that
// was gone before the controller started, are removed, so that the
// Announced condition stops naming it; a live node's stay.
func TestSweepStaleReports(t *testing.T) {
	k := startKube(t)
	ns := k.env.Namespace(t)
	sfx := ns[len(ns)-5:]
	k.pool(t, "sweep-"+sfx, []string{"198.51.100.48/29"})
	router := "sweep-router-" + sfx
	k.bgpRouter(t, router)
	k.bgpAnnouncementPolicy(t, "sweep-adv-"+sfx, v1alpha1.BGPAnnouncementPolicySpec{})
	live, doomed, ghost := "sweep-live-"+sfx, "sweep-doomed-"+sfx, "sweep-ghost-"+sfx
	k.node(t, live)
	doomedNode := k.node(t, doomed)
	k.service(t, ns, "web")
	k.readySlice(t, ns, "web", live)

	// Reports of a node gone before the controller starts.
	k.announce(t, ns, "web", ghost, 1, router)
	ghostSess := k.session(t, ghost, router)
	opts := RunOptions{Options: Options{HandleUnclassed: true, SweepInterval: time.Hour}}
	x := k.runController(t, opts)
	ghostAnn := &v1alpha1.ServiceAnnouncement{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web." + ghost}}
	k.waitGone(t, ghostAnn, "its node never existed: swept at start")
	k.waitGone(t, ghostSess, "its node never existed: swept at start")

	k.announce(t, ns, "web", live, 1, router)
	k.announce(t, ns, "web", doomed, 2, router)
	liveSess, doomedSess := k.session(t, live, router), k.session(t, doomed, router)
	k.waitService(t, ns, "web", "announced by both nodes", announcedIs(metav1.ConditionTrue,
		"announced by "+doomed+" (2 endpoints), "+live+" (1 endpoint) to "+router))

	// The node is deleted: its reports go at once (the interval is an hour).
	if err := k.c.Delete(context.Background(), doomedNode); err != nil {
		t.Fatal(err)
	}
	doomedAnn := &v1alpha1.ServiceAnnouncement{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web." + doomed}}
	k.waitGone(t, doomedAnn, "its node was deleted")
	k.waitGone(t, doomedSess, "its node was deleted")
	s := k.waitService(t, ns, "web", "announced by the live node only", announcedIs(metav1.ConditionTrue,
		"announced by "+live+" (1 endpoint) to "+router))
	if c := meta.FindStatusCondition(s.Status.Conditions, ConditionAnnounced); strings.Contains(c.Message, doomed) {
		t.Errorf("the condition names the deleted node: %q", c.Message)
	}
	x.stop(t)

	// Periodically: reports of a node gone while the controller runs,
	// with no Node deletion to tell (deleted while no controller ran).
	k.runController(t, RunOptions{Options: Options{HandleUnclassed: true, SweepInterval: 300 * time.Millisecond}})
	k.announce(t, ns, "web", ghost, 1, router)
	k.waitGone(t, ghostAnn, "swept periodically")
	// The live node's reports stay.
	k.settled(t, ns)
	for _, o := range []client.Object{liveSess,
		&v1alpha1.ServiceAnnouncement{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web." + live}}} {
		if err := k.c.Get(context.Background(), client.ObjectKeyFromObject(o), o); err != nil {
			t.Errorf("%T %s of the live node: %v", o, o.GetName(), err)
		}
	}
}
