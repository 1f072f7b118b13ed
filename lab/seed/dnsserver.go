package seed

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DNSPort is where the responders listen and Dig asks.
const DNSPort = 53

// DNSServer is the lab's stand-in for the write-up's Pi-hole: a DNS
// responder on UDP and TCP port 53 of one address inside one host. It
// answers every A (or AAAA) query with that address and adds a TXT record
// naming the host, so that whoever asks sees which node the network led
// them to; a TXT query gets the name alone. Its sockets live in the host's
// namespace; its goroutines are owned by it and end with Close.
type DNSServer struct {
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

// dnsIdle is how long a TCP client may stay silent between queries.
const dnsIdle = 10 * time.Second

// StartDNS starts a responder on addr inside node's namespace. The
// sockets are bound with IP_FREEBIND, so addr need not be on the node yet:
// AddVIP may come before or after, and DelVIP leaves the responder running
// but out of reach, as a pod is when the node stops accepting its VIP.
// The lab's Close stops it, if its own Close did not.
func (s *Seed) StartDNS(ctx context.Context, node string, addr netip.Addr) (*DNSServer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ns := s.Host(node)
	if ns == nil {
		return nil, fmt.Errorf("seed: no host %q in lab %s", node, s.ID)
	}
	if !addr.IsValid() || addr.Zone() != "" {
		return nil, fmt.Errorf("seed: DNS address %v is not an address", addr)
	}
	d := &DNSServer{Node: node, Addr: addr, conns: map[net.Conn]struct{}{}}
	ap := netip.AddrPortFrom(addr, DNSPort).String()
	lc := net.ListenConfig{Control: freebind}
	err := ns.Do(func() error {
		pc, err := lc.ListenPacket(ctx, "udp", ap)
		if err != nil {
			return err
		}
		d.udp = pc.(*net.UDPConn)
		ln, err := lc.Listen(ctx, "tcp", ap)
		if err != nil {
			d.udp.Close()
			return err
		}
		d.tcp = ln.(*net.TCPListener)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("seed: DNS on %s in %s: %w", ap, node, err)
	}
	s.mu.Lock()
	closed := s.closed
	if !closed {
		s.dns = append(s.dns, d)
	}
	s.mu.Unlock()
	if closed {
		d.udp.Close()
		d.tcp.Close()
		return nil, fmt.Errorf("seed: lab %s is closed", s.ID)
	}
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

// recvErr makes ICMP errors other than port unreachable (a router
// without a route: network unreachable) fail a UDP read at once, as they
// fail a TCP connect, instead of leaving Dig to time out.
func recvErr(network, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if network == "udp6" {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_RECVERR, 1)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_RECVERR, 1)
		}
	})
	return errors.Join(err, serr)
}

// Queries is how many queries the responder has answered.
func (d *DNSServer) Queries() int64 { return d.queries.Load() }

// answer builds the response to one message, nil for none.
func (d *DNSServer) answer(msg []byte) []byte {
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

func (d *DNSServer) serveUDP() {
	defer d.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := d.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // an ICMP error reported on the socket, say
		}
		if resp := d.answer(buf[:n]); resp != nil {
			_, _ = d.udp.WriteToUDPAddrPort(resp, from)
		}
	}
}

func (d *DNSServer) serveTCP() {
	defer d.wg.Done()
	for {
		c, err := d.tcp.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
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

func (d *DNSServer) track(c net.Conn, add bool) bool {
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

func (d *DNSServer) serveConn(c net.Conn) {
	defer d.wg.Done()
	defer d.track(c, false)
	defer c.Close()
	for {
		_ = c.SetDeadline(time.Now().Add(dnsIdle))
		msg, err := readTCPMsg(c)
		if err != nil {
			return
		}
		resp := d.answer(msg)
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
func (d *DNSServer) Close() error {
	d.mu.Lock()
	if d.closed {
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

// Dig asks server (port 53), from inside host from's namespace, for name's
// address in the server's family (A for an IPv4 server, AAAA for IPv6),
// over TCP or UDP, and renders the answer as DNSAnswer.String does:
// "203.0.113.53 from node1" when one of the lab's responders answered.
func (s *Seed) Dig(ctx context.Context, from string, server netip.Addr, name string, tcp bool) (string, error) {
	a, err := s.Query(ctx, from, server, name, tcp)
	if err != nil {
		return "", err
	}
	return a.String(), nil
}

// digTry bounds one UDP try; Dig sends up to digTries before giving up
// (or until ctx ends).
const (
	digTry   = 700 * time.Millisecond
	digTries = 3
)

// Query is Dig returning the parsed answer.
func (s *Seed) Query(ctx context.Context, from string, server netip.Addr, name string, tcp bool) (DNSAnswer, error) {
	ns := s.Host(from)
	if ns == nil {
		return DNSAnswer{}, fmt.Errorf("seed: no host %q in lab %s", from, s.ID)
	}
	qtype := uint16(typeA)
	if server.Is6() {
		qtype = typeAAAA
	}
	id := uint16(rand.Uint32())
	q, err := buildQuery(id, name, qtype)
	if err != nil {
		return DNSAnswer{}, err
	}
	network := "udp"
	if tcp {
		network = "tcp"
	}
	target := netip.AddrPortFrom(server, DNSPort).String()
	var c net.Conn
	err = ns.Do(func() error {
		var err error
		d := net.Dialer{Timeout: digTry * digTries}
		if !tcp {
			d.Control = recvErr
		}
		c, err = d.DialContext(ctx, network, target)
		return err
	})
	if err != nil {
		return DNSAnswer{}, fmt.Errorf("seed: dig %s @%s from %s: %w", name, server, from, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var a DNSAnswer
	if tcp {
		a, err = exchangeTCP(c, q, id, name)
	} else {
		a, err = exchangeUDP(ctx, c, q, id, name)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = errors.Join(ctx.Err(), err)
		}
		return DNSAnswer{}, fmt.Errorf("seed: dig %s @%s (%s) from %s: %w", name, server, network, from, err)
	}
	return a, nil
}

func exchangeTCP(c net.Conn, q []byte, id uint16, name string) (DNSAnswer, error) {
	_ = c.SetDeadline(time.Now().Add(digTry * digTries))
	if err := writeTCPMsg(c, q); err != nil {
		return DNSAnswer{}, err
	}
	msg, err := readTCPMsg(c)
	if err != nil {
		return DNSAnswer{}, err
	}
	return parseResponse(msg, id, name)
}

func exchangeUDP(ctx context.Context, c net.Conn, q []byte, id uint16, name string) (DNSAnswer, error) {
	buf := make([]byte, 65535)
	var last error
	for range digTries {
		if err := ctx.Err(); err != nil {
			return DNSAnswer{}, err
		}
		if _, err := c.Write(q); err != nil {
			return DNSAnswer{}, err
		}
		deadline := time.Now().Add(digTry)
		_ = c.SetReadDeadline(deadline)
		for {
			n, err := c.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() && time.Now().After(deadline.Add(-time.Millisecond)) {
					last = err
					break // try again
				}
				return DNSAnswer{}, err // refused (ICMP), or ctx ended
			}
			a, err := parseResponse(buf[:n], id, name)
			if errors.Is(err, errWrongID) {
				continue // a late answer to an earlier try
			}
			return a, err
		}
	}
	return DNSAnswer{}, fmt.Errorf("no answer after %d tries: %w", digTries, last)
}
