package session

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// md5Sig builds the kernel's tcp_md5sig for key on peers in p. A prefix
// shorter than a host route needs TCP_MD5SIG_EXT with the prefix flag. On an
// IPv6 socket an IPv4 peer appears as a v4-mapped address.
func md5Sig(p netip.Prefix, key string, v6socket bool) (*unix.TCPMD5Sig, int) {
	sig := &unix.TCPMD5Sig{Keylen: uint16(len(key))}
	copy(sig.Key[:], key)
	addr, bits := p.Addr(), p.Bits()
	if v6socket && addr.Is4() {
		addr, bits = netip.AddrFrom16(addr.As16()), bits+96
	}
	if addr.Is4() {
		sig.Addr.Family = unix.AF_INET
		a := addr.As4()
		copy(sig.Addr.Data[2:], a[:]) // after sin_port
	} else {
		sig.Addr.Family = unix.AF_INET6
		a := addr.As16()
		copy(sig.Addr.Data[6:], a[:]) // after sin6_port and sin6_flowinfo
	}
	opt := unix.TCP_MD5SIG
	if bits != addr.BitLen() {
		opt = unix.TCP_MD5SIG_EXT
		sig.Flags = unix.TCP_MD5SIG_FLAG_PREFIX
		sig.Prefixlen = uint8(bits)
	}
	return sig, opt
}

// setMD5 installs (or, with an empty key, removes) the TCP-MD5 key for peers
// in p on the socket fd.
func setMD5(fd uintptr, p netip.Prefix, key string, v6socket bool) error {
	sig, opt := md5Sig(p, key, v6socket)
	if err := unix.SetsockoptTCPMD5Sig(int(fd), unix.IPPROTO_TCP, opt, sig); err != nil {
		return fmt.Errorf("TCP_MD5SIG for %v: %w", p, err)
	}
	return nil
}

// isV6 reports whether fd is an AF_INET6 socket (which may still carry IPv4
// as v4-mapped addresses).
func isV6(fd uintptr) bool {
	d, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
	return err == nil && d == unix.AF_INET6
}

// setTTL sets the TTL (hop limit) of outgoing packets and the minimum TTL of
// incoming ones, 0 leaving either as it is.
func setTTL(fd uintptr, ttl, minTTL int) error {
	v6socket := isV6(fd)
	set := func(level, opt, v int, name string) error {
		if err := unix.SetsockoptInt(int(fd), level, opt, v); err != nil {
			return fmt.Errorf("%s %d: %w", name, v, err)
		}
		return nil
	}
	if ttl > 0 {
		// A dual-stack socket may carry IPv4 as v4-mapped: set both.
		if v6socket {
			if err := set(unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, ttl, "IPV6_UNICAST_HOPS"); err != nil {
				return err
			}
		}
		if err := set(unix.IPPROTO_IP, unix.IP_TTL, ttl, "IP_TTL"); err != nil && !v6socket {
			return err
		}
	}
	if minTTL > 0 {
		return setSockMinTTL(fd, minTTL)
	}
	return nil
}

// setSockMinTTL sets the minimum TTL (hop limit) of incoming packets, 0 for no
// check. On a listening socket the kernel applies it to SYNs, and accepted
// sockets inherit it.
func setSockMinTTL(fd uintptr, minTTL int) error {
	if isV6(fd) {
		if err := unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MINHOPCOUNT, minTTL); err != nil {
			return fmt.Errorf("IPV6_MINHOPCOUNT %d: %w", minTTL, err)
		}
		// A dual-stack socket may carry IPv4 as v4-mapped: best effort.
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MINTTL, minTTL)
		return nil
	}
	if err := unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MINTTL, minTTL); err != nil {
		return fmt.Errorf("IP_MINTTL %d: %w", minTTL, err)
	}
	return nil
}

// control runs f on the raw socket and joins both errors.
func control(rc syscall.RawConn, f func(fd uintptr) error) error {
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(fd) }); err != nil {
		return err
	}
	return ferr
}

// dialControl prepares the outgoing socket before connect: the MD5 key must
// be in place before the SYN leaves, and the TTL before the first packet.
func (c Config) dialControl(_, _ string, rc syscall.RawConn) error {
	ttl, minTTL := c.ttl()
	return control(rc, func(fd uintptr) error {
		if c.LocalPort != 0 {
			// Reconnecting from a fixed port would otherwise wait out TIME_WAIT.
			if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
				return fmt.Errorf("SO_REUSEADDR: %w", err)
			}
		}
		if c.Password != "" {
			p := netip.PrefixFrom(c.PeerAddr.Unmap(), c.PeerAddr.Unmap().BitLen())
			if err := setMD5(fd, p, c.Password, isV6(fd)); err != nil {
				return err
			}
		}
		return setTTL(fd, ttl, minTTL)
	})
}

// applyAccepted sets the per-peer TTL options on an accepted connection;
// the MD5 key was checked by the listening socket.
func (c Config) applyAccepted(nc net.Conn) error {
	ttl, minTTL := c.ttl()
	if ttl == 0 && minTTL == 0 {
		return nil
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil // not a socket (tests use pipes)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	return control(rc, func(fd uintptr) error { return setTTL(fd, ttl, minTTL) })
}
