package fib

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// conn is a NETLINK_ROUTE socket that talks to the kernel only. It is not
// safe for concurrent use; FIB serialises its callers.
type conn struct {
	f    *os.File
	rc   syscall.RawConn
	seq  uint32
	rbuf []byte
	// maxSend is the largest datagram the send buffer takes.
	maxSend int
	pid     uint32 // our port id: the kernel's notifications of our changes carry it
	// dirty is set while a dump is being read: a dump abandoned half way
	// keeps the kernel's dump state, and the socket cannot start another.
	dirty bool
}

// dial opens the socket in the network namespace at path (the current one
// when empty). A socket stays in the namespace it was created in, so only
// its creation runs on a thread moved into that namespace; that thread is
// locked and never unlocked, so Go retires it instead of reusing it in the
// wrong namespace.
func dial(netns string, rcvbuf, sndbuf int) (*conn, error) {
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		if netns != "" {
			runtime.LockOSThread()
		}
		fd, err := socketIn(netns)
		ch <- result{fd, err}
	}()
	r := <-ch
	if r.err != nil {
		return nil, r.err
	}
	c, err := newConn(r.fd, rcvbuf, sndbuf)
	if err != nil {
		unix.Close(r.fd)
		return nil, err
	}
	return c, nil
}

func socketIn(netns string) (int, error) {
	if netns != "" {
		nsfd, err := unix.Open(netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, fmt.Errorf("fib: open netns %s: %w", netns, err)
		}
		err = unix.Setns(nsfd, unix.CLONE_NEWNET)
		unix.Close(nsfd)
		if err != nil {
			return -1, fmt.Errorf("fib: enter netns %s: %w", netns, err)
		}
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return -1, fmt.Errorf("fib: netlink socket: %w", err)
	}
	return fd, nil
}

func newConn(fd, rcvbuf, sndbuf int) (*conn, error) {
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("fib: bind netlink: %w", err)
	}
	// Errors come back small (CAP_ACK), with the kernel's reason (EXT_ACK);
	// dumps are filtered by the kernel (GET_STRICT_CHK). Without CAP_ACK
	// every error would carry a copy of the failed request and a batch of
	// failures would overflow the receive buffer sooner.
	for _, opt := range []int{unix.NETLINK_CAP_ACK, unix.NETLINK_EXT_ACK, unix.NETLINK_GET_STRICT_CHK} {
		if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, opt, 1); err != nil {
			return nil, fmt.Errorf("fib: netlink option %d: %w", opt, err)
		}
	}
	if err := setBuf(fd, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, rcvbuf); err != nil {
		return nil, err
	}
	if err := setBuf(fd, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, sndbuf); err != nil {
		return nil, err
	}
	var pid uint32
	if sa, err := unix.Getsockname(fd); err == nil {
		if nl, ok := sa.(*unix.SockaddrNetlink); ok {
			pid = nl.Pid
		}
	}
	snd, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF)
	if err != nil {
		return nil, fmt.Errorf("fib: socket buffer: %w", err)
	}
	f := os.NewFile(uintptr(fd), "netlink-route")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("fib: netlink raw conn: %w", err)
	}
	return &conn{
		f:       f,
		rc:      rc,
		seq:     uint32(time.Now().UnixNano()),
		rbuf:    make([]byte, 1<<16),
		pid:     pid,
		maxSend: snd - 64, // the kernel refuses a datagram over its send buffer less 32
	}, nil
}

// setBuf sets a socket buffer size, above the system limit when allowed
// (CAP_NET_ADMIN), else as large as the limit lets.
func setBuf(fd, force, plain, size int) error {
	if size <= 0 {
		return nil
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, size) == nil {
		return nil
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, plain, size); err != nil {
		return fmt.Errorf("fib: socket buffer: %w", err)
	}
	return nil
}

func (c *conn) close() error { return c.f.Close() }

// nextSeq reserves n consecutive sequence numbers and returns the first.
func (c *conn) nextSeq(n int) uint32 {
	s := c.seq + 1
	c.seq += uint32(n)
	return s
}

// deadline applies ctx's deadline to reads, so that a lost reply cannot hang
// the caller; without one, replies are expected within a generous bound.
func (c *conn) deadline(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d, ok := ctx.Deadline()
	if !ok {
		d = time.Now().Add(replyTimeout)
	}
	return c.f.SetReadDeadline(d)
}

// replyTimeout bounds the wait for a reply when the context has no deadline.
// The kernel handles a request before send returns, so a reply that does not
// come within this time is lost, not late.
const replyTimeout = 30 * time.Second

// send writes one datagram of messages. The kernel processes all of them
// before the call returns, so every reply is queued (or dropped, and
// ENOBUFS raised) by then.
func (c *conn) send(b []byte) error {
	var werr error
	err := c.rc.Write(func(fd uintptr) bool {
		var n int
		n, werr = unix.Write(int(fd), b)
		if werr == unix.EAGAIN {
			return false
		}
		if werr == nil && n != len(b) {
			werr = fmt.Errorf("fib: short netlink write %d of %d", n, len(b))
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("fib: netlink send: %w", err)
	}
	if werr != nil {
		return fmt.Errorf("fib: netlink send: %w", werr)
	}
	return nil
}

// recv reads one datagram, waiting for it when wait is set; without wait it
// returns (nil, nil) when nothing is queued. The result aliases c.rbuf.
func (c *conn) recv(wait bool) ([]byte, error) {
	var n int
	var rerr error
	var from unix.Sockaddr
	err := c.rc.Read(func(fd uintptr) bool {
		n, from, rerr = unix.Recvfrom(int(fd), c.rbuf, unix.MSG_TRUNC|unix.MSG_DONTWAIT)
		return !(wait && rerr == unix.EAGAIN)
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("fib: netlink receive: %w", err)
	case rerr == unix.EAGAIN:
		return nil, nil
	case rerr != nil:
		return nil, fmt.Errorf("fib: netlink receive: %w", rerr)
	case n > len(c.rbuf):
		return nil, fmt.Errorf("%w: datagram of %d bytes truncated", errMalformed, n)
	}
	if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
		// Not from the kernel: another process wrote to our port.
		return c.rbuf[:0], nil
	}
	return c.rbuf[:n], nil
}

// reply is the kernel's answer to one request of a batch.
type reply struct {
	seq   uint32
	errno unix.Errno // 0: acknowledged
	msg   string     // extended ack text
}

// errOverrun reports that replies were dropped because the receive buffer
// was full (ENOBUFS): which requests failed is then unknown.
var errOverrun = errors.New("fib: netlink receive buffer overrun")

// exchange sends a datagram of requests numbered first..last whose last one
// asks for an ACK, and calls fn for every reply until that ACK (or the last
// request's error) arrives. Requests without a reply succeeded.
func (c *conn) exchange(ctx context.Context, b []byte, first, last uint32, fn func(reply)) error {
	if err := c.deadline(ctx); err != nil {
		return err
	}
	if err := c.send(b); err != nil {
		return err
	}
	done := false
	for !done {
		d, err := c.recv(true)
		if errors.Is(err, unix.ENOBUFS) {
			c.drain(first, last, fn)
			return errOverrun
		}
		if err != nil {
			return err
		}
		if err := eachReply(d, first, last, func(r reply) {
			fn(r)
			done = done || r.seq == last
		}); err != nil {
			return err
		}
	}
	return nil
}

// drain passes on what is still queued after an overrun.
func (c *conn) drain(first, last uint32, fn func(reply)) {
	for {
		d, err := c.recv(false)
		if d == nil || err != nil {
			return
		}
		_ = eachReply(d, first, last, fn)
	}
}

// eachReply calls fn for every NLMSG_ERROR in d that answers a request in
// first..last; anything else (stale replies of an abandoned exchange) is
// skipped.
func eachReply(d []byte, first, last uint32, fn func(reply)) error {
	for len(d) > 0 {
		m, rest, err := nextMsg(d)
		if err != nil {
			return err
		}
		d = rest
		if m.typ != unix.NLMSG_ERROR || m.seq-first > last-first {
			continue
		}
		errno, text, err := parseError(m)
		if err != nil {
			return err
		}
		fn(reply{seq: m.seq, errno: errno, msg: text})
	}
	return nil
}

// replies reads answers to seq until fn says the exchange is over; answers
// to other requests (left over from an abandoned exchange) are skipped.
func (c *conn) replies(ctx context.Context, seq uint32, fn func(nlMsg) (done bool, err error)) error {
	for {
		d, err := c.recv(true)
		if err != nil {
			return err
		}
		for len(d) > 0 {
			m, rest, err := nextMsg(d)
			if err != nil {
				return err
			}
			d = rest
			if m.seq != seq {
				continue
			}
			if done, err := fn(m); done || err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// dump sends a dump request and calls fn for each message of the answer. A
// dump that the kernel marks inconsistent (the table changed under it) is
// reported as errDumpInterrupted so that the caller can run it again.
func (c *conn) dump(ctx context.Context, req []byte, seq uint32, fn func(nlMsg) error) error {
	if err := c.deadline(ctx); err != nil {
		return err
	}
	if err := c.send(req); err != nil {
		return err
	}
	c.dirty = true
	intr := false
	return c.replies(ctx, seq, func(m nlMsg) (bool, error) {
		intr = intr || m.flags&unix.NLM_F_DUMP_INTR != 0
		switch m.typ {
		case unix.NLMSG_DONE:
			c.dirty = false
			if intr {
				return true, errDumpInterrupted
			}
			return true, doneError(m)
		case unix.NLMSG_ERROR:
			c.dirty = false
			errno, text, err := parseError(m)
			if err != nil {
				return true, err
			}
			return true, &Error{Op: "dump", Errno: errno, Msg: text}
		}
		return false, fn(m)
	})
}

var errDumpInterrupted = errors.New("fib: dump interrupted by a concurrent change")

// doneError reads the error code an NLMSG_DONE may carry.
func doneError(m nlMsg) error {
	if len(m.data) >= 4 {
		if code := int32(ne.Uint32(m.data)); code < 0 {
			return &Error{Op: "dump", Errno: unix.Errno(-code)}
		}
	}
	return nil
}

// request sends one request and returns its single answer message (a
// NLMSG_ERROR is turned into an error).
func (c *conn) request(ctx context.Context, op string, req []byte, seq uint32, fn func(nlMsg) error) error {
	if err := c.deadline(ctx); err != nil {
		return err
	}
	if err := c.send(req); err != nil {
		return err
	}
	return c.replies(ctx, seq, func(m nlMsg) (bool, error) {
		if m.typ != unix.NLMSG_ERROR {
			return true, fn(m)
		}
		errno, text, err := parseError(m)
		switch {
		case err != nil:
			return true, err
		case errno == 0:
			return true, nil
		}
		return true, &Error{Op: op, Errno: errno, Msg: text}
	})
}
