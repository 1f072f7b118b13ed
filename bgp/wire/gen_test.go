package wire

// Deterministic generators of VALID codec values, shared by the property,
// differential, fuzz and table tests of this package.
//
// Every generator draws from the *rand.Rand it is given (math/rand/v2), so a
// test that seeds its own generator with newRand is reproducible. "Valid"
// means: AppendX succeeds and DecodeX with the same Options gives back exactly
// the same value, as compared by viewOf / viewOfOpen. The restrictions this
// requires are documented on each generator.
//
// Keep the names and signatures stable: other tests call them.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
)

// genSeed is the seed of every generated stream; newRand's salt tells the
// streams of different tests apart, so adding a test does not shift others.
const genSeed = 0x6267706c62 // "bgplb"

// newRand returns the deterministic generator for the stream named salt.
func newRand(salt uint64) *rand.Rand { return rand.New(rand.NewPCG(genSeed, salt)) }

// chance reports true with probability num/den.
func chance(r *rand.Rand, num, den int) bool { return r.IntN(den) < num }

// genBytes returns n random bytes (non-nil, even when n is 0).
func genBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// genOptions returns a random session context: 2- or 4-octet AS, extended
// messages, ADD-PATH for IPv4 and/or IPv6 unicast, extended next hop for IPv4
// unicast, internal or external peer.
func genOptions(r *rand.Rand) Options {
	o := Options{
		AS4:             chance(r, 1, 2),
		ExtendedMessage: chance(r, 1, 3),
		External:        chance(r, 1, 2),
	}
	if chance(r, 1, 3) {
		o.AddPath |= FamilySetOf(IPv4Unicast)
	}
	if chance(r, 1, 3) {
		o.AddPath |= FamilySetOf(IPv6Unicast)
	}
	if chance(r, 1, 3) {
		o.ExtendedNextHop |= FamilySetOf(IPv4Unicast)
	}
	return o
}

// genASN returns a non-zero AS number (RFC 7607 makes AS 0 in AS_PATH and
// AGGREGATOR malformed): 2-octet ones, private ones, 4-octet ones and, now and
// then, a literal AS_TRANS, which must survive a round trip as well.
func genASN(r *rand.Rand) uint32 {
	switch r.IntN(8) {
	case 0:
		return ASTrans
	case 1, 2, 3:
		return gen2ASN(r)
	case 4:
		return 64512 + r.Uint32N(1023)
	default:
		return 0x10000 + r.Uint32N(0xffffffff-0x10000) // 65536 .. 2^32-2
	}
}

// gen2ASN returns a 2-octet AS number, 1..65535.
func gen2ASN(r *rand.Rand) uint32 { return 1 + r.Uint32N(0xffff) }

// genAddr4 returns a random IPv4 address.
func genAddr4(r *rand.Rand) netip.Addr { return netip.AddrFrom4([4]byte(genBytes(r, 4))) }

// genAddr6 returns a random global-looking IPv6 address (never IPv4-mapped,
// never link-local).
func genAddr6(r *rand.Rand) netip.Addr {
	b := [16]byte(genBytes(r, 16))
	b[0] = 0x20 | b[0]&0x0f // 2000::/4
	return netip.AddrFrom16(b)
}

// genLinkLocal returns a random fe80::/64 address.
func genLinkLocal(r *rand.Rand) netip.Addr {
	b := [16]byte(genBytes(r, 16))
	copy(b[:8], []byte{0xfe, 0x80, 0, 0, 0, 0, 0, 0})
	return netip.AddrFrom16(b)
}

// genASPath returns an AS_PATH of 0..5 segments (0 is the empty path of a
// locally originated route). Every segment is non-empty and holds at most 255
// ASes, because the encoder splits longer segments (which is not an exact
// round trip). Confederation segments appear only when !o.External: an
// external peer sending them is malformed (RFC 5065 §5), and the decoder
// treats the route as withdrawn.
//
// Restriction on 2-octet sessions (!o.AS4), where the encoder writes AS_TRANS
// for 4-octet ASes and adds AS4_PATH, and the decoder merges the two back
// (RFC 6793 §4.2.3):
//   - confederation segments hold 2-octet ASes only: AS4_PATH never carries
//     confederation segments (RFC 6793 §3), so a 4-octet member AS is sent as
//     AS_TRANS and cannot be recovered;
//   - when some AS_SEQUENCE/AS_SET AS needs four octets (so AS4_PATH is sent),
//     confederation segments come first: the merge keeps from AS_PATH only
//     the segments before the first counted AS (AS4_PATH as long as the
//     counted part of AS_PATH means no AS is taken from AS_PATH), and
//     replaces the rest with AS4_PATH, which has no confederation segments.
//     Real paths satisfy this: confederation segments are only ever
//     prepended.
func genASPath(r *rand.Rand, o Options) ASPath {
	p := ASPath{}
	for range r.IntN(6) {
		typ := ASSequence
		switch x := r.IntN(10); {
		case x < 2:
			typ = ASSet
		case x < 4 && !o.External:
			typ = ASConfedSequence
		case x < 5 && !o.External:
			typ = ASConfedSet
		}
		n := 1 + r.IntN(6)
		if chance(r, 1, 25) {
			n = 1 + r.IntN(255)
		}
		confed := typ == ASConfedSequence || typ == ASConfedSet
		asns := make([]uint32, n)
		for i := range asns {
			if confed && !o.AS4 {
				asns[i] = gen2ASN(r)
			} else {
				asns[i] = genASN(r)
			}
		}
		p = append(p, ASSegment{Type: typ, ASNs: asns})
	}
	if !o.AS4 && needsAS4Path(p) {
		isConfed := func(s ASSegment) bool { return s.Type == ASConfedSequence || s.Type == ASConfedSet }
		var q ASPath
		for _, s := range p {
			if isConfed(s) {
				q = append(q, s)
			}
		}
		for _, s := range p {
			if !isConfed(s) {
				q = append(q, s)
			}
		}
		p = q
	}
	return p
}

var wellKnownCommunities = []Community{
	CommunityGracefulShutdown, CommunityAcceptOwn, CommunityLLGRStale, CommunityNoLLGR,
	CommunityBlackhole, CommunityNoExport, CommunityNoAdvertise, CommunityNoExportSubconfed,
	CommunityNoPeer,
}

// freeFormExtTypes are extended community type octets whose remaining seven
// octets carry no structure beyond fixed-width fields, so any value is valid.
// Left out: the opaque (0x03, 0x43), EVPN (0x06), MUP (0x0c) and flow-spec
// action (0x80-0x82) types, whose sub-types define contents random bytes do
// not follow (GoBGP validates them, and the differential test relies on it).
var freeFormExtTypes = []byte{0x00, 0x01, 0x02, 0x04, 0x05, 0x08, 0x09, 0x0a, 0x40, 0x41, 0x42, 0x44, 0x47, 0x48}

// genExtCommunity returns a link bandwidth (either transitivity), a route
// target, an IPv4-specific community or a free-form one.
func genExtCommunity(r *rand.Rand) ExtCommunity {
	var c ExtCommunity
	switch r.IntN(5) {
	case 0:
		return NewLinkBandwidth(uint16(gen2ASN(r)), float32(r.IntN(1<<24))*125, chance(r, 1, 2))
	case 1: // two-octet AS route target
		c = ExtCommunity{0x00, 0x02}
		copy(c[2:], genBytes(r, 6))
	case 2: // four-octet AS route target
		c = ExtCommunity{0x02, 0x02}
		copy(c[2:], genBytes(r, 6))
	case 3: // IPv4 address specific, either transitivity, any sub-type
		c = ExtCommunity{[]byte{0x01, 0x41}[r.IntN(2)]}
		copy(c[1:], genBytes(r, 7))
	default:
		c[0] = freeFormExtTypes[r.IntN(len(freeFormExtTypes))]
		copy(c[1:], genBytes(r, 7))
	}
	return c
}

// genAttrs returns path attributes valid on a session with options o. Each
// attribute the codec knows is present with some probability: ORIGIN,
// AS_PATH (see genASPath), NEXT_HOP, MED, LOCAL_PREF, ATOMIC_AGGREGATE,
// AGGREGATOR, COMMUNITIES, ORIGINATOR_ID, CLUSTER_LIST, EXTENDED_COMMUNITIES,
// LARGE_COMMUNITY, OTC and unknown optional transitive attributes.
//
// Not generated:
//   - LOCAL_PREF, ORIGINATOR_ID and CLUSTER_LIST when o.External: the decoder
//     discards them from external peers by design (RFC 7606 §7);
//   - MP_REACH_NLRI / MP_UNREACH_NLRI: they belong to genUpdate;
//   - AS4_PATH / AS4_AGGREGATOR: the encoder derives them from ASPath and
//     Aggregator on 2-octet sessions;
//   - empty COMMUNITIES, CLUSTER_LIST, EXTENDED_COMMUNITIES or
//     LARGE_COMMUNITY: a zero-length value is malformed (RFC 7606 §7).
//
// Unknown attributes have distinct type codes in 200..254 (unknown to the
// codec and to GoBGP) and the flags Optional|Transitive|Partial, since the
// encoder always sets Partial on attributes it passes on.
func genAttrs(r *rand.Rand, o Options) Attrs {
	var a Attrs
	if chance(r, 9, 10) {
		a.Origin = Origin(r.IntN(3))
		a.Set(AttrOrigin)
	}
	if chance(r, 9, 10) {
		a.ASPath = genASPath(r, o)
		a.Set(AttrASPath)
	}
	if chance(r, 3, 4) {
		a.NextHop = genAddr4(r)
		a.Set(AttrNextHop)
	}
	if chance(r, 1, 2) {
		a.MED = r.Uint32()
		a.Set(AttrMED)
	}
	if !o.External && chance(r, 1, 2) {
		a.LocalPref = r.Uint32()
		a.Set(AttrLocalPref)
	}
	if chance(r, 1, 5) {
		a.Set(AttrAtomicAggregate)
	}
	if chance(r, 1, 3) {
		a.Aggregator = Aggregator{AS: genASN(r), Addr: genAddr4(r)}
		a.Set(AttrAggregator)
	}
	if chance(r, 1, 2) {
		for range 1 + r.IntN(12) {
			if chance(r, 1, 4) {
				a.Communities = append(a.Communities, wellKnownCommunities[r.IntN(len(wellKnownCommunities))])
			} else {
				a.Communities = append(a.Communities, Community(r.Uint32()))
			}
		}
		a.Set(AttrCommunities)
	}
	if !o.External && chance(r, 1, 4) {
		a.OriginatorID = genAddr4(r)
		a.Set(AttrOriginatorID)
	}
	if !o.External && chance(r, 1, 4) {
		for range 1 + r.IntN(6) {
			a.ClusterList = append(a.ClusterList, genAddr4(r))
		}
		a.Set(AttrClusterList)
	}
	if chance(r, 1, 3) {
		for range 1 + r.IntN(8) {
			a.ExtCommunities = append(a.ExtCommunities, genExtCommunity(r))
		}
		a.Set(AttrExtCommunities)
	}
	if chance(r, 1, 4) {
		for range 1 + r.IntN(6) {
			a.LargeCommunities = append(a.LargeCommunities, LargeCommunity{r.Uint32(), r.Uint32(), r.Uint32()})
		}
		a.Set(AttrLargeCommunity)
	}
	if chance(r, 1, 5) {
		a.OTC = genASN(r)
		a.Set(AttrOTC)
	}
	if chance(r, 1, 5) {
		types := r.Perm(55)[:1+r.IntN(3)]
		for _, t := range types {
			n := r.IntN(24)
			if chance(r, 1, 10) {
				n = 250 + r.IntN(60) // around the extended-length threshold
			}
			a.Unknown = append(a.Unknown, RawAttr{
				Flags: FlagOptional | FlagTransitive | FlagPartial,
				Type:  uint8(200 + t),
				Value: genBytes(r, n),
			})
		}
	}
	return a
}

// genPrefix returns a random masked prefix of family f's address family
// with a length anywhere in 0..32 or 0..128.
func genPrefix(r *rand.Rand, f Family) netip.Prefix {
	if f.AFI == AFIIPv6 {
		return netip.PrefixFrom(netip.AddrFrom16([16]byte(genBytes(r, 16))), r.IntN(129)).Masked()
	}
	return netip.PrefixFrom(genAddr4(r), r.IntN(33)).Masked()
}

// genNLRI returns n random prefixes of family f (IPv4 or IPv6), masked, with
// random path identifiers when addPath (zero otherwise, as decoding without
// ADD-PATH yields).
func genNLRI(r *rand.Rand, f Family, n int, addPath bool) []NLRI {
	out := make([]NLRI, n)
	for i := range out {
		out[i].Prefix = genPrefix(r, f)
		if addPath {
			out[i].PathID = r.Uint32()
		}
	}
	return out
}

// genCount returns a prefix count: usually small, sometimes large.
func genCount(r *rand.Rand) int {
	switch r.IntN(10) {
	case 0, 1, 2:
		return 0
	case 3, 4, 5, 6:
		return 1 + r.IntN(10)
	case 7, 8:
		return r.IntN(300)
	default:
		return r.IntN(3000)
	}
}

// mustPrefixes is NewPrefixes for prefixes known to be of family f.
func mustPrefixes(f Family, addPath bool, nlri []NLRI) Prefixes {
	p, err := NewPrefixes(f, addPath, nlri)
	if err != nil {
		panic(err)
	}
	return p
}

// genMPNextHop returns a next hop (and link-local half) for MP_REACH_NLRI
// routes of family f on a session with options o: IPv6 with an optional
// link-local address for IPv6 routes; IPv4 for IPv4 routes, or IPv6 (with an
// optional link-local) when o.ExtendedNextHop has IPv4 unicast (RFC 8950).
func genMPNextHop(r *rand.Rand, f Family, o Options) (nh, ll netip.Addr) {
	if f.AFI == AFIIPv4 && (!o.ExtendedNextHop.Has(f) || chance(r, 1, 2)) {
		return genAddr4(r), netip.Addr{}
	}
	nh = genAddr6(r)
	if chance(r, 1, 2) {
		ll = genLinkLocal(r)
	}
	return nh, ll
}

// genUpdate returns an UPDATE valid on a session with options o: IPv4
// unicast withdrawn routes and NLRI (built with NewPrefixes, with path
// identifiers when o.AddPath has IPv4 unicast), the attributes of genAttrs,
// and optionally MP_REACH_NLRI and MP_UNREACH_NLRI for IPv4 or IPv6 unicast.
// When it announces routes it carries ORIGIN and AS_PATH, and NEXT_HOP when
// it has classic NLRI (RFC 7606 §3(d) would otherwise treat them as
// withdrawn). Prefix counts are shrunk until the message fits the size limit
// of o, so AppendUpdate(nil, u, &o) always succeeds.
func genUpdate(r *rand.Rand, o Options) *Update {
	v4AP := o.AddPath.Has(IPv4Unicast)
	for {
		a := genAttrs(r, o)
		wd := genNLRI(r, IPv4Unicast, genCount(r), v4AP)
		nl := genNLRI(r, IPv4Unicast, genCount(r), v4AP)
		var reach, unreach []NLRI
		var rf, uf Family
		var nh, ll netip.Addr
		hasReach, hasUnreach := chance(r, 1, 3), chance(r, 1, 4)
		if hasReach {
			rf = []Family{IPv4Unicast, IPv6Unicast}[r.IntN(2)]
			nh, ll = genMPNextHop(r, rf, o)
			reach = genNLRI(r, rf, genCount(r), o.AddPath.Has(rf))
		}
		if hasUnreach {
			uf = []Family{IPv4Unicast, IPv6Unicast}[r.IntN(2)]
			unreach = genNLRI(r, uf, genCount(r), o.AddPath.Has(uf))
		}
		if len(nl) > 0 || hasReach {
			if !a.Has(AttrOrigin) {
				a.Origin = Origin(r.IntN(3))
				a.Set(AttrOrigin)
			}
			if !a.Has(AttrASPath) {
				a.ASPath = genASPath(r, o)
				a.Set(AttrASPath)
			}
		}
		if len(nl) > 0 && !a.Has(AttrNextHop) {
			a.NextHop = genAddr4(r)
			a.Set(AttrNextHop)
		}
		for range 24 {
			u := &Update{
				Withdrawn: mustPrefixes(IPv4Unicast, v4AP, wd),
				NLRI:      mustPrefixes(IPv4Unicast, v4AP, nl),
				Attrs:     a,
			}
			if hasReach {
				u.Attrs.MPReach = MPReach{Family: rf, NextHop: nh, LinkLocal: ll, NLRI: mustPrefixes(rf, o.AddPath.Has(rf), reach)}
				u.Attrs.Set(AttrMPReach)
			}
			if hasUnreach {
				u.Attrs.MPUnreach = MPUnreach{Family: uf, Withdrawn: mustPrefixes(uf, o.AddPath.Has(uf), unreach)}
				u.Attrs.Set(AttrMPUnreach)
			}
			_, err := AppendUpdate(nil, u, &o)
			if err == nil {
				return u
			}
			if !errors.Is(err, ErrTooLong) {
				panic(fmt.Sprintf("genUpdate built an unencodable UPDATE: %v", err))
			}
			// Shrink the longest list; once all are empty, the attributes
			// alone are too long: start over.
			lists := []*[]NLRI{&wd, &nl, &reach, &unreach}
			longest := slices.MaxFunc(lists, func(x, y *[]NLRI) int { return len(*x) - len(*y) })
			if len(*longest) == 0 {
				break
			}
			*longest = (*longest)[:len(*longest)/2]
		}
	}
}

// Families offered in generated OPENs: the ones the codec reads and a few
// others a real speaker announces.
var genFamilies = []Family{
	IPv4Unicast, IPv6Unicast, {AFIIPv4, SAFIMulticast}, {AFIIPv6, SAFIMulticast},
	{AFIIPv4, 4}, {AFIIPv4, 128}, {AFIIPv6, 128}, {25, 70}, {16388, 71}, {AFIIPv4, 133},
}

func genFamily(r *rand.Rand) Family {
	if chance(r, 1, 8) {
		return Family{AFI: uint16(r.Uint32()), SAFI: uint8(r.Uint32())}
	}
	return genFamilies[r.IntN(len(genFamilies))]
}

// genName returns a DNS-looking name of up to max bytes.
func genName(r *rand.Rand, max int) string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789-."
	b := make([]byte, r.IntN(max+1))
	for i := range b {
		b[i] = letters[r.IntN(len(letters))]
	}
	return string(b)
}

// genUnknownCapCode returns a capability code unknown to the codec: one of
// the RFC 5492 private-use codes 129..254, none of which GoBGP knows either
// (128 is left out: it is Cisco's pre-standard route refresh).
func genUnknownCapCode(r *rand.Rand) uint8 { return uint8(129 + r.IntN(126)) }

// genOpen returns a valid OPEN: version 4, a hold time of 0 or at least 3, a
// non-zero BGP Identifier and a random set of capabilities of every type the
// codec knows (each present with some probability), plus unknown ones with
// codes from genUnknownCapCode. Capabilities whose absence is an empty list
// (LongLivedGR, AddPath, ExtendedNextHop) are non-empty when present.
// Sometimes Extended is set (RFC 9072 format asked for), and sometimes the
// capabilities exceed what classic optional parameters hold (over 255 bytes
// in all, or one capability value of 254-255 bytes), which forces RFC 9072.
// The OPEN always fits 4096 bytes.
func genOpen(r *rand.Rand) *Open {
	op := &Open{
		Version: 4,
		MyAS:    uint16(gen2ASN(r)),
		ID:      genAddr4(r),
	}
	for op.ID == netip.IPv4Unspecified() {
		op.ID = genAddr4(r)
	}
	if chance(r, 1, 5) {
		op.MyAS = ASTrans
	}
	if !chance(r, 1, 10) {
		op.HoldTime = uint16(3 + r.IntN(0xffff-3+1))
	}
	many := chance(r, 1, 6)
	c := &op.Caps
	if chance(r, 3, 4) {
		n := 1 + r.IntN(4)
		if many {
			n = 10 + r.IntN(40)
		}
		for range n {
			c.Multiprotocol = append(c.Multiprotocol, genFamily(r))
		}
	}
	c.RouteRefresh = chance(r, 2, 3)
	c.EnhancedRouteRefresh = chance(r, 1, 2)
	c.ExtendedMessage = chance(r, 1, 2)
	if chance(r, 3, 4) {
		c.HasAS4, c.AS4 = true, genASN(r)
	}
	if chance(r, 1, 2) {
		g := &GracefulRestart{Restarting: chance(r, 1, 2), Notification: chance(r, 1, 2), Time: uint16(r.IntN(0x1000))}
		for range r.IntN(5) {
			g.Families = append(g.Families, GRFamily{Family: genFamily(r), Forwarding: chance(r, 1, 2)})
		}
		c.GracefulRestart = g
	}
	if chance(r, 1, 3) {
		for range 1 + r.IntN(4) {
			c.LongLivedGR = append(c.LongLivedGR, LLGRFamily{Family: genFamily(r), Forwarding: chance(r, 1, 2), StaleTime: r.Uint32N(1 << 24)})
		}
	}
	if chance(r, 1, 2) {
		for range 1 + r.IntN(4) {
			c.AddPath = append(c.AddPath, AddPathFamily{Family: genFamily(r), Mode: AddPathMode(1 + r.IntN(3))})
		}
	}
	if chance(r, 1, 3) {
		for range 1 + r.IntN(3) {
			c.ExtendedNextHop = append(c.ExtendedNextHop, ExtendedNextHop{NLRI: genFamily(r), NextHopAFI: uint16(1 + r.IntN(2))})
		}
	}
	if chance(r, 1, 3) {
		c.HasRole, c.Role = true, Role(r.IntN(5))
		if chance(r, 1, 10) {
			c.Role = Role(r.Uint32())
		}
	}
	if chance(r, 1, 3) {
		c.FQDN = &FQDN{Hostname: genName(r, 60), Domain: genName(r, 60)}
	}
	if chance(r, 1, 3) || many {
		n := 1 + r.IntN(3)
		if many {
			n = r.IntN(12)
		}
		for range n {
			l := r.IntN(20)
			if many {
				l = r.IntN(256)
			}
			c.Unknown = append(c.Unknown, RawCapability{Code: genUnknownCapCode(r), Value: genBytes(r, l)})
		}
	}
	if chance(r, 1, 12) { // one capability too big for a classic parameter
		c.Unknown = append(c.Unknown, RawCapability{Code: genUnknownCapCode(r), Value: genBytes(r, 254+r.IntN(2))})
	}
	op.Extended = chance(r, 1, 6)
	for {
		_, err := AppendOpen(nil, op)
		if err == nil {
			return op
		}
		if !errors.Is(err, ErrTooLong) || len(c.Unknown) == 0 {
			panic(fmt.Sprintf("genOpen built an unencodable OPEN: %v", err))
		}
		c.Unknown = c.Unknown[:len(c.Unknown)-1]
		if len(c.Unknown) == 0 {
			c.Unknown = nil
		}
	}
}

// genNotification returns a NOTIFICATION: a known code with a random subcode
// and data, any code at all, or an RFC 9003 shutdown communication. Its data
// fits a 4096-byte message, so AppendNotification never cuts it.
func genNotification(r *rand.Rand) *Notification {
	switch r.IntN(4) {
	case 0:
		var msg strings.Builder
		for range r.IntN(120) {
			msg.WriteRune([]rune("abc xyz-é€😀")[r.IntN(11)])
		}
		return NewShutdown([]uint8{CeaseAdminShutdown, CeaseAdminReset}[r.IntN(2)], msg.String())
	case 1:
		return &Notification{Code: uint8(r.Uint32()), Subcode: uint8(r.Uint32()), Data: genBytes(r, r.IntN(8))}
	}
	n := &Notification{Code: uint8(1 + r.IntN(8)), Subcode: uint8(r.IntN(12))}
	switch r.IntN(4) {
	case 0:
	case 1:
		n.Data = genBytes(r, MaxLen-minNotificationLen-r.IntN(64))
	default:
		n.Data = genBytes(r, r.IntN(64))
	}
	return n
}

// genRouteRefresh returns a ROUTE-REFRESH for a common or random family,
// usually with one of the RFC 7313 subtypes, sometimes with another (which the
// receiver ignores, but the codec carries).
func genRouteRefresh(r *rand.Rand) *RouteRefresh {
	rr := &RouteRefresh{Family: genFamily(r), Subtype: uint8(r.IntN(3))}
	if chance(r, 1, 8) {
		rr.Subtype = uint8(r.Uint32())
	}
	return rr
}

// mpReachView and mpUnreachView are the comparable forms of the MP
// attributes: NLRI as []NLRI (nil when empty).
type mpReachView struct {
	Family       Family
	NextHop      netip.Addr
	LinkLocal    netip.Addr
	OtherNextHop []byte
	NLRI         []NLRI
}

type mpUnreachView struct {
	Family    Family
	Withdrawn []NLRI
}

// updateView is the canonical, comparable form of an Update: prefixes as
// []NLRI, nil for every empty slice, every attribute field (whether or not its
// attribute is present, so stale values left by a reused Update show up), and
// the presence bits as the sorted list of type codes t with Has(t), for every
// t in 0..255 (so AS4_PATH and AS4_AGGREGATOR, which the decoder merges into
// ASPath and Aggregator and never marks present, must stay absent).
//
// reflect.DeepEqual on two views is the equality of round trips.
type updateView struct {
	Withdrawn        []NLRI
	NLRI             []NLRI
	Present          []uint8
	Origin           Origin
	ASPath           ASPath
	NextHop          netip.Addr
	MED              uint32
	LocalPref        uint32
	Aggregator       Aggregator
	Communities      []Community
	OriginatorID     netip.Addr
	ClusterList      []netip.Addr
	MPReach          mpReachView
	MPUnreach        mpUnreachView
	ExtCommunities   []ExtCommunity
	LargeCommunities []LargeCommunity
	OTC              uint32
	Unknown          []RawAttr
}

// nilIfEmpty returns a copy of s, or nil when s is empty.
func nilIfEmpty[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

// prefixList returns the prefixes of p, or nil.
func prefixList(p Prefixes) []NLRI { return nilIfEmpty(p.AppendTo(nil)) }

// canonASPath deep-copies p with nil for empty slices.
func canonASPath(p ASPath) ASPath {
	if len(p) == 0 {
		return nil
	}
	c := make(ASPath, len(p))
	for i, s := range p {
		c[i] = ASSegment{Type: s.Type, ASNs: nilIfEmpty(s.ASNs)}
	}
	return c
}

// viewOf returns the canonical view of u. It copies everything, so the view
// outlives u's buffers.
func viewOf(u *Update) updateView {
	a := &u.Attrs
	v := updateView{
		Withdrawn:        prefixList(u.Withdrawn),
		NLRI:             prefixList(u.NLRI),
		Origin:           a.Origin,
		ASPath:           canonASPath(a.ASPath),
		NextHop:          a.NextHop,
		MED:              a.MED,
		LocalPref:        a.LocalPref,
		Aggregator:       a.Aggregator,
		Communities:      nilIfEmpty(a.Communities),
		OriginatorID:     a.OriginatorID,
		ClusterList:      nilIfEmpty(a.ClusterList),
		MPReach:          mpReachView{a.MPReach.Family, a.MPReach.NextHop, a.MPReach.LinkLocal, nilIfEmpty(a.MPReach.OtherNextHop), prefixList(a.MPReach.NLRI)},
		MPUnreach:        mpUnreachView{a.MPUnreach.Family, prefixList(a.MPUnreach.Withdrawn)},
		ExtCommunities:   nilIfEmpty(a.ExtCommunities),
		LargeCommunities: nilIfEmpty(a.LargeCommunities),
		OTC:              a.OTC,
	}
	for t := range 256 {
		if a.Has(uint8(t)) {
			v.Present = append(v.Present, uint8(t))
		}
	}
	for _, x := range a.Unknown {
		v.Unknown = append(v.Unknown, RawAttr{Flags: x.Flags, Type: x.Type, Value: nilIfEmpty(x.Value)})
	}
	return v
}

// openView is the canonical, comparable form of an Open: Version 0 as 4, nil
// for every empty slice, and without Extended (whether the RFC 9072 format
// was used is a property of the encoding, checked on its own).
type openView struct {
	Version  uint8
	MyAS     uint16
	HoldTime uint16
	ID       netip.Addr
	Caps     Capabilities
}

// viewOfOpen returns the canonical view of o; it shares nothing with o.
func viewOfOpen(o *Open) openView {
	v := openView{Version: o.Version, MyAS: o.MyAS, HoldTime: o.HoldTime, ID: o.ID, Caps: canonCaps(&o.Caps)}
	if v.Version == 0 {
		v.Version = 4
	}
	return v
}

// canonCaps deep-copies c with nil for empty slices.
func canonCaps(c *Capabilities) Capabilities {
	v := *c
	v.Multiprotocol = nilIfEmpty(c.Multiprotocol)
	v.LongLivedGR = nilIfEmpty(c.LongLivedGR)
	v.AddPath = nilIfEmpty(c.AddPath)
	v.ExtendedNextHop = nilIfEmpty(c.ExtendedNextHop)
	if g := c.GracefulRestart; g != nil {
		v.GracefulRestart = &GracefulRestart{Restarting: g.Restarting, Notification: g.Notification, Time: g.Time, Families: nilIfEmpty(g.Families)}
	}
	if f := c.FQDN; f != nil {
		v.FQDN = &FQDN{Hostname: f.Hostname, Domain: f.Domain}
	}
	v.Unknown = nil
	for _, u := range c.Unknown {
		v.Unknown = append(v.Unknown, RawCapability{Code: u.Code, Value: nilIfEmpty(u.Value)})
	}
	return v
}

// diffFields lists, one per line, the top-level fields in which two values
// of the same struct type differ (for test failure messages).
func diffFields(want, got any) string {
	wv, gv := reflect.ValueOf(want), reflect.ValueOf(got)
	var b strings.Builder
	for i := range wv.NumField() {
		w, g := wv.Field(i).Interface(), gv.Field(i).Interface()
		if !reflect.DeepEqual(w, g) {
			fmt.Fprintf(&b, "\n  %s:\n    want %s\n    got  %s", wv.Type().Field(i).Name, diffClip(fmt.Sprintf("%+v", w)), diffClip(fmt.Sprintf("%+v", g)))
		}
	}
	return b.String()
}

func diffClip(s string) string {
	if len(s) > 600 {
		return s[:600] + "…"
	}
	return s
}
