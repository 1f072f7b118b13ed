package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/lbmodel"
)

// waitConditions polls o until the condition typ has status and reason
// and its message contains msg (status "" : the condition is absent), for
// o's current generation.
func (k *kube) waitConditions(t testing.TB, o client.Object, conds func() []metav1.Condition,
	typ string, status metav1.ConditionStatus, reason, msg string) *metav1.Condition {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := k.c.Get(context.Background(), client.ObjectKeyFromObject(o), o)
		c := meta.FindStatusCondition(conds(), typ)
		if err == nil {
			if status == "" && c == nil {
				return nil
			}
			if c != nil && c.Status == status && c.Reason == reason && strings.Contains(c.Message, msg) &&
				c.ObservedGeneration == o.GetGeneration() {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%T %s: waited 30s for %s=%s/%s %q; conditions %+v (err %v)", o, o.GetName(), typ, status, reason, msg, conds(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestConfigStatus: the leader controller reports on BGPRouters,
// BGPAnnouncementPolicies, L2AnnouncementPolicies and BFDPolicies whether
// they are accepted, which version stays in force after a bad edit, and what
// they ask for that is not supported yet.
func TestConfigStatus(t *testing.T) {
	k := startKube(t)
	ns := k.env.Namespace(t)
	sfx := ns[len(ns)-5:]
	k.runController(t, RunOptions{Options: Options{HandleUnclassed: true}})
	const acc, sup = v1alpha1.ConfigConditionAccepted, v1alpha1.ConfigConditionSupported
	const valid, invalid, notYet = v1alpha1.ConfigReasonValid, v1alpha1.ConfigReasonInvalid, v1alpha1.ConfigReasonNotSupportedYet
	const refs, notFound = v1alpha1.ConfigConditionResolvedRefs, v1alpha1.ConfigReasonRefNotFound
	badSelector := []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "zone", Operator: "in", Values: []string{"a"}}}}}

	// A peer asking for graceful restart and for BFD with a policy that
	// does not exist yet: accepted, both supported, and the missing policy
	// told.
	peer := k.bgpRouter(t, "cfg-peer-"+sfx)
	pc := func() []metav1.Condition { return peer.Status.Conditions }
	k.waitConditions(t, peer, pc, acc, metav1.ConditionTrue, valid, "in force")
	k.waitConditions(t, peer, pc, sup, "", "", "")
	fast := "cfg-fast-" + sfx
	k.update(t, peer, func() { peer.Spec.BFDPolicy, peer.Spec.GracefulRestart = fast, true })
	k.waitConditions(t, peer, pc, refs, metav1.ConditionFalse, notFound, lbmodel.BFDPolicyMissing(fast))
	k.waitConditions(t, peer, pc, sup, "", "", "")
	// The policy created: the reference resolves, and the policy (no echo
	// mode) is supported.
	fastPolicy := &v1alpha1.BFDPolicy{ObjectMeta: metav1.ObjectMeta{Name: fast}}
	if err := k.c.Create(context.Background(), fastPolicy); err != nil {
		t.Fatal(err)
	}
	k.cleanup(t, fastPolicy)
	k.waitConditions(t, peer, pc, refs, "", "", "")
	fc := func() []metav1.Condition { return fastPolicy.Status.Conditions }
	k.waitConditions(t, fastPolicy, fc, acc, metav1.ConditionTrue, valid, "in force")
	k.waitConditions(t, fastPolicy, fc, sup, "", "", "")
	good := peer.Generation
	// A bad selector: the last good version stays in force, and the peer
	// says so.
	k.update(t, peer, func() { peer.Spec.NodeSelectors = badSelector })
	k.waitConditions(t, peer, pc, acc, metav1.ConditionFalse, invalid,
		`spec.nodeSelectors[0]`)
	c := k.waitConditions(t, peer, pc, acc, metav1.ConditionFalse, invalid, "the last valid one, stays in force")
	if want := fmt.Sprintf("generation %d,", good); !strings.Contains(c.Message, want) {
		t.Errorf("Accepted %q does not name %s", c.Message, want)
	}
	// Fixed, and the unsupported settings dropped: accepted, nothing to say.
	k.update(t, peer, func() { peer.Spec.NodeSelectors, peer.Spec.BFDPolicy, peer.Spec.GracefulRestart = nil, "", false })
	k.waitConditions(t, peer, pc, acc, metav1.ConditionTrue, valid, "in force")
	k.waitConditions(t, peer, pc, sup, "", "", "")

	// An advertisement edited into a bad selector keeps its last good
	// version; one bad from its creation has none.
	k.bgpAnnouncementPolicy(t, "cfg-adv-"+sfx, v1alpha1.BGPAnnouncementPolicySpec{})
	adv := &v1alpha1.BGPAnnouncementPolicy{ObjectMeta: metav1.ObjectMeta{Name: "cfg-adv-" + sfx}}
	ac := func() []metav1.Condition { return adv.Status.Conditions }
	k.waitConditions(t, adv, ac, acc, metav1.ConditionTrue, valid, "in force")
	k.update(t, adv, func() { adv.Spec.IPPoolSelectors = badSelector })
	k.waitConditions(t, adv, ac, acc, metav1.ConditionFalse, invalid, "spec.ipPoolSelectors[0]")
	k.waitConditions(t, adv, ac, acc, metav1.ConditionFalse, invalid, "generation 1, the last valid one, stays in force")
	k.bgpAnnouncementPolicy(t, "cfg-adv-bad-"+sfx, v1alpha1.BGPAnnouncementPolicySpec{NodeSelectors: badSelector})
	badAdv := &v1alpha1.BGPAnnouncementPolicy{ObjectMeta: metav1.ObjectMeta{Name: "cfg-adv-bad-" + sfx}}
	k.waitConditions(t, badAdv, func() []metav1.Condition { return badAdv.Status.Conditions },
		acc, metav1.ConditionFalse, invalid, "no valid version of it is in force")

	// An L2AnnouncementPolicy is supported (no Supported condition); a
	// BFDPolicy's echo mode is not yet, and says so.
	l2 := &v1alpha1.L2AnnouncementPolicy{ObjectMeta: metav1.ObjectMeta{Name: "cfg-l2-" + sfx},
		Spec: v1alpha1.L2AnnouncementPolicySpec{IPPools: []string{"cfg-none-" + sfx}, Interfaces: []string{"eth*"}}}
	bfd := &v1alpha1.BFDPolicy{ObjectMeta: metav1.ObjectMeta{Name: "cfg-bfd-" + sfx}, Spec: v1alpha1.BFDPolicySpec{EchoMode: true}}
	for _, o := range []client.Object{l2, bfd} {
		if err := k.c.Create(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		k.cleanup(t, o)
	}
	l2c := func() []metav1.Condition { return l2.Status.Conditions }
	k.waitConditions(t, l2, l2c, acc, metav1.ConditionTrue, valid, "in force")
	k.waitConditions(t, l2, l2c, sup, "", "", "")
	k.waitConditions(t, bfd, func() []metav1.Condition { return bfd.Status.Conditions }, sup, metav1.ConditionFalse, notYet, lbmodel.BFDEchoUnsupported)
	// A bad edit keeps the last good version in force, as for a
	// BGPAnnouncementPolicy; an interface pattern the schema lets through
	// but path.Match refuses is one.
	k.update(t, l2, func() { l2.Spec.NodeSelectors = badSelector })
	k.waitConditions(t, l2, l2c, acc, metav1.ConditionFalse, invalid, "spec.nodeSelectors[0]")
	k.waitConditions(t, l2, l2c, acc, metav1.ConditionFalse, invalid, "generation 1, the last valid one, stays in force")
	k.update(t, l2, func() { l2.Spec.NodeSelectors, l2.Spec.Interfaces = nil, []string{"eth[0"} })
	k.waitConditions(t, l2, l2c, acc, metav1.ConditionFalse, invalid, `spec.interfaces[0] "eth[0"`)
	k.update(t, l2, func() { l2.Spec.Interfaces = nil })
	k.waitConditions(t, l2, l2c, acc, metav1.ConditionTrue, valid, "in force")
	k.waitConditions(t, l2, l2c, sup, "", "", "")
}
