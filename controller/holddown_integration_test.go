package controller

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// TestHoldDownSurvivesRestart: an address released just before the
// controller restarts stays held down for its full time under the new
// controller (as under a new leader): the pool's status carries it across.
func TestHoldDownSurvivesRestart(t *testing.T) {
	const holdDown = 8 * time.Second
	k := startKube(t)
	ns := k.env.Namespace(t)
	k.pool(t, "hold-restart", []string{"198.51.100.40"})
	opts := RunOptions{Options: Options{HandleUnclassed: true, HoldDown: holdDown}}
	first := k.runController(t, opts)

	k.service(t, ns, "old")
	k.waitService(t, ns, "old", "the only address", allocatedIPs("198.51.100.40"))
	beforeRelease := time.Now()
	k.deleteService(t, ns, "old")
	p := k.waitPool(t, "hold-restart", "the hold-down persisted", func(p *v1alpha1.LoadBalancerPool) bool {
		return len(p.Status.HeldDown) == 1
	})
	h := p.Status.HeldDown[0]
	if h.Address != "198.51.100.40" || h.Service != ns+"/old" || h.Until.Time.Before(beforeRelease.Add(holdDown)) {
		t.Fatalf("persisted hold-down %+v, want 198.51.100.40 of %s/old until at least %v", h, ns, beforeRelease.Add(holdDown))
	}
	first.stop(t)

	second := k.runController(t, opts)
	k.service(t, ns, "new")
	s := k.waitService(t, ns, "new", "PoolExhausted, held down", failedWith("PoolExhausted"))
	if msg := condition(s).Message; !strings.Contains(msg, "held down") {
		t.Errorf("condition %q does not say the address is held down", msg)
	}
	if time.Now().After(h.Until.Time) {
		t.Fatal("too slow: the hold-down was over before it could be checked")
	}
	waitMetric(t, second.r, "bgplb_controller_pool_addresses",
		map[string]string{"pool": "hold-restart", "family": "ipv4", "state": "hold_down"}, 1)

	// The address comes free at the persisted end, not before.
	s = k.waitService(t, ns, "new", "the address after the hold-down", allocatedIPs("198.51.100.40"))
	c := meta.FindStatusCondition(s.Status.Conditions, ConditionAllocated)
	// The condition's time is in whole seconds, rounded down.
	if !c.LastTransitionTime.Add(time.Second).After(beforeRelease.Add(holdDown)) {
		t.Errorf("assigned at %v, before the hold-down that began after %v ended", c.LastTransitionTime, beforeRelease)
	}
	k.waitPool(t, "hold-restart", "the hold-down gone from status", func(p *v1alpha1.LoadBalancerPool) bool {
		return len(p.Status.HeldDown) == 0 && p.Status.AssignedIPv4 == 1
	})
	k.deleteService(t, ns, "new")
}
