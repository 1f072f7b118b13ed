package fib

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// Multicast groups of the monitor socket (linux/rtnetlink.h).
const (
	grpLink     = unix.RTNLGRP_LINK
	grpIPv4Addr = unix.RTNLGRP_IPV4_IFADDR
	grpIPv4Rt   = unix.RTNLGRP_IPV4_ROUTE
	grpIPv6Addr = unix.RTNLGRP_IPV6_IFADDR
	grpIPv6Rt   = unix.RTNLGRP_IPV6_ROUTE
	grpNexthop  = 32 // RTNLGRP_NEXTHOP
)

// eventKind sorts kernel notifications by what they call for.
type eventKind uint8

const (
	evRoute   eventKind = iota // one of our routes changed: check its prefix
	evResync                   // links, addresses or our objects changed: compare everything
	evOverrun                  // notifications were lost: compare everything
)

// event is a kernel notification that concerns us.
type event struct {
	kind   eventKind
	del    bool
	prefix netip.Prefix
	nhID   uint32
	hops   []NextHop
}

// dialMonitor opens a socket subscribed to route, nexthop, link and address
// notifications of the FIB's namespace.
func (f *FIB) dialMonitor() (*conn, error) {
	c, err := dial(f.cfg.NetNS, f.cfg.ReceiveBuffer, 4096)
	if err != nil {
		return nil, err
	}
	var fd int
	if err := c.rc.Control(func(s uintptr) { fd = int(s) }); err != nil {
		c.close()
		return nil, err
	}
	for _, g := range []int{grpLink, grpIPv4Addr, grpIPv4Rt, grpIPv6Addr, grpIPv6Rt, grpNexthop} {
		if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, g); err != nil {
			if g == grpNexthop && !f.haveNH {
				continue
			}
			c.close()
			return nil, fmt.Errorf("fib: monitor group %d: %w", g, err)
		}
	}
	if err := c.f.SetReadDeadline(time.Time{}); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// readEvents passes the notifications that concern us to out until the
// socket is closed. Our own changes (they carry our writer's port id) are
// dropped here. A full channel blocks the reader, the socket then overruns
// and the overrun calls for a full comparison: nothing is lost unnoticed.
func (f *FIB) readEvents(c *conn, out chan<- event, stop <-chan struct{}) {
	send := func(e event) bool {
		select {
		case out <- e:
			return true
		case <-stop:
			return false
		}
	}
	var arena []NextHop
	for {
		d, err := c.recv(true)
		if errors.Is(err, unix.ENOBUFS) {
			if !send(event{kind: evOverrun}) {
				return
			}
			continue
		}
		if err != nil {
			return
		}
		me := f.writer.Load()
		for len(d) > 0 {
			m, rest, err := nextMsg(d)
			if err != nil {
				break
			}
			d = rest
			if m.pid == me && me != 0 {
				continue
			}
			e, ok := f.classify(m, &arena)
			if ok && !send(e) {
				return
			}
		}
	}
}

// classify turns a notification into an event, or reports that it does
// not concern us: routes of other keys, objects outside our range.
func (f *FIB) classify(m nlMsg, arena *[]NextHop) (event, bool) {
	switch m.typ {
	case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
		r, grown, err := parseRoute(m.data, (*arena)[:0], f.links.Load())
		*arena = grown
		if err != nil || r.table != f.key.table || r.metric != f.key.metric {
			return event{}, false
		}
		if r.proto != f.key.proto {
			// Another protocol's route took our route's place (same
			// table, prefix and metric): ours is gone.
			if m.typ == unix.RTM_NEWROUTE && m.flags&unix.NLM_F_REPLACE != 0 {
				return event{kind: evRoute, del: true, prefix: r.prefix}, true
			}
			return event{}, false
		}
		return event{kind: evRoute, del: m.typ == unix.RTM_DELROUTE, prefix: r.prefix,
			nhID: r.nhID, hops: append([]NextHop(nil), r.hops...)}, true
	case unix.RTM_NEWNEXTHOP, unix.RTM_DELNEXTHOP:
		n, err := parseNexthop(m.data)
		lo, hi := f.cfg.NextHopIDBase, f.cfg.NextHopIDBase+f.cfg.NextHopIDCount-1
		if err != nil || n.id < lo || n.id > hi {
			return event{}, false
		}
		return event{kind: evResync}, true
	case unix.RTM_NEWLINK, unix.RTM_DELLINK, unix.RTM_NEWADDR, unix.RTM_DELADDR:
		return event{kind: evResync}, true
	}
	return event{}, false
}

// noteRoute marks the prefix of a route notification pending when the
// kernel no longer holds it as desired, and reports whether it did. The
// check is against the state after the notification: a stale one (the
// route changed again since) costs at most one needless, idempotent write.
func (f *FIB) noteRoute(e event) bool {
	f.stats.Events++
	set, _, ok := f.routes.lookup(e.prefix)
	switch {
	case !ok && !e.del:
		f.extras = append(f.extras, e.prefix)
		return true
	case !ok:
		return false
	case e.del:
		if !f.sets.usable(set) {
			return false
		}
	default:
		r := kernelRoute{prefix: e.prefix, nhID: e.nhID, hops: e.hops}
		if f.matches(&r, set) {
			return false
		}
	}
	f.routes.mark(e.prefix, flagPending, 0)
	f.pending = true
	return true
}

// ownFilter is a classic BPF socket filter that drops the notifications
// whose nlmsg_pid is pid: the kernel's echo of every route and object our
// writer socket sends. The kernel runs a socket's filter before it queues
// a broadcast, so a million-route Apply no longer fills (and overruns) the
// monitor socket with its own echo, and the full resync an overrun calls
// for is not needed. Route, nexthop, link and address notifications are
// sent one message per datagram; the filter looks at the first header only,
// and readEvents still skips our port id in user space.
func ownFilter(pid uint32) []unix.SockFilter {
	// BPF loads packet words big-endian; nlmsg_pid is in host order.
	var b [4]byte
	ne.PutUint32(b[:], pid)
	k := binary.BigEndian.Uint32(b[:])
	return []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 12}, // nlmsg_pid
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: k, Jt: 1},
		{Code: unix.BPF_RET | unix.BPF_K, K: 0xffffffff}, // keep all of it
		{Code: unix.BPF_RET | unix.BPF_K, K: 0},          // drop
	}
}

// dropFrom makes the kernel drop the notifications caused by port pid,
// replacing the filter set before (0: no filter).
func (c *conn) dropFrom(pid uint32) error {
	var err error
	cerr := c.rc.Control(func(fd uintptr) {
		if pid == 0 {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DETACH_FILTER, 0)
			if err == unix.ENOENT {
				err = nil
			}
			return
		}
		prog := ownFilter(pid)
		err = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
			&unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]})
	})
	if cerr != nil {
		return cerr
	}
	if err != nil {
		return fmt.Errorf("fib: monitor filter: %w", err)
	}
	return nil
}

// watchWriter points the monitor's filter at the writer's current port
// id. Maintain calls it with its socket and enter after a new writer
// socket; whichever runs last sees the last port id.
func (f *FIB) watchWriter(mon *conn, set bool) {
	f.monMu.Lock()
	defer f.monMu.Unlock()
	if set {
		f.mon = mon
	}
	if f.mon == nil {
		return
	}
	if err := f.mon.dropFrom(f.writer.Load()); err != nil {
		// Not fatal: our echo is then dropped in user space, at the cost
		// of overruns (and resyncs) under large batches.
		f.log.Warn("fib: cannot filter our own notifications in the kernel", "err", err)
	}
}

// unwatch forgets the monitor socket before Maintain closes it.
func (f *FIB) unwatch() {
	f.monMu.Lock()
	f.mon = nil
	f.monMu.Unlock()
}
