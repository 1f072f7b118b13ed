package announce

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/bgp/wire"
)

// maxSkippedShown bounds the skipped routes PeerStatus lists (it counts
// them all): a planner gone wrong may pass thousands of bad routes.
const maxSkippedShown = 16

// peer is one configured router: its session, and the worker goroutine that
// keeps the session's Adj-RIB-Out equal to the desired routes. The session
// package calls the Handler methods; they only record and wake.
type peer struct {
	a *Announcer
	// cfg is fixed for the peer's life but for NextHop4/6, which Run's
	// goroutine changes under Announcer.mu (the worker reads in.nh4/6).
	cfg  PeerConfig
	sess *session.Peer
	log  *slog.Logger
	wake chan struct{} // capacity 1: a pending wake-up absorbs the others
	done chan struct{} // closed when the worker and the session have ended
	// cancel ends the peer's goroutines; set by the Run goroutine at start.
	cancel context.CancelFunc

	mu  sync.Mutex // guards in
	in  inputs
	out outView // published by the worker; has its own lock
	// kept: the worker left the session for a graceful restart (Restart),
	// the peer keeping our routes.
	kept atomic.Bool
}

// inputs is what other goroutines tell the worker. The worker copies it
// under peer.mu at the start of each step.
type inputs struct {
	nh4, nh6 netip.Addr // PeerConfig.NextHop4/6, changeable without a restart
	// epoch counts session ups and downs, so the worker notices a session
	// that went down and up again between two steps.
	epoch uint64
	neg   *session.Negotiated // nil while not established
	// negID is the session package's own *Negotiated for this session,
	// which SendTo takes so that a sync's bytes never reach a later
	// session (it refuses with session.ErrSessionChanged).
	negID      *session.Negotiated
	updateBase uint64 // session UpdatesOut when it was established
	refresh    bool   // the peer asked for a ROUTE-REFRESH
	stop       string // Shutdown's message, when stopping is set
	stopping   bool
	keep       bool // Restart: leave a graceful-restart session as it is
	// sendErr is the last failure of a sync that was not the session
	// going down.
	sendErr error
}

// outView is what the worker publishes for Status and the view. The worker
// writes it, and changes the Adj-RIB-Out, under mu; readers take mu.RLock.
// It is apart from peer.mu so that a long diff never delays Announce or a
// session event.
type outView struct {
	mu          sync.RWMutex
	rib         *adjRIBOut // nil while no session
	desired     int
	skipped     []SkippedRoute
	skippedN    int
	syncedGen   uint64
	syncedEpoch uint64
	synced      bool
}

func newPeer(a *Announcer, c PeerConfig) *peer {
	p := &peer{a: a, cfg: c, wake: make(chan struct{}, 1), done: make(chan struct{}), log: a.log.With("peer", c.Name)}
	p.in.nh4, p.in.nh6 = c.NextHop4, c.NextHop6
	p.sess = session.New(c.Session, p, p.log)
	return p
}

// poke wakes the worker without blocking.
func (p *peer) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *peer) update(f func(in *inputs)) {
	p.mu.Lock()
	f(&p.in)
	p.mu.Unlock()
	p.poke()
}

// Established implements session.Handler.
func (p *peer) Established(s *session.Peer, n session.Negotiated) {
	info := s.Info()
	p.update(func(in *inputs) {
		in.epoch++
		in.neg, in.negID, in.updateBase = &n, info.Negotiated, info.UpdatesOut
	})
	if f := p.a.opts.OnSession; f != nil {
		f(p.cfg.Name, true, info.Local.Addr().Unmap())
	}
}

// Down implements session.Handler.
func (p *peer) Down(_ *session.Peer, _ error) {
	p.update(func(in *inputs) {
		in.epoch++
		in.neg, in.negID = nil, nil
	})
	if f := p.a.opts.OnSession; f != nil {
		f(p.cfg.Name, false, netip.Addr{})
	}
}

// Update implements session.Handler: a speaker announces and imports
// nothing, so the routers' routes are dropped as they arrive.
func (p *peer) Update(*session.Peer, *wire.Update, wire.Action) error { return nil }

// EndOfRIB implements session.Handler.
func (p *peer) EndOfRIB(*session.Peer, wire.Family) {}

// RouteRefresh implements session.RouteRefreshHandler: a plain request
// (subtype 0) gets everything announced again.
func (p *peer) RouteRefresh(_ *session.Peer, rr wire.RouteRefresh) {
	if rr.Subtype == 0 {
		p.log.Debug("ROUTE-REFRESH received: sending everything again", "family", rr.Family)
		p.update(func(in *inputs) { in.refresh = true })
	}
}

// run is the peer's life: the session in its own goroutine, the worker in
// this one. The session ends when the worker does, whichever ended first.
func (p *peer) run(ctx context.Context) {
	defer close(p.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := p.sess.Run(ctx); err != nil {
			p.log.Error("session ended", "err", err)
			p.setSendErr(err)
		}
	})
	w := worker{p: p, ctx: ctx}
	w.loop()
	cancel()
	wg.Wait()
}

// loop steps on every wake-up until Shutdown or the end of Run.
func (w *worker) loop() {
	for !w.step() {
		select {
		case <-w.ctx.Done():
			return
		case <-w.p.wake:
		}
	}
}

// worker is the state of a peer's worker goroutine, which alone touches it.
type worker struct {
	p   *peer
	ctx context.Context

	norm    normalizer
	wants   []wanted
	invalid []SkippedRoute
	gen     uint64 // of the desired set wants was made from
	haveGen bool

	epoch uint64     // of the session rib belongs to
	rib   *adjRIBOut // nil while no session
	b     *builder
	negID *session.Negotiated
	base  uint64 // UpdatesOut of the session when it came up
	sent  uint64 // UPDATE messages handed to the session since
	ch    changes
}

// step brings the session up to date with the latest inputs. It returns
// true when the peer is done (Shutdown).
func (w *worker) step() bool {
	p := w.p
	routes, gen := p.a.desired(p.cfg.Name)
	p.mu.Lock()
	in := p.in
	p.in.refresh = false
	p.mu.Unlock()
	if in.stopping && in.keep && in.neg != nil && in.neg.GracefulRestart != nil {
		w.leave()
		return true
	}
	if in.stopping {
		routes, gen = nil, 0
		w.haveGen = false // never reused: the worker ends after this step
	}
	if !w.haveGen || gen != w.gen || in.stopping {
		w.wants, w.invalid = w.norm.normalize(routes, w.wants[:0], w.invalid[:0])
		w.gen, w.haveGen = gen, !in.stopping
	}
	if in.neg == nil {
		w.sessionGone()
		w.publish(len(routes), gen, in.epoch, false)
		if in.stopping {
			w.close(in.stop)
			return true
		}
		return false
	}
	full := in.epoch != w.epoch || w.rib == nil
	if full {
		w.newSession(&in)
	} else if in.refresh {
		w.rib.resendAll()
	}
	ok := w.sync(&in, full)
	w.publish(len(routes), gen, in.epoch, ok)
	if in.stopping {
		w.waitWritten()
		w.close(in.stop)
		return true
	}
	return false
}

// newSession starts an empty Adj-RIB-Out for a session that just came up.
func (w *worker) newSession(in *inputs) {
	w.epoch, w.negID, w.base, w.sent = in.epoch, in.negID, in.updateBase, 0
	w.rib = newAdjRIBOut()
	w.rib.external = in.neg.External
	w.b = newBuilder(sessionParams{localAS: w.p.cfg.Session.LocalAS, external: in.neg.External, tx: in.neg.Tx}, w.emit)
	w.p.out.mu.Lock()
	w.p.out.rib = w.rib
	w.p.out.mu.Unlock()
	w.p.log.Info("session up: sending the full set", "routes", len(w.wants), "families", in.neg.Families)
}

// sessionGone forgets the Adj-RIB-Out of a session that went down: the
// peer dropped everything it had from us.
func (w *worker) sessionGone() {
	if w.rib == nil {
		return
	}
	w.rib, w.b, w.negID = nil, nil, nil
	w.p.out.mu.Lock()
	w.p.out.rib = nil
	w.p.out.mu.Unlock()
}

// sync diffs, encodes and sends; after a new session it ends with
// End-of-RIB for every negotiated family. It reports whether everything
// was handed to the session.
func (w *worker) sync(in *inputs, full bool) bool {
	p := w.p
	local := netip.Addr{}
	if in.neg.Local.IsValid() {
		local = in.neg.Local.Addr()
	}
	t := newTarget(in.neg.Families, local, in.nh4, in.nh6, in.neg.Tx.ExtendedNextHop.Has(wire.IPv4Unicast))
	w.ch.reset()
	p.out.mu.Lock()
	w.rib.diff(w.wants, &t, time.Now().UnixNano(), &w.ch)
	p.out.mu.Unlock()
	if w.ch.empty() && !full {
		return true
	}
	err := w.b.build(&w.ch)
	if len(w.b.failed) > 0 {
		failed := make([]netip.Prefix, len(w.b.failed))
		for i, f := range w.b.failed {
			failed[i] = f.Prefix
		}
		p.out.mu.Lock()
		w.rib.forget(failed)
		p.out.mu.Unlock()
		w.ch.skipped = append(w.ch.skipped, w.b.failed...)
	}
	if err == nil && full {
		err = w.b.endOfRIB(in.neg.Families)
	}
	switch {
	case err == nil:
		p.log.Debug("sync", "announced", len(w.ch.announce), "withdrawn", len(w.ch.withdraw), "full", full)
	case errors.Is(err, session.ErrNotEstablished) || errors.Is(err, session.ErrSessionChanged) || w.ctx.Err() != nil:
		// The Down event is on its way (or Run is ending): the next
		// step starts over with a new Adj-RIB-Out.
		return false
	default:
		// Only a bug gets here (Send refusing what the builder made):
		// say so loudly. There is no retry loop; the next change or
		// session retries.
		p.log.Error("sending updates", "err", err)
	}
	p.setSendErr(err)
	return err == nil
}

// setSendErr records the outcome of a sync for Status, without waking the
// worker (which would only sync again).
func (p *peer) setSendErr(err error) {
	p.mu.Lock()
	p.in.sendErr = err
	p.mu.Unlock()
}

// emit hands one chunk of UPDATEs to the session it was built for.
func (w *worker) emit(b []byte, msgs int) error {
	if err := w.p.sess.SendTo(w.ctx, w.negID, b); err != nil {
		return err
	}
	w.sent += uint64(msgs)
	return nil
}

// waitWritten waits until the session's writer has written every UPDATE
// the worker handed it (the session counts them once flushed), or the
// session went away, or ctx ended. The session writes what is queued
// before its closing NOTIFICATION, but only within its own few-second
// notify timeout, and the queue may hold many 256 KiB chunks for a slow
// peer: waiting here lets the withdrawals take what the Shutdown's ctx
// allows instead.
func (w *worker) waitWritten() {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		info := w.p.sess.Info()
		if w.negID == nil || info.Negotiated != w.negID || info.UpdatesOut-w.base >= w.sent {
			return
		}
		select {
		case <-w.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// leave ends a session that negotiated graceful restart without a
// NOTIFICATION and without withdrawing: the peer keeps our routes for the
// restart time we announced, until the new process sends them again and
// End-of-RIB. What was handed to the session is written first, so the
// routes the peer keeps are the last ones we meant.
func (w *worker) leave() {
	w.waitWritten()
	if err := w.p.sess.Abandon(w.ctx); err != nil {
		w.p.log.Warn("leaving the session", "err", err)
		return
	}
	w.p.kept.Store(true)
	w.p.log.Info("session left for a graceful restart: the peer keeps our routes", "routes", len(w.rib.routes))
}

// close ends the session with Cease / Administrative Shutdown and msg.
func (w *worker) close(msg string) {
	w.p.closeSession(w.ctx, wire.NewShutdown(wire.CeaseAdminShutdown, msg))
}

// closeSession ends the session with n (nothing to do if its Run has
// already returned: Close returns at once then).
func (p *peer) closeSession(ctx context.Context, n *wire.Notification) {
	if err := p.sess.Close(ctx, n); err != nil {
		p.log.Warn("closing the session", "err", err)
	}
}

// publish makes the worker's results visible to Status and the view.
func (w *worker) publish(desired int, gen, epoch uint64, synced bool) {
	o := &w.p.out
	o.mu.Lock()
	defer o.mu.Unlock()
	o.desired, o.syncedGen, o.syncedEpoch, o.synced = desired, gen, epoch, synced && w.rib != nil
	o.skippedN = len(w.invalid) + len(w.ch.skipped)
	o.skipped = o.skipped[:0]
	for _, s := range [][]SkippedRoute{w.invalid, w.ch.skipped} {
		for _, r := range s {
			if len(o.skipped) < maxSkippedShown {
				o.skipped = append(o.skipped, r)
			}
		}
	}
	if w.rib == nil {
		// Without a session only the always-invalid routes are known.
		o.skippedN = len(w.invalid)
	}
}
