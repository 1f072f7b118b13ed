package fib

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Constants newer than golang.org/x/sys/unix knows.
const (
	rtaNHID       = 30 // RTA_NH_ID
	nhaGroupMpath = 0  // NEXTHOP_GRP_TYPE_MPATH
	nhaGroupRes   = 1  // NEXTHOP_GRP_TYPE_RES, Linux 5.13
	nhaResGroup   = 12 // NHA_RES_GROUP (nested)
	nhaResBucket  = 13 // NHA_RES_BUCKET (nested)
	// Inside NHA_RES_GROUP.
	nhaResGroupBuckets         = 1 // u16
	nhaResGroupIdleTimer       = 2 // u32, clock_t
	nhaResGroupUnbalancedTimer = 3 // u32, clock_t
	// Inside NHA_RES_BUCKET.
	nhaResBucketIndex = 1 // u16
	nhaResBucketNHID  = 3 // u32
)

const (
	sizeofHdr   = unix.SizeofNlMsghdr
	sizeofRtMsg = unix.SizeofRtMsg
	sizeofNhMsg = unix.SizeofNhmsg
	sizeofRtNh  = unix.SizeofRtNexthop
)

var ne = binary.NativeEndian

func align4(n int) int { return (n + 3) &^ 3 }

// msgBuf builds netlink messages back to back in one reusable buffer.
// Nothing here allocates once the buffer has grown to its working size.
type msgBuf struct {
	b []byte
}

func (m *msgBuf) reset() { m.b = m.b[:0] }

// grow extends the buffer by n zero bytes and returns their offset.
func (m *msgBuf) grow(n int) int {
	off := len(m.b)
	m.b = append(m.b, make([]byte, n)...)
	return off
}

// begin starts a message; end patches its length.
func (m *msgBuf) begin(typ, flags uint16, seq uint32) int {
	off := m.grow(sizeofHdr)
	h := m.b[off:]
	ne.PutUint16(h[4:], typ)
	ne.PutUint16(h[6:], flags)
	ne.PutUint32(h[8:], seq)
	return off
}

func (m *msgBuf) end(off int) {
	ne.PutUint32(m.b[off:], uint32(len(m.b)-off))
}

// attr appends an attribute header for a payload of n bytes and returns the
// payload offset; the padding is already zero.
func (m *msgBuf) attr(typ uint16, n int) int {
	off := m.grow(align4(4 + n))
	ne.PutUint16(m.b[off:], uint16(4+n))
	ne.PutUint16(m.b[off+2:], typ)
	return off + 4
}

func (m *msgBuf) attrU32(typ uint16, v uint32) {
	ne.PutUint32(m.b[m.attr(typ, 4):], v)
}

func (m *msgBuf) attrAddr(typ uint16, a netip.Addr) {
	if a.Is4() {
		b := a.As4()
		copy(m.b[m.attr(typ, 4):], b[:])
		return
	}
	b := a.As16()
	copy(m.b[m.attr(typ, 16):], b[:])
}

// nest starts a nested attribute; endNest patches its length.
func (m *msgBuf) nest(typ uint16) int {
	off := m.grow(4)
	ne.PutUint16(m.b[off+2:], typ)
	return off
}

func (m *msgBuf) endNest(off int) {
	ne.PutUint16(m.b[off:], uint16(len(m.b)-off))
}

func family(a netip.Addr) uint8 {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// routeKey is what identifies our route in the kernel besides its prefix.
type routeKey struct {
	table  uint32
	metric uint32
	proto  uint8
}

func (m *msgBuf) rtmsg(p netip.Prefix, k routeKey, scope, typ uint8) {
	off := m.grow(sizeofRtMsg)
	r := m.b[off:]
	r[0] = family(p.Addr())
	r[1] = uint8(p.Bits())
	r[4] = tableByte(k.table)
	r[5] = k.proto
	r[6] = scope
	r[7] = typ
	m.attrU32(unix.RTA_TABLE, k.table)
	m.attrAddr(unix.RTA_DST, p.Addr())
	m.attrU32(unix.RTA_PRIORITY, k.metric)
}

func tableByte(t uint32) uint8 {
	if t > 255 {
		return unix.RT_TABLE_UNSPEC
	}
	return uint8(t)
}

// addRoute appends an RTM_NEWROUTE that creates or replaces the route:
// through nexthop object nhID when it is not 0, else through hops inline.
// oifs, when not nil, holds each hop's interface index (0: the kernel finds
// it), as the interface of a link-local gateway must be given.
func (m *msgBuf) addRoute(seq uint32, flags uint16, k routeKey, p netip.Prefix, nhID uint32, hops []NextHop, oifs []int32) {
	off := m.begin(unix.RTM_NEWROUTE, unix.NLM_F_REQUEST|unix.NLM_F_CREATE|unix.NLM_F_REPLACE|flags, seq)
	m.rtmsg(p, k, unix.RT_SCOPE_UNIVERSE, unix.RTN_UNICAST)
	oif := func(i int) int32 {
		if i < len(oifs) {
			return oifs[i]
		}
		return 0
	}
	switch {
	case nhID != 0:
		m.attrU32(rtaNHID, nhID)
	case len(hops) == 1:
		m.gateway(p, hops[0].Addr)
		if o := oif(0); o > 0 {
			m.attrU32(unix.RTA_OIF, uint32(o))
		}
	default:
		mp := m.nest(unix.RTA_MULTIPATH)
		for i, h := range hops {
			rtnh := m.grow(sizeofRtNh)
			m.b[rtnh+3] = uint8(kernelWeight(h) - 1)
			ne.PutUint32(m.b[rtnh+4:], uint32(oif(i)))
			m.gateway(p, h.Addr)
			ne.PutUint16(m.b[rtnh:], uint16(len(m.b)-rtnh))
		}
		m.endNest(mp)
	}
	m.end(off)
}

// gateway appends RTA_GATEWAY, or RTA_VIA for an IPv6 gateway of an IPv4
// route (RFC 8950).
func (m *msgBuf) gateway(p netip.Prefix, gw netip.Addr) {
	if gw.Is4() == p.Addr().Is4() {
		m.attrAddr(unix.RTA_GATEWAY, gw)
		return
	}
	b := gw.As16()
	v := m.attr(unix.RTA_VIA, 2+16)
	ne.PutUint16(m.b[v:], unix.AF_INET6)
	copy(m.b[v+2:], b[:])
}

// delRoute appends an RTM_DELROUTE for our route to p, whatever its next hops.
func (m *msgBuf) delRoute(seq uint32, flags uint16, k routeKey, p netip.Prefix) {
	off := m.begin(unix.RTM_DELROUTE, unix.NLM_F_REQUEST|flags, seq)
	m.rtmsg(p, k, unix.RT_SCOPE_NOWHERE, 0)
	m.end(off)
}

// addNexthop appends an RTM_NEWNEXTHOP for a single gateway object.
func (m *msgBuf) addNexthop(seq uint32, flags uint16, proto uint8, id uint32, gw netip.Addr, oif int32) {
	off := m.begin(unix.RTM_NEWNEXTHOP, unix.NLM_F_REQUEST|unix.NLM_F_CREATE|unix.NLM_F_REPLACE|flags, seq)
	nh := m.grow(sizeofNhMsg)
	m.b[nh] = family(gw)
	m.b[nh+2] = proto
	m.attrU32(unix.NHA_ID, id)
	m.attrU32(unix.NHA_OIF, uint32(oif))
	m.attrAddr(unix.NHA_GATEWAY, gw)
	m.end(off)
}

// addGroup appends an RTM_NEWNEXTHOP for a group of the given form:
// hash-threshold (mpath) or resilient with its buckets and timers.
func (m *msgBuf) addGroup(seq uint32, flags uint16, proto uint8, id uint32, members []nhMember, form groupForm) {
	off := m.begin(unix.RTM_NEWNEXTHOP, unix.NLM_F_REQUEST|unix.NLM_F_CREATE|unix.NLM_F_REPLACE|flags, seq)
	nh := m.grow(sizeofNhMsg)
	m.b[nh+2] = proto
	m.attrU32(unix.NHA_ID, id)
	g := m.attr(unix.NHA_GROUP, len(members)*unix.SizeofNexthopGrp)
	for i, mb := range members {
		e := m.b[g+i*unix.SizeofNexthopGrp:]
		ne.PutUint32(e, mb.id)
		e[4] = uint8(mb.weight - 1)
	}
	if !form.resilient {
		ne.PutUint16(m.b[m.attr(unix.NHA_GROUP_TYPE, 2):], nhaGroupMpath)
		m.end(off)
		return
	}
	ne.PutUint16(m.b[m.attr(unix.NHA_GROUP_TYPE, 2):], nhaGroupRes)
	// The kernel parses new nexthops strictly: nests must say so.
	res := m.nest(nhaResGroup | unix.NLA_F_NESTED)
	ne.PutUint16(m.b[m.attr(nhaResGroupBuckets, 2):], form.buckets)
	m.attrU32(nhaResGroupIdleTimer, form.idle)
	m.attrU32(nhaResGroupUnbalancedTimer, form.unbalanced)
	m.endNest(res)
	m.end(off)
}

// dumpBuckets appends a dump of the buckets of resilient group id (all
// groups' when 0). Kernels before 5.13 answer EOPNOTSUPP, which is the
// probe for resilient groups.
func (m *msgBuf) dumpBuckets(seq uint32, id uint32) {
	off := m.begin(unix.RTM_GETNEXTHOPBUCKET, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, seq)
	m.grow(sizeofNhMsg)
	if id != 0 {
		m.attrU32(unix.NHA_ID, id)
	}
	m.end(off)
}

// delNexthop appends an RTM_DELNEXTHOP.
func (m *msgBuf) delNexthop(seq uint32, flags uint16, id uint32) {
	off := m.begin(unix.RTM_DELNEXTHOP, unix.NLM_F_REQUEST|flags, seq)
	m.grow(sizeofNhMsg)
	m.attrU32(unix.NHA_ID, id)
	m.end(off)
}

// dumpRoutes appends a dump request that the kernel filters to our table and
// protocol (with NETLINK_GET_STRICT_CHK set; we filter again on receipt).
func (m *msgBuf) dumpRoutes(seq uint32, fam uint8, table uint32, proto uint8) {
	off := m.begin(unix.RTM_GETROUTE, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, seq)
	r := m.grow(sizeofRtMsg)
	m.b[r] = fam
	m.b[r+4] = tableByte(table)
	m.b[r+5] = proto
	m.attrU32(unix.RTA_TABLE, table)
	m.end(off)
}

func (m *msgBuf) dumpNexthops(seq uint32) {
	off := m.begin(unix.RTM_GETNEXTHOP, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, seq)
	m.grow(sizeofNhMsg)
	m.end(off)
}

// getRoute appends a route lookup for one address, as `ip route get` does.
func (m *msgBuf) getRoute(seq uint32, a netip.Addr) {
	off := m.begin(unix.RTM_GETROUTE, unix.NLM_F_REQUEST, seq)
	r := m.grow(sizeofRtMsg)
	m.b[r] = family(a)
	m.b[r+1] = uint8(a.BitLen())
	m.attrAddr(unix.RTA_DST, a)
	m.end(off)
}

// setAck sets NLM_F_ACK on the message at off.
func setAck(b []byte, off int) {
	ne.PutUint16(b[off+6:], ne.Uint16(b[off+6:])|unix.NLM_F_ACK)
}

var errMalformed = errors.New("fib: malformed netlink message")

// nlMsg is one received message; data aliases the receive buffer.
type nlMsg struct {
	typ, flags uint16
	seq, pid   uint32
	data       []byte
}

// nextMsg splits the first message off b.
func nextMsg(b []byte) (nlMsg, []byte, error) {
	if len(b) < sizeofHdr {
		return nlMsg{}, nil, fmt.Errorf("%w: %d bytes left", errMalformed, len(b))
	}
	n := int(ne.Uint32(b))
	if n < sizeofHdr || n > len(b) {
		return nlMsg{}, nil, fmt.Errorf("%w: length %d of %d", errMalformed, n, len(b))
	}
	m := nlMsg{
		typ:   ne.Uint16(b[4:]),
		flags: ne.Uint16(b[6:]),
		seq:   ne.Uint32(b[8:]),
		pid:   ne.Uint32(b[12:]),
		data:  b[sizeofHdr:n],
	}
	return m, b[min(align4(n), len(b)):], nil
}

// parseError reads an NLMSG_ERROR: errno 0 is an acknowledgement. The
// kernel's extended ack message, when present, explains the failure.
func parseError(m nlMsg) (unix.Errno, string, error) {
	if len(m.data) < unix.SizeofNlMsgerr {
		return 0, "", fmt.Errorf("%w: short error message", errMalformed)
	}
	code := int32(ne.Uint32(m.data))
	if m.flags&unix.NLM_F_ACK_TLVS == 0 {
		return unix.Errno(-code), "", nil
	}
	tlvs := m.data[unix.SizeofNlMsgerr:]
	if m.flags&unix.NLM_F_CAPPED == 0 {
		orig := align4(4 + int(ne.Uint32(m.data[4:])))
		if orig < 4 || orig > len(m.data) {
			return unix.Errno(-code), "", nil
		}
		tlvs = m.data[orig:]
	}
	var msg string
	_ = walkAttrs(tlvs, func(typ uint16, v []byte) {
		if typ == unix.NLMSGERR_ATTR_MSG {
			msg = cString(v)
		}
	})
	return unix.Errno(-code), msg, nil
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// walkAttrs calls fn for each attribute of b, nested flag bits cleared.
func walkAttrs(b []byte, fn func(typ uint16, v []byte)) error {
	for len(b) >= 4 {
		n := int(ne.Uint16(b))
		if n < 4 || n > len(b) {
			return fmt.Errorf("%w: attribute length %d of %d", errMalformed, n, len(b))
		}
		fn(ne.Uint16(b[2:])&0x3fff, b[4:n])
		b = b[min(align4(n), len(b)):]
	}
	return nil
}

func parseAddr(fam uint8, v []byte) (netip.Addr, bool) {
	switch {
	case fam == unix.AF_INET && len(v) == 4:
		return netip.AddrFrom4([4]byte(v)), true
	case fam == unix.AF_INET6 && len(v) == 16:
		return netip.AddrFrom16([16]byte(v)).Unmap(), true
	}
	return netip.Addr{}, false
}

func parseVia(v []byte) (netip.Addr, bool) {
	if len(v) < 2 {
		return netip.Addr{}, false
	}
	return parseAddr(uint8(ne.Uint16(v)), v[2:])
}

// kernelRoute is a route as the kernel reports it. hops aliases the arena
// the parser was given.
type kernelRoute struct {
	prefix netip.Prefix
	table  uint32
	proto  uint8
	typ    uint8
	metric uint32
	nhID   uint32
	oif    int32
	gwSet  bool // a gateway (RTA_GATEWAY or RTA_VIA) was present
	hops   []NextHop
}

// parseRoute reads an RTM_NEWROUTE. Next hops are appended to arena, which
// is returned grown, so a dump of a million routes allocates a handful of
// large slices instead of a million small ones. Link-local gateways get the
// zone links names their interface by (none with a nil table).
func parseRoute(data []byte, arena []NextHop, links *linkTable) (kernelRoute, []NextHop, error) {
	var r kernelRoute
	if len(data) < sizeofRtMsg {
		return r, arena, fmt.Errorf("%w: short rtmsg", errMalformed)
	}
	fam, bits := data[0], int(data[1])
	r.table, r.proto, r.typ = uint32(data[4]), data[5], data[7]
	start := len(arena)
	gw := -1
	var dst netip.Addr
	var perr error
	err := walkAttrs(data[sizeofRtMsg:], func(typ uint16, v []byte) {
		switch typ {
		case unix.RTA_DST:
			dst, _ = parseAddr(fam, v)
		case unix.RTA_TABLE:
			if len(v) == 4 {
				r.table = ne.Uint32(v)
			}
		case unix.RTA_PRIORITY:
			if len(v) == 4 {
				r.metric = ne.Uint32(v)
			}
		case unix.RTA_OIF:
			if len(v) == 4 {
				r.oif = int32(ne.Uint32(v))
			}
		case rtaNHID:
			if len(v) == 4 {
				r.nhID = ne.Uint32(v)
			}
		case unix.RTA_GATEWAY, unix.RTA_VIA:
			if a, ok := gatewayAttr(fam, typ, v); ok {
				gw = len(arena)
				arena = append(arena, NextHop{Addr: a})
				r.gwSet = true
			}
		case unix.RTA_MULTIPATH:
			arena, perr = parseMultipath(fam, v, arena, links)
		}
	})
	if err == nil {
		err = perr
	}
	if gw >= 0 {
		// RTA_OIF may follow RTA_GATEWAY: the zone is known only now.
		arena[gw].Addr = links.zone(arena[gw].Addr, r.oif)
	}
	if !dst.IsValid() {
		if fam == unix.AF_INET {
			dst = netip.IPv4Unspecified()
		} else {
			dst = netip.IPv6Unspecified()
		}
	}
	if r.prefix, perr = dst.Prefix(bits); perr != nil && err == nil {
		err = fmt.Errorf("%w: %v", errMalformed, perr)
	}
	r.hops = arena[start:len(arena):len(arena)]
	return r, arena, err
}

func gatewayAttr(fam uint8, typ uint16, v []byte) (netip.Addr, bool) {
	if typ == unix.RTA_VIA {
		return parseVia(v)
	}
	return parseAddr(fam, v)
}

func parseMultipath(fam uint8, b []byte, arena []NextHop, links *linkTable) ([]NextHop, error) {
	for len(b) >= sizeofRtNh {
		n := int(ne.Uint16(b))
		if n < sizeofRtNh || n > len(b) {
			return arena, fmt.Errorf("%w: rtnexthop length %d", errMalformed, n)
		}
		h := NextHop{Weight: uint32(b[3]) + 1}
		_ = walkAttrs(b[sizeofRtNh:n], func(typ uint16, v []byte) {
			if typ == unix.RTA_GATEWAY || typ == unix.RTA_VIA {
				h.Addr, _ = gatewayAttr(fam, typ, v)
			}
		})
		if h.Addr.IsValid() {
			h.Addr = links.zone(h.Addr, int32(ne.Uint32(b[4:])))
			arena = append(arena, h)
		}
		b = b[min(align4(n), len(b)):]
	}
	return arena, nil
}

// parseNexthop reads an RTM_NEWNEXTHOP.
func parseNexthop(data []byte) (kernelNexthop, error) {
	var n kernelNexthop
	if len(data) < sizeofNhMsg {
		return n, fmt.Errorf("%w: short nhmsg", errMalformed)
	}
	fam := data[0]
	n.proto = data[2]
	err := walkAttrs(data[sizeofNhMsg:], func(typ uint16, v []byte) {
		switch typ {
		case unix.NHA_ID:
			if len(v) == 4 {
				n.id = ne.Uint32(v)
			}
		case unix.NHA_OIF:
			if len(v) == 4 {
				n.oif = int32(ne.Uint32(v))
			}
		case unix.NHA_GATEWAY:
			n.gw, _ = parseAddr(fam, v)
		case unix.NHA_BLACKHOLE:
			n.blackhole = true
		case unix.NHA_GROUP:
			for ; len(v) >= unix.SizeofNexthopGrp; v = v[unix.SizeofNexthopGrp:] {
				w := uint32(v[4]) | uint32(v[5])<<8 // weight_high since Linux 6.12
				n.group = append(n.group, nhMember{id: ne.Uint32(v), weight: w + 1})
			}
		case unix.NHA_GROUP_TYPE:
			if len(v) >= 2 {
				n.form.resilient = ne.Uint16(v) == nhaGroupRes
			}
		case nhaResGroup:
			_ = walkAttrs(v, func(typ uint16, v []byte) {
				switch {
				case typ == nhaResGroupBuckets && len(v) >= 2:
					n.form.buckets = ne.Uint16(v)
				case typ == nhaResGroupIdleTimer && len(v) == 4:
					n.form.idle = ne.Uint32(v)
				case typ == nhaResGroupUnbalancedTimer && len(v) == 4:
					n.form.unbalanced = ne.Uint32(v)
				}
			})
		}
	})
	return n, err
}

// bucket is one entry of a resilient group's bucket table.
type bucket struct {
	group, index, nhID uint32
}

// parseBucket reads an RTM_NEWNEXTHOPBUCKET.
func parseBucket(data []byte) (bucket, error) {
	var b bucket
	if len(data) < sizeofNhMsg {
		return b, fmt.Errorf("%w: short nhmsg", errMalformed)
	}
	err := walkAttrs(data[sizeofNhMsg:], func(typ uint16, v []byte) {
		switch {
		case typ == unix.NHA_ID && len(v) == 4:
			b.group = ne.Uint32(v)
		case typ == nhaResBucket:
			_ = walkAttrs(v, func(typ uint16, v []byte) {
				switch {
				case typ == nhaResBucketIndex && len(v) >= 2:
					b.index = uint32(ne.Uint16(v))
				case typ == nhaResBucketNHID && len(v) == 4:
					b.nhID = ne.Uint32(v)
				}
			})
		}
	})
	return b, err
}
