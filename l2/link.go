package l2

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// linkKey names one socket: an interface and a family.
type linkKey struct {
	iface string
	v6    bool
}

// macCheckEvery is how often a link's reader compares the interface's MAC
// with the one it announces: a bond failing over with fail_over_mac, or
// NetworkManager, changes it without taking the link down.
const macCheckEvery = time.Second

// link is the socket of one interface and family, shared by every address
// answered there. Its reader goroutine answers requests; it takes only
// link.mu, never the Announcer's lock. It also owns the goroutines that
// send its pairs' announcement schedules.
type link struct {
	key   linkKey
	log   *slog.Logger
	ns    netnsHandle
	sched []time.Duration            // announcement offsets, from Schedule.Offsets
	fence *atomic.Pointer[time.Time] // the Announcer's (SetFence)
	ctx   context.Context            // ends at close; parent of the schedules
	stop  context.CancelFunc
	done  chan struct{}  // closed when the reader has returned
	wg    sync.WaitGroup // schedule goroutines

	mu      sync.Mutex // guards the fields below
	file    *os.File   // replaced only by the reader, under mu
	raw     syscall.RawConn
	groupFD int // v6: holds the solicited-node memberships; -1 if none
	index   int
	mac     MAC
	addrs   map[netip.Addr]*pair
	groups  map[netip.Addr]int // v6: solicited-node group -> addresses in it
	lastErr error
}

// openLink opens the socket for key in namespace ns and starts its reader;
// each pair added announces itself at the offsets sched.
func openLink(ctx context.Context, key linkKey, ns netnsHandle, sched []time.Duration, fence *atomic.Pointer[time.Time], log *slog.Logger) (*link, error) {
	l := &link{
		key: key, ns: ns, sched: sched, fence: fence, log: log.With("interface", key.iface, "ipv6", key.v6),
		done: make(chan struct{}), groupFD: -1,
		addrs: map[netip.Addr]*pair{}, groups: map[netip.Addr]int{},
	}
	if err := l.open(); err != nil {
		return nil, err
	}
	l.ctx, l.stop = context.WithCancel(ctx)
	go l.run(l.ctx)
	return l, nil
}

// open (re)opens the sockets, re-resolving the interface by name (it may
// have been deleted and created again with a new index) and rejoining the
// groups. The caller holds mu or is the only user.
func (l *link) open() error {
	return l.ns.do(func() error {
		ifi, err := net.InterfaceByName(l.key.iface)
		if err != nil {
			return fmt.Errorf("l2: interface %s: %w", l.key.iface, err)
		}
		if len(ifi.HardwareAddr) != 6 {
			return fmt.Errorf("l2: interface %s has no Ethernet address", l.key.iface)
		}
		ethertype, prog := uint16(etherTypeARP), arpFilter
		if l.key.v6 {
			ethertype, prog = etherTypeIPv6, nsFilter
		}
		f, err := openPacket(l.key.iface, ifi.Index, ethertype, prog)
		if err != nil {
			return err
		}
		gfd := -1
		if l.key.v6 {
			if gfd, err = openGroups(l.key.iface); err != nil {
				return errors.Join(err, f.Close())
			}
			for g := range l.groups {
				if err := membership(gfd, ifi.Index, g, true); err != nil {
					return errors.Join(fmt.Errorf("l2: join %s on %s: %w", g, l.key.iface, err), f.Close(), unix.Close(gfd))
				}
			}
		}
		raw, err := f.SyscallConn()
		if err != nil {
			return errors.Join(fmt.Errorf("l2: packet socket for %s: %w", l.key.iface, err), f.Close(), closeFD(gfd))
		}
		l.closeSockets()
		l.file, l.raw, l.groupFD, l.index, l.mac = f, raw, gfd, ifi.Index, MAC(ifi.HardwareAddr)
		return nil
	})
}

func (l *link) closeSockets() error {
	var errs []error
	if l.file != nil {
		errs = append(errs, l.file.Close())
	}
	if l.groupFD >= 0 {
		errs = append(errs, unix.Close(l.groupFD))
		l.groupFD = -1
	}
	return errors.Join(errs...)
}

func closeFD(fd int) error {
	if fd < 0 {
		return nil
	}
	return unix.Close(fd)
}

// close stops the reader and the schedules and closes the sockets
// (leaving the groups).
func (l *link) close() error {
	l.stop()
	l.mu.Lock()
	err := l.closeSockets()
	l.mu.Unlock()
	<-l.done
	// The reader, the only other starter of schedules, has returned.
	l.wg.Wait()
	return err
}

// add starts answering for p, and its announcement schedule; a v6 address
// joins its solicited-node group unless another address on the link
// already did.
func (l *link) add(p *pair) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	// A changed MAC restarts every schedule under way, p's included.
	l.checkMACLocked()
	if l.key.v6 {
		g := solicitedNode(p.key.Addr)
		if l.groups[g] == 0 {
			if err := membership(l.groupFD, l.index, g, true); err != nil {
				return fmt.Errorf("l2: join %s on %s: %w", g, l.key.iface, err)
			}
		}
		l.groups[g]++
	}
	l.addrs[p.key.Addr] = p
	l.scheduleLocked(p)
	return nil
}

// remove stops answering for addr; once it returns no reply or
// announcement for addr leaves this link.
func (l *link) remove(addr netip.Addr) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p := l.addrs[addr]; p != nil {
		p.stopAnnounce()
	}
	delete(l.addrs, addr)
	if !l.key.v6 {
		return nil
	}
	g := solicitedNode(addr)
	if l.groups[g]--; l.groups[g] > 0 {
		return nil
	}
	delete(l.groups, g)
	if err := membership(l.groupFD, l.index, g, false); err != nil {
		return fmt.Errorf("l2: leave %s on %s: %w", g, l.key.iface, err)
	}
	return nil
}

func (l *link) empty() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.addrs) == 0
}

// run answers requests until ctx ends. A read error (the interface went
// down or away) is recorded and the sockets are reopened with backoff.
// Every macCheckEvery, busy or idle, it checks the interface's MAC.
func (l *link) run(ctx context.Context) {
	defer close(l.done)
	buf := make([]byte, 1600)
	out := make([]byte, 0, 128)
	backoff := 100 * time.Millisecond
	var check time.Time // when the MAC is next checked; zero after a reopen
	for {
		if check.IsZero() {
			check = time.Now().Add(macCheckEvery)
			// An error here is the socket's and shows up in the read.
			_ = l.file.SetReadDeadline(check)
		}
		n, err := l.file.Read(buf)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, os.ErrDeadlineExceeded) || err == nil && time.Now().After(check) {
			l.mu.Lock()
			l.checkMACLocked()
			l.mu.Unlock()
			check = time.Time{}
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			l.fail(fmt.Errorf("l2: read on %s: %w", l.key.iface, err))
			if !l.reopen(ctx, &backoff) {
				return
			}
			check = time.Time{}
			continue
		}
		// Only a read proves the socket works again: a reopen on a down
		// interface succeeds, and its first read fails.
		backoff = 100 * time.Millisecond
		out = l.answer(buf[:n], out[:0])
	}
}

// reopen retries opening until it works or ctx ends.
func (l *link) reopen(ctx context.Context, backoff *time.Duration) bool {
	for {
		t := time.NewTimer(*backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		*backoff = min(2**backoff, 5*time.Second)
		l.mu.Lock()
		err := ctx.Err()
		old := l.mac
		if err == nil {
			err = l.open()
		}
		if err == nil {
			l.lastErr = nil
			// The link may have been down across a takeover, and a switch
			// that saw it go down has forgotten our MACs: say it once more,
			// or, if the MAC changed meanwhile, as for a change.
			for _, p := range l.addrs {
				if l.mac != old {
					l.scheduleLocked(p)
				} else {
					l.announceLocked(p)
				}
			}
		}
		l.mu.Unlock()
		if ctx.Err() != nil {
			return false
		}
		if err == nil {
			l.log.Info("socket reopened")
			return true
		}
		l.fail(err)
	}
}

func (l *link) fail(err error) {
	l.log.Warn("l2 socket failed; retrying", "err", err)
	l.mu.Lock()
	l.lastErr = err
	l.mu.Unlock()
}

// answer replies to frame if it asks for an address answered here; out is
// scratch space for the reply, returned for reuse.
func (l *link) answer(frame, out []byte) []byte {
	var ns NDP
	var req ARP
	var target netip.Addr
	var err error
	if l.key.v6 {
		if ns, err = ParseNDP(frame); err != nil || ns.Type != NDPSolicitation {
			return out
		}
		target = ns.Target
	} else {
		// sender == target is someone's announcement, not a question.
		if req, err = ParseARP(frame); err != nil || req.Op != ARPRequest || req.SenderIP == req.TargetIP {
			return out
		}
		target = req.TargetIP
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.addrs[target]
	if p == nil {
		return out
	}
	if l.key.v6 {
		out = AppendNDP(out, naReply(ns, l.mac))
	} else {
		out = AppendARP(out, arpReply(req, l.mac))
	}
	if l.sendLocked(p, out) {
		p.answered.Add(1)
	}
	return out
}

// scheduleLocked (re)starts p's announcements in a goroutine the link
// owns; removing p or closing the link stops it.
func (l *link) scheduleLocked(p *pair) {
	if p.stopAnnounce != nil {
		p.stopAnnounce()
	}
	ctx, stop := context.WithCancel(l.ctx)
	p.stopAnnounce = stop
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer stop()
		t := time.NewTimer(0)
		defer t.Stop()
		prev := time.Duration(0)
		for _, off := range l.sched {
			// Each wait runs from the previous send, not from the start, so
			// a late timer never brings two announcements closer than the
			// schedule's gap (RFC 4861 section 7.2.6 sets a minimum).
			t.Reset(off - prev)
			prev = off
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			l.announce(p)
		}
	}()
}

// checkMACLocked compares the interface's MAC with the one announced and,
// when it changed, answers with the new one and announces every address
// again with the full schedule (RFC 4861 section 7.2.6 names exactly this
// case). The bound socket names its interface by index, so this is one
// getsockname, whatever the number of interfaces.
func (l *link) checkMACLocked() {
	var sa unix.Sockaddr
	var serr error
	if err := l.raw.Control(func(fd uintptr) { sa, serr = unix.Getsockname(int(fd)) }); err != nil || serr != nil {
		return // the socket is closed or failing: the reader reopens it
	}
	ll, ok := sa.(*unix.SockaddrLinklayer)
	if !ok || ll.Halen != 6 {
		return // the interface is going away: the reader's next read fails
	}
	mac := MAC(ll.Addr[:6])
	if mac == l.mac {
		return
	}
	l.log.Info("interface MAC changed; announcing again", "old", net.HardwareAddr(l.mac[:]).String(), "new", net.HardwareAddr(mac[:]).String())
	l.mac = mac
	for _, p := range l.addrs {
		l.scheduleLocked(p)
	}
}

// announce sends one gratuitous ARP or unsolicited NA for p, if p is still
// answered here.
func (l *link) announce(p *pair) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.announceLocked(p)
}

func (l *link) announceLocked(p *pair) {
	if l.addrs[p.key.Addr] != p {
		return
	}
	var frame []byte
	if l.key.v6 {
		frame = AppendNDP(make([]byte, 0, 96), unsolicitedNA(p.key.Addr, l.mac))
	} else {
		frame = AppendARP(make([]byte, 0, 64), gratuitousARP(p.key.Addr, l.mac))
	}
	if l.sendLocked(p, frame) {
		p.gratuitous.Add(1)
	}
}

// sendLocked sends frame for p and records the outcome in p. It never
// waits: with the send buffer full (a TX queue that does not drain) the
// frame is dropped and counted, since a writer blocked while holding mu
// would block Set, and with it the handover of every address.
func (l *link) sendLocked(p *pair, frame []byte) bool {
	if f := l.fence.Load(); f != nil && !time.Now().Before(*f) {
		p.fenced.Add(1)
		return false
	}
	var werr error
	err := l.raw.Write(func(fd uintptr) bool {
		_, werr = unix.Write(int(fd), frame)
		return true // never wait in the poller for room
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.ENOBUFS) {
			p.dropped.Add(1)
			err = fmt.Errorf("l2: send on %s: frame dropped, send buffer full: %w", l.key.iface, err)
		} else {
			err = fmt.Errorf("l2: send on %s: %w", l.key.iface, err)
		}
		p.lastErr.Store(&err)
		return false
	}
	p.lastErr.Store(nil)
	return true
}

func (l *link) status() (MAC, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mac, l.lastErr
}
