package l2

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// NDPSolicitation and NDPAdvertisement are the ICMPv6 types of NDP.Type.
const (
	NDPSolicitation  = 135
	NDPAdvertisement = 136
)

const (
	ipv6HeaderLen = 40
	protoICMPv6   = 58
	nsLen         = 24 // type, code, checksum, reserved, target
	optSourceLL   = 1
	optTargetLL   = 2
	ndpHopLimit   = 255

	// NARouter, NASolicited and NAOverride are the bits of NDP.Flags.
	NARouter    = 0x80
	NASolicited = 0x40
	NAOverride  = 0x20
)

// allNodes is ff02::1, where unsolicited advertisements go.
var allNodes = netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 1})

// NDP is an Ethernet frame carrying a neighbour solicitation or
// advertisement without extension headers (RFC 4861 sections 4.3, 4.4).
type NDP struct {
	EthDst, EthSrc MAC
	Src, Dst       netip.Addr
	HopLimit       uint8
	Type           uint8 // NDPSolicitation or NDPAdvertisement
	Flags          uint8 // NA only: NARouter, NASolicited, NAOverride
	Target         netip.Addr
	// LinkAddr is the source (NS) or target (NA) link-layer address option.
	LinkAddr    MAC
	HasLinkAddr bool
}

var (
	errNotNDP      = errors.New("l2: not an ICMPv6 neighbour discovery packet")
	errHopLimit    = errors.New("l2: neighbour discovery hop limit is not 255")
	errChecksum    = errors.New("l2: bad ICMPv6 checksum")
	errLength      = errors.New("l2: bad length")
	errOption      = errors.New("l2: bad neighbour discovery option")
	errTarget      = errors.New("l2: multicast target")
	errSource      = errors.New("l2: multicast source")
	errDADSource   = errors.New("l2: solicitation from :: must go to a solicited-node group without a source link-layer option")
	errIPv6Version = errors.New("l2: not IPv6")
)

// ParseNDP decodes and validates an Ethernet frame carrying a neighbour
// solicitation or advertisement, applying the checks of RFC 4861 section
// 7.1 that need no state: hop limit 255, code 0, checksum, length, a
// unicast target and source, options of nonzero length, and for solicitations from
// the unspecified address a solicited-node destination and no source
// link-layer option. It allocates nothing.
func ParseNDP(frame []byte) (NDP, error) {
	var p NDP
	if len(frame) < etherHeaderLen+ipv6HeaderLen+nsLen {
		return p, errShort
	}
	if binary.BigEndian.Uint16(frame[12:14]) != etherTypeIPv6 {
		return p, errEtherType
	}
	ip := frame[etherHeaderLen:]
	if ip[0]>>4 != 6 {
		return p, errIPv6Version
	}
	plen := int(binary.BigEndian.Uint16(ip[4:6]))
	if plen < nsLen || ipv6HeaderLen+plen > len(ip) {
		return p, errLength
	}
	icmp := ip[ipv6HeaderLen : ipv6HeaderLen+plen]
	if ip[6] != protoICMPv6 || (icmp[0] != NDPSolicitation && icmp[0] != NDPAdvertisement) || icmp[1] != 0 {
		return p, errNotNDP
	}
	if ip[7] != ndpHopLimit {
		return p, errHopLimit
	}
	copy(p.EthDst[:], frame[0:6])
	copy(p.EthSrc[:], frame[6:12])
	p.Src = netip.AddrFrom16([16]byte(ip[8:24]))
	p.Dst = netip.AddrFrom16([16]byte(ip[24:40]))
	p.HopLimit = ip[7]
	p.Type = icmp[0]
	if checksum(p.Src, p.Dst, icmp) != 0 {
		return p, errChecksum
	}
	if p.Type == NDPAdvertisement {
		p.Flags = icmp[4] & (NARouter | NASolicited | NAOverride)
	}
	p.Target = netip.AddrFrom16([16]byte(icmp[8:24]))
	if p.Target.IsMulticast() {
		return p, errTarget
	}
	if p.Src.IsMulticast() {
		return p, errSource
	}
	if err := p.parseOptions(icmp[nsLen:]); err != nil {
		return p, err
	}
	if p.Type == NDPSolicitation && p.Src.IsUnspecified() && (p.HasLinkAddr || !isSolicitedNode(p.Dst)) {
		return p, errDADSource
	}
	return p, nil
}

func (p *NDP) parseOptions(opts []byte) error {
	want := uint8(optSourceLL)
	if p.Type == NDPAdvertisement {
		want = optTargetLL
	}
	for len(opts) > 0 {
		if len(opts) < 8 || opts[1] == 0 || int(opts[1])*8 > len(opts) {
			return errOption
		}
		n := int(opts[1]) * 8
		// Only Ethernet's 6-octet form (length 1) is ours; others are skipped.
		if opts[0] == want && n == 8 {
			copy(p.LinkAddr[:], opts[2:8])
			p.HasLinkAddr = true
		}
		opts = opts[n:]
	}
	return nil
}

// AppendNDP appends p as an Ethernet frame with a correct checksum; the
// link-layer option is written when HasLinkAddr is set.
func AppendNDP(b []byte, p NDP) []byte {
	b = append(b, p.EthDst[:]...)
	b = append(b, p.EthSrc[:]...)
	b = binary.BigEndian.AppendUint16(b, etherTypeIPv6)
	plen := nsLen
	if p.HasLinkAddr {
		plen += 8
	}
	b = append(b, 0x60, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(plen))
	b = append(b, protoICMPv6, p.HopLimit)
	b = append16(b, p.Src)
	b = append16(b, p.Dst)
	start := len(b)
	var flags uint8
	if p.Type == NDPAdvertisement {
		flags = p.Flags
	}
	b = append(b, p.Type, 0, 0, 0, flags, 0, 0, 0)
	b = append16(b, p.Target)
	if p.HasLinkAddr {
		opt := uint8(optSourceLL)
		if p.Type == NDPAdvertisement {
			opt = optTargetLL
		}
		b = append(b, opt, 1)
		b = append(b, p.LinkAddr[:]...)
	}
	binary.BigEndian.PutUint16(b[start+2:], checksum(p.Src, p.Dst, b[start:]))
	return b
}

func append16(b []byte, a netip.Addr) []byte {
	v := a.As16()
	return append(b, v[:]...)
}

// checksum is the ICMPv6 checksum over the pseudo-header (RFC 8200
// section 8.1) and msg; over a message carrying a correct checksum it is 0.
func checksum(src, dst netip.Addr, msg []byte) uint16 {
	var sum uint32
	s, d := src.As16(), dst.As16()
	for i := 0; i < 16; i += 2 {
		sum += uint32(s[i])<<8 | uint32(s[i+1])
		sum += uint32(d[i])<<8 | uint32(d[i+1])
	}
	sum += uint32(len(msg)) + protoICMPv6
	for i := 0; i+1 < len(msg); i += 2 {
		sum += uint32(msg[i])<<8 | uint32(msg[i+1])
	}
	if len(msg)%2 == 1 {
		sum += uint32(msg[len(msg)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// solicitedNode is the solicited-node multicast group of a (RFC 4291
// section 2.7.1): ff02::1:ff00:0/104 plus a's low 24 bits.
func solicitedNode(a netip.Addr) netip.Addr {
	v := a.As16()
	return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 11: 1, 12: 0xff, 13: v[13], 14: v[14], 15: v[15]})
}

func isSolicitedNode(a netip.Addr) bool {
	return a.Is6() && solicitedNode(a) == a
}

// multicastMAC is the Ethernet group of IPv6 multicast group g (RFC 2464).
func multicastMAC(g netip.Addr) MAC {
	v := g.As16()
	return MAC{0x33, 0x33, v[12], v[13], v[14], v[15]}
}

// naReply is the answer to ns from the owner of ns.Target, on an interface
// with mac: Solicited and Override, to the solicitor; a solicitation from
// :: (duplicate address detection) is answered to all nodes with Solicited
// clear, as RFC 4861 section 7.2.4 requires. The source is the target
// itself, which the node answers for.
func naReply(ns NDP, mac MAC) NDP {
	na := NDP{
		EthDst: ns.EthSrc, EthSrc: mac,
		Src: ns.Target, Dst: ns.Src, HopLimit: ndpHopLimit, Type: NDPAdvertisement,
		Flags: NASolicited | NAOverride, Target: ns.Target,
		LinkAddr: mac, HasLinkAddr: true,
	}
	if ns.HasLinkAddr {
		na.EthDst = ns.LinkAddr
	}
	if ns.Src.IsUnspecified() {
		na.EthDst, na.Dst, na.Flags = allNodesMAC, allNodes, NAOverride
	}
	return na
}

// unsolicitedNA announces addr at mac to all nodes (RFC 4861 section
// 7.2.6): Override set so that receivers replace a cached address,
// Solicited clear so that they mark it stale and confirm it before trusting
// it, with the target link-layer option carrying the new address.
func unsolicitedNA(addr netip.Addr, mac MAC) NDP {
	return NDP{
		EthDst: allNodesMAC, EthSrc: mac,
		Src: addr, Dst: allNodes, HopLimit: ndpHopLimit, Type: NDPAdvertisement,
		Flags: NAOverride, Target: addr, LinkAddr: mac, HasLinkAddr: true,
	}
}
