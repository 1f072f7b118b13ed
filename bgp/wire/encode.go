package wire

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// beginAttr appends an attribute header with a 2-byte length to fill in by
// endAttr, which shrinks it to one byte when the value is short.
func beginAttr(b []byte, flags, t uint8) ([]byte, int) {
	return append(b, flags|FlagExtLen, t, 0, 0), len(b)
}

func endAttr(b []byte, start int) ([]byte, error) {
	n := len(b) - start - 4
	switch {
	case n > 0xffff:
		return b[:start], fmt.Errorf("bgp: %s value of %d bytes: %w", AttrTypeString(b[start+1]), n, ErrTooLong)
	case n > 255:
		binary.BigEndian.PutUint16(b[start+2:], uint16(n))
		return b, nil
	}
	b[start] &^= FlagExtLen
	b[start+2] = byte(n)
	copy(b[start+3:], b[start+4:])
	return b[:len(b)-1], nil
}

// appendASPath encodes p with asLen-byte AS numbers, substituting AS_TRANS
// for those that do not fit two octets, and splitting segments longer than
// 255 ASes. When skipConfed is set, confederation segments are left out (for
// AS4_PATH).
func appendASPath(b []byte, p ASPath, asLen int, skipConfed bool) []byte {
	for _, s := range p {
		if skipConfed && (s.Type == ASConfedSequence || s.Type == ASConfedSet) {
			continue
		}
		for asns := s.ASNs; len(asns) > 0; {
			n := min(len(asns), 255)
			b = append(b, s.Type, byte(n))
			for _, as := range asns[:n] {
				if asLen == 4 {
					b = binary.BigEndian.AppendUint32(b, as)
				} else {
					if as > 0xffff {
						as = ASTrans
					}
					b = binary.BigEndian.AppendUint16(b, uint16(as))
				}
			}
			asns = asns[n:]
		}
	}
	return b
}

func needsAS4Path(p ASPath) bool {
	for _, s := range p {
		if s.Type == ASConfedSequence || s.Type == ASConfedSet {
			continue
		}
		for _, as := range s.ASNs {
			if as > 0xffff {
				return true
			}
		}
	}
	return false
}

// appendMPReachValue encodes AFI, SAFI, next hop and the reserved byte.
func appendMPReachHead(b []byte, m *MPReach) []byte {
	b = binary.BigEndian.AppendUint16(b, m.Family.AFI)
	b = append(b, m.Family.SAFI)
	switch nh := m.NextHop; {
	case !nh.IsValid():
		b = append(b, byte(len(m.OtherNextHop)))
		b = append(b, m.OtherNextHop...)
	case nh.Is4() && m.Family.AFI == AFIIPv4:
		x := nh.As4()
		b = append(b, 4)
		b = append(b, x[:]...)
	default:
		// IPv6, or an IPv4 next hop for IPv6 routes as an IPv4-mapped
		// address; a link-local address makes it 32 bytes.
		x := nh.As16()
		if m.LinkLocal.IsValid() {
			ll := m.LinkLocal.As16()
			b = append(b, 32)
			b = append(b, x[:]...)
			b = append(b, ll[:]...)
		} else {
			b = append(b, 16)
			b = append(b, x[:]...)
		}
	}
	return append(b, 0)
}

func appendAddr4(b []byte, a netip.Addr) []byte {
	x := a.As4()
	return append(b, x[:]...)
}

// appendAttrs encodes the attributes of a for a session with options o:
// MP_UNREACH_NLRI and MP_REACH_NLRI first (RFC 7606 §5.1 asks for that so a
// receiver can always find the NLRI), then the rest by type code, then the
// unrecognised ones passed on with the Partial bit.
func (a *Attrs) appendTo(b []byte, o *Options) ([]byte, error) {
	if err := a.check(o); err != nil {
		return b, err
	}
	var err error
	attr := func(flags, t uint8, value func([]byte) []byte) {
		if err != nil {
			return
		}
		var start int
		b, start = beginAttr(b, flags, t)
		b = value(b)
		b, err = endAttr(b, start)
	}
	u32 := func(v uint32) func([]byte) []byte {
		return func(b []byte) []byte { return binary.BigEndian.AppendUint32(b, v) }
	}
	if a.Has(AttrMPUnreach) {
		attr(optNonTrans, AttrMPUnreach, func(b []byte) []byte {
			b = binary.BigEndian.AppendUint16(b, a.MPUnreach.Family.AFI)
			b = append(b, a.MPUnreach.Family.SAFI)
			return append(b, a.MPUnreach.Withdrawn.raw...)
		})
	}
	if a.Has(AttrMPReach) {
		attr(optNonTrans, AttrMPReach, func(b []byte) []byte {
			return append(appendMPReachHead(b, &a.MPReach), a.MPReach.NLRI.raw...)
		})
	}
	if a.Has(AttrOrigin) {
		attr(wellKnown, AttrOrigin, func(b []byte) []byte { return append(b, byte(a.Origin)) })
	}
	asLen := 2
	if o.AS4 {
		asLen = 4
	}
	if a.Has(AttrASPath) {
		// Confederation segments never leave the confederation (RFC 5065 §5.3).
		attr(wellKnown, AttrASPath, func(b []byte) []byte { return appendASPath(b, a.ASPath, asLen, o.External) })
	}
	if a.Has(AttrNextHop) {
		attr(wellKnown, AttrNextHop, func(b []byte) []byte { return appendAddr4(b, a.NextHop) })
	}
	if a.Has(AttrMED) {
		attr(optNonTrans, AttrMED, u32(a.MED))
	}
	// LOCAL_PREF, ORIGINATOR_ID and CLUSTER_LIST are never sent to an
	// external peer (RFC 4271 §5.1.5, RFC 4456 §8).
	if a.Has(AttrLocalPref) && !o.External {
		attr(wellKnown, AttrLocalPref, u32(a.LocalPref))
	}
	if a.Has(AttrAtomicAggregate) {
		attr(wellKnown, AttrAtomicAggregate, func(b []byte) []byte { return b })
	}
	if a.Has(AttrAggregator) {
		attr(optTrans, AttrAggregator, func(b []byte) []byte {
			if o.AS4 {
				b = binary.BigEndian.AppendUint32(b, a.Aggregator.AS)
			} else {
				as := a.Aggregator.AS
				if as > 0xffff {
					as = ASTrans
				}
				b = binary.BigEndian.AppendUint16(b, uint16(as))
			}
			return appendAddr4(b, a.Aggregator.Addr)
		})
	}
	if a.Has(AttrCommunities) {
		attr(optTrans, AttrCommunities, func(b []byte) []byte {
			for _, c := range a.Communities {
				b = binary.BigEndian.AppendUint32(b, uint32(c))
			}
			return b
		})
	}
	if a.Has(AttrOriginatorID) && !o.External {
		attr(optNonTrans, AttrOriginatorID, func(b []byte) []byte { return appendAddr4(b, a.OriginatorID) })
	}
	if a.Has(AttrClusterList) && !o.External {
		attr(optNonTrans, AttrClusterList, func(b []byte) []byte {
			for _, c := range a.ClusterList {
				b = appendAddr4(b, c)
			}
			return b
		})
	}
	if a.Has(AttrExtCommunities) {
		attr(optTrans, AttrExtCommunities, func(b []byte) []byte {
			for _, c := range a.ExtCommunities {
				b = append(b, c[:]...)
			}
			return b
		})
	}
	if !o.AS4 && a.Has(AttrASPath) && needsAS4Path(a.ASPath) {
		attr(optTrans, AttrAS4Path, func(b []byte) []byte { return appendASPath(b, a.ASPath, 4, true) })
	}
	if !o.AS4 && a.Has(AttrAggregator) && a.Aggregator.AS > 0xffff {
		attr(optTrans, AttrAS4Aggregator, func(b []byte) []byte {
			b = binary.BigEndian.AppendUint32(b, a.Aggregator.AS)
			return appendAddr4(b, a.Aggregator.Addr)
		})
	}
	if a.Has(AttrLargeCommunity) {
		attr(optTrans, AttrLargeCommunity, func(b []byte) []byte {
			for _, c := range a.LargeCommunities {
				b = binary.BigEndian.AppendUint32(b, c.Global)
				b = binary.BigEndian.AppendUint32(b, c.Local1)
				b = binary.BigEndian.AppendUint32(b, c.Local2)
			}
			return b
		})
	}
	if a.Has(AttrOTC) {
		attr(optTrans, AttrOTC, u32(a.OTC))
	}
	for _, u := range a.Unknown {
		attr(u.Flags|FlagPartial, u.Type, func(b []byte) []byte { return append(b, u.Value...) })
	}
	return b, err
}

// AppendUpdate appends u as one UPDATE message, exactly as given: its
// withdrawn routes, attributes (MP_REACH_NLRI and MP_UNREACH_NLRI included)
// and NLRI. Use an Encoder to split many prefixes over several messages.
func AppendUpdate(b []byte, u *Update, o *Options) ([]byte, error) {
	if o == nil {
		o = &noOptions
	}
	b, start := appendHeader(b, TypeUpdate)
	b = binary.BigEndian.AppendUint16(b, uint16(len(u.Withdrawn.raw)))
	b = append(b, u.Withdrawn.raw...)
	alPos := len(b)
	b = append(b, 0, 0)
	b, err := u.Attrs.appendTo(b, o)
	if err != nil {
		return b[:start], err
	}
	al := len(b) - alPos - 2
	if al > 0xffff {
		return b[:start], fmt.Errorf("bgp: path attributes of %d bytes: %w", al, ErrTooLong)
	}
	binary.BigEndian.PutUint16(b[alPos:], uint16(al))
	b = append(b, u.NLRI.raw...)
	return finishMessage(b, start, o)
}

// errEncode reports attribute values that have no encoding.
func errEncode(t uint8, format string, args ...any) error {
	return fmt.Errorf("bgp: cannot encode %s: %s", AttrTypeString(t), fmt.Sprintf(format, args...))
}

// check refuses values the wire cannot carry faithfully, so the encoder
// neither panics nor sends what the peer would read differently.
func (a *Attrs) check(o *Options) error {
	v4 := func(t uint8, what string, x netip.Addr) error {
		if !x.Is4() {
			return errEncode(t, "%s %v is not an IPv4 address", what, x)
		}
		return nil
	}
	if a.Has(AttrNextHop) {
		if err := v4(AttrNextHop, "next hop", a.NextHop); err != nil {
			return err
		}
	}
	if a.Has(AttrAggregator) {
		if err := v4(AttrAggregator, "aggregator address", a.Aggregator.Addr); err != nil {
			return err
		}
	}
	if a.Has(AttrOriginatorID) {
		if err := v4(AttrOriginatorID, "originator ID", a.OriginatorID); err != nil {
			return err
		}
	}
	if a.Has(AttrClusterList) {
		for _, c := range a.ClusterList {
			if err := v4(AttrClusterList, "cluster ID", c); err != nil {
				return err
			}
		}
	}
	if a.Has(AttrASPath) {
		for _, s := range a.ASPath {
			// A sequence may be split over segments; a set may not, as
			// each set counts one in the path length.
			if (s.Type == ASSet || s.Type == ASConfedSet) && len(s.ASNs) > 255 {
				return errEncode(AttrASPath, "a set of %d ASes (at most 255)", len(s.ASNs))
			}
			if s.Type < ASSet || s.Type > ASConfedSet || len(s.ASNs) == 0 {
				return errEncode(AttrASPath, "segment type %d with %d ASes", s.Type, len(s.ASNs))
			}
		}
	}
	if a.Has(AttrMPReach) {
		if err := checkNextHop(a.MPReach.Family, a.MPReach.NextHop, o); err != nil {
			return err
		}
	}
	return nil
}

// checkNextHop refuses a next hop the peer could not decode for family f.
func checkNextHop(f Family, nh netip.Addr, o *Options) error {
	switch {
	case f.addrLen() == 0:
		return nil
	case !nh.IsValid():
		return errEncode(AttrMPReach, "%s routes without a next hop", f)
	case f.AFI == AFIIPv4 && !nh.Is4() && !o.ExtendedNextHop.Has(f):
		return errEncode(AttrMPReach, "%s routes with next hop %v: extended next hop not negotiated", f, nh)
	}
	return nil
}
