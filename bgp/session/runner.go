package session

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
)

// runner is the state of the peer's FSM worker, which alone touches it: it feeds
// events to the FSM of each connection and executes the actions.
type runner struct {
	p   *Peer
	cfg Config
	ctx context.Context

	// bare is the FSM state while there is no primary connection
	// (Idle, Connect or Active).
	bare State
	// primary is the connection whose state the peer shows; secondary is a
	// second one that appeared during the OPEN exchange and waits for the
	// collision to be decided (RFC 4271 §6.8), or, while the primary is
	// established with graceful restart, the peer's new session after a
	// restart whose end we did not see.
	primary, secondary *conn

	retry      fsmTimer
	unwatch    func() bool // stops watching Run's context
	dialCancel context.CancelFunc
	dialGen    uint64
	dials      sync.WaitGroup

	stopped  bool
	stopDone []chan struct{}

	// failures counts the session's failures in a row, for damping;
	// estSince is when the current session became Established (zero if
	// none is); holdUntil ends the damping hold in which the peer refuses
	// incoming connections.
	failures  int
	estSince  time.Time
	holdUntil time.Time
}

// jitter scales d by a factor in [0.75, 1) for r in [0, 1), as RFC 4271 §10
// asks of the keepalive and connect retry timers, so peers do not synchronise.
func jitter(d time.Duration, r float64) time.Duration {
	return time.Duration(float64(d) * (0.75 + 0.25*r))
}

var (
	keepaliveMsg = wire.AppendKeepalive(nil)
	collisionN   = wire.Notification{Code: wire.ErrCodeCease, Subcode: wire.CeaseCollision}
	rejectedN    = wire.Notification{Code: wire.ErrCodeCease, Subcode: wire.CeaseConnectionRejected}
)

func (r *runner) handle(in input) {
	switch in.kind {
	case inConn:
		if r.primary == nil && time.Now().Before(r.holdUntil) {
			// Damped (RFC 4271 §8.1.1: Idle refuses connections).
			r.p.refusedDamped.Add(1)
			r.p.log.Debug("refusing incoming connection: damped after repeated failures",
				"remote", in.nc.RemoteAddr(), "until", r.holdUntil)
			in.nc.Close()
			return
		}
		r.newConn(in.nc, true)
	case inDialed:
		if in.gen != r.dialGen || r.dialCancel == nil {
			if in.nc != nil {
				in.nc.Close()
			}
			return
		}
		r.cancelDial()
		if in.err != nil {
			r.setErr(fmt.Errorf("connect: %w", in.err))
			if r.primary == nil {
				r.feed(nil, evTCPFailed, nil, in.err)
			}
			return
		}
		r.newConn(in.nc, false)
	case inEvent:
		if in.c == nil || (in.c != r.primary && in.c != r.secondary) {
			return // from a connection already closed
		}
		r.connEvent(in)
	case inStop:
		r.stopDone = append(r.stopDone, in.done)
		r.stop(in.notif)
	}
}

func (r *runner) connEvent(in input) {
	c := in.c
	switch in.ev {
	case evOpen:
		r.gotOpen(c, in.open)
	case evNotification:
		r.p.log.Warn("NOTIFICATION received", "notification", describe(in.notif))
		r.feed(c, evNotification, nil, &NotificationError{Notification: *in.notif})
	default:
		r.feed(c, in.ev, in.notif, in.err)
	}
	if in.wantAck {
		a := ack{ok: c.state >= OpenSent && !c.stopping()}
		if a.ok && c.state == Established {
			a.neg = c.neg
		}
		c.ack <- a // buffered; the reader waits for exactly one
	}
}

// gotOpen checks the peer's OPEN and decides a collision with the other
// connection, if any, before the FSM moves on.
func (r *runner) gotOpen(c *conn, o *wire.Open) {
	neg, err := negotiate(r.cfg, r.p.local, o)
	if err != nil {
		n := notificationFor(err)
		r.feed(c, evMsgErr, &n, err)
		return
	}
	neg.Local, neg.Remote = c.local, c.remote
	c.neg = &neg
	if other := r.other(c); other != nil && restartable(other) && peerRestarted(c, other, &neg) {
		// Not a collision: the peer restarted and its old connection
		// is dead, though we did not notice. The old session ends as a
		// lost connection does (its routes kept for the restart), and
		// the new one carries on (RFC 4724 §4.2).
		r.p.log.Info("new OPEN while established: the peer restarted", "remote", c.remote, "peer_id", neg.PeerID)
		r.feed(other, evTCPFailed, nil, ErrPeerRestarted)
		r.feed(c, evOpen, nil, nil)
		return
	}
	if other := r.other(c); other != nil {
		loser := c
		if other.state != Established {
			loser = r.collisionLoser(c, other, &neg)
		}
		r.p.log.Info("connection collision", "closing", dirName(loser), "local_id", r.cfg.RouterID, "peer_id", neg.PeerID)
		n := collisionN
		r.feed(loser, evCollisionDump, &n, ErrCollision)
		if loser == c {
			return
		}
	}
	r.feed(c, evOpen, nil, nil)
}

// restartable reports whether c is an established session that a new
// OPEN from the peer replaces: it negotiated graceful restart.
func restartable(c *conn) bool {
	return c.state == Established && c.neg.KeepsRoutes(ErrPeerRestarted)
}

// peerRestarted decides whether c, whose OPEN negotiated n, replaces the
// established session other as the peer's restart rather than losing a
// collision: the peer dialled twice (it never does unless it gave up on
// the first connection), or its OPEN says it restarted (the R bit). Two
// speakers opening at once in both directions send neither.
func peerRestarted(c, other *conn, n *Negotiated) bool {
	return c.incoming == other.incoming || n.GracefulRestart != nil && n.GracefulRestart.Restarting
}

func dirName(c *conn) string {
	if c.incoming {
		return "incoming"
	}
	return "outgoing"
}

func (r *runner) other(c *conn) *conn {
	switch c {
	case r.primary:
		return r.secondary
	case r.secondary:
		return r.primary
	}
	return nil
}

// collisionLoser picks the connection to close when c received an OPEN while
// other is still in the OPEN exchange. Two connections in the same direction
// can only come from a peer that gave up on the first: the older one goes.
func (r *runner) collisionLoser(c, other *conn, n *Negotiated) *conn {
	if c.incoming == other.incoming {
		return r.primary
	}
	in, out := c, other
	if !c.incoming {
		in, out = other, c
	}
	if keepIncoming(r.cfg.RouterID, n.PeerID, r.cfg.LocalAS, n.PeerAS) {
		return out
	}
	return in
}

// newConn takes a new TCP connection, dialled or accepted.
func (r *runner) newConn(nc net.Conn, incoming bool) {
	p := r.p
	c := newConn(nc, incoming)
	c.lastRecv.Store(p.now())
	go p.readLoop(c)
	p.log.Debug("connection", "direction", dirName(c), "local", c.local, "remote", c.remote)
	switch {
	case r.primary == nil:
		c.state = r.bare
		r.primary = c
	case r.secondary == nil && (r.primary.state < Established || restartable(r.primary)):
		// A second connection during the OPEN exchange is a collision;
		// while established, one from a peer that negotiated graceful
		// restart may be the peer back from a restart (see gotOpen).
		c.state = Active
		r.secondary = c
	default:
		n := rejectedN
		if r.primary.state == Established {
			n = collisionN // RFC 4271 §6.8: the established session stays
		}
		p.log.Info("refusing extra connection", "remote", c.remote, "state", r.primary.state)
		r.closeConn(c, &n)
		return
	}
	r.feed(c, evTCPConnected, nil, nil)
}

// feed runs one FSM transition for connection c (nil: the peer without a
// connection) and executes its actions, in the order of the action constants.
func (r *runner) feed(c *conn, ev event, carried *wire.Notification, cause error) {
	from := r.bare
	if c != nil {
		from = c.state
	}
	to, acts := transition(from, ev, r.cfg.Passive)
	if c != nil && c == r.secondary {
		// The collision candidate's FSM never schedules connections.
		acts &^= aConnect | aStartRetry | aStopRetry | aAutoRestart
	}
	if from != to && (c == nil || c == r.primary) {
		r.p.log.Info("state", "from", from, "to", to, "event", ev)
	}
	if acts&aStopRetry != 0 {
		r.retry.stop()
	}
	r.connTimers(c, acts)
	n := r.notification(from, acts, carried)
	if acts&(aNotifyFSM) != 0 && cause == nil {
		cause = fmt.Errorf("unexpected %v in %v", ev, from)
	}
	reason := cause
	if n != nil {
		reason = &NotificationError{Notification: *n, Sent: true, Err: cause}
		r.p.log.Warn("NOTIFICATION sent", "notification", describe(n), "cause", cause)
	}
	var postErr error
	if c != nil {
		c.state = to
	} else {
		r.bare = to
	}
	if acts&aClose != 0 {
		if reason != nil {
			r.setErr(reason)
		}
		if c != nil {
			r.closeConn(c, n)
			if r.detach(c, to) {
				acts &^= aConnect | aStartRetry | aAutoRestart
			}
		} else {
			r.cancelDial()
		}
	}
	if acts&aEstablished != 0 {
		postErr = r.established(c)
	}
	if acts&aDown != 0 {
		r.down(reason)
	}
	r.schedule(acts, reason)
	r.publish()
	if postErr != nil {
		n := notificationFor(postErr)
		r.feed(c, evLocalErr, &n, postErr)
	}
}

// connTimers executes the actions on c's messages and timers.
func (r *runner) connTimers(c *conn, acts actions) {
	if c == nil {
		return
	}
	if acts&aSendOpen != 0 {
		if r.restartOver() {
			r.restarted()
		}
		r.p.queue(c, r.p.open)
	}
	if acts&aHoldLarge != 0 {
		c.holdDur = openSentHoldTime
		c.hold.reset(r.p, c, timerHold, c.holdDur)
	}
	if acts&aStartTimers != 0 {
		c.holdDur, c.kaDur = c.neg.HoldTime, c.neg.KeepaliveTime
		c.hold.stop()
		if c.holdDur > 0 {
			c.hold.reset(r.p, c, timerHold, c.holdDur)
		}
	}
	if acts&aSendKeepalive != 0 {
		r.p.queue(c, keepaliveMsg)
		if c.kaDur > 0 {
			c.ka.reset(r.p, c, timerKeepalive, jitter(c.kaDur, rand.Float64()))
		}
	}
}

// notification is the NOTIFICATION the actions ask to send, or nil.
func (r *runner) notification(from State, acts actions, carried *wire.Notification) *wire.Notification {
	switch {
	case acts&aNotifyFSM != 0:
		return &wire.Notification{Code: wire.ErrCodeFSM, Subcode: fsmErrorSubcode(from)}
	case acts&aNotifyHold != 0:
		return &wire.Notification{Code: wire.ErrCodeHoldTimer}
	case acts&aNotifySendHold != 0:
		return &wire.Notification{Code: wire.ErrCodeSendHoldTimer}
	case acts&aNotifyCarried != 0:
		return carried
	}
	return nil
}

// schedule executes the actions on the connect retry timer and dialling;
// reason is why the session ended, if it did.
func (r *runner) schedule(acts actions, reason error) {
	if acts&aStartRetry != 0 {
		r.retry.reset(r.p, nil, timerRetry, jitter(r.cfg.ConnectRetry, rand.Float64()))
	}
	if acts&aAutoRestart != 0 && !r.stopped {
		d := jitter(r.cfg.ConnectRetry, rand.Float64())
		if r.cfg.Passive {
			d = 0 // nothing to pace: the peer decides when to connect
		}
		r.retry.reset(r.p, nil, timerRetry, max(d, r.failed(time.Now(), reason)))
	}
	if acts&aConnect != 0 && !r.stopped {
		r.dial()
	}
}

// failed counts a failure at now and returns the damping hold it earns,
// recording its end for newConn. A session the peer ended on purpose is no
// failure.
func (r *runner) failed(now time.Time, reason error) time.Duration {
	if !r.estSince.IsZero() && now.Sub(r.estSince) >= r.cfg.MaxIdleHoldTime {
		r.failures = 0 // that session was stable: this is a new story
	}
	r.estSince = time.Time{}
	if deliberate(reason) {
		return 0
	}
	r.failures++
	hold := idleHold(r.cfg.IdleHoldTime, r.cfg.MaxIdleHoldTime, r.failures)
	if hold > 0 {
		r.holdUntil = now.Add(hold)
		r.p.log.Warn("damping a failing peer", "failures", r.failures, "idle_hold", hold)
	}
	return hold
}

// deliberate reports a session the peer closed on purpose: with a Cease
// for an administrative shutdown or reset, or a change of its
// configuration. Damping it would only slow down what its operator asked
// for, such as a node restarting its speaker for an upgrade.
func deliberate(err error) bool {
	var ne *NotificationError
	if !errors.As(err, &ne) || ne.Sent || ne.Notification.Code != wire.ErrCodeCease {
		return false
	}
	switch ne.Notification.Subcode {
	case wire.CeaseAdminShutdown, wire.CeaseAdminReset, wire.CeasePeerDeconfigured, wire.CeaseOtherConfigChange:
		return true
	}
	return false
}

// detach forgets a closed connection. When the primary goes and a secondary
// is still in its OPEN exchange, the secondary takes over and no reconnect
// is scheduled: it reports true.
func (r *runner) detach(c *conn, to State) bool {
	switch c {
	case r.secondary:
		r.secondary = nil
	case r.primary:
		r.primary = nil
		r.bare = to
		if r.secondary != nil {
			r.primary, r.secondary = r.secondary, nil
			r.retry.stop()
			r.cancelDial()
			return true
		}
	}
	return false
}

// closeConn sends n (if not nil) as the connection's last message, then
// closes it and waits for its reader and writer goroutines.
func (r *runner) closeConn(c *conn, n *wire.Notification) {
	c.hold.stop()
	c.ka.stop()
	if n != nil {
		var o *wire.Options
		if c.neg != nil {
			o = &c.neg.Tx
		}
		if sent := r.p.sendFinal(c, wire.AppendNotification(nil, n, o)); sent != nil {
			t := time.NewTimer(notifyTimeout)
			select {
			case <-sent:
			case <-t.C:
			}
			t.Stop()
		}
	}
	close(c.stop)
	deadline := time.Now()
	if n != nil {
		deadline = deadline.Add(linger)
	}
	_ = c.nc.SetReadDeadline(deadline)
	<-c.readerDone
	c.nc.Close()
	c.endWriter()
	r.p.mu.Lock()
	if r.p.out == c {
		r.p.out = nil
	}
	r.p.mu.Unlock()
}

// established publishes c as the peer's session and tells the handler.
func (r *runner) established(c *conn) error {
	if other := r.other(c); other != nil {
		n := collisionN
		r.feed(other, evCollisionDump, &n, ErrCollision)
	}
	if c == r.secondary { // cannot happen: collisions end at the OPEN
		r.primary, r.secondary = c, nil
	}
	p := r.p
	p.mu.Lock()
	p.out, p.neg, p.since, p.curConn = c, c.neg, time.Now(), c
	p.mu.Unlock()
	r.estSince = time.Now()
	openExchangeDone(c.nc)
	r.restarted()
	// The handler may look at the peer: it must see it Established.
	r.publish()
	p.log.Info("established", "peer_as", c.neg.PeerAS, "peer_id", c.neg.PeerID, "hold", c.neg.HoldTime,
		"families", c.neg.Families, "remote", c.remote)
	return p.safely("Established", func() { p.h.Established(p, *c.neg) })
}

// restartOver reports whether our OPEN still has the R bit though
// Config.GracefulRestart.StillRestarting says the restart is over.
func (r *runner) restartOver() bool {
	g, l := r.cfg.GracefulRestart, r.p.local.Caps.GracefulRestart
	return g != nil && g.StillRestarting != nil && l != nil && l.Restarting && !g.StillRestarting()
}

// restarted clears the R bit once a session came up: it marks only the
// first OPEN after a restart (RFC 4724 §3), and a later session of this
// process is no restart the peer should wait for.
func (r *runner) restarted() {
	g := r.p.local.Caps.GracefulRestart
	if g == nil || !g.Restarting {
		return
	}
	local := *r.p.local
	local.Caps.GracefulRestart = &wire.GracefulRestart{Notification: g.Notification, Time: g.Time, Families: g.Families}
	b, err := wire.AppendOpen(nil, &local)
	if err != nil {
		r.p.log.Error("our OPEN without the restart bit", "err", err)
		return
	}
	r.p.local, r.p.open = &local, b
}

// down tells the handler the established session ended.
func (r *runner) down(reason error) {
	p := r.p
	p.mu.Lock()
	p.out, p.neg, p.since = nil, nil, time.Now()
	p.mu.Unlock()
	p.flaps.Add(1)
	p.log.Info("session down", "reason", reason)
	_ = p.safely("Down", func() { p.h.Down(p, reason) })
}

// safely calls a handler method, turning a panic into an error.
func (p *Peer) safely(what string, f func()) (err error) {
	defer func() {
		if v := recover(); v != nil {
			p.log.Error("panic in handler", "method", what, "panic", v)
			err = fmt.Errorf("internal error: panic in %s: %v", what, v)
		}
	}()
	f()
	return nil
}

func (r *runner) setErr(err error) {
	r.p.mu.Lock()
	r.p.lastErr = err
	r.p.mu.Unlock()
}

// publish makes the peer's state visible to State and Info.
func (r *runner) publish() {
	s, c := r.bare, r.primary
	if c != nil {
		s = c.state
	}
	r.p.state.Store(uint32(s))
	r.p.mu.Lock()
	r.p.curConn = c
	r.p.mu.Unlock()
}

// holdFired checks the hold timer lazily: the reader only records when a
// message arrived, and the timer is re-armed for the time left.
func (r *runner) holdFired(c *conn) {
	if c.holdDur == 0 {
		return
	}
	elapsed := time.Duration(r.p.now() - c.lastRecv.Load())
	if elapsed < c.holdDur {
		c.hold.reset(r.p, c, timerHold, c.holdDur-elapsed)
		return
	}
	r.feed(c, evHoldExpired, nil, ErrHoldTimerExpired)
}

// dial starts one connection attempt, bounded by ConnectRetry.
func (r *runner) dial() {
	r.cancelDial()
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.ConnectRetry)
	r.dialCancel = cancel
	r.dialGen++
	gen := r.dialGen
	d := net.Dialer{Control: r.cfg.dialControl}
	d.SetMultipathTCP(false) // MPTCP sockets refuse TCP_MD5SIG
	if r.cfg.LocalAddr.IsValid() || r.cfg.LocalPort != 0 {
		d.LocalAddr = &net.TCPAddr{IP: r.cfg.LocalAddr.AsSlice(), Port: int(r.cfg.LocalPort), Zone: r.cfg.LocalAddr.Zone()}
	}
	network := "tcp4"
	if r.cfg.PeerAddr.Is6() && !r.cfg.PeerAddr.Is4In6() {
		network = "tcp6"
	}
	addr := netip.AddrPortFrom(r.cfg.PeerAddr.Unmap(), r.cfg.PeerPort).String()
	r.dials.Add(1)
	go func() {
		defer r.dials.Done()
		nc, err := d.DialContext(ctx, network, addr)
		// After the peer stopped, enqueue closes nc.
		r.p.enqueue(input{kind: inDialed, nc: nc, err: err, gen: gen})
	}()
}

func (r *runner) cancelDial() {
	if r.dialCancel != nil {
		r.dialCancel()
		r.dialCancel = nil
	}
}

// stop closes every connection with n and marks the runner stopped.
func (r *runner) stop(n *wire.Notification) {
	r.stopped = true
	if c := r.secondary; c != nil {
		r.feed(c, evStop, n, ErrShutdown)
	}
	if c := r.primary; c != nil {
		r.feed(c, evStop, n, ErrShutdown)
	}
	r.feed(nil, evStop, nil, ErrShutdown)
}

// exit releases everything: dialers, queued inputs, Close callers.
func (r *runner) exit() {
	if !r.stopped {
		r.stop(wire.NewShutdown(wire.CeaseAdminShutdown, ""))
	}
	r.cancelDial()
	r.retry.stop()
	if r.unwatch != nil {
		r.unwatch()
	}
	r.dials.Wait()
	r.p.release()
	for _, d := range r.stopDone {
		close(d)
	}
	r.p.state.Store(uint32(Idle))
}

// release makes the peer refuse connections and closes what still waits in
// its inputs: accepted connections, and the done channels of Close calls.
func (p *Peer) release() {
	p.qmu.Lock()
	defer p.qmu.Unlock()
	p.exited = true
	for i := range p.queued {
		p.queued[i].discard()
	}
	p.queued, p.working = nil, false
}
