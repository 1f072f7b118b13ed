package speaker

import (
	"testing"
	"time"

	"github.com/bgplb/bgplb/speaker/plan"
)

func TestNextDrain(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	draining := drainState{why: "cordoned", since: at(0), until: at(10)}
	for _, tc := range []struct {
		name      string
		prev      drainState
		why       string
		now       time.Time
		drainTime time.Duration
		want      drainState
		phase     plan.DrainPhase
	}{
		{"normal", drainState{}, "", at(0), 10 * time.Second, drainState{}, plan.NotDraining},
		{"cordon starts a drain", drainState{}, "cordoned", at(0), 10 * time.Second, draining, plan.Draining},
		{"still draining", draining, "cordoned", at(9), 10 * time.Second, draining, plan.Draining},
		{"deadline reached", draining, "cordoned", at(10), 10 * time.Second, draining, plan.Drained},
		{"a new reason keeps the deadline", draining, "tainted x:NoSchedule", at(5), 10 * time.Second,
			drainState{why: "tainted x:NoSchedule", since: at(0), until: at(10)}, plan.Draining},
		{"uncordon ends it", draining, "", at(5), 10 * time.Second, drainState{}, plan.NotDraining},
		{"no drain time: drained at once", drainState{}, "cordoned", at(3), 0,
			drainState{why: "cordoned", since: at(3), until: at(3)}, plan.Drained},
	} {
		got, d := nextDrain(tc.prev, tc.why, tc.now, tc.drainTime)
		if got != tc.want || d.Phase != tc.phase || d.Why != tc.why {
			t.Errorf("%s: nextDrain = %+v %+v, want %+v phase %v", tc.name, got, d, tc.want, tc.phase)
		}
	}
}

func TestStartDrain(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		why   string
		kept  bool
		phase plan.DrainPhase
	}{
		{"normal node", "", false, plan.NotDraining},
		{"excluded for good: drained at once", "label x", false, plan.Drained},
		{"cordoned while the routers keep our routes: drained gently", "cordoned", true, plan.Draining},
	} {
		d, p := nextDrain(startDrain(tc.why, now, tc.kept), tc.why, now, 10*time.Second)
		if p.Phase != tc.phase {
			t.Errorf("%s: phase %v (%+v), want %v", tc.name, p.Phase, d, tc.phase)
		}
	}
}
