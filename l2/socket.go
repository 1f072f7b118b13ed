package l2

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Ancillary loads of classic BPF (linux/filter.h), absent from x/sys/unix.
const (
	skfAdOff             = 0xfffff000 // -0x1000 as uint32
	skfAdPktType         = skfAdOff + 4
	skfAdVLANTagPresent  = skfAdOff + 48
	bpfAccept            = 0x40000
	pktTypeMulticastOrLo = 2 // PACKET_HOST 0, BROADCAST 1, MULTICAST 2
)

func stmt(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }

// jneDrop jumps to the final "drop" when the accumulator differs from k;
// drop is the number of instructions to skip to reach it.
func jneDrop(k uint32, drop uint8) unix.SockFilter {
	return unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: k, Jf: drop}
}

// filter builds "every load equals its value, else drop" programs. Frames
// with a VLAN tag the kernel took off belong to the VLAN's own interface,
// and frames we send come back to a packet socket as PACKET_OUTGOING:
// both are dropped first.
func filter(checks [][2]uint32) []unix.SockFilter {
	// A jump at index j skips n-j instructions to reach the drop at n+1.
	n := 4 + 2*len(checks) // instructions before the final two
	prog := make([]unix.SockFilter, 0, n+2)
	prog = append(prog,
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, skfAdVLANTagPresent),
		jneDrop(0, uint8(n-1)),
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, skfAdPktType),
		unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K, K: pktTypeMulticastOrLo, Jt: uint8(n - 3)},
	)
	for _, c := range checks {
		load := c[0] >> 16 // size code in the high half, offset in the low
		prog = append(prog,
			stmt(uint16(unix.BPF_LD|unix.BPF_ABS|load), c[0]&0xffff),
			jneDrop(c[1], uint8(n-len(prog)-1)))
	}
	return append(prog, stmt(unix.BPF_RET|unix.BPF_K, bpfAccept), stmt(unix.BPF_RET|unix.BPF_K, 0))
}

func ld(size, off uint32) uint32 { return size<<16 | off }

// arpFilter passes ARP requests for IPv4 over Ethernet.
var arpFilter = filter([][2]uint32{
	{ld(unix.BPF_H, 12), etherTypeARP},
	{ld(unix.BPF_W, 14), 0x00010800},
	{ld(unix.BPF_H, 18), 0x0604},
	{ld(unix.BPF_H, 20), ARPRequest},
})

// nsFilter passes neighbour solicitations without extension headers and
// with hop limit 255 (anything else is invalid, RFC 4861 section 7.1.1).
var nsFilter = filter([][2]uint32{
	{ld(unix.BPF_H, 12), etherTypeIPv6},
	{ld(unix.BPF_B, 20), protoICMPv6},
	{ld(unix.BPF_B, 21), ndpHopLimit},
	{ld(unix.BPF_B, 54), NDPSolicitation},
})

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// openPacket opens a packet socket on ifindex that receives what prog
// passes of ethertype. It is created listening to no protocol and bound
// only after the filter is attached, so no unfiltered frame is queued.
func openPacket(name string, ifindex int, ethertype uint16, prog []unix.SockFilter) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("l2: packet socket for %s: %w", name, err)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("l2: filter on %s: %w", name, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(ethertype), Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("l2: bind packet socket to %s: %w", name, err)
	}
	// A nonblocking descriptor joins the runtime's poller, so Close wakes a
	// blocked Read.
	return os.NewFile(uintptr(fd), "packet:"+name), nil
}

// openGroups opens the socket that holds solicited-node memberships: a
// UDP socket never bound, so it receives nothing.
func openGroups(name string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return -1, fmt.Errorf("l2: membership socket for %s: %w", name, err)
	}
	return fd, nil
}

// membership joins (or leaves) group on ifindex; the kernel sends the MLD
// report (or done) and programs the interface's multicast filter.
func membership(fd, ifindex int, group netip.Addr, join bool) error {
	mreq := unix.IPv6Mreq{Multiaddr: group.As16(), Interface: uint32(ifindex)}
	opt := unix.IPV6_JOIN_GROUP
	if !join {
		opt = unix.IPV6_LEAVE_GROUP
	}
	return unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, opt, &mreq)
}

// netnsHandle is the network namespace an Announcer opens its sockets in:
// the one of the thread that created it. Sockets are reopened from reader
// goroutines, which run on any thread, possibly of another namespace (a
// test's), so opening switches a locked thread when the namespaces differ.
type netnsHandle struct {
	fd       int
	dev, ino uint64
}

func currentNetns() (netnsHandle, error) {
	fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return netnsHandle{fd: -1}, fmt.Errorf("l2: open network namespace: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return netnsHandle{fd: -1}, fmt.Errorf("l2: stat network namespace: %w", err)
	}
	return netnsHandle{fd: fd, dev: st.Dev, ino: st.Ino}, nil
}

func (h netnsHandle) close() error {
	if h.fd < 0 {
		return nil
	}
	return unix.Close(h.fd)
}

// do runs fn in the namespace h. On the common path (the thread is
// already there) it costs two syscalls.
func (h netnsHandle) do(fn func() error) error {
	runtime.LockOSThread()
	cur, err := currentNetns()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer cur.close()
	if cur.dev == h.dev && cur.ino == h.ino {
		runtime.UnlockOSThread()
		return fn()
	}
	if err := unix.Setns(h.fd, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("l2: enter network namespace: %w", err)
	}
	ferr := fn()
	if err := unix.Setns(cur.fd, unix.CLONE_NEWNET); err != nil {
		// Left locked: the runtime ends the thread when the goroutine does.
		return errors.Join(ferr, fmt.Errorf("l2: restore network namespace: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}
