package lab_test

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/labtest"
)

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
	vip4 = netip.MustParseAddr("198.51.100.153")
	vip6 = netip.MustParseAddr("2001:db8:51::153")
)

// arpFrame is an Ethernet ARP frame from sha (op 1 request, 2 reply).
func arpFrame(op uint16, sha net.HardwareAddr, spa, tpa netip.Addr) []byte {
	f := make([]byte, 14+28)
	copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:12], sha)
	binary.BigEndian.PutUint16(f[12:], 0x0806)
	a := f[14:]
	binary.BigEndian.PutUint16(a[0:], 1)
	binary.BigEndian.PutUint16(a[2:], 0x0800)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], op)
	copy(a[8:14], sha)
	s, t := spa.As4(), tpa.As4()
	copy(a[14:18], s[:])
	copy(a[24:28], t[:])
	return f
}

// naFrame is an Ethernet neighbour advertisement from src for target, with
// flags (0x20 override, 0x40 solicited) and a target link-layer address
// option when tlla is set.
func naFrame(src net.HardwareAddr, target netip.Addr, flags byte, tlla net.HardwareAddr, hops byte) []byte {
	icmp := make([]byte, 24)
	icmp[0], icmp[4] = 136, flags
	t := target.As16()
	copy(icmp[8:], t[:])
	if tlla != nil {
		icmp = append(icmp, 2, 1)
		icmp = append(icmp, tlla...)
	}
	ip := make([]byte, 40)
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(len(icmp)))
	ip[6], ip[7] = 58, hops
	f := append([]byte{0x33, 0x33, 0, 0, 0, 1}, src...)
	f = append(f, 0x86, 0xdd)
	return append(append(f, ip...), icmp...)
}

func TestParseAnnouncement(t *testing.T) {
	client := netip.MustParseAddr("198.51.100.100")
	for _, c := range []struct {
		name  string
		frame []byte
		mac   net.HardwareAddr
		addr  netip.Addr
	}{
		{"gratuitous request", arpFrame(1, macA, vip4, vip4), macA, vip4},
		{"gratuitous reply", arpFrame(2, macB, vip4, vip4), macB, vip4},
		{"reply to a client", arpFrame(2, macA, vip4, client), nil, netip.Addr{}},
		{"request from a client", arpFrame(1, macA, client, vip4), nil, netip.Addr{}},
		{"probe from 0.0.0.0", arpFrame(1, macA, netip.IPv4Unspecified(), netip.IPv4Unspecified()), nil, netip.Addr{}},
		{"ARP op 3", arpFrame(3, macA, vip4, vip4), nil, netip.Addr{}},
		{"unsolicited NA with TLLA", naFrame(macA, vip6, 0x20, macB, 255), macB, vip6},
		{"unsolicited NA without options", naFrame(macA, vip6, 0x20, nil, 255), macA, vip6},
		{"solicited NA", naFrame(macA, vip6, 0x60, macA, 255), nil, netip.Addr{}},
		{"NA routed (hop limit 64)", naFrame(macA, vip6, 0x20, macA, 64), nil, netip.Addr{}},
		{"short", []byte{1, 2, 3}, nil, netip.Addr{}},
		{"truncated ARP", arpFrame(1, macA, vip4, vip4)[:30], nil, netip.Addr{}},
		{"truncated NA", naFrame(macA, vip6, 0x20, macB, 255)[:70], nil, netip.Addr{}},
		{"IPv4 frame", append(arpFrame(1, macA, vip4, vip4)[:12], 0x08, 0x00), nil, netip.Addr{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			mac, addr, ok := lab.ParseAnnouncement(c.frame)
			if ok != c.addr.IsValid() || addr != c.addr || mac.String() != c.mac.String() {
				t.Errorf("got %v %v %v, want %v %v", mac, addr, ok, c.mac, c.addr)
			}
		})
	}
}

func FuzzParseAnnouncement(f *testing.F) {
	f.Add(arpFrame(1, macA, vip4, vip4))
	f.Add(naFrame(macA, vip6, 0x20, macB, 255))
	f.Add(naFrame(macA, vip6, 0x20, nil, 255)[:64])
	f.Fuzz(func(t *testing.T, b []byte) {
		mac, addr, ok := lab.ParseAnnouncement(b)
		if ok && (len(mac) != 6 || !addr.IsValid()) {
			t.Fatalf("ok with %v %v", mac, addr)
		}
	})
}

// TestWatchAnnouncements sends announcements and a plain ARP exchange
// over a real LAN: the watch on the other host counts the announcements
// only, with the MAC they announce.
func TestWatchAnnouncements(t *testing.T) {
	labtest.Require(t)
	ctx := labtest.Context(t, 30*time.Second)
	l, _, err := lab.NewLAN(ctx, "ga",
		lab.HostSpec{Name: "a", Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/24")}},
		lab.HostSpec{Name: "b", Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.2/24")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	w, err := l.Host("b").WatchAnnouncements(lab.DefaultIfname)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	start := time.Now()
	a := l.Host("a")
	ifi := interfaceIn(t, a, lab.DefaultIfname)
	// A plain exchange (b asks for a, a answers): no announcement.
	if _, err := l.Host("b").Run(ctx, "ping", "-c1", "-W2", "198.51.100.1"); err != nil {
		t.Fatal(err)
	}
	send(t, a, ifi.Index, arpFrame(1, ifi.HardwareAddr, vip4, vip4), arpFrame(2, ifi.HardwareAddr, vip4, vip4),
		naFrame(ifi.HardwareAddr, vip6, 0x20, ifi.HardwareAddr, 255))
	if err := lab.Poll(ctx, 10*time.Millisecond, func() (bool, error) {
		seen, err := w.Seen()
		return len(seen) >= 3, err
	}); err != nil {
		seen, _ := w.Seen()
		t.Fatalf("saw %v: %v", seen, err)
	}
	seen, _ := w.Seen()
	if n := lab.CountAnnouncements(seen, vip4, ifi.HardwareAddr, start); n != 2 {
		t.Errorf("%d gratuitous ARPs counted, want 2: %v", n, seen)
	}
	if n := lab.CountAnnouncements(seen, vip6, ifi.HardwareAddr, start); n != 1 {
		t.Errorf("%d unsolicited NAs counted, want 1: %v", n, seen)
	}
	if len(seen) != 3 {
		t.Errorf("saw %v, want the three announcements only", seen)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func interfaceIn(t *testing.T, ns *lab.Netns, name string) *net.Interface {
	t.Helper()
	var ifi *net.Interface
	if err := ns.Do(func() error {
		var err error
		ifi, err = net.InterfaceByName(name)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return ifi
}

// send writes raw Ethernet frames out of interface index in ns.
func send(t *testing.T, ns *lab.Netns, index int, frames ...[]byte) {
	t.Helper()
	if err := ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		for _, f := range frames {
			to := &unix.SockaddrLinklayer{Ifindex: index, Halen: 6}
			copy(to.Addr[:], f[0:6])
			if err := unix.Sendto(fd, f, 0, to); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
