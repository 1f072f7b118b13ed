package fib

import (
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
		r, grown, err := parseRoute(m.data, (*arena)[:0])
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
