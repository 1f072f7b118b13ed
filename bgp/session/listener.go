package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Dispatch maps an incoming connection to its peer by the remote and local
// addresses: a static neighbour, or one created for a dynamic range. false
// (or a nil peer) closes the connection.
type Dispatch func(remote, local netip.AddrPort) (*Peer, bool)

// Listener accepts BGP connections on one or more addresses and hands each
// to the peer Dispatch names. TCP-MD5 keys are per peer address or prefix on
// the listening sockets (SetPassword), so the kernel drops unsigned or
// wrongly signed segments before a connection exists.
type Listener struct {
	dispatch Dispatch
	log      *slog.Logger
	lns      []*net.TCPListener
	closed   chan struct{}
	once     sync.Once
}

// Listen binds every address (e.g. 0.0.0.0:179, [::]:179, or port 0 for an
// ephemeral one). IPv6 sockets are IPv6-only, so both wildcards can be bound
// side by side. log may be nil.
func Listen(addrs []netip.AddrPort, dispatch Dispatch, log *slog.Logger) (*Listener, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Listener{dispatch: dispatch, log: log, closed: make(chan struct{})}
	for _, a := range addrs {
		network := "tcp4"
		if a.Addr().Is6() && !a.Addr().Is4In6() {
			network = "tcp6"
		}
		// TTL and GTSM are per peer: Peer.Accept sets them on the
		// accepted socket.
		var lc net.ListenConfig
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
		remote, local := addrPort(nc.RemoteAddr()), addrPort(nc.LocalAddr())
		p, ok := l.dispatch(remote, local)
		if !ok || p == nil {
			l.log.Info("closing connection from unknown peer", "remote", remote, "local", local)
			nc.Close()
			continue
		}
		p.Accept(nc)
	}
}
