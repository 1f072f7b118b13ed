package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// Forwarder relays TCP connections accepted in one namespace to an address
// dialled in another: the way a namespace reaches a server in the root
// namespace (the lab's kube-apiserver on 127.0.0.1) or the root namespace
// reaches a server in a lab host, without giving the root namespace an
// address or a route. It owns its accept loop and one goroutine pair per
// connection; Close stops them all and waits.
type Forwarder struct {
	ln     net.Listener
	dial   func(ctx context.Context) (net.Conn, error)
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex // guards conns
	conns map[net.Conn]struct{}
}

// Forward listens on listen ("127.0.0.1:0" picks a port) inside from, and
// relays each connection to target dialled inside to. A nil namespace is
// the caller's own.
func Forward(from *Netns, listen string, to *Netns, target string) (*Forwarder, error) {
	var ln net.Listener
	listenFn := func() error {
		var err error
		ln, err = net.Listen("tcp", listen)
		return err
	}
	if err := inNetns(from, listenFn); err != nil {
		return nil, fmt.Errorf("lab: forward: listen on %s: %w", listen, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &Forwarder{ln: ln, ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}}
	f.dial = func(ctx context.Context) (net.Conn, error) {
		var c net.Conn
		// The socket is created, and so belongs, where the dialling thread is.
		err := inNetns(to, func() error {
			var err error
			c, err = (&net.Dialer{}).DialContext(ctx, "tcp", target)
			return err
		})
		return c, err
	}
	f.wg.Add(1)
	go f.accept()
	return f, nil
}

func inNetns(ns *Netns, fn func() error) error {
	if ns == nil {
		return fn()
	}
	return ns.Do(fn)
}

// Addr is the listening address (with the port chosen).
func (f *Forwarder) Addr() net.Addr { return f.ln.Addr() }

func (f *Forwarder) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return // closed
		}
		f.wg.Add(1)
		go f.relay(c)
	}
}

func (f *Forwarder) track(c net.Conn, add bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if add {
		if f.ctx.Err() != nil {
			return false
		}
		f.conns[c] = struct{}{}
	} else {
		delete(f.conns, c)
	}
	return true
}

func (f *Forwarder) relay(in net.Conn) {
	defer f.wg.Done()
	defer in.Close()
	out, err := f.dial(f.ctx)
	if err != nil {
		return // the client sees the connection close
	}
	defer out.Close()
	if !f.track(in, true) || !f.track(out, true) {
		return
	}
	defer f.track(in, false)
	defer f.track(out, false)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Pass the half-close on, so request/response protocols finish.
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(out, in)
	go pipe(in, out)
	<-done
	<-done
}

// Close stops accepting, cuts every relayed connection and waits for the
// goroutines to end.
func (f *Forwarder) Close() error {
	f.mu.Lock()
	f.cancel()
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	err := f.ln.Close()
	f.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
