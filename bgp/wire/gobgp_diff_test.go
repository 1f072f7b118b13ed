package wire

// Differential test against GoBGP (github.com/osrg/gobgp/v4/pkg/packet/bgp),
// used as an oracle only: the same bytes are decoded by both, and every field
// our decoder produced is compared with GoBGP's reading. Where GoBGP
// legitimately differs, the difference is handled explicitly below, with the
// reason, and counted in the log.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// diffStats counts what a differential run did.
type diffStats struct {
	compared map[string]int // messages compared, per type
	rejected int            // inputs our decoder rejects (not compared)
	notes    map[string]int // explicit GoBGP differences met
}

func newDiffStats() *diffStats {
	return &diffStats{compared: map[string]int{}, notes: map[string]int{}}
}

func (s *diffStats) note(what string) { s.notes[what]++ }

func (s *diffStats) total() int {
	n := 0
	for _, c := range s.compared {
		n += c
	}
	return n
}

// skipped counts the inputs that could not be compared because GoBGP rejects
// them for an explained reason (notes starting with "skip:").
func (s *diffStats) skipped() int {
	n := 0
	for k, c := range s.notes {
		if strings.HasPrefix(k, "skip:") {
			n += c
		}
	}
	return n
}

func (s *diffStats) log(t *testing.T, what string) {
	t.Helper()
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range s.notes {
			if !yield(k) {
				return
			}
		}
	})
	var notes strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&notes, "\n  %6d  %s", s.notes[k], k)
	}
	t.Logf("%s: compared %d messages %v; %d rejected by our decoder; GoBGP differences handled:%s",
		what, s.total(), s.compared, s.rejected, notes.String())
}

// errRejected means our decoder rejected the input: nothing to compare.
var errRejected = errors.New("rejected by our decoder")

// gobgpOptions is the GoBGP reading context matching o. External has no
// GoBGP counterpart: it only makes our decoder discard attributes, and an
// input where it does so is an error for us, hence never compared.
func gobgpOptions(o Options) *bgp.MarshallingOption {
	m := &bgp.MarshallingOption{Use2ByteAS: !o.AS4, ExtendedMessage: o.ExtendedMessage}
	for _, f := range []Family{IPv4Unicast, IPv6Unicast, {AFIIPv4, SAFIMulticast}, {AFIIPv6, SAFIMulticast}} {
		if o.AddPath.Has(f) {
			if m.AddPath == nil {
				m.AddPath = map[bgp.Family]bgp.BGPAddPathMode{}
			}
			m.AddPath[bgp.NewFamily(f.AFI, f.SAFI)] = bgp.BGP_ADD_PATH_BOTH
		}
	}
	return m
}

// diffMessage decodes msg (one whole message) with both decoders under
// options o and compares the results. It returns errRejected when our decoder
// rejects msg (with any error, including the non-fatal RFC 7606 ones, whose
// partial results GoBGP cannot be expected to match).
func diffMessage(msg []byte, o Options, st *diffStats) error {
	m, err := DecodeMessage(msg, &o)
	if err != nil {
		return errRejected
	}
	typ := MessageType(m)
	if len(msg) < HeaderLen || msg[18] != typ {
		return fmt.Errorf("DecodeMessage returned a %s for a type %d message", MessageTypeString(typ), msg[18])
	}
	switch m := m.(type) {
	case *Open:
		err = diffOpen(msg, m, st)
	case *Update:
		err = diffUpdate(msg, m, o, st)
	default:
		err = diffSimple(msg, m, o)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", MessageTypeString(typ), err)
	}
	st.compared[MessageTypeString(typ)]++
	return nil
}

// parseGoBGP runs GoBGP's message parser and checks its header.
func parseGoBGP(msg []byte, o Options) (*bgp.BGPMessage, error) {
	g, err := bgp.ParseBGPMessage(msg, gobgpOptions(o))
	if err != nil {
		return nil, err
	}
	if int(g.Header.Len) != len(msg) || g.Header.Type != msg[18] {
		return nil, fmt.Errorf("GoBGP header length %d type %d, message has %d bytes, type %d", g.Header.Len, g.Header.Type, len(msg), msg[18])
	}
	return g, nil
}

// diffSimple compares NOTIFICATION, KEEPALIVE and ROUTE-REFRESH.
func diffSimple(msg []byte, m Message, o Options) error {
	g, err := parseGoBGP(msg, o)
	if err != nil {
		return fmt.Errorf("GoBGP rejects what we accept: %v", err)
	}
	switch m := m.(type) {
	case *Notification:
		gn, ok := g.Body.(*bgp.BGPNotification)
		if !ok || gn.ErrorCode != m.Code || gn.ErrorSubcode != m.Subcode || !bytes.Equal(gn.Data, m.Data) {
			return fmt.Errorf("ours %d/%d %x, GoBGP %+v", m.Code, m.Subcode, m.Data, g.Body)
		}
	case Keepalive:
		if _, ok := g.Body.(*bgp.BGPKeepAlive); !ok {
			return fmt.Errorf("GoBGP body %T", g.Body)
		}
	case *RouteRefresh:
		gr, ok := g.Body.(*bgp.BGPRouteRefresh)
		if !ok || gr.AFI != m.Family.AFI || gr.SAFI != m.Family.SAFI || gr.Demarcation != m.Subtype {
			return fmt.Errorf("ours %+v, GoBGP %+v", m, g.Body)
		}
	default:
		return fmt.Errorf("unexpected %T", m)
	}
	return nil
}

// ---- OPEN ----

// classicCapTLVs returns the capability TLVs (code, length, value) of an
// OPEN body in the RFC 4271/5492 format.
func classicCapTLVs(body []byte) ([][]byte, bool) {
	params := body[10:]
	var tlvs [][]byte
	for len(params) > 0 {
		if len(params) < 2 || len(params) < 2+int(params[1]) {
			return nil, false
		}
		if params[0] == optParamCapabilities {
			caps, ok := splitCapTLVs(params[2 : 2+int(params[1])])
			if !ok {
				return nil, false
			}
			tlvs = append(tlvs, caps...)
		}
		params = params[2+int(params[1]):]
	}
	return tlvs, true
}

// extendedCapTLVs is classicCapTLVs for the RFC 9072 format: after the
// 255/255 marker, a 2-byte total length, and parameters with 2-byte lengths.
func extendedCapTLVs(body []byte) ([][]byte, bool) {
	if len(body) < 13 || body[9] != 255 || body[10] != 255 {
		return nil, false
	}
	params := body[13:]
	if int(binary.BigEndian.Uint16(body[11:])) != len(params) {
		return nil, false
	}
	var tlvs [][]byte
	for len(params) > 0 {
		if len(params) < 3 {
			return nil, false
		}
		l := int(binary.BigEndian.Uint16(params[1:]))
		if len(params) < 3+l {
			return nil, false
		}
		if params[0] == optParamCapabilities {
			caps, ok := splitCapTLVs(params[3 : 3+l])
			if !ok {
				return nil, false
			}
			tlvs = append(tlvs, caps...)
		}
		params = params[3+l:]
	}
	return tlvs, true
}

func splitCapTLVs(b []byte) ([][]byte, bool) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 2 || len(b) < 2+int(b[1]) {
			return nil, false
		}
		out = append(out, b[:2+int(b[1])])
		b = b[2+int(b[1]):]
	}
	return out, true
}

// hasLongClassicParam reports whether a classic OPEN has an optional
// parameter of 254 or 255 bytes.
func hasLongClassicParam(body []byte) bool {
	params := body[10:]
	for len(params) >= 2 {
		if params[1] >= 254 {
			return true
		}
		params = params[min(len(params), 2+int(params[1])):]
	}
	return false
}

// capsOneByOne decodes each capability TLV with GoBGP's DecodeCapability.
// Capabilities GoBGP rejects are explained or reported.
func capsOneByOne(tlvs [][]byte, st *diffStats) (out []bgp.ParameterCapabilityInterface, rejected int, err error) {
	for _, tlv := range tlvs {
		c, err := bgp.DecodeCapability(tlv)
		if err == nil {
			out = append(out, c)
			continue
		}
		rejected++
		code, value := tlv[0], tlv[2:]
		switch {
		case (code == CapExtendedNextHop || code == CapAddPath) && len(value) == 0:
			// GoBGP requires at least one tuple; an empty list announces
			// nothing, which is how our decoder reads it.
			st.note(fmt.Sprintf("open: GoBGP rejects an empty capability %d, read as announcing nothing", code))
		case code == 75:
			// Software version capability (draft-ietf-idr-software-version):
			// GoBGP validates its contents; the codec does not know it and
			// keeps it raw, so the expectation is the raw TLV.
			st.note("open: GoBGP rejects the contents of the software-version capability, compared raw")
			out = append(out, bgp.NewCapUnknown(75, slices.Clone(value)))
		default:
			return nil, rejected, fmt.Errorf("GoBGP rejects capability %x that we accept: %v", tlv, err)
		}
	}
	return out, rejected, nil
}

// capsFromGoBGP maps GoBGP's capabilities onto ours.
func capsFromGoBGP(cs []bgp.ParameterCapabilityInterface) (Capabilities, error) {
	var c Capabilities
	fam := func(afi uint16, safi uint8) Family { return Family{afi, safi} }
	for _, x := range cs {
		switch x := x.(type) {
		case *bgp.CapMultiProtocol:
			c.Multiprotocol = append(c.Multiprotocol, fam(x.CapValue.Afi(), x.CapValue.Safi()))
		case *bgp.CapRouteRefresh:
			c.RouteRefresh = true
		case *bgp.CapEnhancedRouteRefresh:
			c.EnhancedRouteRefresh = true
		case *bgp.CapExtendedMessage:
			c.ExtendedMessage = true
		case *bgp.CapFourOctetASNumber:
			c.HasAS4, c.AS4 = true, x.CapValue
		case *bgp.CapGracefulRestart:
			// GoBGP keeps the top four bits of the flags word in Flags.
			g := &GracefulRestart{Restarting: x.Flags&0x8 != 0, Notification: x.Flags&0x4 != 0, Time: x.Time}
			for _, t := range x.Tuples {
				g.Families = append(g.Families, GRFamily{fam(t.AFI, t.SAFI), t.Flags&0x80 != 0})
			}
			c.GracefulRestart = g
		case *bgp.CapLongLivedGracefulRestart:
			for _, t := range x.Tuples {
				c.LongLivedGR = append(c.LongLivedGR, LLGRFamily{fam(t.AFI, t.SAFI), t.Flags&0x80 != 0, t.RestartTime})
			}
		case *bgp.CapAddPath:
			for _, t := range x.Tuples {
				c.AddPath = append(c.AddPath, AddPathFamily{fam(t.Family.Afi(), t.Family.Safi()), AddPathMode(t.Mode)})
			}
		case *bgp.CapExtendedNexthop:
			for _, t := range x.Tuples {
				if t.NLRISAFI > 255 {
					return c, fmt.Errorf("extended next hop SAFI %d: our decoder rejects it", t.NLRISAFI)
				}
				c.ExtendedNextHop = append(c.ExtendedNextHop, ExtendedNextHop{fam(t.NLRIAFI, uint8(t.NLRISAFI)), t.NexthopAFI})
			}
		case *bgp.CapFQDN:
			c.FQDN = &FQDN{Hostname: x.HostName, Domain: x.DomainName}
		case *bgp.CapCarryingLabelInfo:
			// Codes GoBGP names but the codec does not know: raw.
			c.Unknown = append(c.Unknown, RawCapability{uint8(x.Code()), x.DefaultParameterCapability.CapValue})
		case *bgp.CapRouteRefreshCisco:
			c.Unknown = append(c.Unknown, RawCapability{uint8(x.Code()), x.DefaultParameterCapability.CapValue})
		case *bgp.CapSoftwareVersion:
			c.Unknown = append(c.Unknown, RawCapability{uint8(x.Code()), x.DefaultParameterCapability.CapValue})
		case *bgp.CapUnknown:
			code, v := uint8(x.Code()), x.DefaultParameterCapability.CapValue
			if code == CapRole {
				// GoBGP v4.8.0 does not know the RFC 9234 role capability.
				if len(v) != 1 {
					return c, fmt.Errorf("role capability of %d bytes: our decoder rejects it", len(v))
				}
				c.HasRole, c.Role = true, Role(v[0])
				continue
			}
			c.Unknown = append(c.Unknown, RawCapability{code, v})
		default:
			return c, fmt.Errorf("unexpected GoBGP capability %T", x)
		}
	}
	return c, nil
}

func diffOpen(msg []byte, ours *Open, st *diffStats) error {
	body := msg[HeaderLen:]
	// GoBGP's OPEN decoder reads the fixed fields before the optional
	// parameters, so they are there even when it fails on the latter.
	var fixed bgp.BGPOpen
	gerr := fixed.DecodeFromBytes(body)
	if fixed.Version != ours.Version || fixed.MyAS != ours.MyAS || fixed.HoldTime != ours.HoldTime || fixed.ID != ours.ID {
		return fmt.Errorf("fixed fields: ours %d/%d/%d/%v, GoBGP %d/%d/%d/%v", ours.Version, ours.MyAS, ours.HoldTime, ours.ID,
			fixed.Version, fixed.MyAS, fixed.HoldTime, fixed.ID)
	}
	var gcaps []bgp.ParameterCapabilityInterface
	if !ours.Extended && gerr == nil {
		g, err := parseGoBGP(msg, Options{})
		if err != nil {
			return fmt.Errorf("GoBGP: %v", err)
		}
		for _, p := range g.Body.(*bgp.BGPOpen).OptParams {
			pc, isCap := p.(*bgp.OptionParameterCapability)
			if !isCap {
				return fmt.Errorf("GoBGP found a non-capability parameter %+v we accepted", p)
			}
			gcaps = append(gcaps, pc.Capability...)
		}
	} else {
		// GoBGP's OPEN parser cannot be used as is; we split the
		// optional parameters ourselves and give each capability TLV to
		// GoBGP's own capability decoder.
		var tlvs [][]byte
		var ok bool
		switch {
		case ours.Extended:
			// GoBGP v4.8.0 does not implement RFC 9072: its parser would
			// read the 255/255 marker as a classic parameter.
			st.note("open: GoBGP lacks RFC 9072, capabilities decoded one by one")
			tlvs, ok = extendedCapTLVs(body)
		case hasLongClassicParam(body):
			// GoBGP rejects classic optional parameters of 254-255 bytes
			// (it checks paramlen >= 254), which RFC 4271 allows.
			st.note("open: GoBGP rejects a 254-255 byte parameter, capabilities decoded one by one")
			tlvs, ok = classicCapTLVs(body)
		default:
			// GoBGP may be stricter than us on one capability's
			// contents: capsOneByOne must find which and explain it.
			tlvs, ok = classicCapTLVs(body)
		}
		if !ok {
			return fmt.Errorf("our decoder accepted an OPEN whose optional parameters do not split")
		}
		var rejected int
		var err error
		if gcaps, rejected, err = capsOneByOne(tlvs, st); err != nil {
			return err
		}
		if !ours.Extended && !hasLongClassicParam(body) && rejected == 0 {
			return fmt.Errorf("GoBGP rejects the OPEN (%v), yet accepts each capability", gerr)
		}
	}
	want, err := capsFromGoBGP(gcaps)
	if err != nil {
		return err
	}
	if w, g := canonCaps(&want), canonCaps(&ours.Caps); !reflect.DeepEqual(w, g) {
		return fmt.Errorf("capabilities differ (want = GoBGP's):%s", diffFields(w, g))
	}
	return nil
}

// ---- UPDATE ----

// codecAttrTypes are the attribute types the codec decodes into Attrs
// fields (and marks present); AS4_PATH and AS4_AGGREGATOR are merged away.
var codecAttrTypes = map[uint8]bool{
	AttrOrigin: true, AttrASPath: true, AttrNextHop: true, AttrMED: true, AttrLocalPref: true,
	AttrAtomicAggregate: true, AttrAggregator: true, AttrCommunities: true, AttrOriginatorID: true,
	AttrClusterList: true, AttrMPReach: true, AttrMPUnreach: true, AttrExtCommunities: true,
	AttrLargeCommunity: true, AttrOTC: true,
}

// structuredExtTypes are the extended community types whose contents GoBGP
// parses by sub-type (opaque, EVPN, MUP, flow-spec actions), not always
// reversibly; the codec keeps all communities as 8 raw bytes.
func structuredExtType(t byte) bool {
	switch t {
	case 0x03, 0x43, 0x06, 0x0c, 0x80, 0x81, 0x82:
		return true
	}
	return false
}

func isConfed(s ASSegment) bool { return s.Type == ASConfedSequence || s.Type == ASConfedSet }

// pathCount is the number of ASes of a path for RFC 6793 §4.2.3: a sequence
// counts its ASes, a set one, confederation segments none (RFC 5065 §5.3).
func pathCount(p ASPath) int {
	n := 0
	for _, s := range p {
		switch s.Type {
		case ASSequence:
			n += len(s.ASNs)
		case ASSet:
			n++
		}
	}
	return n
}

// rfc6793Merge is this test's own reading of RFC 6793 §4.2.3 and §6, applied
// to GoBGP's raw attributes (GoBGP does not merge AS4_PATH on 2-octet
// sessions, so the oracle needs it):
//   - AGGREGATOR and AS4_AGGREGATOR both present: if AGGREGATOR's AS is not
//     AS_TRANS, AS4_AGGREGATOR and AS4_PATH are ignored; else AS4_AGGREGATOR
//     gives the aggregator;
//   - confederation segments of AS4_PATH are discarded and the rest is used
//     (§6);
//   - AS4_PATH counting more ASes than AS_PATH is ignored;
//   - otherwise the path is the leading ASes of AS_PATH (count difference),
//     with the confederation segments met before the cut, then AS4_PATH.
//
// merged reports whether AS4_PATH was used.
func rfc6793Merge(asPath ASPath, hasPath bool, as4 ASPath, has4 bool, agg Aggregator, hasAgg bool, agg4 Aggregator, hasAgg4 bool) (ASPath, Aggregator, bool) {
	if hasAgg && hasAgg4 {
		if agg.AS != ASTrans {
			return asPath, agg, false
		}
		agg = agg4
	}
	if !has4 || !hasPath {
		return asPath, agg, false
	}
	var rest ASPath
	for _, s := range as4 {
		if !isConfed(s) {
			rest = append(rest, s)
		}
	}
	keep := pathCount(asPath) - pathCount(rest)
	if keep < 0 {
		return asPath, agg, false
	}
	var out ASPath
	for _, s := range asPath {
		switch {
		case isConfed(s):
			out = append(out, s)
			continue
		case keep == 0:
		case s.Type == ASSet:
			out = append(out, s)
			keep--
			continue
		default:
			n := min(keep, len(s.ASNs))
			out = append(out, ASSegment{Type: s.Type, ASNs: s.ASNs[:n]})
			keep -= n
			continue
		}
		break
	}
	return append(out, rest...), agg, true
}

// joinSequences merges adjacent AS_SEQUENCE segments: the same path, in the
// one shape that both merges produce.
func joinSequences(p ASPath) ASPath {
	var out ASPath
	for _, s := range p {
		if n := len(out); n > 0 && s.Type == ASSequence && out[n-1].Type == ASSequence {
			out[n-1].ASNs = append(slices.Clone(out[n-1].ASNs), s.ASNs...)
			continue
		}
		out = append(out, ASSegment{Type: s.Type, ASNs: slices.Clone(s.ASNs)})
	}
	return out
}

func gobgpPrefixes(ps []bgp.PathNLRI) ([]NLRI, error) {
	var out []NLRI
	for _, p := range ps {
		ip, ok := p.NLRI.(*bgp.IPAddrPrefix)
		if !ok {
			return nil, fmt.Errorf("GoBGP NLRI %T", p.NLRI)
		}
		out = append(out, NLRI{Prefix: ip.Prefix, PathID: p.ID})
	}
	return out, nil
}

func gobgpSegments(segs []bgp.AsPathParamInterface) ASPath {
	p := ASPath{}
	for _, s := range segs {
		p = append(p, ASSegment{Type: s.GetType(), ASNs: s.GetAS()})
	}
	return p
}

// explainGoBGPUpdateFailure returns why GoBGP may rightly reject an UPDATE
// our decoder accepts, or "".
func explainGoBGPUpdateFailure(wire []wireAttr, o Options) string {
	gopt := gobgpOptions(o)
	for _, a := range wire {
		switch {
		case a.Flags&FlagPartial != 0 && a.Flags&(FlagOptional|FlagTransitive) != FlagOptional|FlagTransitive:
			// GoBGP rejects the Partial bit on well-known and optional
			// non-transitive attributes; RFC 7606 §3(c) has receivers
			// check only the Optional and Transitive bits.
			return "skip: GoBGP rejects a Partial bit RFC 7606 §3(c) ignores"
		case a.Flags&0x0f != 0 && codecAttrTypes[a.Type]:
			// RFC 4271 §4.3: the unused low flag bits "MUST be ignored
			// when received"; GoBGP rejects them on the types it knows.
			return "skip: GoBGP rejects non-zero unused attribute flag bits"
		case !codecAttrTypes[a.Type] && a.Type != AttrAS4Path && a.Type != AttrAS4Aggregator:
			// Types GoBGP parses (PMSI tunnel, tunnel encapsulation, IPv6
			// extended communities, AIGP, BGP-LS, Prefix-SID) but the codec
			// passes on untouched, so it cannot reject their contents.
			p, err := bgp.GetPathAttribute(a.Raw)
			if err == nil {
				err = p.DecodeFromBytes(a.Raw, gopt)
			}
			if err != nil {
				return fmt.Sprintf("skip: GoBGP rejects the contents of attribute %d, which the codec passes on opaque", a.Type)
			}
		case a.Type == AttrExtCommunities:
			for v := a.Value; len(v) >= 8; v = v[8:] {
				if _, err := bgp.ParseExtended(v[:8]); err != nil {
					return fmt.Sprintf("skip: GoBGP rejects the contents of an extended community of type %#02x", v[0])
				}
			}
		case (a.Type == AttrMPReach || a.Type == AttrMPUnreach) && len(a.Value) >= 3:
			if f := (Family{binary.BigEndian.Uint16(a.Value), a.Value[2]}); f.addrLen() == 0 {
				return "skip: GoBGP rejects MP NLRI of a family the codec keeps opaque"
			}
		}
	}
	return ""
}

func diffUpdate(msg []byte, ours *Update, o Options, st *diffStats) error {
	wire, ok := wireAttrs(msg)
	if !ok {
		return fmt.Errorf("our decoder accepted an UPDATE whose attributes do not split")
	}
	g, err := parseGoBGP(msg, o)
	if err != nil {
		if why := explainGoBGPUpdateFailure(wire, o); why != "" {
			st.note(why)
			return nil
		}
		return fmt.Errorf("GoBGP rejects an UPDATE we accept: %v", err)
	}
	gu, isUpdate := g.Body.(*bgp.BGPUpdate)
	if !isUpdate {
		return fmt.Errorf("GoBGP body %T", g.Body)
	}
	if len(gu.PathAttributes) != len(wire) {
		return fmt.Errorf("GoBGP kept %d attributes of %d", len(gu.PathAttributes), len(wire))
	}
	want := updateView{}
	if want.Withdrawn, err = gobgpPrefixes(gu.WithdrawnRoutes); err != nil {
		return err
	}
	if want.NLRI, err = gobgpPrefixes(gu.NLRI); err != nil {
		return err
	}
	var asPath, as4Path ASPath
	var hasPath, has4 bool
	var agg, agg4 Aggregator
	var hasAgg, hasAgg4 bool
	for i, pa := range gu.PathAttributes {
		t, flags, w := uint8(pa.GetType()), uint8(pa.GetFlags()), wire[i]
		if t != w.Type || flags != w.Flags {
			return fmt.Errorf("attribute %d: GoBGP type %d flags %#x, wire %d %#x", i, t, flags, w.Type, w.Flags)
		}
		if codecAttrTypes[t] {
			want.Present = append(want.Present, t)
		}
		switch p := pa.(type) {
		case *bgp.PathAttributeOrigin:
			want.Origin = Origin(p.Value)
		case *bgp.PathAttributeAsPath:
			asPath, hasPath = gobgpSegments(p.Value), true
		case *bgp.PathAttributeNextHop:
			want.NextHop = p.Value
		case *bgp.PathAttributeMultiExitDisc:
			want.MED = p.Value
		case *bgp.PathAttributeLocalPref:
			want.LocalPref = p.Value
		case *bgp.PathAttributeAtomicAggregate:
		case *bgp.PathAttributeAggregator:
			agg, hasAgg = Aggregator{p.Value.AS, p.Value.Address}, true
		case *bgp.PathAttributeCommunities:
			for _, c := range p.Value {
				want.Communities = append(want.Communities, Community(c))
			}
		case *bgp.PathAttributeOriginatorId:
			want.OriginatorID = p.Value
		case *bgp.PathAttributeClusterList:
			want.ClusterList = slices.Clone(p.Value)
		case *bgp.PathAttributeMpReachNLRI:
			f := Family{p.AFI, p.SAFI}
			want.MPReach.Family = f
			if f.addrLen() == 0 {
				// A family the codec does not read: it keeps the next hop
				// as received and the NLRI opaque (GoBGP parses both per
				// family), so the next hop is compared with the wire.
				st.note("update: MP_REACH of an opaque family, next hop compared with the wire, NLRI not compared")
				if len(w.Value) < 4 || len(w.Value) < 4+int(w.Value[3]) {
					return fmt.Errorf("MP_REACH_NLRI %x accepted", w.Value)
				}
				want.MPReach.OtherNextHop = slices.Clone(w.Value[4 : 4+int(w.Value[3])])
				break
			}
			want.MPReach.NextHop, want.MPReach.LinkLocal = p.Nexthop, p.LinkLocalNexthop
			if want.MPReach.NLRI, err = gobgpPrefixes(p.Value); err != nil {
				return err
			}
		case *bgp.PathAttributeMpUnreachNLRI:
			f := Family{p.AFI, p.SAFI}
			want.MPUnreach.Family = f
			if f.addrLen() == 0 {
				st.note("update: MP_UNREACH of an opaque family, only AFI/SAFI compared")
				break
			}
			if want.MPUnreach.Withdrawn, err = gobgpPrefixes(p.Value); err != nil {
				return err
			}
		case *bgp.PathAttributeExtendedCommunities:
			if len(p.Value)*8 != len(w.Value) {
				return fmt.Errorf("GoBGP read %d extended communities from %d bytes", len(p.Value), len(w.Value))
			}
			for j, e := range p.Value {
				raw, err := e.Serialize()
				chunk := w.Value[8*j : 8*j+8]
				switch _, isLB := e.(*bgp.LinkBandwidthExtended); {
				case err == nil && isLB && len(raw) == 8 && (chunk[0] == 0x00 || chunk[0] == 0x40):
					// GoBGP's LinkBandwidthExtended has no transitive flag
					// and always writes type 0x40: take the type octet from
					// the wire, compare the rest.
					st.note("update: link bandwidth transitivity taken from the wire (GoBGP drops it)")
					raw[0] = chunk[0]
				case (err != nil || !bytes.Equal(raw, chunk)) && structuredExtType(chunk[0]):
					// GoBGP does not always re-encode structured types
					// byte for byte; the codec carries them raw.
					st.note(fmt.Sprintf("update: GoBGP re-encodes extended community type %#02x differently, compared raw", chunk[0]))
					raw = chunk
				case err != nil:
					return fmt.Errorf("GoBGP cannot re-encode extended community %x: %v", chunk, err)
				}
				if len(raw) != 8 {
					return fmt.Errorf("GoBGP re-encoded extended community %x as %x", chunk, raw)
				}
				want.ExtCommunities = append(want.ExtCommunities, ExtCommunity(raw))
			}
		case *bgp.PathAttributeAs4Path:
			as4Path, has4 = ASPath{}, true
			for _, s := range p.Value {
				as4Path = append(as4Path, ASSegment{Type: s.Type, ASNs: s.AS})
			}
		case *bgp.PathAttributeAs4Aggregator:
			agg4, hasAgg4 = Aggregator{p.Value.AS, p.Value.Address}, true
		case *bgp.PathAttributeLargeCommunities:
			for _, c := range p.Values {
				want.LargeCommunities = append(want.LargeCommunities, LargeCommunity{c.ASN, c.LocalData1, c.LocalData2})
			}
		case *bgp.PathAttributeUnknown:
			switch {
			case t == AttrOTC:
				// GoBGP v4.8.0 does not know OTC (RFC 9234).
				if len(p.Value) != 4 {
					return fmt.Errorf("OTC of %d bytes accepted", len(p.Value))
				}
				want.OTC = binary.BigEndian.Uint32(p.Value)
			case flags&FlagOptional != 0 && flags&FlagTransitive == 0:
				// RFC 4271 §5: an unrecognised optional non-transitive
				// attribute is quietly ignored; GoBGP keeps it.
				st.note("update: unknown optional non-transitive attribute ignored by the codec")
			default:
				want.Unknown = append(want.Unknown, RawAttr{Flags: flags &^ FlagExtLen, Type: t, Value: slices.Clone(p.Value)})
			}
		default:
			// A type GoBGP parses but the codec does not know: the codec
			// passes it on (if transitive) byte for byte, so the expectation
			// is GoBGP's type and flags with the value from the wire.
			if flags&FlagOptional != 0 && flags&FlagTransitive == 0 {
				st.note("update: optional non-transitive attribute GoBGP knows, ignored by the codec")
				break
			}
			st.note(fmt.Sprintf("update: attribute %d GoBGP parses, the codec keeps raw", t))
			want.Unknown = append(want.Unknown, RawAttr{Flags: flags &^ FlagExtLen, Type: t, Value: slices.Clone(w.Value)})
		}
	}
	merged := false
	if !o.AS4 {
		// GoBGP does not merge AS4_PATH/AS4_AGGREGATOR on 2-octet
		// sessions; the oracle is its raw reading merged per RFC 6793.
		asPath, agg, merged = rfc6793Merge(asPath, hasPath, as4Path, has4, agg, hasAgg, agg4, hasAgg4)
		if has4 {
			st.note("update: AS4_PATH merged by the test's RFC 6793 oracle")
		}
	} else if has4 || hasAgg4 {
		return fmt.Errorf("AS4_PATH/AS4_AGGREGATOR on a 4-octet session accepted")
	}
	want.ASPath, want.Aggregator = canonASPath(asPath), agg
	want.Present = nilIfEmpty(want.Present)
	sort.Slice(want.Present, func(i, j int) bool { return want.Present[i] < want.Present[j] })
	for _, f := range []*[]NLRI{&want.Withdrawn, &want.NLRI, &want.MPReach.NLRI, &want.MPUnreach.Withdrawn} {
		*f = nilIfEmpty(*f)
	}
	want.MPReach.OtherNextHop = nilIfEmpty(want.MPReach.OtherNextHop)
	want.Communities, want.ClusterList = nilIfEmpty(want.Communities), nilIfEmpty(want.ClusterList)
	want.ExtCommunities, want.LargeCommunities = nilIfEmpty(want.ExtCommunities), nilIfEmpty(want.LargeCommunities)
	for i := range want.Unknown {
		want.Unknown[i].Value = nilIfEmpty(want.Unknown[i].Value)
	}

	got := viewOf(ours)
	if merged {
		// Both sides hold the same path; adjacent sequences may be split
		// differently.
		want.ASPath, got.ASPath = canonASPath(joinSequences(want.ASPath)), canonASPath(joinSequences(got.ASPath))
	}
	if !reflect.DeepEqual(want, got) {
		return fmt.Errorf("UPDATE differs (want = GoBGP's, options %+v):%s\nmessage %x", o, diffFields(want, got), msg)
	}
	return nil
}

// ---- the test ----

func TestDiffGoBGP(t *testing.T) {
	t.Parallel()
	total := 0
	t.Run("generated", func(t *testing.T) {
		r := newRand(100)
		st := newDiffStats()
		var e Encoder
		const iterations = 3000
		for i := range iterations {
			o := genOptions(r)
			var msgs [][]byte
			var err error
			var b []byte
			switch x := r.IntN(100); {
			case x < 55:
				b, err = AppendUpdate(nil, genUpdate(r, o), &o)
				msgs = append(msgs, b)
				if err == nil && chance(r, 1, 3) {
					// Also the same UPDATE with its attributes shuffled
					// and re-framed (see mutateUpdateWire).
					if m := mutateUpdateWire(r, b, o.maxLenFor(TypeUpdate)); m != nil {
						msgs = append(msgs, m)
					}
				}
			case x < 70:
				b, err = AppendOpen(nil, genOpen(r))
				msgs = append(msgs, b)
			case x < 80:
				msgs = append(msgs, AppendNotification(nil, genNotification(r), &o))
			case x < 88:
				msgs = append(msgs, AppendRouteRefresh(nil, genRouteRefresh(r)))
			case x < 91:
				msgs = append(msgs, AppendKeepalive(nil))
			default: // Encoder output
				f := []Family{IPv4Unicast, IPv6Unicast}[r.IntN(2)]
				nh, ll := genMPNextHop(r, f, o)
				a := genEncoderAttrs(r, o)
				nlri := genNLRI(r, f, r.IntN(400), o.AddPath.Has(f))
				e.Options = o
				b, _, err = e.AppendReach(nil, f, nh, ll, &a, nlri)
				if err == nil {
					b, _, err = e.AppendWithdraw(b, f, nlri)
					b = e.AppendEndOfRIB(b, f)
					msgs = append(msgs, splitMessages(t, b, &o)...)
				}
			}
			if err != nil {
				t.Fatalf("#%d: encoding: %v", i, err)
			}
			for _, m := range msgs {
				if err := diffMessage(m, o, st); err != nil {
					t.Fatalf("#%d (options %+v): %v", i, o, err)
				}
			}
		}
		st.log(t, "generated")
		if n := st.skipped(); n > 0 {
			t.Errorf("%d generated messages could not be compared: GoBGP rejects them", n)
		}
		if st.total() == 0 {
			t.Fatal("compared no message")
		}
		total += st.total()
	})
	t.Run("corpus", func(t *testing.T) {
		files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "*", "*"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Skip("no fuzz corpus in testdata/fuzz")
		}
		st := newDiffStats()
		inputs := 0
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			values, err := parseFuzzCorpus(data)
			if err != nil {
				t.Errorf("%s: %v", file, err)
				continue
			}
			target := filepath.Base(filepath.Dir(file))
			for _, v := range values {
				for _, msg := range corpusMessages(target, v) {
					inputs++
					variants := corpusOptions
					if msg[18] != TypeUpdate {
						variants = variants[:1] // only UPDATEs read differently per session
					}
					for _, o := range variants {
						switch err := diffMessage(msg, o, st); {
						case errors.Is(err, errRejected):
							st.rejected++
						case err != nil:
							t.Errorf("%s (options %+v): %v", file, o, err)
						}
					}
				}
			}
		}
		st.log(t, fmt.Sprintf("corpus (%d files, %d candidate messages)", len(files), inputs))
		if st.total() == 0 {
			t.Fatalf("corpus of %d files: compared no message", len(files))
		}
		total += st.total()
	})
	if total == 0 {
		t.Fatal("compared no message")
	}
}

// corpusOptions are the sessions a corpus message is read under: the corpus
// does not say, so both AS sizes, with and without ADD-PATH (extended
// messages and next hop on, as they only widen what is accepted).
var corpusOptions = []Options{
	{AS4: true, ExtendedMessage: true},
	{AS4: false, ExtendedMessage: true},
	{AS4: true, ExtendedMessage: true, AddPath: FamilySetOf(IPv4Unicast, IPv6Unicast), ExtendedNextHop: FamilySetOf(IPv4Unicast)},
	{AS4: false, ExtendedMessage: true, AddPath: FamilySetOf(IPv4Unicast, IPv6Unicast), ExtendedNextHop: FamilySetOf(IPv4Unicast)},
}

// parseFuzzCorpus returns the []byte values of a Go fuzz corpus file
// ("go test fuzz v1" then one Go literal per line, e.g. []byte("...")).
// Values of other types (options a fuzz target may take) are ignored.
func parseFuzzCorpus(data []byte) ([][]byte, error) {
	lines := strings.Split(string(data), "\n")
	if strings.TrimSpace(lines[0]) != "go test fuzz v1" {
		return nil, errors.New("not a Go fuzz corpus file")
	}
	var out [][]byte
	for n, line := range lines[1:] {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		e, err := parser.ParseExpr(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", n+2, err)
		}
		call, ok := e.(*ast.CallExpr)
		if !ok || len(call.Args) != 1 {
			return nil, fmt.Errorf("line %d: not a typed literal", n+2)
		}
		arr, ok := call.Fun.(*ast.ArrayType)
		if !ok || arr.Len != nil {
			continue
		}
		if id, ok := arr.Elt.(*ast.Ident); !ok || (id.Name != "byte" && id.Name != "uint8") {
			continue
		}
		lit, ok := call.Args[0].(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return nil, fmt.Errorf("line %d: []byte of a non-string literal", n+2)
		}
		s, err := strconv.Unquote(lit.Value)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", n+2, err)
		}
		out = append(out, []byte(s))
	}
	return out, nil
}

// corpusMessages turns one corpus value into whole messages: a value starting
// with the marker is a stream of messages, cut at their header lengths; any
// other value is a message body, wrapped in a header of the type the fuzz
// target's name mentions (FuzzDecodeUpdate, FuzzOpen, ...), if any.
func corpusMessages(target string, v []byte) [][]byte {
	marker := bytes.Repeat([]byte{0xff}, 16)
	if bytes.HasPrefix(v, marker) {
		var out [][]byte
		for len(v) >= HeaderLen {
			l := int(binary.BigEndian.Uint16(v[16:]))
			if l < HeaderLen || l > len(v) {
				l = len(v) // our decoder rejects it, and it is counted so
			}
			out = append(out, v[:l])
			v = v[l:]
		}
		return out
	}
	name := strings.ToLower(target)
	var typ uint8
	switch {
	case strings.Contains(name, "update"):
		typ = TypeUpdate
	case strings.Contains(name, "open"):
		typ = TypeOpen
	case strings.Contains(name, "notification"):
		typ = TypeNotification
	case strings.Contains(name, "refresh"):
		typ = TypeRouteRefresh
	default:
		return nil
	}
	if HeaderLen+len(v) > MaxExtendedLen {
		return nil
	}
	msg, _ := appendHeader(nil, typ)
	msg = append(msg, v...)
	binary.BigEndian.PutUint16(msg[16:], uint16(len(msg)))
	return [][]byte{msg}
}
