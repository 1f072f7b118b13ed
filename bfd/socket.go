package bfd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// Well-known ports and the source port range (RFC 5881 §4, RFC 5883 §5).
const (
	PortSingleHop = 3784
	PortMultihop  = 4784
	srcPortMin    = 49152
	srcPortMax    = 65535
	// tosCS6 marks BFD as network control, so a congested queue drops it last.
	tosCS6 = 0xc0
	// gtsmTTL is what every single-hop packet must carry (RFC 5881 §5).
	gtsmTTL = 255
)

// listen opens a receive socket on the wildcard address that reports each
// datagram's TTL (hop limit) and destination address.
func listen(ctx context.Context, v6 bool, port int) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		return setOpts(c, func(fd int) error {
			if v6 {
				return errors.Join(unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1),
					unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1))
			}
			return errors.Join(unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVTTL, 1),
				unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_PKTINFO, 1))
		})
	}}
	network, addr := "udp4", "0.0.0.0:"+strconv.Itoa(port)
	if v6 {
		network, addr = "udp6", "[::]:"+strconv.Itoa(port)
	}
	pc, err := lc.ListenPacket(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("bfd: listen %s %s: %w", network, addr, err)
	}
	return pc.(*net.UDPConn), nil
}

// dial opens a session's send socket: bound to the local address and a
// source port from 49152-65535, TTL 255, optionally to an interface.
func dial(ctx context.Context, local netip.Addr, ifname string) (*net.UDPConn, error) {
	v6 := local.Is6()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		return setOpts(c, func(fd int) error {
			var errs []error
			if v6 {
				errs = append(errs, unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, gtsmTTL),
					unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_TCLASS, tosCS6))
			} else {
				errs = append(errs, unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TTL, gtsmTTL),
					unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TOS, tosCS6))
			}
			if ifname != "" {
				errs = append(errs, unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifname))
			}
			return errors.Join(errs...)
		})
	}}
	network := "udp4"
	if v6 {
		network = "udp6"
	}
	var lastErr error
	// Random ports, so that a restarted session does not reuse the port
	// the peer may still associate with the old one.
	for range 32 {
		port := srcPortMin + rand.IntN(srcPortMax-srcPortMin+1)
		pc, err := lc.ListenPacket(ctx, network, netip.AddrPortFrom(local, uint16(port)).String())
		if err == nil {
			return pc.(*net.UDPConn), nil
		}
		lastErr = err
		if !errors.Is(err, unix.EADDRINUSE) {
			break
		}
	}
	return nil, fmt.Errorf("bfd: send socket on %s: %w", local, lastErr)
}

func setOpts(c syscall.RawConn, fn func(fd int) error) error {
	var err error
	if cerr := c.Control(func(fd uintptr) { err = fn(int(fd)) }); cerr != nil {
		return cerr
	}
	return err
}

// rxMeta is what the control messages of one datagram tell.
type rxMeta struct {
	ttl     int // -1 when absent
	dst     netip.Addr
	ifindex int
}

// parseControl reads IP_TTL/IPV6_HOPLIMIT and IP_PKTINFO/IPV6_PKTINFO from
// oob without allocating (unix.ParseSocketControlMessage allocates).
func parseControl(oob []byte) rxMeta {
	m := rxMeta{ttl: -1}
	for len(oob) >= unix.SizeofCmsghdr {
		// struct cmsghdr: a size_t length, then level and type (int32).
		var l int
		if unix.SizeofCmsghdr == 16 {
			l = int(binary.NativeEndian.Uint64(oob))
		} else {
			l = int(binary.NativeEndian.Uint32(oob))
		}
		lt := unix.SizeofCmsghdr - 8
		level := int32(binary.NativeEndian.Uint32(oob[lt:]))
		typ := int32(binary.NativeEndian.Uint32(oob[lt+4:]))
		if l < unix.SizeofCmsghdr || l > len(oob) {
			break
		}
		data := oob[unix.CmsgLen(0):l]
		switch {
		case level == unix.IPPROTO_IP && typ == unix.IP_TTL && len(data) >= 4,
			level == unix.IPPROTO_IPV6 && typ == unix.IPV6_HOPLIMIT && len(data) >= 4:
			m.ttl = int(binary.NativeEndian.Uint32(data))
		case level == unix.IPPROTO_IP && typ == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			m.ifindex = int(binary.NativeEndian.Uint32(data))
			m.dst = netip.AddrFrom4([4]byte(data[8:12])) // ipi_addr: the header's destination
		case level == unix.IPPROTO_IPV6 && typ == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			m.dst = netip.AddrFrom16([16]byte(data[:16]))
			m.ifindex = int(binary.NativeEndian.Uint32(data[16:]))
		}
		next := unix.CmsgSpace(l - unix.CmsgLen(0))
		if next > len(oob) {
			break
		}
		oob = oob[next:]
	}
	return m
}
