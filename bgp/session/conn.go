package session

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"slices"
	"sync/atomic"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
)

const (
	// outQueueLen bounds the messages (or batches of UPDATEs) waiting for
	// the writer: Send blocks beyond it, which is the speaker's back-pressure.
	outQueueLen = 64
	ioBufSize   = 64 << 10
	// notifyTimeout bounds how long a closing session waits for its last
	// NOTIFICATION, and the messages queued before it, to be written.
	notifyTimeout = 3 * time.Second
	// linger is how long we keep reading (and discarding) after sending a
	// NOTIFICATION, so closing a socket with unread data does not reset the
	// connection before the peer has read our NOTIFICATION.
	linger = 500 * time.Millisecond
)

// conn is one TCP connection of a peer and the FSM instance that runs on it.
// The peer's FSM worker owns state, neg, the timers and closing; the reader
// and writer goroutines own their buffers; the rest is set before they start
// or is synchronised as marked.
type conn struct {
	nc            net.Conn
	incoming      bool
	local, remote netip.AddrPort

	state   State
	neg     *Negotiated // set when the peer's OPEN was accepted
	hold    fsmTimer
	holdDur time.Duration
	ka      fsmTimer
	kaDur   time.Duration

	// lastRecv is when the last message arrived (nanoseconds on the peer's
	// monotonic clock); the hold timer is checked lazily against it so the
	// receive path never touches a timer.
	lastRecv atomic.Int64

	q          outQueue      // to the writer
	ack        chan ack      // the FSM worker answers the reader's handshake events
	stop       chan struct{} // closed by the FSM worker to end the reader and writer
	readerDone chan struct{}
}

// ack answers a reader waiting on a handshake event: go on or not, and once
// the session is established the decode options.
type ack struct {
	ok  bool
	neg *Negotiated
}

func newConn(nc net.Conn, incoming bool) *conn {
	c := &conn{
		nc: nc, incoming: incoming,
		ack:  make(chan ack, 1),
		stop: make(chan struct{}), readerDone: make(chan struct{}),
	}
	c.local, c.remote = addrPort(nc.LocalAddr()), addrPort(nc.RemoteAddr())
	return c
}

func addrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

func (c *conn) stopping() bool {
	select {
	case <-c.stop:
		return true
	default:
		return false
	}
}

// post sends an input to the peer's FSM unless the connection is being
// closed.
func (p *Peer) post(c *conn, in input) bool {
	if c.stopping() {
		return false
	}
	in.c = c
	return p.enqueue(in)
}

// postWait posts a handshake event and waits for the FSM worker.
func (p *Peer) postWait(c *conn, in input) ack {
	in.wantAck = true
	if !p.post(c, in) {
		return ack{}
	}
	select {
	case a := <-c.ack:
		return a
	case <-c.stop:
		return ack{}
	}
}

// readLoop reads, decodes and dispatches the peer's messages. UPDATEs and
// KEEPALIVEs of an established session never leave this goroutine: it
// decodes into a pooled wire.Update and calls the handler, so peers
// receive in parallel without sharing anything.
func (p *Peer) readLoop(c *conn) {
	defer close(c.readerDone)
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("panic while handling a message; resetting the session", "panic", r, "stack", string(debug.Stack()))
			err := fmt.Errorf("internal error: %v", r)
			p.post(c, input{kind: inEvent, ev: evLocalErr, err: err,
				notif: wire.NewShutdown(wire.CeaseAdminReset, "internal error")})
		}
	}()
	r := &reader{p: p, c: c, f: frame{src: c.nc}}
	defer r.f.release()
	for {
		// The wait for the next message is where an idle session's
		// reader sits, for hours, so it is a shallow call chain of small
		// frames: the runtime shrinks a goroutine's stack only to twice
		// what is in use (plus a margin), and decoding, the handshake and
		// the handler's calls, in step, grow it to 8 KB and more.
		hdr, err := r.f.take(wire.HeaderLen)
		if !r.step(hdr, err) {
			return
		}
	}
}

// step handles one message, whose header take returned, and reports
// whether to read on. It must not be inlined into readLoop: its frame
// would stay on the stack while the reader waits.
//
//go:noinline
func (r *reader) step(hdr []byte, err error) bool {
	in, done := r.message(hdr, err)
	switch {
	case done:
		return false
	case in.kind == inNone:
		return true
	case in.wantAck:
		// The message is decoded (an OPEN keeps nothing of the buffer):
		// the buffer need not wait for the FSM with the reader, which,
		// with thousands of sessions coming up at once, could be long.
		r.f.release()
		a := r.p.postWait(r.c, in)
		if a.neg != nil {
			r.established(a.neg)
		}
		return a.ok
	}
	r.p.post(r.c, in)
	return false // every other event posted by the reader ends the session
}

// reader is the receive side of one connection, owned by readLoop.
type reader struct {
	p  *Peer
	c  *conn
	f  frame
	rx *wire.Options // nil (plain RFC 4271 limits) until established
	// families were negotiated; refused lists those whose NLRI the peer
	// sent anyway, each logged once per session.
	families wire.FamilySet
	refused  []wire.Family
}

func (r *reader) established(n *Negotiated) {
	r.rx = &n.Rx
	r.families = wire.FamilySetOf(n.Families...)
}

// next reads one message and returns what the FSM must hear
// about it (kind inNone for nothing); done ends the loop quietly.
func (r *reader) next() (in input, done bool) {
	return r.message(r.f.take(wire.HeaderLen))
}

// message is next once take returned the header, or failed.
func (r *reader) message(hdr []byte, err error) (in input, done bool) {
	c, p := r.c, r.p
	if err != nil {
		return r.readErr(err)
	}
	h, err := wire.ParseHeader(hdr, r.rx)
	if err != nil {
		return msgErr(err), false
	}
	body, err := r.f.take(int(h.Length) - wire.HeaderLen)
	if err != nil {
		return r.readErr(err)
	}
	if c.stopping() {
		return input{}, false // draining after our NOTIFICATION
	}
	c.lastRecv.Store(p.now())
	p.msgsIn.Add(1)
	switch h.Type {
	case wire.TypeUpdate:
		if r.rx == nil {
			return input{kind: inEvent, ev: evUpdate}, false
		}
		p.updatesIn.Add(1)
		return r.update(body), false
	case wire.TypeKeepalive:
		if r.rx != nil {
			return input{}, false // the hold timer reads lastRecv
		}
		return input{kind: inEvent, ev: evKeepalive, wantAck: true}, false
	case wire.TypeOpen:
		o, err := wire.DecodeOpen(body)
		if err != nil {
			return msgErr(err), false
		}
		return input{kind: inEvent, ev: evOpen, open: o, wantAck: true}, false
	case wire.TypeNotification:
		n, err := wire.DecodeNotification(body)
		if err != nil {
			return msgErr(err), false
		}
		n.Data = append([]byte(nil), n.Data...)
		return input{kind: inEvent, ev: evNotification, notif: n}, false
	default: // ParseHeader admits no other type than ROUTE-REFRESH
		return r.routeRefresh(body), false
	}
}

func msgErr(err error) input {
	n := notificationFor(err)
	return input{kind: inEvent, ev: evMsgErr, err: err, notif: &n}
}

func (r *reader) readErr(err error) (input, bool) {
	if r.c.stopping() {
		return input{}, true
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return input{}, true
	}
	return input{kind: inEvent, ev: evTCPFailed, err: fmt.Errorf("%w: %w", ErrConnectionClosed, err)}, false
}

// update decodes and delivers one UPDATE of an established session.
func (r *reader) update(body []byte) input {
	// The decoded UPDATE, with what its slices grew to, comes from a pool
	// shared by the sessions: kept per reader it would be 1 KB and more
	// for each idle one.
	u := updatePool.Get().(*wire.Update)
	defer updatePool.Put(u)
	err := wire.DecodeUpdate(u, body, r.rx)
	act := wire.ActionOf(err)
	if act >= wire.AFISAFIDisable {
		return msgErr(err)
	}
	if err != nil {
		r.p.log.Warn("malformed UPDATE handled per RFC 7606", "action", act, "err", err)
	}
	if f, ok := u.EndOfRIB(); ok && act == wire.ActionNone {
		if r.families.Has(f) {
			r.p.h.EndOfRIB(r.p, f)
		} else {
			r.refuse([]wire.Family{f})
		}
		return input{}
	}
	if refused := dropUnnegotiated(u, r.families); len(refused) > 0 {
		r.refuse(refused)
		if empty(u) {
			return input{}
		}
	}
	if herr := r.p.h.Update(r.p, u, act); herr != nil {
		n := notificationFor(herr)
		cause := herr
		if ne, ok := herr.(*NotificationError); ok {
			// Not the peer's NOTIFICATION: ours, for the reason inside.
			cause = ne.Err
			if cause == nil {
				cause = errors.New("the handler refused an UPDATE")
			}
		}
		return input{kind: inEvent, ev: evLocalErr, err: cause, notif: &n}
	}
	return input{}
}

// refuse counts an UPDATE that carried NLRI of families not negotiated and
// logs each such family once per session.
func (r *reader) refuse(fs []wire.Family) {
	r.p.unnegotiated.Add(1)
	for _, f := range fs {
		if !slices.Contains(r.refused, f) {
			r.refused = append(r.refused, f)
			r.p.log.Warn("ignoring routes of a family not negotiated (RFC 4760 §7); further ones are only counted", "family", f)
		}
	}
}

// dropUnnegotiated removes from u the announcements and withdrawals of
// families that were not negotiated, and returns those families. RFC 4760
// §7 has a speaker ignore routes of an address family it cannot take over
// a session (as BIRD and FRR do) rather than reset it: the NLRI are
// dropped, the rest of the UPDATE stands.
func dropUnnegotiated(u *wire.Update, negotiated wire.FamilySet) []wire.Family {
	var out []wire.Family
	if !negotiated.Has(wire.IPv4Unicast) && (u.NLRI.Len() > 0 || u.Withdrawn.Len() > 0) {
		u.NLRI, u.Withdrawn = wire.Prefixes{}, wire.Prefixes{}
		out = append(out, wire.IPv4Unicast)
	}
	a := &u.Attrs
	if a.Has(wire.AttrMPReach) && !negotiated.Has(a.MPReach.Family) {
		out = append(out, a.MPReach.Family)
		a.MPReach = wire.MPReach{}
		a.Clear(wire.AttrMPReach)
	}
	if a.Has(wire.AttrMPUnreach) && !negotiated.Has(a.MPUnreach.Family) {
		if !slices.Contains(out, a.MPUnreach.Family) {
			out = append(out, a.MPUnreach.Family)
		}
		a.MPUnreach = wire.MPUnreach{}
		a.Clear(wire.AttrMPUnreach)
	}
	return out
}

// empty reports whether u neither announces nor withdraws anything.
func empty(u *wire.Update) bool {
	return u.NLRI.Len() == 0 && u.Withdrawn.Len() == 0 &&
		!u.Attrs.Has(wire.AttrMPReach) && !u.Attrs.Has(wire.AttrMPUnreach)
}

// routeRefresh handles a ROUTE-REFRESH: before Established it is an FSM
// error; after, it goes to the handler if it wants it.
func (r *reader) routeRefresh(body []byte) input {
	rr, err := wire.DecodeRouteRefresh(body)
	if err != nil {
		return msgErr(err)
	}
	if r.rx == nil {
		return input{kind: inEvent, ev: evRouteRefresh}
	}
	if h, ok := r.p.h.(RouteRefreshHandler); ok {
		h.RouteRefresh(r.p, *rr)
	}
	return input{}
}

// checkUpdates verifies that b is one or more whole UPDATE messages within
// the limits of o, so a bad buffer from the caller fails Send instead of
// the session. ROUTE-REFRESH messages are allowed too when refresh was
// negotiated: a router asks its peers to resend after an import change.
func checkUpdates(b []byte, o *wire.Options, refresh bool) error {
	if len(b) == 0 {
		return errors.New("bgp session: empty message")
	}
	for len(b) > 0 {
		h, err := wire.ParseHeader(b, o)
		if err != nil {
			return fmt.Errorf("bgp session: cannot send: %w", err)
		}
		if h.Type != wire.TypeUpdate && !(refresh && h.Type == wire.TypeRouteRefresh) {
			return fmt.Errorf("bgp session: cannot send a %s with Send", wire.MessageTypeString(h.Type))
		}
		if int(h.Length) > len(b) {
			return fmt.Errorf("bgp session: message of %d bytes is cut at %d", h.Length, len(b))
		}
		b = b[h.Length:]
	}
	return nil
}
