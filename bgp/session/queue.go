package session

import (
	"context"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
)

// A peer has no goroutine of its own while nothing happens: its inputs
// (events from a connection's reader or writer, accepted and dialled
// connections, Close, the end of Run's context, and its timers, which are
// time.AfterFunc) go into a queue, and the first input into an empty queue
// starts a goroutine that runs the FSM until the queue is empty again. With
// thousands of mostly idle sessions (dynamic neighbours), a goroutine per
// peer waiting for its next event would cost a stack of 4 to 8 KiB each;
// this way an idle peer costs only its reader's.
//
// Only one worker runs at a time, and the queue's mutex orders one after
// the other, so the runner's state needs no lock of its own.

// maxQueued bounds the inputs from outside the peer's own connections
// (accepted connections) waiting in the queue: beyond it, Accept refuses.
// The peer's readers, writers and dialer post at most one input each
// before they wait for it to be handled, so they need no bound.
const maxQueued = 16

// enqueue adds in to the peer's queue and starts a worker unless one runs.
// After Run ended it drops in, closing what it carries, and returns false.
func (p *Peer) enqueue(in input) bool {
	p.qmu.Lock()
	defer p.qmu.Unlock()
	if p.exited {
		in.discard()
		return false
	}
	p.queued = append(p.queued, in)
	if !p.working {
		p.working = true
		go p.work()
	}
	return true
}

// discard closes what an input that will not be handled carries.
func (in *input) discard() {
	if in.nc != nil {
		in.nc.Close()
	}
	if in.done != nil {
		close(in.done)
	}
}

// work runs the FSM until the queue is empty, or until the peer stops.
func (p *Peer) work() {
	r := p.r
	for {
		p.qmu.Lock()
		if len(p.queued) == 0 {
			// No memory stays behind for an idle peer.
			p.queued, p.working = nil, false
			p.qmu.Unlock()
			return
		}
		in := p.queued[0]
		p.queued[0] = input{}
		p.queued = p.queued[1:]
		p.qmu.Unlock()
		r.wake(in)
		if r.stopped {
			r.exit()
			close(p.done)
			return
		}
	}
}

// wake does what one input asks.
func (r *runner) wake(in input) {
	switch in.kind {
	case inCtxDone:
		r.stop(wire.NewShutdown(wire.CeaseAdminShutdown, ""))
	case inTimer:
		r.timerFired(in)
	default:
		r.handle(in)
	}
}

// timerKind names one of a peer's timers.
type timerKind uint8

const (
	timerRetry timerKind = iota
	timerHold
	timerKeepalive
)

// fsmTimer is one of the FSM's timers: when it fires it posts an input
// (inTimer) to the peer. It belongs to the worker; gen tells a firing of
// the current arming from one of an earlier arming that Stop came too late
// for, which the worker then ignores.
type fsmTimer struct {
	t   *time.Timer // nil while stopped
	gen uint32
}

// reset arms the timer to fire d from now, stopping an earlier arming.
func (t *fsmTimer) reset(p *Peer, c *conn, k timerKind, d time.Duration) {
	t.stop()
	gen := t.gen
	t.t = time.AfterFunc(d, func() { p.enqueue(input{kind: inTimer, c: c, timer: k, tgen: gen}) })
}

func (t *fsmTimer) stop() {
	if t.t != nil {
		t.t.Stop()
		t.t = nil
	}
	t.gen++
}

// fired reports whether an input posted by the timer comes from its
// current arming, and marks the timer stopped if so.
func (t *fsmTimer) fired(gen uint32) bool {
	if t.t == nil || gen != t.gen {
		return false
	}
	t.t = nil
	t.gen++
	return true
}

// timerFired handles an input posted by a timer.
func (r *runner) timerFired(in input) {
	c := in.c
	if c != nil && c != r.primary && c != r.secondary {
		return // the connection was closed since
	}
	switch in.timer {
	case timerRetry:
		if r.retry.fired(in.tgen) && r.primary == nil {
			r.feed(nil, evConnectRetryExpired, nil, nil)
		}
	case timerHold:
		if c.hold.fired(in.tgen) {
			r.holdFired(c)
		}
	case timerKeepalive:
		if c.ka.fired(in.tgen) {
			r.feed(c, evKeepaliveExpired, nil, nil)
		}
	}
}

// watchContext makes the end of ctx an input of the peer; the function it
// returns stops that.
func (p *Peer) watchContext(ctx context.Context) func() bool {
	return context.AfterFunc(ctx, func() { p.enqueue(input{kind: inCtxDone}) })
}
