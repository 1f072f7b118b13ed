package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Dispatch maps an incoming connection to its peer by the remote and local
// addresses: a static neighbour, or one created for a dynamic range. false
// (or a nil peer) closes the connection.
type Dispatch func(remote, local netip.AddrPort) (*Peer, bool)

// Listener accepts BGP connections on one or more addresses and hands each
// to the peer Dispatch names. TCP-MD5 keys are per peer address or prefix on
// the listening sockets (SetPassword), so the kernel drops unsigned or
// wrongly signed segments before a connection exists; so does a minimum TTL
// (SetMinTTL, GTSM). A connection that gets past the kernel is pending until
// its OPEN exchange ends: ListenOptions bound how many may be pending and
// for how long, so a flood of connections that never send an OPEN costs a
// bounded amount.
type Listener struct {
	dispatch Dispatch
	log      *slog.Logger
	opts     ListenOptions
	lns      []*net.TCPListener
	closed   chan struct{}
	once     sync.Once

	mu      sync.Mutex // guards pending and total
	pending map[netip.Addr]int
	total   int

	refused, unknown, openTimeouts atomic.Uint64
	refusedLog, unknownLog         rateLog
}

// ListenOptions bound the connections a Listener has accepted whose OPEN
// exchange has not ended yet. Zero fields take the defaults.
type ListenOptions struct {
	// MaxPending caps such connections in all (default 1024, negative:
	// no cap); MaxPendingPerSource caps them per remote address (default
	// 8). Connections beyond either are reset at once and counted.
	MaxPending, MaxPendingPerSource int
	// OpenTimeout is how long an accepted connection may take to finish
	// the OPEN exchange (the peer's OPEN and KEEPALIVE) before it is
	// closed: default 15 s, negative for none. RFC 4271's large OpenSent
	// hold time (4 minutes) is meant for peers we chose; on a listener
	// that any node of a LAN can reach it would let each hold a slot.
	OpenTimeout time.Duration
	// MinTTL, when not 0, is set as IP_MINTTL and IPV6_MINHOPCOUNT on the
	// listening sockets before they listen (see SetMinTTL).
	MinTTL uint8
}

// Defaults of ListenOptions.
const (
	DefaultMaxPending          = 1024
	DefaultMaxPendingPerSource = 8
	DefaultOpenTimeout         = 15 * time.Second
	// refusalLogEvery rate-limits the log lines about refused connections.
	refusalLogEvery = 10 * time.Second
)

func (o ListenOptions) withDefaults() ListenOptions {
	if o.MaxPending == 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.MaxPendingPerSource == 0 {
		o.MaxPendingPerSource = DefaultMaxPendingPerSource
	}
	if o.OpenTimeout == 0 {
		o.OpenTimeout = DefaultOpenTimeout
	}
	return o
}

// ListenerStats counts what a Listener turned away.
type ListenerStats struct {
	// Pending is the number of accepted connections whose OPEN exchange
	// has not ended.
	Pending int
	// Refused counts connections reset for exceeding MaxPending or
	// MaxPendingPerSource; Unknown those Dispatch had no peer for;
	// OpenTimeouts those closed for not finishing the OPEN exchange within
	// OpenTimeout.
	Refused, Unknown, OpenTimeouts uint64
}

// Listen binds every address (e.g. 0.0.0.0:179, [::]:179, or port 0 for an
// ephemeral one) with the default ListenOptions. IPv6 sockets are IPv6-only,
// so both wildcards can be bound side by side. log may be nil.
func Listen(addrs []netip.AddrPort, dispatch Dispatch, log *slog.Logger) (*Listener, error) {
	return ListenWithOptions(addrs, dispatch, log, ListenOptions{})
}

// ListenWithOptions is Listen with o.
func ListenWithOptions(addrs []netip.AddrPort, dispatch Dispatch, log *slog.Logger, o ListenOptions) (*Listener, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Listener{dispatch: dispatch, log: log, opts: o.withDefaults(), closed: make(chan struct{}),
		pending: map[netip.Addr]int{}}
	for _, a := range addrs {
		network := "tcp4"
		if a.Addr().Is6() && !a.Addr().Is4In6() {
			network = "tcp6"
		}
		// TTL and per-peer GTSM are set by Peer.Accept on the accepted
		// socket; the listener's minimum TTL, before it listens.
		lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
			if o.MinTTL == 0 {
				return nil
			}
			return control(rc, func(fd uintptr) error { return setSockMinTTL(fd, int(o.MinTTL)) })
		}}
		// Go may listen with MPTCP, whose sockets refuse TCP_MD5SIG
		// (ENOPROTOOPT); BGP wants plain TCP.
		lc.SetMultipathTCP(false)
		ln, err := lc.Listen(context.Background(), network, netip.AddrPortFrom(a.Addr().Unmap(), a.Port()).String())
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("bgp listen %v: %w", a, err)
		}
		l.lns = append(l.lns, ln.(*net.TCPListener))
	}
	return l, nil
}

// SetMinTTL sets the smallest IP TTL (IPv6 hop limit) the listening sockets
// accept, GTSM (RFC 5082) before a connection exists: the kernel drops SYNs
// from farther away, and accepted connections inherit the limit. For peers
// n hops away that send with TTL 255, ttl is 256 - n; it must suit every
// peer the listener serves (a peer's own TTLSecurity then narrows it). 0
// removes the check.
func (l *Listener) SetMinTTL(ttl uint8) error {
	var errs []error
	for _, ln := range l.lns {
		rc, err := ln.SyscallConn()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, control(rc, func(fd uintptr) error { return setSockMinTTL(fd, int(ttl)) }))
	}
	return errors.Join(errs...)
}

// Stats returns the listener's counters.
func (l *Listener) Stats() ListenerStats {
	l.mu.Lock()
	n := l.total
	l.mu.Unlock()
	return ListenerStats{Pending: n, Refused: l.refused.Load(), Unknown: l.unknown.Load(), OpenTimeouts: l.openTimeouts.Load()}
}

// Addrs returns the bound addresses, with the ports chosen for port 0.
func (l *Listener) Addrs() []netip.AddrPort {
	out := make([]netip.AddrPort, 0, len(l.lns))
	for _, ln := range l.lns {
		out = append(out, addrPort(ln.Addr()))
	}
	return out
}

// SetPassword installs the TCP-MD5 key for peers in prefix on every
// listening socket of its address family; an empty password removes it. A
// prefix shorter than a host route covers a dynamic range (TCP_MD5SIG_EXT).
func (l *Listener) SetPassword(prefix netip.Prefix, password string) error {
	if len(password) > maxPasswordLen {
		return fmt.Errorf("%w: password of %d bytes, at most %d", ErrConfig, len(password), maxPasswordLen)
	}
	prefix = prefix.Masked()
	var errs []error
	for _, ln := range l.lns {
		if addrPort(ln.Addr()).Addr().Is4() != prefix.Addr().Is4() {
			continue
		}
		rc, err := ln.SyscallConn()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, control(rc, func(fd uintptr) error { return setMD5(fd, prefix, password, isV6(fd)) }))
	}
	return errors.Join(errs...)
}

// Run accepts connections until ctx ends or Close is called, then closes
// the sockets and returns once every accept loop has stopped.
func (l *Listener) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(l.lns))
	for i, ln := range l.lns {
		wg.Go(func() { errs[i] = l.serve(ln) })
	}
	select {
	case <-ctx.Done():
	case <-l.closed:
	}
	l.Close()
	wg.Wait()
	return errors.Join(errs...)
}

// Close closes the listening sockets.
func (l *Listener) Close() error {
	var errs []error
	l.once.Do(func() {
		close(l.closed)
		for _, ln := range l.lns {
			errs = append(errs, ln.Close())
		}
	})
	return errors.Join(errs...)
}

func (l *Listener) serve(ln *net.TCPListener) error {
	backoff := 5 * time.Millisecond
	for {
		nc, err := ln.Accept()
		if err != nil {
			select {
			case <-l.closed:
				return nil
			default:
			}
			// Out of file descriptors and the like: wait and go on.
			l.log.Warn("accept", "err", err)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-l.closed:
				t.Stop()
				return nil
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		l.admit(nc.(*net.TCPConn))
	}
}

// admit counts a new connection as pending and hands it to its peer, or
// resets it when it is one too many or nobody's.
func (l *Listener) admit(tc *net.TCPConn) {
	remote, local := addrPort(tc.RemoteAddr()), addrPort(tc.LocalAddr())
	if !l.take(remote.Addr()) {
		l.refused.Add(1)
		if n, ok := l.refusedLog.allow(time.Now(), refusalLogEvery); ok {
			l.log.Warn("resetting connections over the pending limit", "remote", remote,
				"pending", l.Stats().Pending, "refused_since_last_log", n)
		}
		reset(tc)
		return
	}
	p, ok := l.dispatch(remote, local)
	if !ok || p == nil {
		l.give(remote.Addr())
		l.unknown.Add(1)
		if n, ok := l.unknownLog.allow(time.Now(), refusalLogEvery); ok {
			l.log.Info("closing connection from unknown peer", "remote", remote, "local", local, "unknown_since_last_log", n)
		}
		tc.Close()
		return
	}
	a := &admittedConn{TCPConn: tc, l: l, src: remote.Addr()}
	if d := l.opts.OpenTimeout; d > 0 {
		a.mu.Lock() // the timer may fire before it is stored
		a.timer = time.AfterFunc(d, func() {
			if a.release() {
				l.openTimeouts.Add(1)
				l.log.Debug("closing connection: no OPEN exchange in time", "remote", remote, "timeout", d)
				reset(tc)
			}
		})
		a.mu.Unlock()
	}
	p.Accept(a)
}

// take counts a pending connection from src unless a limit forbids it.
func (l *Listener) take(src netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !underLimits(l.total, l.pending[src], l.opts.MaxPending, l.opts.MaxPendingPerSource) {
		return false
	}
	l.total++
	l.pending[src]++
	return true
}

func (l *Listener) give(src netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.pending[src]--; l.pending[src] <= 0 {
		delete(l.pending, src)
	}
}

// underLimits reports whether one more pending connection fits, given those
// pending in all and from its source; a negative limit is none.
func underLimits(total, fromSource, maxTotal, maxPerSource int) bool {
	return (maxTotal < 0 || total < maxTotal) && (maxPerSource < 0 || fromSource < maxPerSource)
}

// reset closes tc with a RST: nothing lingers in TIME_WAIT for a connection
// we never wanted.
func reset(tc *net.TCPConn) {
	_ = tc.SetLinger(0)
	tc.Close()
}

// admittedConn is an accepted connection still counted as pending by its
// listener, until its session is established or it is closed.
type admittedConn struct {
	*net.TCPConn
	l     *Listener
	src   netip.Addr
	done  atomic.Bool
	mu    sync.Mutex // guards timer
	timer *time.Timer
}

// release stops counting c as pending; it reports whether this call did.
func (c *admittedConn) release() bool {
	if !c.done.CompareAndSwap(false, true) {
		return false
	}
	c.l.give(c.src)
	c.mu.Lock()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
	return true
}

func (c *admittedConn) Close() error {
	c.release()
	return c.TCPConn.Close()
}

// openExchangeDone tells nc's listener, if it has one, that the connection
// is no longer pending.
func openExchangeDone(nc net.Conn) {
	if a, ok := nc.(*admittedConn); ok {
		a.release()
	}
}

// rateLog lets a log line through at most once per period and counts the
// ones it held back.
type rateLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// allow reports whether to log now, and how many were held back before.
func (r *rateLog) allow(now time.Time, every time.Duration) (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.last.IsZero() && now.Sub(r.last) < every {
		r.suppressed++
		return 0, false
	}
	n := r.suppressed
	r.last, r.suppressed = now, 0
	return n, true
}
