package wire

import (
	"encoding/binary"
	"net/netip"
)

// Update is a decoded UPDATE. The IPv4 unicast withdrawn routes and NLRI of
// the classic fields are views over the message; path attributes are values
// whose slices DecodeUpdate reuses from message to message.
type Update struct {
	Withdrawn Prefixes
	Attrs     Attrs
	NLRI      Prefixes

	// Discarded lists the attributes dropped by RFC 7606 attribute discard
	// (or as duplicates) while decoding, for logging.
	Discarded []uint8

	seen   [4]uint64 // attribute types met, including discarded ones
	as4    ASPath    // AS4_PATH, until merged
	merged ASPath    // scratch for the merge, swapped with Attrs.ASPath
	as4Ag  Aggregator
	hasAg4 bool
	// dec lives here because the attribute decoders are called through a
	// table, which makes a local decoder escape to the heap.
	dec decoder
}

// EndOfRIB reports whether u is an End-of-RIB marker (RFC 4724 §2) and for
// which family.
func (u *Update) EndOfRIB() (Family, bool) {
	a := &u.Attrs
	if u.Withdrawn.Len() == 0 && u.NLRI.Len() == 0 {
		if a.present == [4]uint64{} && len(a.Unknown) == 0 && u.seen == [4]uint64{} {
			return IPv4Unicast, true
		}
		var only [4]uint64
		only[AttrMPUnreach>>6] = 1 << (AttrMPUnreach & 63)
		if u.seen == only && a.MPUnreach.Withdrawn.Len() == 0 && len(a.MPUnreach.Withdrawn.raw) == 0 {
			return a.MPUnreach.Family, true
		}
	}
	return Family{}, false
}

// decoder carries one DecodeUpdate call's state.
type decoder struct {
	u     *Update
	o     *Options
	worst *Error
}

// note records a malformation, keeping the most severe (the first of equals).
func (d *decoder) note(e *Error) {
	if e == nil {
		return
	}
	if e.Action == AttributeDiscard {
		d.u.Discarded = append(d.u.Discarded, e.Attr)
	}
	if d.worst == nil || e.Action > d.worst.Action {
		d.worst = e
	}
}

var noOptions Options

// DecodeUpdate decodes the body of an UPDATE (after the header) into u,
// reusing u's buffers. The returned error, when not nil, is an *Error whose
// Action is the most severe RFC 7606 class met:
//   - AttributeDiscard: u is complete, minus the attributes in u.Discarded;
//   - TreatAsWithdraw: u is decoded as far as possible, and every prefix in
//     u.NLRI and u.Attrs.MPReach must be handled as withdrawn;
//   - SessionReset: u is unusable; send e.Notification() and close.
func DecodeUpdate(u *Update, body []byte, o *Options) error {
	if o == nil {
		o = &noOptions
	}
	u.Attrs.reset()
	u.Withdrawn, u.NLRI, u.Discarded, u.seen = Prefixes{}, Prefixes{}, u.Discarded[:0], [4]uint64{}
	u.as4, u.hasAg4 = u.as4[:0], false
	d := &u.dec
	*d = decoder{u: u, o: o}

	if len(body) < 4 {
		return resetErr(ErrCodeHeader, ErrSubBadMessageLength, beUint16Bytes(uint16(HeaderLen+len(body))),
			"UPDATE body of %d bytes is shorter than 4", len(body))
	}
	wl := int(binary.BigEndian.Uint16(body))
	if 2+wl+2 > len(body) {
		return resetErr(ErrCodeUpdate, ErrSubMalformedAttrList, nil,
			"withdrawn routes length %d runs past the message", wl)
	}
	al := int(binary.BigEndian.Uint16(body[2+wl:]))
	if 4+wl+al > len(body) {
		return resetErr(ErrCodeUpdate, ErrSubMalformedAttrList, nil,
			"withdrawn routes length %d + path attributes length %d run past the message", wl, al)
	}
	var err *Error
	if u.Withdrawn, err = makePrefixes(body[2:2+wl], IPv4Unicast, o.AddPath.Has(IPv4Unicast)); err != nil {
		return err
	}
	if u.NLRI, err = makePrefixes(body[4+wl+al:], IPv4Unicast, o.AddPath.Has(IPv4Unicast)); err != nil {
		return err
	}
	d.attrs(body[4+wl : 4+wl+al])
	if d.worst != nil && d.worst.Action == SessionReset {
		return d.worst
	}
	d.mergeAS4()
	d.checkMandatory()
	if d.worst == nil {
		return nil
	}
	return d.worst
}

// attrs walks the path attributes. A length that overruns the field is
// treat-as-withdraw (RFC 7606 §4): the NLRI are still found from the total
// length, which was checked against the message.
func (d *decoder) attrs(b []byte) {
	for len(b) > 0 {
		if len(b) < 3 || (b[0]&FlagExtLen != 0 && len(b) < 4) {
			d.note(&Error{Action: TreatAsWithdraw, Code: ErrCodeUpdate, Subcode: ErrSubMalformedAttrList,
				Reason: "path attribute header truncated"})
			return
		}
		flags, t := b[0], b[1]
		hl, l := 3, int(b[2])
		if flags&FlagExtLen != 0 {
			hl, l = 4, int(binary.BigEndian.Uint16(b[2:]))
		}
		if hl+l > len(b) {
			d.note(d.overrun(t, b, len(b)-hl))
			return
		}
		raw, v := b[:hl+l], b[hl:hl+l]
		b = b[hl+l:]

		w, bit := t>>6, uint64(1)<<(t&63)
		if d.u.seen[w]&bit != 0 {
			if t == AttrMPReach || t == AttrMPUnreach {
				d.note(attrErr(SessionReset, ErrSubMalformedAttrList, t, nil, "%s appears twice", AttrTypeString(t)))
				return
			}
			d.note(attrErr(AttributeDiscard, ErrSubMalformedAttrList, t, nil, "duplicate %s discarded", AttrTypeString(t)))
			continue
		}
		d.u.seen[w] |= bit
		d.note(d.attr(flags, t, raw, v))
		if d.worst != nil && d.worst.Action == SessionReset {
			return
		}
	}
}

// minMPAttr is the smallest MP_REACH_NLRI or MP_UNREACH_NLRI attribute: a
// 3-byte header and an AFI/SAFI (an End-of-RIB MP_UNREACH_NLRI).
const minMPAttr = 3 + 3

// overrun classifies an attribute of type t whose length runs past the path
// attributes field, leaving hidden bytes unread after its header. RFC 7606
// §4 makes it treat-as-withdraw, but only where every NLRI of the UPDATE can
// still be found (§3, §5): once the attribute boundaries are lost, an
// MP_REACH_NLRI or MP_UNREACH_NLRI not met yet may sit in the hidden bytes,
// and withdrawing only the IPv4 NLRI would leave its routes stale. So the
// session is reset unless both MP attributes were already read, or the
// hidden bytes are too few to hold one, or the overrunning attribute is one
// of them (then its own NLRI is unreadable). rest is the field from the
// attribute's header on.
func (d *decoder) overrun(t uint8, rest []byte, hidden int) *Error {
	e := &Error{Action: TreatAsWithdraw, Code: ErrCodeUpdate, Subcode: ErrSubAttrLength, Attr: t,
		Reason: "path attribute length runs past the path attributes field"}
	mpUnread := !d.seen(AttrMPReach) || !d.seen(AttrMPUnreach)
	if t == AttrMPReach || t == AttrMPUnreach || (mpUnread && hidden >= minMPAttr) {
		e.Action = SessionReset
		e.Reason += ", where multiprotocol NLRI may be hidden"
		// The attribute as far as it goes (RFC 4271 §6.3).
		e.Data = append([]byte(nil), rest...)
	}
	return e
}

// attrSpec is what the codec knows of one attribute type.
type attrSpec struct {
	flags uint8 // expected Optional and Transitive bits
	// malformed is the RFC 7606 §7 (RFC 6793 §6) action for a malformed
	// attribute of this type, which a flags conflict is (§3(c)).
	malformed Action
	decode    func(d *decoder, v []byte) *Error
}

const (
	wellKnown   = FlagTransitive
	optTrans    = FlagOptional | FlagTransitive
	optNonTrans = FlagOptional
)

// attrSpecs is indexed by type code; a nil decode means unrecognised.
var attrSpecs = [256]attrSpec{
	AttrOrigin:          {wellKnown, TreatAsWithdraw, decodeOrigin},
	AttrASPath:          {wellKnown, TreatAsWithdraw, decodeASPathAttr},
	AttrNextHop:         {wellKnown, TreatAsWithdraw, decodeNextHop},
	AttrMED:             {optNonTrans, TreatAsWithdraw, decodeMED},
	AttrLocalPref:       {wellKnown, TreatAsWithdraw, decodeLocalPref},
	AttrAtomicAggregate: {wellKnown, AttributeDiscard, decodeAtomicAggregate},
	AttrAggregator:      {optTrans, AttributeDiscard, decodeAggregator},
	AttrCommunities:     {optTrans, TreatAsWithdraw, decodeCommunities},
	AttrOriginatorID:    {optNonTrans, TreatAsWithdraw, decodeOriginatorID},
	AttrClusterList:     {optNonTrans, TreatAsWithdraw, decodeClusterList},
	// Without trusting an MP attribute, its NLRI cannot be found.
	AttrMPReach:        {optNonTrans, SessionReset, decodeMPReach},
	AttrMPUnreach:      {optNonTrans, SessionReset, decodeMPUnreach},
	AttrExtCommunities: {optTrans, TreatAsWithdraw, decodeExtCommunities},
	AttrAS4Path:        {optTrans, AttributeDiscard, decodeAS4Path},
	AttrAS4Aggregator:  {optTrans, AttributeDiscard, decodeAS4Aggregator},
	AttrLargeCommunity: {optTrans, TreatAsWithdraw, decodeLargeCommunities},
	AttrOTC:            {optTrans, TreatAsWithdraw, decodeOTC},
}

func (d *decoder) attr(flags, t uint8, raw, v []byte) *Error {
	spec := &attrSpecs[t]
	if spec.decode == nil {
		switch {
		case flags&FlagOptional == 0:
			return attrErr(SessionReset, ErrSubUnrecognizedWellKnown, t, raw,
				"unrecognised attribute type %d flagged well-known", t)
		case flags&FlagTransitive != 0:
			d.u.Attrs.Unknown = append(d.u.Attrs.Unknown, RawAttr{Flags: flags &^ FlagExtLen, Type: t, Value: v})
		}
		// An unrecognised optional non-transitive attribute is quietly
		// ignored (RFC 4271 §5).
		return nil
	}
	// RFC 7606 §3(c): Optional or Transitive bits in conflict with the type
	// make the attribute malformed, handled as the attribute's own rule
	// says: attribute discard for ATOMIC_AGGREGATE and AGGREGATOR (§7.6,
	// §7.7) and the AS4 attributes (RFC 6793 §6), not treat-as-withdraw.
	if flags&(FlagOptional|FlagTransitive) != spec.flags {
		return attrErr(spec.malformed, ErrSubAttrFlags, t, raw, "%s with flags %#02x", AttrTypeString(t), flags)
	}
	if e := spec.decode(d, v); e != nil {
		if e.Attr == 0 {
			e.Attr = t
		}
		if e.Action == SessionReset && e.Data == nil && e.Subcode != ErrSubInvalidNetworkField {
			e.Data = append([]byte(nil), raw...)
		}
		return e
	}
	if t != AttrAS4Path && t != AttrAS4Aggregator {
		// The AS4 attributes are merged into AS_PATH and AGGREGATOR
		// rather than kept.
		d.u.Attrs.Set(t)
	}
	return nil
}

func lenErr(a Action, format string, args ...any) *Error {
	return attrErr(a, ErrSubAttrLength, 0, nil, format, args...)
}

func decodeOrigin(d *decoder, v []byte) *Error {
	if len(v) != 1 {
		return lenErr(TreatAsWithdraw, "ORIGIN of %d bytes", len(v))
	}
	if v[0] > uint8(OriginIncomplete) {
		return attrErr(TreatAsWithdraw, ErrSubInvalidOrigin, 0, nil, "ORIGIN value %d", v[0])
	}
	d.u.Attrs.Origin = Origin(v[0])
	return nil
}

// decodeASPath reads segments of asLen-byte AS numbers into p (reusing its
// storage). A zero-length segment, an unknown segment type or a length that
// does not match the value is malformed (RFC 7606 §7.2).
func decodeASPath(p ASPath, v []byte, asLen int) (ASPath, string) {
	p = p[:0]
	for len(v) > 0 {
		if len(v) < 2 {
			return p, "truncated segment header"
		}
		typ, n := v[0], int(v[1])
		if typ < ASSet || typ > ASConfedSet {
			return p, "unknown segment type"
		}
		if n == 0 {
			return p, "empty segment"
		}
		if len(v) < 2+n*asLen {
			return p, "segment runs past the attribute"
		}
		if len(p) < cap(p) {
			p = p[:len(p)+1]
		} else {
			p = append(p, ASSegment{})
		}
		s := &p[len(p)-1]
		s.Type, s.ASNs = typ, s.ASNs[:0]
		for i := 0; i < n; i++ {
			o := 2 + i*asLen
			if asLen == 4 {
				s.ASNs = append(s.ASNs, binary.BigEndian.Uint32(v[o:]))
			} else {
				s.ASNs = append(s.ASNs, uint32(binary.BigEndian.Uint16(v[o:])))
			}
		}
		v = v[2+n*asLen:]
	}
	return p, ""
}

func decodeASPathAttr(d *decoder, v []byte) *Error {
	asLen := 2
	if d.o.AS4 {
		asLen = 4
	}
	var why string
	d.u.Attrs.ASPath, why = decodeASPath(d.u.Attrs.ASPath, v, asLen)
	if why != "" {
		return attrErr(TreatAsWithdraw, ErrSubMalformedASPath, 0, nil, "AS_PATH: %s", why)
	}
	if d.o.External {
		for _, s := range d.u.Attrs.ASPath {
			if s.Type == ASConfedSequence || s.Type == ASConfedSet {
				return attrErr(TreatAsWithdraw, ErrSubMalformedASPath, 0, nil,
					"AS_PATH from an external peer holds a confederation segment")
			}
		}
	}
	return nil
}

func decodeNextHop(d *decoder, v []byte) *Error {
	if len(v) != 4 {
		return lenErr(TreatAsWithdraw, "NEXT_HOP of %d bytes", len(v))
	}
	d.u.Attrs.NextHop = netip.AddrFrom4([4]byte(v))
	return nil
}

func decodeMED(d *decoder, v []byte) *Error {
	if len(v) != 4 {
		return lenErr(TreatAsWithdraw, "MULTI_EXIT_DISC of %d bytes", len(v))
	}
	d.u.Attrs.MED = binary.BigEndian.Uint32(v)
	return nil
}

func decodeLocalPref(d *decoder, v []byte) *Error {
	if d.o.External {
		return attrErr(AttributeDiscard, 0, 0, nil, "LOCAL_PREF from an external peer")
	}
	if len(v) != 4 {
		return lenErr(TreatAsWithdraw, "LOCAL_PREF of %d bytes", len(v))
	}
	d.u.Attrs.LocalPref = binary.BigEndian.Uint32(v)
	return nil
}

func decodeAtomicAggregate(_ *decoder, v []byte) *Error {
	if len(v) != 0 {
		return lenErr(AttributeDiscard, "ATOMIC_AGGREGATE of %d bytes", len(v))
	}
	return nil
}

func decodeAggregator(d *decoder, v []byte) *Error {
	switch {
	case d.o.AS4 && len(v) == 8:
		d.u.Attrs.Aggregator = Aggregator{binary.BigEndian.Uint32(v), netip.AddrFrom4([4]byte(v[4:]))}
	case !d.o.AS4 && len(v) == 6:
		d.u.Attrs.Aggregator = Aggregator{uint32(binary.BigEndian.Uint16(v)), netip.AddrFrom4([4]byte(v[2:]))}
	default:
		return lenErr(AttributeDiscard, "AGGREGATOR of %d bytes", len(v))
	}
	return nil
}

func decodeCommunities(d *decoder, v []byte) *Error {
	if len(v) == 0 || len(v)%4 != 0 {
		return lenErr(TreatAsWithdraw, "COMMUNITIES of %d bytes", len(v))
	}
	for ; len(v) > 0; v = v[4:] {
		d.u.Attrs.Communities = append(d.u.Attrs.Communities, Community(binary.BigEndian.Uint32(v)))
	}
	return nil
}

func decodeOriginatorID(d *decoder, v []byte) *Error {
	if d.o.External {
		return attrErr(AttributeDiscard, 0, 0, nil, "ORIGINATOR_ID from an external peer")
	}
	if len(v) != 4 {
		return lenErr(TreatAsWithdraw, "ORIGINATOR_ID of %d bytes", len(v))
	}
	d.u.Attrs.OriginatorID = netip.AddrFrom4([4]byte(v))
	return nil
}

func decodeClusterList(d *decoder, v []byte) *Error {
	if d.o.External {
		return attrErr(AttributeDiscard, 0, 0, nil, "CLUSTER_LIST from an external peer")
	}
	if len(v) == 0 || len(v)%4 != 0 {
		return lenErr(TreatAsWithdraw, "CLUSTER_LIST of %d bytes", len(v))
	}
	for ; len(v) > 0; v = v[4:] {
		d.u.Attrs.ClusterList = append(d.u.Attrs.ClusterList, netip.AddrFrom4([4]byte(v)))
	}
	return nil
}

// decodeMPReach reads MP_REACH_NLRI. Its malformations are session resets
// (RFC 7606 §7.11): with the next hop in doubt the NLRI cannot be located.
func decodeMPReach(d *decoder, v []byte) *Error {
	if len(v) < 5 {
		return attrErr(SessionReset, ErrSubOptionalAttr, 0, nil, "MP_REACH_NLRI of %d bytes", len(v))
	}
	m := &d.u.Attrs.MPReach
	m.Family = Family{binary.BigEndian.Uint16(v), v[2]}
	nhl := int(v[3])
	if len(v) < 4+nhl+1 {
		return attrErr(SessionReset, ErrSubOptionalAttr, 0, nil, "MP_REACH_NLRI next hop of %d bytes runs past the attribute", nhl)
	}
	nh := v[4 : 4+nhl]
	if m.Family.addrLen() == 0 {
		m.OtherNextHop = nh
	} else {
		switch {
		case nhl == 4 && (m.Family.AFI == AFIIPv4):
			m.NextHop = netip.AddrFrom4([4]byte(nh))
		case (nhl == 16 || nhl == 32) && (m.Family.AFI == AFIIPv6 || d.o.ExtendedNextHop.Has(m.Family)):
			m.NextHop = netip.AddrFrom16([16]byte(nh))
			if nhl == 32 {
				m.LinkLocal = netip.AddrFrom16([16]byte(nh[16:]))
			}
		default:
			return attrErr(SessionReset, ErrSubOptionalAttr, 0, nil, "%s next hop length %d", m.Family, nhl)
		}
	}
	// The reserved byte (once the SNPA count) is ignored (RFC 4760 §3).
	var err *Error
	m.NLRI, err = makePrefixes(v[4+nhl+1:], m.Family, d.o.AddPath.Has(m.Family))
	return err
}

func decodeMPUnreach(d *decoder, v []byte) *Error {
	if len(v) < 3 {
		return attrErr(SessionReset, ErrSubOptionalAttr, 0, nil, "MP_UNREACH_NLRI of %d bytes", len(v))
	}
	m := &d.u.Attrs.MPUnreach
	m.Family = Family{binary.BigEndian.Uint16(v), v[2]}
	var err *Error
	m.Withdrawn, err = makePrefixes(v[3:], m.Family, d.o.AddPath.Has(m.Family))
	return err
}

func decodeExtCommunities(d *decoder, v []byte) *Error {
	if len(v) == 0 || len(v)%8 != 0 {
		return lenErr(TreatAsWithdraw, "EXTENDED_COMMUNITIES of %d bytes", len(v))
	}
	for ; len(v) > 0; v = v[8:] {
		d.u.Attrs.ExtCommunities = append(d.u.Attrs.ExtCommunities, ExtCommunity(v[:8]))
	}
	return nil
}

// decodeAS4Path keeps AS4_PATH aside for mergeAS4. Between 4-octet speakers
// it must not appear, and any malformation is attribute discard (RFC 6793 §6).
func decodeAS4Path(d *decoder, v []byte) *Error {
	if d.o.AS4 {
		return attrErr(AttributeDiscard, 0, 0, nil, "AS4_PATH on a 4-octet AS session")
	}
	var why string
	if len(v) == 0 {
		return attrErr(AttributeDiscard, ErrSubMalformedASPath, 0, nil, "empty AS4_PATH")
	}
	if d.u.as4, why = decodeASPath(d.u.as4, v, 4); why != "" {
		d.u.as4 = d.u.as4[:0]
		return attrErr(AttributeDiscard, ErrSubMalformedASPath, 0, nil, "AS4_PATH: %s", why)
	}
	// Confederation segments are invalid in AS4_PATH: RFC 6793 §3 has the
	// receiver drop those segments and keep the rest.
	k := 0
	for _, s := range d.u.as4 {
		if s.Type != ASConfedSequence && s.Type != ASConfedSet {
			d.u.as4[k], k = s, k+1
		}
	}
	clear(d.u.as4[k:])
	d.u.as4 = d.u.as4[:k]
	return nil
}

func decodeAS4Aggregator(d *decoder, v []byte) *Error {
	if d.o.AS4 {
		return attrErr(AttributeDiscard, 0, 0, nil, "AS4_AGGREGATOR on a 4-octet AS session")
	}
	if len(v) != 8 {
		return lenErr(AttributeDiscard, "AS4_AGGREGATOR of %d bytes", len(v))
	}
	d.u.as4Ag = Aggregator{binary.BigEndian.Uint32(v), netip.AddrFrom4([4]byte(v[4:]))}
	d.u.hasAg4 = true
	return nil
}

func decodeLargeCommunities(d *decoder, v []byte) *Error {
	if len(v) == 0 || len(v)%12 != 0 {
		return lenErr(TreatAsWithdraw, "LARGE_COMMUNITY of %d bytes", len(v))
	}
	for ; len(v) > 0; v = v[12:] {
		d.u.Attrs.LargeCommunities = append(d.u.Attrs.LargeCommunities, LargeCommunity{
			binary.BigEndian.Uint32(v), binary.BigEndian.Uint32(v[4:]), binary.BigEndian.Uint32(v[8:])})
	}
	return nil
}

func decodeOTC(d *decoder, v []byte) *Error {
	if len(v) != 4 {
		return lenErr(TreatAsWithdraw, "OTC of %d bytes", len(v))
	}
	d.u.Attrs.OTC = binary.BigEndian.Uint32(v)
	return nil
}

// checkMandatory applies RFC 7606 §3(d): an UPDATE that announces routes
// without ORIGIN or AS_PATH, or with classic NLRI but no NEXT_HOP, is
// treat-as-withdraw.
func (d *decoder) checkMandatory() {
	a := &d.u.Attrs
	announces := d.u.NLRI.Len() > 0 || a.Has(AttrMPReach)
	if !announces {
		return
	}
	for _, t := range [...]uint8{AttrOrigin, AttrASPath, AttrNextHop} {
		if t == AttrNextHop && d.u.NLRI.Len() == 0 {
			continue
		}
		if !a.Has(t) && !d.seen(t) {
			d.note(&Error{Action: TreatAsWithdraw, Code: ErrCodeUpdate, Subcode: ErrSubMissingWellKnown,
				Data: []byte{t}, Attr: t, Reason: "missing well-known attribute " + AttrTypeString(t)})
		}
	}
}

func (d *decoder) seen(t uint8) bool { return d.u.seen[t>>6]&(1<<(t&63)) != 0 }
