package lab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Announcement is one gratuitous ARP or unsolicited neighbour
// advertisement seen on a link: a host saying, unasked, that Addr is at
// MAC. An L2 load balancer's new owner sends them so that the LAN's
// neighbour caches stop sending the address's traffic to the old one.
type Announcement struct {
	At   time.Time
	MAC  net.HardwareAddr
	Addr netip.Addr
}

func (a Announcement) String() string {
	return fmt.Sprintf("%s is-at %s", a.Addr, a.MAC)
}

const (
	etherARP  = 0x0806
	etherIPv6 = 0x86dd
	ethHdrLen = 14
	arpLen    = 28
	ipv6Len   = 40
	protoICMP = 58
	naType    = 136
	naLen     = 24 // type, code, checksum, flags, target
	naSolicit = 0x40
	optTLLA   = 2
)

// ParseAnnouncement reads an Ethernet frame: ok for a gratuitous ARP
// (request or reply whose sender and target protocol addresses are one
// IPv4 address) or an unsolicited neighbour advertisement (hop limit 255,
// the solicited flag clear). The MAC is the one announced (the ARP sender
// hardware address, the target link-layer address option), else the
// frame's source. Frames come from the wire: anything short or odd is
// simply not an announcement.
func ParseAnnouncement(frame []byte) (mac net.HardwareAddr, addr netip.Addr, ok bool) {
	if len(frame) < ethHdrLen {
		return nil, netip.Addr{}, false
	}
	src, body := frame[6:12], frame[ethHdrLen:]
	switch binary.BigEndian.Uint16(frame[12:14]) {
	case etherARP:
		return parseGARP(body)
	case etherIPv6:
		return parseUnsolicitedNA(src, body)
	}
	return nil, netip.Addr{}, false
}

func parseGARP(b []byte) (net.HardwareAddr, netip.Addr, bool) {
	// Ethernet/IPv4 only: htype 1, ptype 0x0800, hlen 6, plen 4.
	if len(b) < arpLen || binary.BigEndian.Uint16(b[0:2]) != 1 || binary.BigEndian.Uint16(b[2:4]) != 0x0800 || b[4] != 6 || b[5] != 4 {
		return nil, netip.Addr{}, false
	}
	if op := binary.BigEndian.Uint16(b[6:8]); op != 1 && op != 2 {
		return nil, netip.Addr{}, false
	}
	sha := net.HardwareAddr(append([]byte(nil), b[8:14]...))
	spa := netip.AddrFrom4([4]byte(b[14:18]))
	tpa := netip.AddrFrom4([4]byte(b[24:28]))
	if spa != tpa || spa.IsUnspecified() {
		// An answer to someone's question, or a probe: not an announcement.
		return nil, netip.Addr{}, false
	}
	return sha, spa, true
}

func parseUnsolicitedNA(src []byte, b []byte) (net.HardwareAddr, netip.Addr, bool) {
	if len(b) < ipv6Len+naLen || b[0]>>4 != 6 || b[6] != protoICMP || b[7] != 255 {
		return nil, netip.Addr{}, false
	}
	payload := int(binary.BigEndian.Uint16(b[4:6]))
	icmp := b[ipv6Len:]
	if payload < naLen || payload > len(icmp) {
		return nil, netip.Addr{}, false
	}
	icmp = icmp[:payload]
	if icmp[0] != naType || icmp[1] != 0 || icmp[4]&naSolicit != 0 {
		return nil, netip.Addr{}, false
	}
	target := netip.AddrFrom16([16]byte(icmp[8:24]))
	mac := net.HardwareAddr(append([]byte(nil), src...))
	// Options: type, length in units of 8 octets (never 0), value.
	for opts := icmp[naLen:]; len(opts) >= 8; {
		n := int(opts[1]) * 8
		if n == 0 || n > len(opts) {
			break
		}
		if opts[0] == optTLLA && n == 8 {
			mac = append(net.HardwareAddr(nil), opts[2:8]...)
		}
		opts = opts[n:]
	}
	return mac, target, true
}

// AnnouncementWatch records the announcements arriving on one link of a
// namespace, from a raw AF_PACKET socket (CAP_NET_RAW), until Close.
type AnnouncementWatch struct {
	fd   int
	done chan struct{}
	stop chan struct{}

	mu   sync.Mutex // guards seen and err
	seen []Announcement
	err  error
}

// WatchAnnouncements starts recording the announcements that arrive on
// ifname (frames the namespace sends itself are left out). Its goroutine
// runs until Close.
func (n *Netns) WatchAnnouncements(ifname string) (*AnnouncementWatch, error) {
	fd := -1
	err := n.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		proto := htons(unix.ETH_P_ALL)
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(proto))
		if err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("binding to %s: %w", ifname, err)
		}
		// The reader wakes up this often to see whether Close was called:
		// closing a socket does not wake a blocked read.
		tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	})
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("lab: watching announcements on %s in %s: %w", ifname, n.Name, err)
	}
	w := &AnnouncementWatch{fd: fd, done: make(chan struct{}), stop: make(chan struct{})}
	go w.read()
	return w, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (w *AnnouncementWatch) read() {
	defer close(w.done)
	buf := make([]byte, 2048)
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		n, from, err := unix.Recvfrom(w.fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
			return
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if mac, addr, ok := ParseAnnouncement(buf[:n]); ok {
			w.mu.Lock()
			w.seen = append(w.seen, Announcement{At: time.Now(), MAC: mac, Addr: addr})
			w.mu.Unlock()
		}
	}
}

// Seen returns the announcements recorded so far, oldest first, and the
// error that stopped the reading, if one did.
func (w *AnnouncementWatch) Seen() ([]Announcement, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Announcement(nil), w.seen...), w.err
}

// Close stops the watch and closes its socket; Seen still answers.
func (w *AnnouncementWatch) Close() error {
	select {
	case <-w.stop:
		return nil
	default:
	}
	close(w.stop)
	<-w.done
	return unix.Close(w.fd)
}

// CountAnnouncements counts the announcements of addr at mac made at or
// after since.
func CountAnnouncements(seen []Announcement, addr netip.Addr, mac net.HardwareAddr, since time.Time) int {
	n := 0
	for _, a := range seen {
		if a.Addr == addr && a.MAC.String() == mac.String() && !a.At.Before(since) {
			n++
		}
	}
	return n
}
