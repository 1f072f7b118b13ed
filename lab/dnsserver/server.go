// Package dnsserver is the lab's stand-in for the write-up's Pi-hole: a DNS
// responder that answers every address query with one address and names,
// in a TXT record, the node it runs on, so whoever asks sees which node the
// network led them to; and the client that reads those answers. It has no
// Kubernetes imports: the pihole image links it alone.
package dnsserver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Port is where the responders listen and Query asks.
const Port = 53

// Server is a DNS responder on UDP and TCP. It answers every A (or AAAA)
// query with Addr and adds a TXT record naming Node; a TXT query gets the
// name alone. Its goroutines are owned by it and end with Close. A Server
// made without Listen only answers (Answer), which is what the unit tests
// use.
type Server struct {
	Node string
	Addr netip.Addr

	udp     *net.UDPConn
	tcp     *net.TCPListener
	queries atomic.Int64
	wg      sync.WaitGroup

	mu     sync.Mutex // guards conns and closed
	conns  map[net.Conn]struct{}
	closed bool
}

// Config says where a Server listens and what it answers.
type Config struct {
	// Listen is the host:port both sockets bind: "203.0.113.53:53", or
	// ":53" for every address of the network namespace.
	Listen string
	// Node is named in the TXT record of every answer.
	Node string
	// Answer is the address the A (or AAAA, for an IPv6 address) records
	// carry.
	Answer netip.Addr
	// FreeBind binds with IP_FREEBIND, so the listen address need not be
	// on the host yet: a VIP may be added before or after.
	FreeBind bool
}

// idle is how long a TCP client may stay silent between queries.
const idle = 10 * time.Second

// Listen binds the UDP and TCP sockets in the calling thread's network
// namespace and starts serving them.
func Listen(ctx context.Context, c Config) (*Server, error) {
	if !c.Answer.IsValid() || c.Answer.Zone() != "" {
		return nil, fmt.Errorf("dnsserver: answer %v is not an address", c.Answer)
	}
	var lc net.ListenConfig
	if c.FreeBind {
		lc.Control = freebind
	}
	pc, err := lc.ListenPacket(ctx, "udp", c.Listen)
	if err != nil {
		return nil, err
	}
	ln, err := lc.Listen(ctx, "tcp", c.Listen)
	if err != nil {
		pc.Close()
		return nil, err
	}
	d := &Server{Node: c.Node, Addr: c.Answer, udp: pc.(*net.UDPConn), tcp: ln.(*net.TCPListener),
		conns: map[net.Conn]struct{}{}}
	d.wg.Add(2)
	go d.serveUDP()
	go d.serveTCP()
	return d, nil
}

// freebind lets a socket bind an address the host does not have (yet).
func freebind(network, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if network == "udp6" || network == "tcp6" {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
		}
	})
	return errors.Join(err, serr)
}

// UDPAddr and TCPAddr are where the sockets are bound (the port chosen
// for a listen address with port 0).
func (d *Server) UDPAddr() netip.AddrPort { return d.udp.LocalAddr().(*net.UDPAddr).AddrPort() }

// TCPAddr: see UDPAddr.
func (d *Server) TCPAddr() netip.AddrPort { return d.tcp.Addr().(*net.TCPAddr).AddrPort() }

// Queries is how many queries the responder has answered.
func (d *Server) Queries() int64 { return d.queries.Load() }

// Answer builds the response to one message, nil for none.
func (d *Server) Answer(msg []byte) []byte {
	q, rcode, ok := parseQuery(msg)
	if !ok {
		return nil
	}
	d.queries.Add(1)
	if rcode != rcodeOK {
		return buildResponse(q, rcode, nil, nil)
	}
	if q.qclass != classIN && q.qclass != typeANY {
		return buildResponse(q, rcodeRefused, nil, nil)
	}
	who := txtRecord(d.Node)
	var answers []rr
	addrType := uint16(typeA)
	if d.Addr.Is6() {
		addrType = typeAAAA
	}
	switch q.qtype {
	case addrType:
		answers = []rr{aRecord(d.Addr)}
	case typeTXT:
		return buildResponse(q, rcodeOK, []rr{who}, nil)
	case typeANY:
		answers = []rr{aRecord(d.Addr), who}
		return buildResponse(q, rcodeOK, answers, nil)
	}
	return buildResponse(q, rcodeOK, answers, []rr{who})
}

func (d *Server) serveUDP() {
	defer d.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := d.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// An ICMP error reported on the socket, say; a persistent one
			// (out of memory) must not make this loop spin.
			backoff()
			continue
		}
		if resp := d.Answer(buf[:n]); resp != nil {
			_, _ = d.udp.WriteToUDPAddrPort(resp, from)
		}
	}
}

func (d *Server) serveTCP() {
	defer d.wg.Done()
	for {
		c, err := d.tcp.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			backoff() // EMFILE and the like: wait for a descriptor to free
			continue
		}
		if !d.track(c, true) {
			c.Close()
			return
		}
		d.wg.Add(1)
		go d.serveConn(c)
	}
}

func (d *Server) track(c net.Conn, add bool) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !add {
		delete(d.conns, c)
		return true
	}
	if d.closed {
		return false
	}
	d.conns[c] = struct{}{}
	return true
}

func (d *Server) serveConn(c net.Conn) {
	defer d.wg.Done()
	defer d.track(c, false)
	defer c.Close()
	for {
		_ = c.SetDeadline(time.Now().Add(idle))
		msg, err := readTCPMsg(c)
		if err != nil {
			return
		}
		resp := d.Answer(msg)
		if resp == nil {
			return
		}
		if err := writeTCPMsg(c, resp); err != nil {
			return
		}
	}
}

func readTCPMsg(r io.Reader) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	msg := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, err
	}
	return msg, nil
}

func writeTCPMsg(w io.Writer, msg []byte) error {
	b := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(msg)), uint16(len(msg)))
	_, err := w.Write(append(b, msg...))
	return err
}

// Close stops the responder and waits for its goroutines. It is
// idempotent.
func (d *Server) Close() error {
	d.mu.Lock()
	if d.closed || d.udp == nil {
		d.closed = true
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	for c := range d.conns {
		c.Close()
	}
	d.mu.Unlock()
	err := errors.Join(d.udp.Close(), d.tcp.Close())
	d.wg.Wait()
	return err
}

// backoff is the pause after a failed read or accept that is not the end
// of the socket: short enough not to be noticed by a client, long enough
// that a persistent error costs no CPU.
func backoff() { time.Sleep(5 * time.Millisecond) }
