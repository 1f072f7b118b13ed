// Package session runs BGP sessions: one Peer per neighbour, with the TCP
// connection (TCP-MD5, TTL security, source address), the RFC 4271 finite
// state machine, its timers, capability negotiation and connection collision
// detection; and a Listener that accepts incoming connections and hands each
// to its Peer.
//
// The decisions are pure functions over plain values: transition (the FSM),
// negotiate (the OPEN checks and the per-direction codec options) and
// keepIncoming (collision). A Peer's FSM worker executes what they decide: a
// goroutine that runs only while the peer has inputs to handle (queue.go).
// Each connection has its own reader goroutine, which decodes UPDATEs into
// a pooled wire.Update and calls the Handler directly: there is no lock
// shared between peers on the receive path.
package session

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
)

// Handler receives a peer's session events. All calls for one Peer come one
// at a time, in order (Established, then Updates and EndOfRIBs, then Down),
// from the peer's FSM worker and reader; they must not block for long, since a slow
// handler stops the peer from reading.
type Handler interface {
	Established(p *Peer, n Negotiated)
	// Update delivers one UPDATE; u is valid only during the call. action
	// is the RFC 7606 outcome of decoding: ActionNone; AttributeDiscard (u
	// is complete minus u.Discarded; process it normally); or
	// TreatAsWithdraw (handle every prefix u announces, in u.NLRI and
	// u.Attrs.MPReach, as withdrawn). A non-nil error resets the session,
	// with the NOTIFICATION a *NotificationError carries (e.g. Cease /
	// Maximum Number of Prefixes Reached) or else Cease / Administrative
	// Reset with the error's text.
	Update(p *Peer, u *wire.Update, action wire.Action) error
	EndOfRIB(p *Peer, f wire.Family)
	// Down reports the end of an established session and why.
	Down(p *Peer, err error)
}

// RouteRefreshHandler is implemented by handlers that answer ROUTE-REFRESH.
type RouteRefreshHandler interface {
	RouteRefresh(p *Peer, rr wire.RouteRefresh)
}

// Info is a snapshot of a peer for display.
type Info struct {
	State      State
	Local      netip.AddrPort
	Remote     netip.AddrPort
	Negotiated *Negotiated // nil unless Established
	// Since is when the session was established (Established) or last
	// went down (otherwise); zero if neither happened yet.
	Since                 time.Time
	LastError             error
	Flaps                 uint64 // times the session left Established
	MsgsIn, MsgsOut       uint64
	UpdatesIn, UpdatesOut uint64
	// Unnegotiated counts UPDATEs that carried routes of a family the
	// session did not negotiate; those routes were ignored.
	Unnegotiated uint64
	// RefusedDamped counts incoming connections refused while the peer was
	// damped after repeated failures.
	RefusedDamped uint64
}

// Peer is one BGP neighbour. Create it with New, run it with Run.
type Peer struct {
	cfg   Config
	h     Handler
	log   *slog.Logger
	open  []byte // our OPEN, encoded once
	local *wire.Open
	epoch time.Time

	running atomic.Bool
	done    chan struct{} // closed when the peer has stopped
	r       *runner       // the FSM, set by Start; see queue.go

	qmu     sync.Mutex // guards the queue of inputs
	queued  []input    // nil while idle
	working bool       // a worker goroutine runs the FSM
	exited  bool       // the peer stopped: inputs are dropped

	state                                  atomic.Uint32
	msgsIn, msgsOut, updatesIn, updatesOut atomic.Uint64
	flaps                                  atomic.Uint64
	unnegotiated                           atomic.Uint64
	refusedDamped                          atomic.Uint64

	mu      sync.Mutex // guards the fields below
	out     *conn      // the established connection, for Send
	neg     *Negotiated
	since   time.Time
	lastErr error
	curConn *conn
}

type inputKind uint8

const (
	inNone    inputKind = iota
	inEvent             // an FSM event from a connection's reader or writer
	inConn              // an accepted connection
	inDialed            // the result of a connection attempt
	inStop              // Close
	inTimer             // one of the FSM's timers fired
	inCtxDone           // Run's context ended
)

// input is everything that reaches the peer's FSM.
type input struct {
	kind    inputKind
	c       *conn
	ev      event
	open    *wire.Open
	notif   *wire.Notification // received, or to send for evMsgErr/evLocalErr/inStop
	err     error
	wantAck bool
	nc      net.Conn
	gen     uint64
	done    chan struct{}
	timer   timerKind
	tgen    uint32
}

// New returns a peer for cfg (see Config.Validate; Run reports its errors).
// log may be nil.
func New(cfg Config, h Handler, log *slog.Logger) *Peer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	p := &Peer{
		cfg: cfg, h: h, epoch: time.Now(),
		log:  log.With("peer", cfg.PeerAddr),
		done: make(chan struct{}),
		// Inputs that come before Start wait for it.
		working: true,
	}
	p.local = localOpen(cfg)
	return p
}

// Config returns the peer's configuration, defaults filled in.
func (p *Peer) Config() Config { return p.cfg }

// State is the current FSM state of the peer's main connection.
func (p *Peer) State() State { return State(p.state.Load()) }

// Info returns a snapshot of the peer.
func (p *Peer) Info() Info {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := Info{
		State: p.State(), Negotiated: p.neg, Since: p.since, LastError: p.lastErr, Flaps: p.flaps.Load(),
		MsgsIn: p.msgsIn.Load(), MsgsOut: p.msgsOut.Load(),
		UpdatesIn: p.updatesIn.Load(), UpdatesOut: p.updatesOut.Load(),
		Unnegotiated: p.unnegotiated.Load(), RefusedDamped: p.refusedDamped.Load(),
	}
	if c := p.curConn; c != nil {
		i.Local, i.Remote = c.local, c.remote
	}
	return i
}

func (p *Peer) now() int64 { return int64(time.Since(p.epoch)) }

// Accept hands the peer an incoming connection. It never blocks: a peer that
// is not running, or too busy to take it, closes it.
func (p *Peer) Accept(nc net.Conn) {
	if err := p.cfg.applyAccepted(nc); err != nil {
		p.log.Warn("refusing incoming connection: socket options", "err", err)
		nc.Close()
		return
	}
	p.qmu.Lock()
	busy := len(p.queued) >= maxQueued
	p.qmu.Unlock()
	if busy {
		p.log.Warn("refusing incoming connection: peer busy", "remote", nc.RemoteAddr())
		nc.Close()
		return
	}
	p.enqueue(input{kind: inConn, nc: nc})
}

// Send queues one or more encoded UPDATE messages (e.g. from wire.Encoder)
// on the established session. It blocks while the queue is full, until ctx
// ends or the session goes down. b must not be changed after the call.
func (p *Peer) Send(ctx context.Context, b []byte) error {
	return p.send(ctx, nil, b)
}

// SendTo is Send for one session only: n must be Info().Negotiated (the
// same pointer) of the session b was built for. If that session is no
// longer the current one (it went down, and maybe another came up), SendTo
// fails with ErrSessionChanged rather than hand b to a session it was not
// built for: a new session starts from nothing, and may have negotiated
// other options.
func (p *Peer) SendTo(ctx context.Context, n *Negotiated, b []byte) error {
	if n == nil {
		return ErrSessionChanged
	}
	return p.send(ctx, n, b)
}

// send is Send, and SendTo when want is not nil.
func (p *Peer) send(ctx context.Context, want *Negotiated, b []byte) error {
	p.mu.Lock()
	// out and neg are set together when a session comes up, so the
	// connection taken here is want's own.
	c, n := p.out, p.neg
	p.mu.Unlock()
	if want != nil && n != want {
		return ErrSessionChanged
	}
	if c == nil {
		return ErrNotEstablished
	}
	if err := checkUpdates(b, &n.Tx, n.RouteRefresh); err != nil {
		return err
	}
	for {
		ok, room := p.push(c, b)
		if ok {
			return nil
		}
		if room == nil {
			return ErrNotEstablished // the connection is closing
		}
		select {
		case <-room:
		case <-c.stop:
			return ErrNotEstablished
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Shutdown is Close with Cease / Administrative Shutdown carrying msg as
// the shutdown communication (RFC 9003, which obsoletes RFC 8203).
func (p *Peer) Shutdown(ctx context.Context, msg string) error {
	return p.Close(ctx, wire.NewShutdown(wire.CeaseAdminShutdown, msg))
}

// Close stops the peer for good (Run returns), ending the session, or the
// OPEN exchange under way, with n: e.g. Cease / Peer De-configured when the
// neighbour is removed, or Cease / Other Configuration Change when it is
// restarted with new settings (RFC 4486). A nil n is Cease / Administrative
// Shutdown. UPDATEs already queued by Send are written before n, within the
// few seconds allowed for n. Close waits until the NOTIFICATION went out
// and the connection is closed, or ctx ends.
func (p *Peer) Close(ctx context.Context, n *wire.Notification) error {
	if n == nil {
		n = wire.NewShutdown(wire.CeaseAdminShutdown, "")
	} else {
		// The FSM worker may still encode it after ctx ended and Close
		// returned: it must not share the caller's Data.
		n = &wire.Notification{Code: n.Code, Subcode: n.Subcode, Data: bytes.Clone(n.Data)}
	}
	return p.stop(ctx, n)
}

// Abandon stops the peer for good like Close, but sends no NOTIFICATION:
// the connection just closes, as when the process dies. It is how a
// speaker that is about to restart leaves a peer that negotiated graceful
// restart (RFC 4724): the peer keeps our routes until the new process
// sends them again. Queued UPDATEs may be lost.
func (p *Peer) Abandon(ctx context.Context) error {
	return p.stop(ctx, nil)
}

// stop ends the peer with n (nil: no NOTIFICATION) and waits for it.
func (p *Peer) stop(ctx context.Context, n *wire.Notification) error {
	done := make(chan struct{})
	p.enqueue(input{kind: inStop, notif: n, done: done})
	select {
	case <-done:
	case <-p.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// Run owns the peer until ctx ends or Close or Shutdown is called, then
// closes the session (Cease / Administrative Shutdown, or Close's
// NOTIFICATION) and returns nil. Active peers connect out every
// ConnectRetry; all peers take connections from Accept. An invalid Config
// makes it return the error at once; the peer is stopped all the same.
func (p *Peer) Run(ctx context.Context) error {
	if err := p.Start(ctx); err != nil {
		return err
	}
	<-p.done
	return nil
}

// Start is Run without the wait: the peer runs in the background, with no
// goroutine of its own while nothing happens (see queue.go), until ctx ends
// or Close or Shutdown is called; Done is closed once it has stopped.
func (p *Peer) Start(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	r, err := p.start(ctx)
	if err != nil {
		// Close and Shutdown wait for done: a peer that never started
		// must not keep them waiting until their ctx ends.
		p.release()
		close(p.done)
		return err
	}
	p.r = r
	// Until now the queue held what came (New marked a worker running);
	// no worker can run yet, so the FSM starts here.
	r.feed(nil, evStart, nil, nil)
	r.unwatch = p.watchContext(ctx)
	p.qmu.Lock()
	work := len(p.queued) > 0
	p.working = work
	p.qmu.Unlock()
	if work {
		go p.work()
	}
	return nil
}

// Done is closed once the peer has stopped (Run returned, or would have).
func (p *Peer) Done() <-chan struct{} { return p.done }

// start checks the configuration and prepares the FSM.
func (p *Peer) start(ctx context.Context) (*runner, error) {
	if err := p.cfg.Validate(); err != nil {
		return nil, err
	}
	var err error
	if p.open, err = wire.AppendOpen(nil, p.local); err != nil {
		return nil, fmt.Errorf("bgp session: our OPEN: %w", err)
	}
	return &runner{p: p, cfg: p.cfg, ctx: ctx}, nil
}
