package wire

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Encoder packs routes into as few UPDATE messages as the size limit allows.
// It keeps scratch space between calls, so a warm Encoder allocates nothing
// beyond the caller's buffer. Not safe for concurrent use.
type Encoder struct {
	Options Options
	attrs   []byte
	tmp     Attrs
}

// AppendReach appends UPDATEs announcing nlri (all of family f) with the
// attributes a and next hop nh. IPv4 unicast routes with an IPv4 next hop use
// the classic NLRI field and NEXT_HOP; everything else goes in MP_REACH_NLRI
// (with ll as the link-local half of an IPv6 next hop, if valid). Any
// NEXT_HOP or MP attribute in a is ignored. It returns the buffer and the
// number of messages appended.
func (e *Encoder) AppendReach(b []byte, f Family, nh, ll netip.Addr, a *Attrs, nlri []NLRI) ([]byte, int, error) {
	if err := checkNextHop(f, nh, &e.Options); err != nil {
		return b, 0, err
	}
	e.tmp = *a
	t := &e.tmp
	t.Clear(AttrMPReach)
	t.Clear(AttrMPUnreach)
	t.Clear(AttrNextHop)
	classic := f == IPv4Unicast && nh.Is4()
	if classic {
		t.NextHop = nh
		t.Set(AttrNextHop)
	}
	var err error
	if e.attrs, err = t.appendTo(e.attrs[:0], &e.Options); err != nil {
		return b, 0, err
	}
	var head []byte
	if !classic {
		// MP_REACH_NLRI goes first; its header is written per message with
		// a 2-byte length, as it may grow past 255 bytes.
		// 37 bytes hold the largest head: AFI, SAFI, length, a 32-byte
		// next hop and the reserved byte.
		var hb [37]byte
		head = appendMPReachHead(hb[:0], &MPReach{Family: f, NextHop: nh, LinkLocal: ll})
	}
	return e.pack(b, f, nlri, false, head)
}

// AppendWithdraw appends UPDATEs withdrawing nlri (all of family f): in the
// withdrawn routes field for IPv4 unicast, else in MP_UNREACH_NLRI.
func (e *Encoder) AppendWithdraw(b []byte, f Family, nlri []NLRI) ([]byte, int, error) {
	e.attrs = e.attrs[:0]
	var head []byte
	if f != IPv4Unicast {
		var hb [3]byte
		head = append(binary.BigEndian.AppendUint16(hb[:0], f.AFI), f.SAFI)
	}
	return e.pack(b, f, nlri, true, head)
}

// AppendEndOfRIB appends the End-of-RIB marker for f (RFC 4724 §2).
func (e *Encoder) AppendEndOfRIB(b []byte, f Family) []byte {
	b, _, _ = e.AppendWithdraw(b, f, nil)
	return b
}

// pack writes messages of the shape
//
//	header | withdrawn | attrs: [MP attr with head + NLRI] e.attrs | NLRI
//
// filling each with as many prefixes as fit. With head nil the prefixes go in
// the classic field (withdrawn or NLRI), else in an MP attribute.
func (e *Encoder) pack(b []byte, f Family, nlri []NLRI, withdraw bool, head []byte) ([]byte, int, error) {
	maxLen := e.Options.maxLenFor(TypeUpdate)
	addPath := e.Options.AddPath.Has(f)
	mpType := AttrMPReach
	if withdraw {
		mpType = AttrMPUnreach
	}
	fixed := HeaderLen + 4 + len(e.attrs)
	if head != nil {
		fixed += len(head)
	}
	// mpHead is the size of the MP attribute's own header: a one-byte
	// length while the value fits 255 bytes, else two.
	mpHead := func(size int) int {
		switch {
		case head == nil:
			return 0
		case len(head)+size <= 255:
			return 3
		}
		return 4
	}
	msgs := 0
	for first := true; first || len(nlri) > 0; first = false {
		// Count what fits.
		n, size := 0, 0
		for n < len(nlri) {
			l := nlriLen(nlri[n], addPath)
			if fixed+mpHead(size+l)+size+l > maxLen {
				break
			}
			size += l
			n++
		}
		if n == 0 && len(nlri) > 0 {
			return b, msgs, fmt.Errorf("bgp: attributes of %d bytes leave no room for a prefix: %w", len(e.attrs), ErrTooLong)
		}
		var start int
		b, start = appendHeader(b, TypeUpdate)
		var err error
		if withdraw && head == nil {
			b = binary.BigEndian.AppendUint16(b, uint16(size))
			if b, err = appendNLRIs(b, f, addPath, nlri[:n]); err != nil {
				return b[:start], msgs, err
			}
			b = append(b, 0, 0)
		} else {
			al := len(e.attrs)
			if head != nil {
				al += mpHead(size) + len(head) + size
			}
			b = append(b, 0, 0, byte(al>>8), byte(al))
			if head != nil {
				if mpHead(size) == 3 {
					b = append(b, optNonTrans, mpType, byte(len(head)+size))
				} else {
					b = append(b, optNonTrans|FlagExtLen, mpType)
					b = binary.BigEndian.AppendUint16(b, uint16(len(head)+size))
				}
				b = append(b, head...)
				if b, err = appendNLRIs(b, f, addPath, nlri[:n]); err != nil {
					return b[:start], msgs, err
				}
			}
			b = append(b, e.attrs...)
			if head == nil {
				if b, err = appendNLRIs(b, f, addPath, nlri[:n]); err != nil {
					return b[:start], msgs, err
				}
			}
		}
		if b, err = finishMessage(b, start, &e.Options); err != nil {
			return b, msgs, err
		}
		nlri = nlri[n:]
		msgs++
	}
	return b, msgs, nil
}
