package router

import (
	"net/netip"
	"slices"
	"time"

	"github.com/bgplb/bgplb/bgp/rib"
	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/bgp/wire"
)

// The helper side of graceful restart (RFC 4724 §4.2). When a peer's
// session ends the way a restart does (no NOTIFICATION), its paths stay in
// the RIB, and so in the kernel, under the ended session's rib.PeerID: the
// stale generation. The next session registers under a new PeerID; each
// prefix it announces (or withdraws) is withdrawn from the stale generation
// in the same batch of RIB changes, so the kernel sees at most a next-hop
// set that did not change. What the peer does not send again goes when it
// says End-of-RIB, or when a timer runs out.

// grState is a peer's graceful-restart state, guarded by peer.grMu.
type grState struct {
	// neg is the current session's negotiation; nil while it is down.
	neg *session.Negotiated
	// stale is the stale generation, 0 when there is none; fams are its
	// families still waiting for End-of-RIB or the timer.
	stale rib.PeerID
	fams  []wire.Family
	// back: the new session is up and the stale timer runs (else the
	// restart timer). deadline is when timer drops the stale generation.
	back     bool
	deadline time.Time
	timer    *time.Timer
	// timerSeq names the latest arming of timer: a callback that fired
	// but waited for grMu while the timer was re-armed or stopped finds it
	// changed and does nothing.
	timerSeq uint64
	// eor is the families of the current session whose End-of-RIB came.
	eor []wire.Family
}

// Outcomes of a peer's restart, for bgplb_router_gr_restarts_total.
const (
	grEndOfRIB     = "end_of_rib"    // the peer came back and sent End-of-RIB
	grRestartTime  = "restart_time"  // the session did not come back in time
	grStaleTime    = "stale_time"    // it came back but sent no End-of-RIB in time
	grNotPreserved = "not_preserved" // its new OPEN did not say it kept forwarding
	grReset        = "reset"         // a hard end (BFD, NOTIFICATION, a second failure, removal)
	grDisabled     = "disabled"      // gracefulRestart was turned off meanwhile
)

// grKeep decides, when a peer's established session (negotiated as n) ends
// for reason, whether its paths stay as stale: for how long (the restart
// time the peer asked for, capped by the config; 0 when they go at once),
// which families, and which negotiated families go at once all the same:
// those the peer's capability does not list (RFC 4724 §4.2).
func grKeep(cfg GracefulRestart, n *session.Negotiated, reason error) (hold time.Duration, keep, drop []wire.Family) {
	if !cfg.Enabled || n == nil || !n.KeepsRoutes(reason) {
		return 0, nil, nil
	}
	hold = min(n.RestartTime(), cfg.RestartTime)
	if hold <= 0 {
		return 0, nil, nil
	}
	keep = make([]wire.Family, 0, len(n.GracefulRestart.Families))
	for _, f := range n.GracefulRestart.Families {
		keep = append(keep, f.Family)
	}
	for _, f := range n.Families {
		if !slices.Contains(keep, f) {
			drop = append(drop, f)
		}
	}
	return hold, keep, drop
}

// grResume splits the stale families when the peer's session is back as
// n (nil when graceful restart is now off): those whose forwarding state the
// new OPEN says was preserved wait for End-of-RIB, the others go at once
// (RFC 4724 §4.2: no capability, or no F bit for the family).
func grResume(stale []wire.Family, n *session.Negotiated) (wait, drop []wire.Family) {
	for _, f := range stale {
		ok, fwd := false, false
		if n != nil {
			ok, fwd = n.GRFamily(f)
		}
		if ok && fwd {
			wait = append(wait, f)
		} else {
			drop = append(drop, f)
		}
	}
	return wait, drop
}

// eorComplete reports whether End-of-RIB came for every family of n.
func eorComplete(n *session.Negotiated, eor []wire.Family) bool {
	if n == nil {
		return false
	}
	for _, f := range n.Families {
		if !slices.Contains(eor, f) {
			return false
		}
	}
	return true
}

// grConfig is the gracefulRestart settings that apply to p now.
func (p *peer) grConfig() GracefulRestart {
	cfg := p.d.config()
	if p.dynamic {
		for _, r := range cfg.DynamicNeighbors {
			if r.Prefix == p.rangePfx {
				return r.GracefulRestart
			}
		}
		return GracefulRestart{}
	}
	for _, n := range cfg.Neighbors {
		if n.Address == p.addr {
			return n.GracefulRestart
		}
	}
	return GracefulRestart{}
}

// ourGR is the capability the router announces for settings g: it only
// helps (restart time 0: it sends no routes to keep), with the F bit when
// its kernel routes outlive its own restart, and the R bit while it waits
// for its peers after one (so they do not wait for its End-of-RIB).
func (d *Daemon) ourGR(g GracefulRestart) *session.GracefulRestart {
	if !g.Enabled {
		return nil
	}
	return &session.GracefulRestart{Forwarding: d.config().FIB.GraceTime > 0, Restarting: d.grace.waiting(),
		StillRestarting: d.grace.waiting}
}

// keep makes p's ended session a stale generation when graceful restart
// says so, and reports whether it did; if not, the caller removes p's
// paths. A stale generation from an earlier restart that has not finished
// goes first: stale paths are kept until the timers of one restart, never
// stacked.
func (p *peer) keep(reason error) bool {
	d := p.d
	if d.ctx.Err() != nil {
		return false
	}
	var gone []rib.Change
	defer func() { d.pushSweep(gone) }() // after grMu is released
	p.grMu.Lock()
	defer p.grMu.Unlock()
	neg := p.gr.neg
	p.gr.neg, p.gr.eor = nil, nil
	hold, fams, drop := grKeep(p.grConfig(), neg, reason)
	if hold == 0 {
		return false
	}
	id := rib.PeerID(p.ribID.Swap(0))
	if id == 0 {
		return true // a hard stop got there first and removed everything
	}
	p.dropStale(grReset)
	received, _, _ := d.rib.PeerTotals(id)
	p.gr.stale, p.gr.fams, p.gr.back = id, fams, false
	p.staleID.Store(uint32(id))
	p.received.Store(0)
	p.accepted.Store(0)
	for _, f := range drop {
		gone = p.dropFamily(f, gone)
	}
	p.startTimer(hold, grRestartTime)
	d.log.Info("peer restarting: its routes are kept, marked stale", "peer", p.label, "paths", received,
		"families", fams, "dropped", drop, "restartTime", hold)
	return true
}

// resume is graceful restart's part of Established: the stale families
// the new OPEN does not preserve go, the others wait for End-of-RIB under
// the stale timer.
func (p *peer) resume(n session.Negotiated) {
	var gone []rib.Change
	defer func() { p.d.pushSweep(gone) }() // after grMu is released
	p.grMu.Lock()
	defer p.grMu.Unlock()
	p.gr.neg, p.gr.eor = &n, nil
	if p.gr.stale == 0 {
		return
	}
	cfg := p.grConfig()
	neg := &n
	if !cfg.Enabled {
		neg = nil
	}
	wait, drop := grResume(p.gr.fams, neg)
	if len(wait) == 0 {
		outcome := grNotPreserved
		if !cfg.Enabled {
			outcome = grDisabled
		}
		p.d.log.Info("peer back without its forwarding state: its stale routes are removed", "peer", p.label)
		p.dropStale(outcome)
		return
	}
	for _, f := range drop {
		gone = p.dropFamily(f, gone)
	}
	p.gr.fams, p.gr.back = wait, true
	p.startTimer(cfg.StaleTime, grStaleTime)
	p.d.log.Info("peer back after a restart: stale routes wait for its End-of-RIB", "peer", p.label,
		"families", wait, "dropped", drop, "staleTime", cfg.StaleTime)
}

// endOfRIB is graceful restart's part of EndOfRIB: the stale paths of f
// that were not sent again go. It reports whether every family of the
// session has now sent End-of-RIB.
func (p *peer) endOfRIB(f wire.Family) bool {
	var gone []rib.Change
	defer func() { p.d.pushSweep(gone) }() // after grMu is released
	p.grMu.Lock()
	defer p.grMu.Unlock()
	if !slices.Contains(p.gr.eor, f) {
		p.gr.eor = append(p.gr.eor, f)
	}
	if p.gr.stale != 0 && p.gr.back && slices.Contains(p.gr.fams, f) {
		p.gr.fams = slices.DeleteFunc(p.gr.fams, func(g wire.Family) bool { return g == f })
		if len(p.gr.fams) == 0 {
			p.d.log.Info("End-of-RIB: stale routes not sent again are removed", "peer", p.label, "family", f)
			p.dropStale(grEndOfRIB)
		} else {
			gone = p.dropFamily(f, gone)
		}
	}
	return eorComplete(p.gr.neg, p.gr.eor)
}

// startTimer (re)arms the timer that drops the stale generation when
// after has passed, counting outcome; p.grMu is held.
func (p *peer) startTimer(after time.Duration, outcome string) {
	p.stopTimer()
	seq := p.gr.timerSeq
	p.gr.deadline = time.Now().Add(after)
	p.gr.timer = time.AfterFunc(after, func() { p.expire(seq, outcome) })
}

// expire is the callback of the timer armed as seq. Stop cannot recall
// a callback that already runs: one that waited for grMu while resume
// re-armed the timer (the peer came back) must not drop what now waits
// for End-of-RIB.
func (p *peer) expire(seq uint64, outcome string) {
	p.grMu.Lock()
	if p.gr.timerSeq != seq || p.gr.stale == 0 || p.d.ctx.Err() != nil {
		p.grMu.Unlock()
		return
	}
	p.d.log.Warn("graceful restart timed out: stale routes are removed", "peer", p.label, "timer", outcome)
	p.dropStale(outcome)
	p.grMu.Unlock()
	// BFD guarded the stale routes while the session was down.
	p.syncBFD()
}

// stopTimer stops the timer and disowns any callback of it already
// running; p.grMu is held.
func (p *peer) stopTimer() {
	p.gr.timerSeq++
	if p.gr.timer != nil {
		p.gr.timer.Stop()
		p.gr.timer = nil
	}
	p.gr.deadline = time.Time{}
}

// dropStale removes the stale generation, if any, and counts how its
// restart ended; p.grMu is held.
func (p *peer) dropStale(outcome string) {
	id := p.gr.stale
	if id == 0 {
		return
	}
	p.stopTimer()
	p.d.removePaths(id)
	p.gr.stale, p.gr.fams, p.gr.back = 0, nil, false
	p.staleID.Store(0)
	p.d.metrics.GRRestarts.WithLabelValues(outcome).Inc()
}

// dropFamily withdraws the stale generation's paths of one family, the
// others waiting on, and appends the Loc-RIB changes to out for the caller
// to push once p.grMu is released: a full FIB queue must not block
// grStatus. Pushed later they still apply in order (rib.Change.Seq).
// p.grMu is held.
func (p *peer) dropFamily(f wire.Family, out []rib.Change) []rib.Change {
	d, id := p.d, p.gr.stale
	var gone []wire.NLRI
	_ = d.rib.AdjRIBIn(id, f, func(pfx netip.Prefix, v rib.PathView) bool {
		gone = append(gone, wire.NLRI{Prefix: pfx, PathID: v.PathID})
		return true
	})
	if len(gone) == 0 {
		return out
	}
	var cs rib.Changes
	if err := d.rib.Update(id, f, nil, netip.Addr{}, nil, gone, &cs); err != nil {
		d.log.Debug("dropping stale routes", "peer", p.label, "family", f, "err", err)
	}
	return append(out, cs.List...)
}

// grStatus is p's graceful-restart state for display: whether the current
// session negotiated it, the stale generation's paths and when they go.
type grStatus struct {
	negotiated bool
	restarting bool // the session is down: the restart timer runs
	stale      rib.PeerID
	fams       []wire.Family
	deadline   time.Time
}

func (p *peer) grStatus() grStatus {
	p.grMu.Lock()
	defer p.grMu.Unlock()
	return grStatus{negotiated: p.gr.neg != nil && p.gr.neg.GracefulRestart != nil, restarting: p.gr.stale != 0 && !p.gr.back,
		stale: p.gr.stale, fams: slices.Clone(p.gr.fams), deadline: p.gr.deadline}
}
