package l2

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// MAC is an Ethernet address; a value type so that parsing allocates nothing.
type MAC [6]byte

var (
	broadcastMAC = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	// allNodesMAC is the Ethernet group of ff02::1 (RFC 2464 section 7).
	allNodesMAC = MAC{0x33, 0x33, 0, 0, 0, 1}
)

const (
	etherHeaderLen = 14
	etherTypeARP   = 0x0806
	etherTypeIPv6  = 0x86dd
	arpLen         = 28
	arpFrameLen    = etherHeaderLen + arpLen

	// ARPRequest and ARPReply are the ARP operation codes (RFC 826).
	ARPRequest = 1
	ARPReply   = 2
)

// ARP is an Ethernet/IPv4 ARP packet with its Ethernet addresses.
type ARP struct {
	EthDst, EthSrc MAC
	Op             uint16
	SenderMAC      MAC
	SenderIP       netip.Addr
	TargetMAC      MAC
	TargetIP       netip.Addr
}

var (
	errShort     = errors.New("l2: frame too short")
	errEtherType = errors.New("l2: unexpected ethertype")
	errARPHeader = errors.New("l2: not an Ethernet/IPv4 ARP packet")
)

// ParseARP decodes an Ethernet frame carrying ARP for IPv4 over Ethernet.
// It allocates nothing; trailing padding is ignored.
func ParseARP(frame []byte) (ARP, error) {
	var p ARP
	if len(frame) < arpFrameLen {
		return p, errShort
	}
	if binary.BigEndian.Uint16(frame[12:14]) != etherTypeARP {
		return p, errEtherType
	}
	b := frame[etherHeaderLen:]
	// htype 1 (Ethernet), ptype IPv4, hlen 6, plen 4.
	if binary.BigEndian.Uint32(b[0:4]) != 0x00010800 || b[4] != 6 || b[5] != 4 {
		return p, errARPHeader
	}
	copy(p.EthDst[:], frame[0:6])
	copy(p.EthSrc[:], frame[6:12])
	p.Op = binary.BigEndian.Uint16(b[6:8])
	copy(p.SenderMAC[:], b[8:14])
	p.SenderIP = netip.AddrFrom4([4]byte(b[14:18]))
	copy(p.TargetMAC[:], b[18:24])
	p.TargetIP = netip.AddrFrom4([4]byte(b[24:28]))
	return p, nil
}

// AppendARP appends p as an Ethernet frame (no padding: the driver pads).
// Addresses that are not IPv4 are written as 0.0.0.0.
func AppendARP(b []byte, p ARP) []byte {
	b = append(b, p.EthDst[:]...)
	b = append(b, p.EthSrc[:]...)
	b = binary.BigEndian.AppendUint16(b, etherTypeARP)
	b = binary.BigEndian.AppendUint32(b, 0x00010800)
	b = append(b, 6, 4)
	b = binary.BigEndian.AppendUint16(b, p.Op)
	b = append(b, p.SenderMAC[:]...)
	b = append4(b, p.SenderIP)
	b = append(b, p.TargetMAC[:]...)
	return append4(b, p.TargetIP)
}

func append4(b []byte, a netip.Addr) []byte {
	if !a.Is4() {
		return append(b, 0, 0, 0, 0)
	}
	v := a.As4()
	return append(b, v[:]...)
}

// arpReply is the answer to req from the owner of req.TargetIP: unicast
// to the asker. A probe (sender 0.0.0.0, RFC 5227) gets the same reply,
// addressed to 0.0.0.0 as Linux does, which the prober reads as a conflict.
func arpReply(req ARP, mac MAC) ARP {
	return ARP{
		EthDst: req.SenderMAC, EthSrc: mac, Op: ARPReply,
		SenderMAC: mac, SenderIP: req.TargetIP,
		TargetMAC: req.SenderMAC, TargetIP: req.SenderIP,
	}
}

// gratuitousARP is the announcement of addr at mac: a broadcast ARP
// request with sender and target IP both addr and target MAC zero, the
// "ARP Announcement" of RFC 5227 section 2.3.
//
// Why a request and not a reply: every receiver has to process a
// broadcast request, and
//   - Linux updates an existing entry from any ARP whose sender IP it
//     caches (arp_process), and treats sender IP == target IP as
//     gratuitous, which overrides even inside the entry's locktime on
//     current kernels (older ones wait out locktime: hence the repeats);
//     it never creates entries from it unless arp_accept is set;
//   - Windows (Vista on) implements RFC 5227 and updates its cache from
//     announcements, while some stacks ignore unsolicited replies;
//   - switches learn the source MAC of any frame, and a broadcast reaches
//     every port, moving the MAC table entry to the new owner's port.
func gratuitousARP(addr netip.Addr, mac MAC) ARP {
	return ARP{
		EthDst: broadcastMAC, EthSrc: mac, Op: ARPRequest,
		SenderMAC: mac, SenderIP: addr,
		TargetIP: addr,
	}
}
