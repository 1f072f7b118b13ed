package reach

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Options say what Watch and Snapshot look at.
type Options struct {
	// Netns is the network namespace, a /run/netns path; empty: the
	// current one.
	Netns string
	// OwnProtocol is the kernel route protocol the router writes its BGP
	// routes with (zero: RTPROT_BGP, 186): such routes are never a way to
	// a next hop, and their changes are not watched.
	OwnProtocol uint8
	// Routes also takes the main table's unicast routes of other
	// protocols, which multihop sessions may reach next hops through.
	// Without it a State has no routes and Check treats a multihop next
	// hop like any other. It costs a route dump per change, so it is
	// only for routers with multihop sessions.
	Routes bool
	// Settle is how long Watch gathers events before it dumps again
	// (zero: 100 ms), so that a burst of changes is one new State.
	Settle time.Duration
}

func (o *Options) ownProtocol() uint8 {
	if o.OwnProtocol == 0 {
		return unix.RTPROT_BGP
	}
	return o.OwnProtocol
}

// Watch calls onChange with a snapshot of the namespace's links, addresses
// (and routes, with Options.Routes) at once, and then with a new one after
// each burst of changes that alters it, until ctx ends. onChange runs on
// Watch's goroutine. Watch returns nil when ctx ends, or an error when it
// cannot read the kernel.
func Watch(ctx context.Context, opt Options, onChange func(*State)) error {
	ns, err := openNetns(opt.Netns)
	if err != nil {
		return err
	}
	defer ns.Close()
	groups := []uint{unix.RTNLGRP_LINK, unix.RTNLGRP_IPV4_IFADDR, unix.RTNLGRP_IPV6_IFADDR}
	if opt.Routes {
		groups = append(groups, unix.RTNLGRP_IPV4_ROUTE, unix.RTNLGRP_IPV6_ROUTE)
	}
	// Subscribe before the first dump, so that no change falls between.
	sub, err := nl.SubscribeAt(ns, netns.None(), unix.NETLINK_ROUTE, groups...)
	if err != nil {
		return fmt.Errorf("reach: subscribe to rtnetlink in %q: %w", opt.Netns, err)
	}
	defer sub.Close()
	stop := context.AfterFunc(ctx, sub.Close) // unblocks Receive
	defer stop()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("reach: netlink in %q: %w", opt.Netns, err)
	}
	defer h.Close()

	st, err := snapshot(h, &opt)
	if err != nil {
		return err
	}
	onChange(st)
	settle := opt.Settle
	if settle <= 0 {
		settle = 100 * time.Millisecond
	}
	var due time.Time // when a dump is due; zero: none
	for {
		timeout := unix.Timeval{}
		if !due.IsZero() {
			timeout = unix.NsecToTimeval(max(time.Until(due), time.Millisecond).Nanoseconds())
		}
		if err := sub.SetReceiveTimeout(&timeout); err != nil {
			return err
		}
		msgs, _, err := sub.Receive()
		if ctx.Err() != nil {
			return nil
		}
		changed := false
		switch {
		case err == nil:
			changed = relevant(msgs, opt.ownProtocol())
		case errors.Is(err, unix.ENOBUFS):
			changed = true // events were lost: only a dump tells
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
		default:
			return fmt.Errorf("reach: rtnetlink events in %q: %w", opt.Netns, err)
		}
		if changed && due.IsZero() {
			due = time.Now().Add(settle)
		}
		if due.IsZero() || time.Now().Before(due) {
			continue
		}
		due = time.Time{}
		next, err := snapshot(h, &opt)
		if err != nil {
			return err
		}
		if !next.Equal(st) {
			st = next
			onChange(st)
		}
	}
}

// Snapshot reads the namespace's links, addresses (and routes) once.
func Snapshot(opt Options) (*State, error) {
	ns, err := openNetns(opt.Netns)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("reach: netlink in %q: %w", opt.Netns, err)
	}
	defer h.Close()
	return snapshot(h, &opt)
}

func openNetns(path string) (netns.NsHandle, error) {
	if path == "" {
		return netns.None(), nil
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return netns.None(), fmt.Errorf("reach: open netns %s: %w", path, err)
	}
	return ns, nil
}

// relevant reports whether any of the event messages may change a State:
// every link and address event, and route events of other protocols.
func relevant(msgs []syscall.NetlinkMessage, own uint8) bool {
	for _, m := range msgs {
		switch m.Header.Type {
		case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
			// struct rtmsg: family, dst_len, src_len, tos, table,
			// protocol, scope, type.
			if len(m.Data) >= 8 && m.Data[5] != own && m.Data[7] == unix.RTN_UNICAST {
				return true
			}
		default:
			return true
		}
	}
	return false
}

// dumpTries bounds the retries of a dump the kernel interrupted because
// the table changed under it.
const dumpTries = 5

func snapshot(h *netlink.Handle, opt *Options) (*State, error) {
	var err error
	for range dumpTries {
		var st *State
		if st, err = dump(h, opt); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return st, err
		}
	}
	return nil, err
}

func dump(h *netlink.Handle, opt *Options) (*State, error) {
	nlinks, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("reach: list links: %w", err)
	}
	links := make([]Link, 0, len(nlinks))
	for _, l := range nlinks {
		a := l.Attrs()
		links = append(links, Link{
			Index:    a.Index,
			Name:     a.Name,
			Up:       a.RawFlags&unix.IFF_UP != 0 && a.RawFlags&unix.IFF_RUNNING != 0,
			Loopback: a.RawFlags&unix.IFF_LOOPBACK != 0,
		})
	}
	naddrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("reach: list addresses: %w", err)
	}
	addrs := make([]Address, 0, len(naddrs))
	for _, a := range naddrs {
		if v, ok := address(a); ok {
			addrs = append(addrs, v)
		}
	}
	var routes []Route
	if opt.Routes {
		own := opt.ownProtocol()
		err = h.RouteListFilteredIter(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE,
			func(r netlink.Route) bool {
				if uint8(r.Protocol) != own && r.Type == unix.RTN_UNICAST {
					if dst, ok := routeDst(r); ok {
						routes = append(routes, Route{Dst: dst, Link: r.LinkIndex})
					}
				}
				return true
			})
		if err != nil {
			return nil, fmt.Errorf("reach: list routes: %w", err)
		}
	}
	return NewState(links, addrs, routes), nil
}

// address converts one kernel address. An address that failed duplicate
// address detection is not ours; a tentative one is ours but connects
// nothing yet.
func address(a netlink.Addr) (Address, bool) {
	if a.IPNet == nil || a.Flags&unix.IFA_F_DADFAILED != 0 {
		return Address{}, false
	}
	local, ok := prefixOf(a.IPNet)
	if !ok {
		return Address{}, false
	}
	v := Address{Local: local.Addr(), Subnet: local, Link: a.LinkIndex}
	if a.Peer != nil {
		if peer, ok := prefixOf(a.Peer); ok {
			v.Subnet = peer
		}
	}
	if a.Flags&unix.IFA_F_TENTATIVE != 0 {
		v.Subnet = netip.Prefix{}
	}
	return v, true
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ip = ip.Unmap()
	ones, bits := n.Mask.Size()
	if bits == 0 {
		return netip.Prefix{}, false // not a prefix mask
	}
	if bits == 128 && ip.Is4() {
		ones -= 96 // an IPv4 address in 16 bytes with its mask
	}
	p := netip.PrefixFrom(ip, ones)
	return p, p.IsValid()
}

func routeDst(r netlink.Route) (netip.Prefix, bool) {
	if r.Dst != nil {
		return prefixOf(r.Dst)
	}
	switch r.Family {
	case unix.AF_INET:
		return netip.PrefixFrom(netip.IPv4Unspecified(), 0), true
	case unix.AF_INET6:
		return netip.PrefixFrom(netip.IPv6Unspecified(), 0), true
	}
	return netip.Prefix{}, false
}
