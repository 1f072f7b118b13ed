package wire

// Regression tests: each pins a codec bug found by the property tests, named
// for the bug, so it stays fixed.

import (
	"fmt"
	"math"
	"net/netip"
	"testing"
)

// TestRegression_AS4PathConfedSegmentsDropWholeAttr: RFC 6793 §6 says a NEW speaker
// receiving AS_CONFED_SEQUENCE/AS_CONFED_SET segments in AS4_PATH "MUST
// discard these path segments, adjust the relevant attribute fields
// accordingly, and continue processing the UPDATE message". decodeAS4Path
// instead drops the whole AS4_PATH as malformed, losing the 4-octet ASes.
func TestRegression_AS4PathConfedSegmentsDropWholeAttr(t *testing.T) {
	o := Options{} // 2-octet session
	body := updBody(t, "",
		"40 01 01 00"+ // ORIGIN IGP
			"40 02 08 03 01 fde9 02 01 5ba0"+ // AS_PATH (65001) 23456
			"40 03 04 c6336401"+ // NEXT_HOP
			"c0 11 0c 03 01 0000fde9 02 01 00011170", // AS4_PATH (65001) 70000
		"18 cb0071")
	var u Update
	err := DecodeUpdate(&u, body, &o)
	if err != nil || u.Attrs.ASPath.String() != "(65001) 70000" {
		t.Fatalf("got path %q, error %v; want \"(65001) 70000\" and no error", u.Attrs.ASPath, err)
	}
}

// TestRegression_ASSetOver255SplitChangesPathLength: appendASPath splits a segment
// of more than 255 ASes into several segments. For AS_SEQUENCE that is the
// same path, but an AS_SET counts as one AS whatever its size (RFC 4271
// §9.1.2.2): two sets count two, so the route the peer receives is one AS
// longer than the one encoded.
func TestRegression_ASSetOver255SplitChangesPathLength(t *testing.T) {
	o := Options{AS4: true}
	var u Update
	u.Attrs.ASPath = ASPath{{Type: ASSequence, ASNs: []uint32{64512}}, {Type: ASSet, ASNs: make([]uint32, 300)}}
	for i := range u.Attrs.ASPath[1].ASNs {
		u.Attrs.ASPath[1].ASNs[i] = uint32(65536 + i)
	}
	u.Attrs.Set(AttrASPath)
	b, err := AppendUpdate(nil, &u, &o)
	if err != nil {
		return // refusing to encode is a fine fix
	}
	var d Update
	if err := DecodeUpdate(&d, b[HeaderLen:], &o); err != nil {
		t.Fatal(err)
	}
	if got, want := d.Attrs.ASPath.Len(), u.Attrs.ASPath.Len(); got != want {
		t.Fatalf("AS_SET of 300 ASes encoded without error as %d segments: path length %d, sent %d", len(d.Attrs.ASPath), got, want)
	}
}

// TestRegression_AppendUpdatePanicsOnInvalidAddr: the attribute encoder calls
// netip.Addr.As4 on NEXT_HOP, AGGREGATOR, ORIGINATOR_ID and CLUSTER_LIST
// addresses, which panics for the zero Addr or an IPv6 address, instead of
// returning an error as AppendUpdate does for other unencodable input.
func TestRegression_AppendUpdatePanicsOnInvalidAddr(t *testing.T) {
	cases := map[string]func(a *Attrs){
		"zero NEXT_HOP":         func(a *Attrs) { a.Set(AttrNextHop) },
		"IPv6 NEXT_HOP":         func(a *Attrs) { a.NextHop = netip.MustParseAddr("2001:db8::1"); a.Set(AttrNextHop) },
		"AGGREGATOR without IP": func(a *Attrs) { a.Aggregator.AS = 64512; a.Set(AttrAggregator) },
		"zero ORIGINATOR_ID":    func(a *Attrs) { a.Set(AttrOriginatorID) },
		"zero CLUSTER_LIST id":  func(a *Attrs) { a.ClusterList = []netip.Addr{{}}; a.Set(AttrClusterList) },
	}
	for name, set := range cases {
		t.Run(name, func(t *testing.T) {
			var u Update
			set(&u.Attrs)
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("AppendUpdate panicked: %v", p)
				}
			}()
			if _, err := AppendUpdate(nil, &u, &Options{AS4: true}); err == nil {
				t.Fatalf("AppendUpdate accepted an invalid address")
			}
		})
	}
	t.Run("OPEN without BGP Identifier", func(t *testing.T) {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("AppendOpen panicked: %v", p)
			}
		}()
		if _, err := AppendOpen(nil, &Open{Version: 4, MyAS: 64512}); err == nil {
			t.Fatalf("AppendOpen accepted an OPEN without BGP Identifier")
		}
	})
}

// TestRegression_AppendReachUndecodableNextHop: Encoder.AppendReach returns no error
// for a next hop it cannot encode validly under its own Options, and emits
// UPDATEs that DecodeUpdate with the same Options rejects with a session
// reset: a zero next hop becomes an empty MP_REACH_NLRI next hop, and an IPv6
// next hop for IPv4 routes is sent although Options.ExtendedNextHop does not
// allow it (RFC 8950).
func TestRegression_AppendReachUndecodableNextHop(t *testing.T) {
	var a Attrs
	a.Origin, a.ASPath = OriginIGP, ASPath{{Type: ASSequence, ASNs: []uint32{64512}}}
	a.Set(AttrOrigin)
	a.Set(AttrASPath)
	nlri := []NLRI{{Prefix: netip.MustParsePrefix("203.0.113.0/24")}}
	for name, nh := range map[string]netip.Addr{
		"zero next hop": {},
		"IPv6 next hop without extended next hop": netip.MustParseAddr("2001:db8::1"),
	} {
		t.Run(name, func(t *testing.T) {
			e := Encoder{Options: Options{AS4: true}}
			b, _, err := e.AppendReach(nil, IPv4Unicast, nh, netip.Addr{}, &a, nlri)
			if err != nil {
				return // the fix
			}
			if _, err := DecodeMessage(b, &e.Options); ActionOf(err) == SessionReset {
				t.Fatalf("AppendReach returned no error, but its UPDATE %x is a session reset for the same Options: %v", b, err)
			}
		})
	}
}

// TestRegression_ExternalEncodeUndecodable: with Options.External (the peer is in
// another AS, outside any confederation), AppendUpdate still encodes the
// internal-only attributes and confederation segments. The decoder with the
// same Options (how the peer reads them) discards LOCAL_PREF, ORIGINATOR_ID
// and CLUSTER_LIST from an external peer (RFC 7606 §7) and treats a route whose
// AS_PATH holds confederation segments as withdrawn (RFC 5065). The
// encoder's own rule, since it refuses "what the peer would read
// differently", suggests it should leave these out or return an error.
func TestRegression_ExternalEncodeUndecodable(t *testing.T) {
	o := Options{AS4: true, External: true}
	base := func() Update {
		var u Update
		u.Attrs.Origin, u.Attrs.NextHop = OriginIGP, netip.MustParseAddr("198.51.100.1")
		u.Attrs.ASPath = ASPath{{Type: ASSequence, ASNs: []uint32{64512}}}
		u.Attrs.Set(AttrOrigin)
		u.Attrs.Set(AttrASPath)
		u.Attrs.Set(AttrNextHop)
		u.NLRI = mustPrefixes(IPv4Unicast, false, []NLRI{{Prefix: netip.MustParsePrefix("203.0.113.0/24")}})
		return u
	}
	for name, set := range map[string]func(a *Attrs){
		"LOCAL_PREF":    func(a *Attrs) { a.LocalPref = 100; a.Set(AttrLocalPref) },
		"ORIGINATOR_ID": func(a *Attrs) { a.OriginatorID = netip.MustParseAddr("192.0.2.1"); a.Set(AttrOriginatorID) },
		"CLUSTER_LIST":  func(a *Attrs) { a.ClusterList = []netip.Addr{netip.MustParseAddr("192.0.2.2")}; a.Set(AttrClusterList) },
		"AS_CONFED_SEQUENCE": func(a *Attrs) {
			a.ASPath = append(ASPath{{Type: ASConfedSequence, ASNs: []uint32{65001}}}, a.ASPath...)
		},
	} {
		t.Run(name, func(t *testing.T) {
			u := base()
			set(&u.Attrs)
			b, err := AppendUpdate(nil, &u, &o)
			if err != nil {
				return // refusing is a fine fix
			}
			if _, err := DecodeMessage(b, &o); err != nil {
				t.Fatalf("AppendUpdate with External encoded %s without error, but the same Options decode it as: %v", name, err)
			}
		})
	}
}

// TestRegression_AttrFlagsActionPerRFC7606: wrong Optional/Transitive flags
// made every recognised attribute treat-as-withdraw, but RFC 7606 §3(c)
// defers to each attribute's own rule. The expected actions are written out
// from RFC 7606 §7, RFC 6793 §6, RFC 8092 §6 and RFC 9234 §5, independently
// of the decoder's table. (GoBGP v4 treats every flags error as
// treat-as-withdraw, so it is no oracle here.)
func TestRegression_AttrFlagsActionPerRFC7606(t *testing.T) {
	want := map[uint8]Action{
		AttrOrigin:          TreatAsWithdraw,  // §7.1
		AttrASPath:          TreatAsWithdraw,  // §7.2
		AttrNextHop:         TreatAsWithdraw,  // §7.3
		AttrMED:             TreatAsWithdraw,  // §7.4
		AttrLocalPref:       TreatAsWithdraw,  // §7.5
		AttrAtomicAggregate: AttributeDiscard, // §7.6
		AttrAggregator:      AttributeDiscard, // §7.7
		AttrCommunities:     TreatAsWithdraw,  // §7.8
		AttrOriginatorID:    TreatAsWithdraw,  // §7.9
		AttrClusterList:     TreatAsWithdraw,  // §7.10
		AttrMPReach:         SessionReset,     // §7.11: NLRI cannot be found
		AttrMPUnreach:       SessionReset,     // §7.11
		AttrExtCommunities:  TreatAsWithdraw,  // §7.14
		AttrAS4Path:         AttributeDiscard, // RFC 6793 §6
		AttrAS4Aggregator:   AttributeDiscard, // RFC 6793 §6
		AttrLargeCommunity:  TreatAsWithdraw,  // RFC 8092 §6
		AttrOTC:             TreatAsWithdraw,  // RFC 9234 §5
	}
	wellKnownTypes := map[uint8]bool{AttrOrigin: true, AttrASPath: true, AttrNextHop: true,
		AttrLocalPref: true, AttrAtomicAggregate: true}
	for typ, action := range want {
		for _, o := range []Options{{AS4: true}, {}} {
			// Flip the Optional bit: a well-known attribute flagged
			// optional, an optional one flagged well-known.
			flags := byte(0xc0)
			if !wellKnownTypes[typ] {
				flags = 0x40
			}
			bad := fmt.Sprintf("%02x %02x 04 00000000", flags, typ)
			base := hBase4
			if !o.AS4 {
				base = hBase2
			}
			var u Update
			err := DecodeUpdate(&u, updBody(t, "", bad+base, hNLRI), &o)
			e, ok := AsError(err)
			if !ok || e.Action != action || e.Subcode != ErrSubAttrFlags || e.Attr != typ {
				t.Errorf("%s with flags %#x (AS4 %v): got %v, want %s", AttrTypeString(typ), flags, o.AS4, err, action)
			}
		}
	}
}

// TestRegression_LinkBandwidthNonFinite: the link-bandwidth accessor passed
// on any float32, so a peer's +Inf reached the RIB and made the router's JSON
// view fail (an empty 200). Non-finite and negative values are not a
// bandwidth; -0 reads as 0.
func TestRegression_LinkBandwidthNonFinite(t *testing.T) {
	tests := []struct {
		bits   uint32
		ok     bool
		want   float32
		asText string
	}{
		{0x7f800000, false, 0, "ext:4004fc007f800000"}, // +Inf
		{0xff800000, false, 0, ""},                     // -Inf
		{0x7fc00000, false, 0, ""},                     // NaN
		{0xffc00001, false, 0, ""},                     // negative NaN
		{0xbf800000, false, 0, ""},                     // -1
		{0x80000001, false, 0, ""},                     // negative denormal
		{0x80000000, true, 0, "lb:64512:0"},            // -0
		{0x00000000, true, 0, ""},                      // 0
		{0x00000001, true, math.Float32frombits(1), ""},
		{math.Float32bits(1.25e9), true, 1.25e9, "lb:64512:1.25e+09"},
		{math.Float32bits(math.MaxFloat32), true, math.MaxFloat32, ""},
	}
	for _, tc := range tests {
		c := NewLinkBandwidth(64512, math.Float32frombits(tc.bits), false)
		as, bw, ok := c.LinkBandwidth()
		if ok != tc.ok || math.Float32bits(bw) != math.Float32bits(tc.want) || (ok && as != 64512) {
			t.Errorf("bits %#08x: got %d %g (%#08x) %v, want %g %v", tc.bits, as, bw, math.Float32bits(bw), ok, tc.want, tc.ok)
		}
		if tc.asText != "" && c.String() != tc.asText {
			t.Errorf("bits %#08x: String %q, want %q", tc.bits, c.String(), tc.asText)
		}
	}
}
