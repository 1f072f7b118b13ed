package speaker

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgplb/bgplb/speaker/plan"
)

// DefaultDrainTime is how long a node going away announces its routes
// with GRACEFUL_SHUTDOWN before it withdraws them: long enough for the
// routers to pick other paths for new flows (one UPDATE round), short
// enough to fit, with the withdrawals, in the pod's 30 s termination grace
// period when the drain starts at the SIGTERM.
const DefaultDrainTime = 10 * time.Second

// drainState is a node's drain as the run goroutine times it.
type drainState struct {
	// why takes the node away (leaving's words); "" when it is not.
	why string
	// since is when the drain began, until when its routes go.
	since, until time.Time
}

// nextDrain is the drain after a sync at now that saw the node leaving
// for why ("" not leaving), and the phase the planner applies. A drain
// keeps its deadline while the reason changes (cordoned, then tainted by
// the same tool): the routers were told once. A node back to normal ends
// the drain at once, and a later one starts afresh. A drain time of 0 or
// less withdraws at once.
func nextDrain(prev drainState, why string, now time.Time, drainTime time.Duration) (drainState, plan.Drain) {
	if why == "" {
		return drainState{}, plan.Drain{}
	}
	d := prev
	if d.why == "" {
		d.since, d.until = now, now.Add(max(drainTime, 0))
	}
	d.why = why
	if now.Before(d.until) {
		return d, plan.Drain{Phase: plan.Draining, Why: why}
	}
	return d, plan.Drain{Phase: plan.Drained, Why: why}
}

// startDrain is the drain a speaker starts with on a node that is already
// leaving for why: the one before it drained the node, or the node never
// announced (kubeadm labels control-plane nodes excluded for good), so it
// starts drained, announcing nothing, rather than send GRACEFUL_SHUTDOWN
// routes for a drain time on every start. Unless the routers kept this
// node's routes for a graceful restart (kept): those are still in use, and
// are drained as a running speaker would.
func startDrain(why string, now time.Time, kept bool) drainState {
	if why == "" || kept {
		return drainState{}
	}
	return drainState{why: why, since: now, until: now}
}

// restartCollector exports the drain phase and the graceful restarts.
type restartCollector struct {
	phase     func() uint32
	restarted func() uint64

	drain, restarts *prometheus.Desc
}

func newRestartCollector(phase func() uint32, restarted func() uint64) *restartCollector {
	return &restartCollector{phase: phase, restarted: restarted,
		drain: prometheus.NewDesc("bgplb_speaker_drain_state",
			"This node's drain (RFC 8326): 0 none, 1 draining (routes carry GRACEFUL_SHUTDOWN), 2 drained (withdrawn).", nil, nil),
		restarts: prometheus.NewDesc("bgplb_speaker_graceful_restarts_total",
			"Sessions up again after a graceful restart of this speaker (their first OPEN carried the restart bit).", nil, nil),
	}
}

func (c *restartCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.drain
	ch <- c.restarts
}

func (c *restartCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.drain, prometheus.GaugeValue, float64(c.phase()))
	ch <- prometheus.MustNewConstMetric(c.restarts, prometheus.CounterValue, float64(c.restarted()))
}
