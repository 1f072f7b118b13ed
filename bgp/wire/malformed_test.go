package wire

import (
	"bytes"
	"errors"
	"testing"
)

type malformedCase struct {
	name      string
	o         Options
	withdrawn string
	attrs     string
	nlri      string
	action    Action
	sub       uint8 // UPDATE Message Error subcode (or header code's)
	code      uint8 // defaults to UPDATE Message Error
	attr      uint8 // the attribute blamed, if any
	data      string
	check     func(t *testing.T, u *Update)
}

// malformedUpdates is the RFC 7606 table, shared with the fuzz corpus.
func malformedUpdates() []malformedCase {
	const (
		// A second MED, a bad AS_PATH segment type, etc. are spelled out
		// inline; these are reused.
		med     = "80 04 04 00000064"
		as4path = "c0 11 0a 02 02 00011170 0000fc01"
	)
	return []malformedCase{
		// NEXT_HOP
		{name: "next_hop of 5 bytes", o: *as4, attrs: hOrigin + hASPath4 + "40 03 05 c633640101", nlri: hNLRI,
			action: TreatAsWithdraw, sub: ErrSubAttrLength, attr: AttrNextHop,
			check: func(t *testing.T, u *Update) { eq(t, u.NLRI.Len(), 2) }},
		{name: "next_hop of 3 bytes", o: *as4, attrs: hOrigin + hASPath4 + "40 03 03 c63364", nlri: hNLRI,
			action: TreatAsWithdraw, sub: ErrSubAttrLength, attr: AttrNextHop},
		{name: "missing next_hop with NLRI", o: *as4, attrs: hOrigin + hASPath4, nlri: hNLRI,
			action: TreatAsWithdraw, sub: ErrSubMissingWellKnown, attr: AttrNextHop, data: "03"},
		{name: "missing origin", o: *as4, attrs: hASPath4 + hNextHop, nlri: hNLRI,
			action: TreatAsWithdraw, sub: ErrSubMissingWellKnown, attr: AttrOrigin, data: "01"},
		{name: "missing as_path in MP_REACH-only update", o: *as4,
			attrs:  "80 0e 1e 0002 01 10 20010db8000000000000000000000001 00 | 40 20010db800000000" + hOrigin,
			action: TreatAsWithdraw, sub: ErrSubMissingWellKnown, attr: AttrASPath, data: "02",
			check: func(t *testing.T, u *Update) { eq(t, u.Attrs.MPReach.NLRI.Len(), 1) }},
		{name: "no attributes at all is fine for a withdrawal", o: *as4, withdrawn: hNLRI},
		// AS4_PATH
		{name: "as4_path before as_path is merged", o: Options{},
			attrs: hOrigin + as4path + "40 02 06 02 02 5ba0 fc01" + hNextHop, nlri: hNLRI,
			check: func(t *testing.T, u *Update) { eq(t, u.Attrs.ASPath.String(), "70000 64513") }},
		{name: "as4_path on a 4-octet session is discarded", o: *as4, attrs: hBase4 + as4path, nlri: hNLRI,
			action: AttributeDiscard, attr: AttrAS4Path,
			check: func(t *testing.T, u *Update) {
				eq(t, u.Attrs.ASPath.String(), "64512")
				eq(t, u.Discarded, []uint8{AttrAS4Path})
			}},
		{name: "malformed as4_path is discarded, as_path kept", o: Options{}, attrs: hBase2 + "c0 11 06 02 02 00011170", nlri: hNLRI,
			action: AttributeDiscard, sub: ErrSubMalformedASPath, attr: AttrAS4Path,
			check: func(t *testing.T, u *Update) { eq(t, u.Attrs.ASPath.String(), "64512") }},
		{name: "as4_path confed segments are dropped, the rest merged (RFC 6793 §3)", o: Options{},
			attrs: hOrigin + "40 02 08 03 01 fde9 02 01 5ba0" + hNextHop + "c0 11 0c 03 01 0000fde9 02 01 00011170", nlri: hNLRI,
			check: func(t *testing.T, u *Update) { eq(t, u.Attrs.ASPath.String(), "(65001) 70000") }},
		{name: "as4_path longer than as_path is ignored", o: Options{}, attrs: hBase2 + as4path, nlri: hNLRI,
			check: func(t *testing.T, u *Update) { eq(t, u.Attrs.ASPath.String(), "64512") }},
		{name: "as4_aggregator of 7 bytes is discarded", o: Options{}, attrs: hBase2 + "c0 12 07 00011170 c63364", nlri: hNLRI,
			action: AttributeDiscard, sub: ErrSubAttrLength, attr: AttrAS4Aggregator},
		{name: "as4 attributes ignored when an old speaker aggregated", o: Options{},
			attrs: hOrigin + "40 02 06 02 02 5ba0 fc01" + hNextHop + "c0 07 06 fc05 c6336401" + as4path + "c0 12 08 00011170 c6336401", nlri: hNLRI,
			check: func(t *testing.T, u *Update) {
				eq(t, u.Attrs.ASPath.String(), "23456 64513")
				eq(t, u.Attrs.Aggregator.AS, uint32(0xfc05))
			}},
		{name: "as4_aggregator replaces AS_TRANS", o: Options{},
			attrs: hOrigin + "40 02 06 02 02 5ba0 fc01" + hNextHop + "c0 07 06 5ba0 c6336401" + as4path + "c0 12 08 00011170 c6336401", nlri: hNLRI,
			check: func(t *testing.T, u *Update) {
				eq(t, u.Attrs.ASPath.String(), "70000 64513")
				eq(t, u.Attrs.Aggregator.AS, uint32(70000))
			}},
		// Unknown and duplicate attributes
		{name: "unknown attribute flagged well-known", o: *as4, attrs: hBase4 + "40 63 02 abcd", nlri: hNLRI,
			action: SessionReset, sub: ErrSubUnrecognizedWellKnown, attr: 99, data: "40 63 02 abcd"},
		{name: "unknown optional non-transitive is ignored", o: *as4, attrs: hBase4 + "80 63 02 abcd", nlri: hNLRI,
			check: func(t *testing.T, u *Update) { eq(t, len(u.Attrs.Unknown), 0) }},
		{name: "duplicate MED: the first is kept", o: *as4, attrs: hBase4 + med + "80 04 04 00000005", nlri: hNLRI,
			action: AttributeDiscard, sub: ErrSubMalformedAttrList, attr: AttrMED,
			check: func(t *testing.T, u *Update) { eq(t, u.Attrs.MED, uint32(100)); eq(t, u.Discarded, []uint8{AttrMED}) }},
		{name: "duplicate unknown attribute", o: *as4, attrs: hBase4 + "c0 c8 01 01 c0 c8 01 02", nlri: hNLRI,
			action: AttributeDiscard, attr: 200, sub: ErrSubMalformedAttrList,
			check: func(t *testing.T, u *Update) { eq(t, u.Attrs.Unknown, []RawAttr{{optTrans, 200, []byte{1}}}) }},
		{name: "duplicate MP_REACH_NLRI", o: *as4,
			attrs:  "80 0e 15 0002 01 10 20010db8000000000000000000000001 00" + "80 0e 15 0002 01 10 20010db8000000000000000000000001 00" + hOrigin + hASPath4,
			action: SessionReset, sub: ErrSubMalformedAttrList, attr: AttrMPReach},
		{name: "duplicate MP_UNREACH_NLRI", o: *as4, attrs: "80 0f 03 0002 01 80 0f 03 0002 01",
			action: SessionReset, sub: ErrSubMalformedAttrList, attr: AttrMPUnreach},
		// Lengths
		{name: "attribute length runs past the attribute field", o: *as4, attrs: hBase4 + "80 04 08 00000064", nlri: hNLRI,
			action: TreatAsWithdraw, sub: ErrSubAttrLength, attr: AttrMED,
			check: func(t *testing.T, u *Update) { eq(t, u.NLRI.Len(), 2) }},
		{name: "extended attribute length runs past the field", o: *as4, attrs: hBase4 + "90 04 0100 00000064", nlri: hNLRI,
			action: TreatAsWithdraw, sub: ErrSubAttrLength, attr: AttrMED},
		{name: "attribute header truncated", o: *as4, attrs: hBase4 + "80 04", nlri: hNLRI,
			action: TreatAsWithdraw, sub: ErrSubMalformedAttrList},
		// RFC 7606 §3, §4, §5: a length overrun may hide MP attributes not
		// read yet; treat-as-withdraw would then withdraw only the IPv4 NLRI.
		{name: "length overrun hiding an MP_UNREACH_NLRI", o: *as4,
			attrs: hBase4 + "80 04 20 00000064" + "80 0f 0c 0002 01 40 20010db800000000", nlri: hNLRI,
			action: SessionReset, sub: ErrSubAttrLength, attr: AttrMED,
			data: "80 04 20 00000064 80 0f 0c 0002 01 40 20010db800000000"},
		{name: "length overrun after MP_REACH only: MP_UNREACH may hide", o: *as4,
			attrs:  "80 0e 1e 0002 01 10 20010db8000000000000000000000001 00 | 40 20010db800000000" + hOrigin + hASPath4 + "80 04 20 00000064 0000000000",
			action: SessionReset, sub: ErrSubAttrLength, attr: AttrMED},
		{name: "length overrun after both MP attributes is treat-as-withdraw", o: *as4,
			attrs: "80 0f 03 0002 01" + "80 0e 1e 0002 01 10 20010db8000000000000000000000001 00 | 40 20010db800000000" +
				hOrigin + hASPath4 + "80 04 20 00000064 0000000000",
			action: TreatAsWithdraw, sub: ErrSubAttrLength, attr: AttrMED,
			check: func(t *testing.T, u *Update) { eq(t, u.Attrs.MPReach.NLRI.Len(), 1) }},
		{name: "MP_UNREACH_NLRI length overrun", o: *as4, attrs: "80 0f 09 0002 01",
			action: SessionReset, sub: ErrSubAttrLength, attr: AttrMPUnreach},
		{name: "withdrawn length past the message", o: *as4, withdrawn: "18", attrs: "", nlri: "",
			action: SessionReset, sub: ErrSubInvalidNetworkField},
		{name: "truncated NLRI", o: *as4, attrs: hBase4, nlri: "18 cb00",
			action: SessionReset, sub: ErrSubInvalidNetworkField},
		{name: "NLRI prefix length 33", o: *as4, attrs: hBase4, nlri: "21 cb00710100",
			action: SessionReset, sub: ErrSubInvalidNetworkField},
		{name: "withdrawn prefix length 40", o: *as4, withdrawn: "28 cb00710100",
			action: SessionReset, sub: ErrSubInvalidNetworkField},
		{name: "truncated add-path identifier", o: Options{AS4: true, AddPath: FamilySetOf(IPv4Unicast)}, attrs: hBase4, nlri: "000000",
			action: SessionReset, sub: ErrSubInvalidNetworkField},
		{name: "MP_REACH ipv6 prefix length 129", o: *as4,
			attrs:  "80 0e 22 0002 01 10 20010db8000000000000000000000001 00 | 81 20010db8000000000000000000000000 00" + hOrigin + hASPath4,
			action: SessionReset, sub: ErrSubInvalidNetworkField, attr: AttrMPReach},
		{name: "MP_UNREACH truncated prefix", o: *as4, attrs: "80 0f 05 0002 01 40 2001",
			action: SessionReset, sub: ErrSubInvalidNetworkField, attr: AttrMPUnreach},
		// MP_REACH next hops
		{name: "MP_REACH ipv6 with an 8-byte next hop", o: *as4,
			attrs:  "80 0e 16 0002 01 08 20010db800000000 00 | 40 20010db800000000" + hOrigin + hASPath4,
			action: SessionReset, sub: ErrSubOptionalAttr, attr: AttrMPReach,
			data: "80 0e 16 0002 01 08 20010db800000000 00 40 20010db800000000"},
		{name: "MP_REACH ipv4 with a 16-byte next hop, extended next hop not negotiated", o: *as4,
			attrs:  "80 0e 1a 0001 01 10 20010db8000000000000000000000001 00 | 20 cb007105" + hOrigin + hASPath4,
			action: SessionReset, sub: ErrSubOptionalAttr, attr: AttrMPReach},
		{name: "MP_REACH next hop length past the attribute", o: *as4, attrs: "80 0e 06 0002 01 10 2001",
			action: SessionReset, sub: ErrSubOptionalAttr, attr: AttrMPReach},
		{name: "MP_REACH of 4 bytes", o: *as4, attrs: "80 0e 04 0002 01 00",
			action: SessionReset, sub: ErrSubOptionalAttr, attr: AttrMPReach},
		{name: "MP_UNREACH of 2 bytes", o: *as4, attrs: "80 0f 02 0002",
			action: SessionReset, sub: ErrSubOptionalAttr, attr: AttrMPUnreach},
		// Per-attribute checks
		{name: "origin value 3", o: *as4, attrs: "40 01 01 03" + hASPath4 + hNextHop, nlri: hNLRI,
			action: TreatAsWithdraw, sub: ErrSubInvalidOrigin, attr: AttrOrigin},
		{name: "origin of 2 bytes", o: *as4, attrs: "40 01 02 0000" + hASPath4 + hNextHop, nlri: hNLRI,
			action: TreatAsWithdraw, sub: ErrSubAttrLength, attr: AttrOrigin},
		{name: "origin flagged optional", o: *as4, attrs: "c0 01 01 00" + hASPath4 + hNextHop, nlri: hNLRI,
			action: TreatAsWithdraw, sub: ErrSubAttrFlags, attr: AttrOrigin},
		{name: "MED flagged transitive", o: *as4, attrs: hBase4 + "c0 04 04 00000001", nlri: hNLRI,
			action: TreatAsWithdraw, sub: ErrSubAttrFlags, attr: AttrMED},
		{name: "MP_REACH flagged well-known", o: *as4, attrs: "40 0e 05 0002 01 00 00",
			action: SessionReset, sub: ErrSubAttrFlags, attr: AttrMPReach},
		// RFC 7606 §7.6, §7.7 and RFC 6793 §6: these are attribute discard,
		// wrong flags included, not treat-as-withdraw.
		{name: "aggregator flagged well-known", o: *as4, attrs: hBase4 + "40 07 08 0000fc00 c6336401", nlri: hNLRI,
			action: AttributeDiscard, sub: ErrSubAttrFlags, attr: AttrAggregator,
			check: func(t *testing.T, u *Update) {
				eq(t, u.Attrs.Has(AttrAggregator), false)
				eq(t, u.Discarded, []uint8{AttrAggregator})
				eq(t, u.NLRI.Len(), 2)
			}},
		{name: "atomic_aggregate flagged optional", o: *as4, attrs: hBase4 + "c0 06 00", nlri: hNLRI,
			action: AttributeDiscard, sub: ErrSubAttrFlags, attr: AttrAtomicAggregate,
			check: func(t *testing.T, u *Update) { eq(t, u.Attrs.Has(AttrAtomicAggregate), false) }},
		{name: "as4_path flagged non-transitive", o: Options{}, attrs: hBase2 + "80 11 0a 02 02 00011170 0000fc01", nlri: hNLRI,
			action: AttributeDiscard, sub: ErrSubAttrFlags, attr: AttrAS4Path,
			check: func(t *testing.T, u *Update) { eq(t, u.Attrs.ASPath.String(), "64512") }},
		{name: "as4_aggregator flagged well-known", o: Options{},
			attrs: hOrigin + "40 02 06 02 02 5ba0 fc01" + hNextHop + "c0 07 06 5ba0 c6336401" + "40 12 08 00011170 c6336401", nlri: hNLRI,
			action: AttributeDiscard, sub: ErrSubAttrFlags, attr: AttrAS4Aggregator,
			check: func(t *testing.T, u *Update) { eq(t, u.Attrs.Aggregator.AS, uint32(ASTrans)) }},
		{name: "as_path segment type 5", o: *as4, attrs: hOrigin + "40 02 06 05 01 0000fc00" + hNextHop, nlri: hNLRI,
			action: TreatAsWithdraw, sub: ErrSubMalformedASPath, attr: AttrASPath},
		{name: "as_path empty segment", o: *as4, attrs: hOrigin + "40 02 02 02 00" + hNextHop, nlri: hNLRI,
			action: TreatAsWithdraw, sub: ErrSubMalformedASPath, attr: AttrASPath},
		{name: "as_path segment overrun", o: *as4, attrs: hOrigin + "40 02 06 02 02 0000fc00" + hNextHop, nlri: hNLRI,
			action: TreatAsWithdraw, sub: ErrSubMalformedASPath, attr: AttrASPath},
		{name: "as_path trailing byte", o: *as4, attrs: hOrigin + "40 02 07 02 01 0000fc00 02" + hNextHop, nlri: hNLRI,
			action: TreatAsWithdraw, sub: ErrSubMalformedASPath, attr: AttrASPath},
		{name: "2-octet as_path read as 4-octet", o: *as4, attrs: hOrigin + hASPath2 + hNextHop, nlri: hNLRI,
			action: TreatAsWithdraw, sub: ErrSubMalformedASPath, attr: AttrASPath},
		{name: "confed segment from an external peer", o: Options{AS4: true, External: true},
			attrs: hOrigin + "40 02 06 03 01 0000fc00" + hNextHop, nlri: hNLRI,
			action: TreatAsWithdraw, sub: ErrSubMalformedASPath, attr: AttrASPath},
		{name: "MED of 3 bytes", o: *as4, attrs: hBase4 + "80 04 03 000064", nlri: hNLRI,
			action: TreatAsWithdraw, sub: ErrSubAttrLength, attr: AttrMED},
		{name: "local_pref of 2 bytes", o: *as4, attrs: hBase4 + "40 05 02 0064", nlri: hNLRI,
			action: TreatAsWithdraw, sub: ErrSubAttrLength, attr: AttrLocalPref},
		{name: "local_pref from an external peer", o: Options{AS4: true, External: true}, attrs: hBase4 + "40 05 04 00000064", nlri: hNLRI,
			action: AttributeDiscard, attr: AttrLocalPref,
			check: func(t *testing.T, u *Update) { eq(t, u.Attrs.Has(AttrLocalPref), false) }},
		{name: "atomic_aggregate of 1 byte", o: *as4, attrs: hBase4 + "40 06 01 00", nlri: hNLRI,
			action: AttributeDiscard, sub: ErrSubAttrLength, attr: AttrAtomicAggregate,
			check: func(t *testing.T, u *Update) { eq(t, u.Attrs.Has(AttrAtomicAggregate), false) }},
		{name: "aggregator of 7 bytes", o: *as4, attrs: hBase4 + "c0 07 07 0000fc00 c63364", nlri: hNLRI,
			action: AttributeDiscard, sub: ErrSubAttrLength, attr: AttrAggregator},
		{name: "2-octet aggregator on a 4-octet session", o: *as4, attrs: hBase4 + "c0 07 06 fc00 c6336401", nlri: hNLRI,
			action: AttributeDiscard, sub: ErrSubAttrLength, attr: AttrAggregator},
		{name: "communities of 3 bytes", o: *as4, attrs: hBase4 + "c0 08 03 fc0000", nlri: hNLRI,
			action: TreatAsWithdraw, sub: ErrSubAttrLength, attr: AttrCommunities},
		{name: "empty communities", o: *as4, attrs: hBase4 + "c0 08 00", nlri: hNLRI,
			action: TreatAsWithdraw, sub: ErrSubAttrLength, attr: AttrCommunities},
		{name: "originator_id of 3 bytes", o: *as4, attrs: hBase4 + "80 09 03 c63364", nlri: hNLRI,
			action: TreatAsWithdraw, sub: ErrSubAttrLength, attr: AttrOriginatorID},
		{name: "originator_id from an external peer", o: Options{AS4: true, External: true}, attrs: hBase4 + "80 09 04 c6336401", nlri: hNLRI,
			action: AttributeDiscard, attr: AttrOriginatorID},
		{name: "cluster_list of 5 bytes", o: *as4, attrs: hBase4 + "80 0a 05 c633640101", nlri: hNLRI,
			action: TreatAsWithdraw, sub: ErrSubAttrLength, attr: AttrClusterList},
		{name: "cluster_list from an external peer", o: Options{AS4: true, External: true}, attrs: hBase4 + "80 0a 04 c6336401", nlri: hNLRI,
			action: AttributeDiscard, attr: AttrClusterList},
		{name: "extended communities of 7 bytes", o: *as4, attrs: hBase4 + "c0 10 07 4004fc00497424", nlri: hNLRI,
			action: TreatAsWithdraw, sub: ErrSubAttrLength, attr: AttrExtCommunities},
		{name: "large community of 11 bytes", o: *as4, attrs: hBase4 + "c0 20 0b 0000fc00 00000001 000000", nlri: hNLRI,
			action: TreatAsWithdraw, sub: ErrSubAttrLength, attr: AttrLargeCommunity},
		{name: "otc of 2 bytes", o: *as4, attrs: hBase4 + "c0 23 02 fde8", nlri: hNLRI,
			action: TreatAsWithdraw, sub: ErrSubAttrLength, attr: AttrOTC},
		// Severity: the worst class wins, the lesser ones are still applied.
		{name: "discard and treat-as-withdraw together", o: *as4, attrs: hBase4 + "40 06 01 00" + "80 04 03 000064", nlri: hNLRI,
			action: TreatAsWithdraw, sub: ErrSubAttrLength, attr: AttrMED,
			check: func(t *testing.T, u *Update) { eq(t, u.Discarded, []uint8{AttrAtomicAggregate}) }},
		{name: "treat-as-withdraw then a reset", o: *as4, attrs: hBase4 + "80 04 03 000064" + "40 63 00", nlri: hNLRI,
			action: SessionReset, sub: ErrSubUnrecognizedWellKnown, attr: 99, data: "40 63 00"},
	}
}

// TestMalformedUpdate is the RFC 7606 table: each hand-built malformation,
// the class the decoder gives it, the NOTIFICATION it names, and what
// survives of the UPDATE.
func TestMalformedUpdate(t *testing.T) {
	tests := malformedUpdates()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := updBody(t, tc.withdrawn, tc.attrs, tc.nlri)
			var u Update
			err := DecodeUpdate(&u, body, &tc.o)
			if tc.action == ActionNone {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
			} else {
				e, ok := AsError(err)
				if !ok {
					t.Fatalf("got %v, want an *Error", err)
				}
				if !errors.Is(err, ErrMalformed) {
					t.Error("errors.Is(err, ErrMalformed) is false")
				}
				code := tc.code
				if code == 0 {
					code = ErrCodeUpdate
				}
				if e.Action != tc.action || e.Code != code || e.Subcode != tc.sub || e.Attr != tc.attr {
					t.Fatalf("got %s %d/%d attr %d (%v), want %s %d/%d attr %d",
						e.Action, e.Code, e.Subcode, e.Attr, e, tc.action, code, tc.sub, tc.attr)
				}
				if tc.data != "" && !bytes.Equal(e.Data, hx(t, tc.data)) {
					t.Fatalf("data %x, want %s", e.Data, tc.data)
				}
				if e.Action == SessionReset && e.Error() == "" {
					t.Fatal("empty message")
				}
			}
			if tc.check != nil {
				tc.check(t, &u)
			}
		})
	}
}

// TestMalformedHeader covers the Message Header Error cases of RFC 4271 §6.1.
func TestMalformedHeader(t *testing.T) {
	ka := AppendKeepalive(nil)
	setLen := func(b []byte, n uint16) []byte {
		b = bytes.Clone(b)
		b[16], b[17] = byte(n>>8), byte(n)
		return b
	}
	upd := msg(TypeUpdate, updBody(t, "", hBase4, hNLRI))
	bigUpd := msg(TypeUpdate, append(updBody(t, "", hBase4, ""), bytes.Repeat([]byte{0x20, 1, 2, 3, 4}, 900)...))
	open, _ := AppendOpen(nil, NewOpen(64512, 90, mustAddr("198.51.100.1"), Capabilities{}))
	bigOpen := append(bytes.Clone(open), make([]byte, 4100)...)
	bigOpen = setLen(bigOpen, uint16(len(bigOpen)))
	tests := []struct {
		name string
		in   []byte
		o    Options
		sub  uint8
		data string
	}{
		{"empty input", nil, Options{}, ErrSubBadMessageLength, "0000"},
		{"shorter than a header", ka[:10], Options{}, ErrSubBadMessageLength, "000a"},
		{"zero length field", setLen(ka, 0), Options{}, ErrSubBadMessageLength, "0000"},
		{"keepalive of 20 bytes", setLen(append(bytes.Clone(ka), 0), 20), Options{}, ErrSubBadMessageLength, "0014"},
		{"update shorter than 23", setLen(upd, 22), Options{}, ErrSubBadMessageLength, "0016"},
		{"bad marker", append([]byte{0xfe}, ka[1:]...), Options{}, ErrSubConnNotSynchronized, ""},
		{"bad type", append(bytes.Clone(ka[:18]), 9), Options{}, ErrSubBadMessageType, "09"},
		{"type zero", append(bytes.Clone(ka[:18]), 0), Options{}, ErrSubBadMessageType, "00"},
		{"update over 4096 without extended messages", bigUpd, Options{}, ErrSubBadMessageLength, ""},
		{"open over 4096 even with extended messages", bigOpen, Options{ExtendedMessage: true}, ErrSubBadMessageLength, ""},
		{"length field disagrees with the message", setLen(upd, uint16(len(upd)-1)), Options{}, ErrSubBadMessageLength, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeMessage(tc.in, &tc.o)
			e, ok := AsError(err)
			if !ok {
				t.Fatalf("got %v, want an *Error", err)
			}
			if e.Action != SessionReset || e.Code != ErrCodeHeader || e.Subcode != tc.sub {
				t.Fatalf("got %v", e)
			}
			if tc.data != "" && !bytes.Equal(e.Data, hx(t, tc.data)) {
				t.Fatalf("data %x, want %s", e.Data, tc.data)
			}
		})
	}
	// The same large UPDATE is fine once extended messages are negotiated.
	if _, err := DecodeMessage(bigUpd, &Options{AS4: true, ExtendedMessage: true}); err != nil {
		t.Fatalf("extended UPDATE: %v", err)
	}
}

func TestMalformedOpenAndOthers(t *testing.T) {
	base := "04 fc00 005a c6336401"
	tests := []struct {
		name      string
		typ       uint8
		body      string
		code, sub uint8
		data      string
	}{
		{"version 3", TypeOpen, "03 fc00 005a c6336401 00", ErrCodeOpen, ErrSubUnsupportedVersion, "0004"},
		{"hold time 2", TypeOpen, "04 fc00 0002 c6336401 00", ErrCodeOpen, ErrSubUnacceptableHoldTime, ""},
		{"bgp identifier zero", TypeOpen, "04 fc00 005a 00000000 00", ErrCodeOpen, ErrSubBadBGPIdentifier, ""},
		{"optional parameters length too long", TypeOpen, base + "05 02 02 02 00", ErrCodeOpen, 0, ""},
		{"optional parameter runs past", TypeOpen, base + "04 02 05 02 00", ErrCodeOpen, 0, ""},
		{"authentication parameter", TypeOpen, base + "03 01 01 00", ErrCodeOpen, ErrSubUnsupportedOptParam, ""},
		{"capability runs past its parameter", TypeOpen, base + "04 02 02 41 04", ErrCodeOpen, 0, ""},
		{"multiprotocol capability of 3 bytes", TypeOpen, base + "05 02 03 01 01 00", ErrCodeOpen, 0, ""},
		{"as4 capability of 2 bytes", TypeOpen, base + "06 02 04 41 02 fc00", ErrCodeOpen, 0, ""},
		{"add-path mode 4", TypeOpen, base + "08 02 06 45 04 0001 01 04", ErrCodeOpen, 0, ""},
		{"graceful restart of 3 bytes", TypeOpen, base + "07 02 05 40 03 000001", ErrCodeOpen, 0, ""},
		{"fqdn lengths wrong", TypeOpen, base + "07 02 05 49 03 05 6e 00", ErrCodeOpen, 0, ""},
		{"extended parameters truncated", TypeOpen, base + "ff ff 00", ErrCodeOpen, 0, ""},
		{"route refresh of 5 bytes", TypeRouteRefresh, "0001 00 01 00", ErrCodeRouteRefresh, ErrSubInvalidRouteRefreshLength,
			"ffffffffffffffffffffffffffffffff 0018 05 0001 00 01 00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeMessage(msg(tc.typ, hx(t, tc.body)), nil)
			e, ok := AsError(err)
			if !ok {
				t.Fatalf("got %v, want an *Error", err)
			}
			if e.Action != SessionReset || e.Code != tc.code || e.Subcode != tc.sub {
				t.Fatalf("got %v", e)
			}
			if tc.data != "" && !bytes.Equal(e.Data, hx(t, tc.data)) {
				t.Fatalf("data %x, want %s", e.Data, tc.data)
			}
			n := e.Notification()
			if n.Code != tc.code {
				t.Fatal("notification code")
			}
		})
	}
}

// TestActionOf pins the classification helpers.
func TestActionOf(t *testing.T) {
	eq(t, ActionOf(nil), ActionNone)
	eq(t, ActionOf(errors.New("io")), SessionReset)
	eq(t, ActionOf(&Error{Action: TreatAsWithdraw}), TreatAsWithdraw)
	eq(t, CodeString(6, 2), "Cease / Administrative Shutdown")
	eq(t, CodeString(8, 0), "Send Hold Timer Expired")
	eq(t, CodeString(42, 7), "code 42 / subcode 7")
}
