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
	"time"

	"golang.org/x/sys/unix"
)

// linkKey names one socket: an interface and a family.
type linkKey struct {
	iface string
	v6    bool
}

// link is the socket of one interface and family, shared by every address
// answered there. Its reader goroutine answers requests; it takes only
// link.mu, never the Announcer's lock.
type link struct {
	key  linkKey
	log  *slog.Logger
	ns   netnsHandle
	stop context.CancelFunc
	done chan struct{} // closed when the reader has returned

	mu      sync.Mutex // guards the fields below
	file    *os.File   // replaced only by the reader, under mu
	groupFD int        // v6: holds the solicited-node memberships; -1 if none
	index   int
	mac     MAC
	addrs   map[netip.Addr]*pair
	groups  map[netip.Addr]int // v6: solicited-node group -> addresses in it
	lastErr error
}

// openLink opens the socket for key in namespace ns and starts its reader.
func openLink(ctx context.Context, key linkKey, ns netnsHandle, log *slog.Logger) (*link, error) {
	l := &link{
		key: key, ns: ns, log: log.With("interface", key.iface, "ipv6", key.v6),
		done: make(chan struct{}), groupFD: -1,
		addrs: map[netip.Addr]*pair{}, groups: map[netip.Addr]int{},
	}
	if err := l.open(); err != nil {
		return nil, err
	}
	ctx, l.stop = context.WithCancel(ctx)
	go l.run(ctx)
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
		l.closeSockets()
		l.file, l.groupFD, l.index, l.mac = f, gfd, ifi.Index, MAC(ifi.HardwareAddr)
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

// close stops the reader and closes the sockets (leaving the groups).
func (l *link) close() error {
	l.stop()
	l.mu.Lock()
	err := l.closeSockets()
	l.mu.Unlock()
	<-l.done
	return err
}

// add starts answering for p; a v6 address joins its solicited-node group
// unless another address on the link already did.
func (l *link) add(p *pair) error {
	l.mu.Lock()
	defer l.mu.Unlock()
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
	return nil
}

// remove stops answering for addr; once it returns no reply or
// announcement for addr leaves this link.
func (l *link) remove(addr netip.Addr) error {
	l.mu.Lock()
	defer l.mu.Unlock()
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
func (l *link) run(ctx context.Context) {
	defer close(l.done)
	buf := make([]byte, 1600)
	out := make([]byte, 0, 128)
	backoff := 100 * time.Millisecond
	for {
		n, err := l.file.Read(buf)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			l.fail(fmt.Errorf("l2: read on %s: %w", l.key.iface, err))
			if !l.reopen(ctx, &backoff) {
				return
			}
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
		if err == nil {
			err = l.open()
		}
		if err == nil {
			l.lastErr = nil
			// The link may have been down across a takeover, and a switch
			// that saw it go down has forgotten our MACs: say it once more.
			for _, p := range l.addrs {
				l.announceLocked(p)
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
	var target netip.Addr
	if l.key.v6 {
		ns, err := ParseNDP(frame)
		if err != nil || ns.Type != NDPSolicitation {
			return out
		}
		target = ns.Target
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.addrs[target] == nil {
			return out
		}
		out = AppendNDP(out, naReply(ns, l.mac))
	} else {
		req, err := ParseARP(frame)
		// sender == target is someone's announcement, not a question.
		if err != nil || req.Op != ARPRequest || req.SenderIP == req.TargetIP {
			return out
		}
		target = req.TargetIP
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.addrs[target] == nil {
			return out
		}
		out = AppendARP(out, arpReply(req, l.mac))
	}
	if err := l.writeLocked(out); err != nil {
		l.addrs[target].lastErr.Store(&err)
		return out
	}
	l.addrs[target].lastErr.Store(nil)
	l.addrs[target].answered.Add(1)
	return out
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
	if err := l.writeLocked(frame); err != nil {
		p.lastErr.Store(&err)
		return
	}
	p.lastErr.Store(nil)
	p.gratuitous.Add(1)
}

func (l *link) writeLocked(frame []byte) error {
	if _, err := l.file.Write(frame); err != nil {
		return fmt.Errorf("l2: send on %s: %w", l.key.iface, err)
	}
	return nil
}

func (l *link) status() (MAC, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mac, l.lastErr
}
