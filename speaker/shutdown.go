package speaker

import (
	"context"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/bgplb/bgplb/speaker/plan"
)

// timeDrain times the node's drain for a sync at now that saw it leaving
// for why (leaving's words, "" when not), tells the operator when the
// phase changes, and arms the timer that syncs again at the deadline.
// The run goroutine's.
func (s *Speaker) timeDrain(why string, now time.Time) plan.Drain {
	first := !s.drainTimed
	if first {
		s.drain, s.drainTimed = startDrain(why, now, len(s.restarting) > 0), true
	}
	var d plan.Drain
	s.drain, d = nextDrain(s.drain, why, now, s.o.DrainTime)
	if old := plan.DrainPhase(s.phase.Swap(uint32(d.Phase))); old != d.Phase {
		s.noteDrain(old, d, !first)
	}
	if d.Phase == plan.Draining {
		s.drainTimer.Reset(s.drain.until.Sub(now))
	}
	return d
}

// noteDrain logs a change of drain phase and, with event, records it on
// the Node, where `kubectl describe node` shows it next to the cordon (not
// the phase a speaker starts in: every restart would repeat it).
func (s *Speaker) noteDrain(old plan.DrainPhase, d plan.Drain, event bool) {
	var reason, note string
	switch d.Phase {
	case plan.Draining:
		reason = "BGPDraining"
		note = d.Why + ": this node's routes carry GRACEFUL_SHUTDOWN (RFC 8326) so routers move new flows away; withdrawn at " +
			s.drain.until.UTC().Format(time.RFC3339)
	case plan.Drained:
		reason, note = "BGPDrained", d.Why+": this node's routes are withdrawn"
	default:
		reason, note = "BGPDrainEnded", "no longer going away: this node's routes are announced normally again"
	}
	s.log.Info("drain", "phase", d.Phase.String(), "was", old.String(), "why", d.Why, "withdraw_at", s.drain.until)
	if event && s.node != nil && s.events != nil {
		s.events.Eventf(s.node, nil, corev1.EventTypeNormal, reason, "Drain", "%s", note)
	}
}

// shutdown ends the speaker on SIGTERM. A node going away (shutdownMode)
// finishes or makes its drain, then withdraws everything and closes with
// Cease; a restart leaves the sessions that negotiated graceful restart
// to keep the routes, and marks them for the next process. stopReports
// stops the reporter's goroutine.
func (s *Speaker) shutdown(stopReports func()) {
	// L2 first: the next owner answers within a watch event, whereas the
	// BGP side below may take its drain time.
	lctx, cancel := context.WithTimeout(context.Background(), s.o.ShutdownTimeout)
	s.l2.stop(lctx)
	cancel()
	rctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	node := s.nodeNow(rctx, s.node)
	leave, why := shutdownMode(node, s.readPodFacts(rctx, node))
	cancel()
	msg := "node " + s.o.NodeName + " shutting down"
	if leave {
		s.log.Info("stopping for good: drain, then withdraw", "why", why)
		s.drainBeforeStop(why)
	} else {
		s.log.Info("stopping to restart: sessions with graceful restart keep their routes")
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.o.ShutdownTimeout)
	defer cancel()
	var kept []string
	var err error
	if leave {
		err = s.ann.Shutdown(sctx, msg)
	} else {
		kept, err = s.ann.Restart(sctx, msg)
	}
	if err != nil {
		s.log.Warn("shutdown", "err", err)
	}
	stopReports()
	if len(kept) == 0 {
		s.rep.clear(sctx, slices.Concat(s.ann.Status(), s.refused), s.owner, s.bfd.reports())
		return
	}
	// The routers keep the routes: the announcements stay true, and the
	// next process takes the reports over.
	s.log.Info("left for a graceful restart", "peers", kept, "restart_time", s.o.RestartTime)
	s.markRestart(sctx, kept)
}

// drainBeforeStop announces the last plan with GRACEFUL_SHUTDOWN until
// the drain's deadline (started now unless under way), so that a speaker
// removed for good is as gentle as a cordoned node. Nothing announced:
// nothing to wait for.
func (s *Speaker) drainBeforeStop(why string) {
	now := time.Now()
	d := s.timeDrain(why, now)
	if d.Phase != plan.Draining {
		return
	}
	snap := s.snap
	snap.Drain = d
	res := plan.Plan(snap)
	announced := false
	for name, routes := range res.Peers {
		announced = announced || len(routes) > 0
		s.ann.Announce(name, toAnnounce(routes))
	}
	if !announced {
		return
	}
	t := time.NewTimer(s.drain.until.Sub(now))
	defer t.Stop()
	<-t.C
}
