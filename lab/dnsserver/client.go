package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// try bounds one UDP try; Query sends up to tries before giving up (or
// until ctx ends).
const (
	try   = 700 * time.Millisecond
	tries = 3
)

// Query asks server for name's address in the server's family (A for an
// IPv4 server, AAAA for IPv6), over TCP or UDP. in runs the dial (only)
// where the socket must be made, such as a lab.Netns's Do; nil dials in
// the calling thread's namespace.
func Query(ctx context.Context, in func(func() error) error, server netip.AddrPort, name string, tcp bool) (Answer, error) {
	qtype := uint16(typeA)
	if server.Addr().Is6() {
		qtype = typeAAAA
	}
	id := uint16(rand.Uint32())
	q, err := buildQuery(id, name, qtype)
	if err != nil {
		return Answer{}, err
	}
	network := "udp"
	if tcp {
		network = "tcp"
	}
	if in == nil {
		in = func(f func() error) error { return f() }
	}
	var c net.Conn
	err = in(func() error {
		var err error
		d := net.Dialer{Timeout: try * tries}
		if !tcp {
			d.Control = recvErr
		}
		c, err = d.DialContext(ctx, network, server.String())
		return err
	})
	if err != nil {
		return Answer{}, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var a Answer
	if tcp {
		a, err = exchangeTCP(c, q, id, name)
	} else {
		a, err = exchangeUDP(ctx, c, q, id, name)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = errors.Join(ctx.Err(), err)
		}
		return Answer{}, fmt.Errorf("%s: %w", network, err)
	}
	return a, nil
}

// recvErr makes ICMP errors other than port unreachable (a router
// without a route: network unreachable) fail a UDP read at once, as they
// fail a TCP connect, instead of leaving Query to time out.
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

func exchangeTCP(c net.Conn, q []byte, id uint16, name string) (Answer, error) {
	_ = c.SetDeadline(time.Now().Add(try * tries))
	if err := writeTCPMsg(c, q); err != nil {
		return Answer{}, err
	}
	msg, err := readTCPMsg(c)
	if err != nil {
		return Answer{}, err
	}
	return parseResponse(msg, id, name)
}

func exchangeUDP(ctx context.Context, c net.Conn, q []byte, id uint16, name string) (Answer, error) {
	buf := make([]byte, 65535)
	var last error
	for range tries {
		if err := ctx.Err(); err != nil {
			return Answer{}, err
		}
		if _, err := c.Write(q); err != nil {
			return Answer{}, err
		}
		deadline := time.Now().Add(try)
		_ = c.SetReadDeadline(deadline)
		for {
			n, err := c.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() && time.Now().After(deadline.Add(-time.Millisecond)) {
					last = err
					break // try again
				}
				return Answer{}, err // refused (ICMP), or ctx ended
			}
			a, err := parseResponse(buf[:n], id, name)
			if errors.Is(err, errWrongID) {
				continue // a late answer to an earlier try
			}
			return a, err
		}
	}
	return Answer{}, fmt.Errorf("no answer after %d tries: %w", tries, last)
}
