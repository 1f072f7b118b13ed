package wire

// Side-by-side benchmarks of this codec ("bgplb") and GoBGP's packet/bgp
// ("gobgp") on the same bytes, in the same run. Compare with
//
//	go test -run '^$' -bench . -benchmem -count 10 ./bgp/wire/ > new.txt
//	benchstat new.txt
//
// Each sub-benchmark pair does the same work: both decoders yield every
// prefix as a netip.Prefix and read every attribute value; both encoders
// produce the same message bytes (TestBenchFixtures checks that).
//
// Fixtures use documentation and benchmarking address space only:
// 198.18.0.0/15 (RFC 2544) for the IPv4 NLRI, 203.0.113.0/24 (RFC 5737) for
// next hops and identifiers, 2001:db8::/32 (RFC 3849) for IPv6, and private
// AS numbers 64512-64514 (RFC 6996). Nothing is ever sent on a network.

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

const benchPrefixes = 1000

// Fixture values shared by the benchmarks and the allocation tests.
var (
	benchNextHop4  = netip.MustParseAddr("203.0.113.1")
	benchNextHop6  = netip.MustParseAddr("2001:db8:ffff::1")
	benchLinkLocal = netip.MustParseAddr("fe80::1")
	benchASPath    = []uint32{64512, 64513, 64514}
	benchComms     = []uint32{64512<<16 | 100, 64512<<16 | 200, 64513<<16 | 300, uint32(CommunityNoExport)}
	benchLocalPref = uint32(100)
	benchOpts      = Options{AS4: true, ExtendedMessage: true}
	benchGoOpt     = &bgp.MarshallingOption{ExtendedMessage: true}
)

// benchV4Prefixes returns n distinct IPv4 /32s from 198.18.0.0/15.
func benchV4Prefixes(n int) []netip.Prefix {
	ps := make([]netip.Prefix, n)
	for i := range ps {
		ps[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18 + byte(i>>16&1), byte(i >> 8), byte(i)}), 32)
	}
	return ps
}

// benchV6Prefixes returns n distinct IPv6 /128s from 2001:db8::/32.
func benchV6Prefixes(n int) []netip.Prefix {
	ps := make([]netip.Prefix, n)
	for i := range ps {
		a := [16]byte{0x20, 0x01, 0x0d, 0xb8}
		binary.BigEndian.PutUint32(a[12:], uint32(i+1))
		ps[i] = netip.PrefixFrom(netip.AddrFrom16(a), 128)
	}
	return ps
}

func benchNLRI(ps []netip.Prefix) []NLRI {
	n := make([]NLRI, len(ps))
	for i, p := range ps {
		n[i] = NLRI{Prefix: p}
	}
	return n
}

// The fixtures are built by hand from the RFC layouts, independently of both
// codecs, so neither encoder defines what the other is measured on.

// benchRawAttr appends a path attribute, with the extended length flag only when
// the value needs it.
func benchRawAttr(b []byte, flags, typ uint8, v []byte) []byte {
	if len(v) > 255 {
		b = append(b, flags|FlagExtLen, typ)
		b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	} else {
		b = append(b, flags, typ, byte(len(v)))
	}
	return append(b, v...)
}

// benchRawMessage wraps a body in a header.
func benchRawMessage(typ uint8, body []byte) []byte {
	m := bytes.Repeat([]byte{0xff}, 16)
	m = binary.BigEndian.AppendUint16(m, uint16(HeaderLen+len(body)))
	m = append(m, typ)
	return append(m, body...)
}

// benchRawUpdate builds an UPDATE message from its three fields.
func benchRawUpdate(withdrawn, attrs, nlri []byte) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint16(b, uint16(len(withdrawn)))
	b = append(b, withdrawn...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(attrs)))
	b = append(b, attrs...)
	b = append(b, nlri...)
	return benchRawMessage(TypeUpdate, b)
}

// benchRawPrefixes encodes prefixes as (length, significant bytes) pairs.
func benchRawPrefixes(ps []netip.Prefix) []byte {
	var b []byte
	for _, p := range ps {
		a := p.Addr().AsSlice()
		b = append(b, byte(p.Bits()))
		b = append(b, a[:(p.Bits()+7)/8]...)
	}
	return b
}

func benchRawU32s(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

// benchRawTypicalAttrs is ORIGIN, AS_PATH (4-octet), NEXT_HOP (unless nh is
// invalid), LOCAL_PREF and COMMUNITIES, in type code order.
func benchRawTypicalAttrs(nh netip.Addr) []byte {
	var b []byte
	b = benchRawAttr(b, wellKnown, AttrOrigin, []byte{byte(OriginIGP)})
	b = benchRawAttr(b, wellKnown, AttrASPath, append([]byte{ASSequence, byte(len(benchASPath))}, benchRawU32s(benchASPath...)...))
	if nh.IsValid() {
		b = benchRawAttr(b, wellKnown, AttrNextHop, nh.AsSlice())
	}
	b = benchRawAttr(b, wellKnown, AttrLocalPref, benchRawU32s(benchLocalPref))
	b = benchRawAttr(b, optTrans, AttrCommunities, benchRawU32s(benchComms...))
	return b
}

// benchTypicalUpdate is the typical UPDATE: 1,000 IPv4 /32 NLRI with ORIGIN,
// AS_PATH, NEXT_HOP, LOCAL_PREF and COMMUNITIES, one extended message.
func benchTypicalUpdate() []byte {
	return benchRawUpdate(nil, benchRawTypicalAttrs(benchNextHop4), benchRawPrefixes(benchV4Prefixes(benchPrefixes)))
}

// benchIPv6Update carries 1,000 IPv6 /128 in MP_REACH_NLRI (global and
// link-local next hop) with the same other attributes.
func benchIPv6Update() []byte {
	mp := binary.BigEndian.AppendUint16(nil, AFIIPv6)
	mp = append(mp, SAFIUnicast, 32)
	mp = append(mp, benchNextHop6.AsSlice()...)
	mp = append(mp, benchLinkLocal.AsSlice()...)
	mp = append(mp, 0)
	mp = append(mp, benchRawPrefixes(benchV6Prefixes(benchPrefixes))...)
	attrs := benchRawAttr(nil, optNonTrans, AttrMPReach, mp)
	attrs = append(attrs, benchRawTypicalAttrs(netip.Addr{})...)
	return benchRawUpdate(nil, attrs, nil)
}

// benchOpenMsg is an OPEN as a modern speaker sends it: multiprotocol IPv4
// and IPv6 unicast, route refresh, enhanced route refresh, extended message,
// graceful restart, 4-octet AS, ADD-PATH and the hostname.
func benchOpenMsg() []byte {
	capa := func(b []byte, code uint8, v ...byte) []byte { return append(append(b, code, byte(len(v))), v...) }
	var c []byte
	c = capa(c, CapMultiprotocol, 0, 1, 0, 1)
	c = capa(c, CapMultiprotocol, 0, 2, 0, 1)
	c = capa(c, CapRouteRefresh)
	c = capa(c, CapEnhancedRouteRefresh)
	c = capa(c, CapExtendedMessage)
	c = capa(c, CapGracefulRestart, 0x40, 120, 0, 1, 1, 0x80, 0, 2, 1, 0x80)
	c = capa(c, CapAS4, benchRawU32s(4200000001)...)
	c = capa(c, CapAddPath, 0, 1, 1, 3, 0, 2, 1, 3)
	c = capa(c, CapFQDN, 5, 'r', 't', 'r', '-', '1', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e')
	body := []byte{4}
	body = binary.BigEndian.AppendUint16(body, ASTrans)
	body = binary.BigEndian.AppendUint16(body, 90)
	body = append(body, benchNextHop4.AsSlice()...)
	body = append(body, byte(2+len(c)), optParamCapabilities, byte(len(c)))
	body = append(body, c...)
	return benchRawMessage(TypeOpen, body)
}

// benchAttrs is the typical UPDATE's attributes, less NEXT_HOP, as a speaker
// keeps them for AppendReach.
func benchAttrs() *Attrs {
	a := new(Attrs)
	a.Origin = OriginIGP
	a.Set(AttrOrigin)
	a.ASPath = ASPath{{Type: ASSequence, ASNs: append([]uint32(nil), benchASPath...)}}
	a.Set(AttrASPath)
	a.LocalPref = benchLocalPref
	a.Set(AttrLocalPref)
	for _, c := range benchComms {
		a.Communities = append(a.Communities, Community(c))
	}
	a.Set(AttrCommunities)
	return a
}

// benchMix folds an address into the digest x.
func benchMix(x uint64, a netip.Addr) uint64 {
	if a.Is4() {
		b := a.As4()
		return x + uint64(binary.BigEndian.Uint32(b[:]))
	}
	b := a.As16()
	return x + binary.BigEndian.Uint64(b[:8]) + binary.BigEndian.Uint64(b[8:])
}

// benchCursor is how both walkers consume an announced prefix: it must equal
// the next one expected. A comparison costs about a nanosecond, so the walk
// measures the decoders rather than the consumer, and proves every decoded
// prefix right on both sides.
type benchCursor struct {
	want []netip.Prefix
	k, n int
}

func (c *benchCursor) see(p netip.Prefix) {
	if c.k < len(c.want) && p == c.want[c.k] {
		c.n++
	}
	c.k++
}

// benchAttrDigest reads every attribute value of a.
func benchAttrDigest(a *Attrs) (x uint64) {
	x = uint64(a.Origin) + uint64(a.MED) + uint64(a.LocalPref) + uint64(a.OTC)
	for _, s := range a.ASPath {
		x += uint64(s.Type)
		for _, as := range s.ASNs {
			x += uint64(as)
		}
	}
	if a.NextHop.IsValid() {
		x += uint64(a.NextHop.As4()[3])
	}
	for _, c := range a.Communities {
		x += uint64(c)
	}
	for _, c := range a.ExtCommunities {
		x += binary.BigEndian.Uint64(c[:])
	}
	for _, c := range a.LargeCommunities {
		x += uint64(c.Global) + uint64(c.Local1) + uint64(c.Local2)
	}
	for _, c := range a.ClusterList {
		x += uint64(c.As4()[3])
	}
	if a.OriginatorID.IsValid() {
		x += uint64(a.OriginatorID.As4()[3])
	}
	if a.Aggregator.Addr.IsValid() {
		x += uint64(a.Aggregator.AS) + uint64(a.Aggregator.Addr.As4()[3])
	}
	for _, r := range a.Unknown {
		x += uint64(r.Type) + uint64(len(r.Value))
	}
	if a.Has(AttrMPReach) {
		x = benchMix(x, a.MPReach.NextHop)
		if a.MPReach.LinkLocal.IsValid() {
			x = benchMix(x, a.MPReach.LinkLocal)
		}
	}
	return x
}

// benchWalkOurs reads every attribute value of u and every prefix: announced
// ones against want (n counts those that match, in order), withdrawn ones
// into the digest. With buf it decodes the prefixes in bulk into *buf (the
// fast way, reusing the slice); with buf nil it uses PrefixIter.
func benchWalkOurs(u *Update, want []netip.Prefix, buf *[]NLRI) (n int, x uint64) {
	x = benchAttrDigest(&u.Attrs)
	c := benchCursor{want: want}
	for _, p := range [...]Prefixes{u.Attrs.MPReach.NLRI, u.NLRI} {
		if buf != nil {
			*buf = p.AppendTo((*buf)[:0])
			for i := range *buf {
				c.see((*buf)[i].Prefix)
			}
			continue
		}
		it := p.Iter()
		for e, ok := it.Next(); ok; e, ok = it.Next() {
			c.see(e.Prefix)
		}
	}
	for _, p := range [...]Prefixes{u.Attrs.MPUnreach.Withdrawn, u.Withdrawn} {
		it := p.Iter()
		for e, ok := it.Next(); ok; e, ok = it.Next() {
			x = benchMix(x+uint64(e.Prefix.Bits()), e.Prefix.Addr())
		}
	}
	return c.n, x
}

// benchWalkGoBGP does the same for a GoBGP UPDATE.
func benchWalkGoBGP(m *bgp.BGPMessage, want []netip.Prefix) (n int, x uint64) {
	u, ok := m.Body.(*bgp.BGPUpdate)
	if !ok {
		return 0, 0
	}
	c := benchCursor{want: want}
	announce := func(nl []bgp.PathNLRI) {
		for _, p := range nl {
			if q, ok := p.NLRI.(*bgp.IPAddrPrefix); ok {
				c.see(q.Prefix)
			}
		}
	}
	withdraw := func(nl []bgp.PathNLRI) {
		for _, p := range nl {
			if q, ok := p.NLRI.(*bgp.IPAddrPrefix); ok {
				x = benchMix(x+uint64(q.Prefix.Bits()), q.Prefix.Addr())
			}
		}
	}
	for _, pa := range u.PathAttributes {
		switch a := pa.(type) {
		case *bgp.PathAttributeOrigin:
			x += uint64(a.Value)
		case *bgp.PathAttributeAsPath:
			for _, s := range a.Value {
				x += uint64(s.GetType())
				for _, as := range s.GetAS() {
					x += uint64(as)
				}
			}
		case *bgp.PathAttributeNextHop:
			x += uint64(a.Value.As4()[3])
		case *bgp.PathAttributeLocalPref:
			x += uint64(a.Value)
		case *bgp.PathAttributeCommunities:
			for _, c := range a.Value {
				x += uint64(c)
			}
		case *bgp.PathAttributeMpReachNLRI:
			x = benchMix(x, a.Nexthop)
			if a.LinkLocalNexthop.IsValid() {
				x = benchMix(x, a.LinkLocalNexthop)
			}
			announce(a.Value)
		case *bgp.PathAttributeMpUnreachNLRI:
			withdraw(a.Value)
		}
	}
	withdraw(u.WithdrawnRoutes)
	announce(u.NLRI)
	return c.n, x
}

// benchSink keeps results alive.
var benchSink uint64

// benchOurPrefixes lists the prefixes our decoder finds in an UPDATE message.
func benchOurPrefixes(tb testing.TB, msg []byte, o *Options) ([]netip.Prefix, *Update) {
	tb.Helper()
	h, err := ParseHeader(msg, o)
	if err != nil {
		tb.Fatal(err)
	}
	u := new(Update)
	if err := DecodeUpdate(u, msg[HeaderLen:h.Length], o); err != nil {
		tb.Fatal(err)
	}
	var ps []netip.Prefix
	for _, v := range [...]Prefixes{u.NLRI, u.Attrs.MPReach.NLRI} {
		for n := range v.All() {
			ps = append(ps, n.Prefix)
		}
	}
	return ps, u
}

// benchGoPrefixes lists the prefixes GoBGP finds in an UPDATE message.
func benchGoPrefixes(tb testing.TB, msg []byte) []netip.Prefix {
	tb.Helper()
	m, err := bgp.ParseBGPMessage(msg, benchGoOpt)
	if err != nil {
		tb.Fatal(err)
	}
	u := m.Body.(*bgp.BGPUpdate)
	var ps []netip.Prefix
	add := func(nl []bgp.PathNLRI) {
		for _, p := range nl {
			ps = append(ps, p.NLRI.(*bgp.IPAddrPrefix).Prefix)
		}
	}
	add(u.NLRI)
	for _, pa := range u.PathAttributes {
		if mp, ok := pa.(*bgp.PathAttributeMpReachNLRI); ok {
			add(mp.Value)
		}
	}
	return ps
}

// benchCheckBothSee fails unless both decoders find exactly want in msg.
func benchCheckBothSee(tb testing.TB, msg []byte, want []netip.Prefix) {
	tb.Helper()
	ours, _ := benchOurPrefixes(tb, msg, &benchOpts)
	theirs := benchGoPrefixes(tb, msg)
	if len(ours) != len(want) || len(theirs) != len(want) {
		tb.Fatalf("bgplb saw %d prefixes, gobgp %d, want %d", len(ours), len(theirs), len(want))
	}
	for i := range want {
		if ours[i] != want[i] || theirs[i] != want[i] {
			tb.Fatalf("prefix %d: bgplb %v, gobgp %v, want %v", i, ours[i], theirs[i], want[i])
		}
	}
}

// benchGoTypicalAttrs builds GoBGP's attributes of the typical UPDATE, in the
// same (type code) order as ours.
func benchGoTypicalAttrs(tb testing.TB) []bgp.PathAttributeInterface {
	nh, err := bgp.NewPathAttributeNextHop(benchNextHop4)
	if err != nil {
		tb.Fatal(err)
	}
	return []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(uint8(OriginIGP)),
		bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, benchASPath)}),
		nh,
		bgp.NewPathAttributeLocalPref(benchLocalPref),
		bgp.NewPathAttributeCommunities(benchComms),
	}
}

// benchGoNLRI builds GoBGP's NLRI objects from netip values, as a speaker does.
func benchGoNLRI(tb testing.TB, ps []netip.Prefix) []bgp.PathNLRI {
	nl := make([]bgp.PathNLRI, len(ps))
	for i, p := range ps {
		x, err := bgp.NewIPAddrPrefix(p)
		if err != nil {
			tb.Fatal(err)
		}
		nl[i] = bgp.PathNLRI{NLRI: x}
	}
	return nl
}

// TestBenchFixtures checks that the benchmarks compare like with like: both
// decoders find the same 1,000 prefixes in each fixture, and both encoders
// produce exactly the typical UPDATE's bytes.
func TestBenchFixtures(t *testing.T) {
	v4, v6 := benchV4Prefixes(benchPrefixes), benchV6Prefixes(benchPrefixes)
	typical, ipv6 := benchTypicalUpdate(), benchIPv6Update()
	if len(typical) <= MaxLen {
		t.Fatalf("typical UPDATE of %d bytes does not need extended messages", len(typical))
	}
	benchCheckBothSee(t, typical, v4)
	benchCheckBothSee(t, ipv6, v6)

	_, u := benchOurPrefixes(t, typical, &benchOpts)
	a := &u.Attrs
	if a.ASPath.String() != "64512 64513 64514" || a.NextHop != benchNextHop4 || a.LocalPref != benchLocalPref ||
		len(a.Communities) != len(benchComms) || !a.HasCommunity(CommunityNoExport) {
		t.Fatalf("typical attrs decoded as %+v", a)
	}
	_, u = benchOurPrefixes(t, ipv6, &benchOpts)
	if m := u.Attrs.MPReach; m.NextHop != benchNextHop6 || m.LinkLocal != benchLinkLocal || m.Family != IPv6Unicast {
		t.Fatalf("MP_REACH decoded as %+v", m)
	}
	// Both walkers must agree, so the decode benchmarks do the same work.
	for _, msg := range [][]byte{typical, ipv6} {
		_, u := benchOurPrefixes(t, msg, &benchOpts)
		gm, err := bgp.ParseBGPMessage(msg, benchGoOpt)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := benchOurPrefixes(t, msg, &benchOpts)
		var buf []NLRI
		n1, x1 := benchWalkOurs(u, want, nil)
		n3, x3 := benchWalkOurs(u, want, &buf)
		n2, x2 := benchWalkGoBGP(gm, want)
		if n1 != benchPrefixes || n1 != n2 || x1 != x2 || n3 != n1 || x3 != x1 {
			t.Errorf("walks differ: bgplb %d prefixes digest %#x, gobgp %d prefixes digest %#x", n1, x1, n2, x2)
		}
	}

	e := Encoder{Options: benchOpts}
	got, n, err := e.AppendReach(nil, IPv4Unicast, benchNextHop4, netip.Addr{}, benchAttrs(), benchNLRI(v4))
	if err != nil || n != 1 {
		t.Fatalf("AppendReach: %d messages, %v", n, err)
	}
	if !bytes.Equal(got, typical) {
		t.Errorf("bgplb encoder output differs from the fixture:\n got %x\nwant %x", got[:80], typical[:80])
	}
	gobytes, err := bgp.NewBGPUpdateMessage(nil, benchGoTypicalAttrs(t), benchGoNLRI(t, v4)).Serialize(benchGoOpt)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gobytes, typical) {
		t.Errorf("gobgp encoder output differs from the fixture:\n got %x\nwant %x", gobytes[:80], typical[:80])
	}

	open := benchOpenMsg()
	h, err := ParseHeader(open, nil)
	if err != nil {
		t.Fatal(err)
	}
	o, err := DecodeOpen(open[HeaderLen:h.Length])
	if err != nil {
		t.Fatal(err)
	}
	if o.AS() != 4200000001 || len(o.Caps.Multiprotocol) != 2 || !o.Caps.ExtendedMessage || len(o.Caps.AddPath) != 2 ||
		o.Caps.GracefulRestart == nil || o.Caps.FQDN == nil || o.Caps.FQDN.Hostname != "rtr-1" {
		t.Fatalf("OPEN decoded as %+v", o.Caps)
	}
	gm, err := bgp.ParseBGPMessage(open)
	if err != nil {
		t.Fatal(err)
	}
	if caps := gm.Body.(*bgp.BGPOpen).OptParams[0].(*bgp.OptionParameterCapability).Capability; len(caps) != 9 {
		t.Fatalf("gobgp saw %d capabilities, want 9", len(caps))
	}
}

// benchDecode runs the decode pair on an UPDATE carrying want prefixes.
func benchDecode(b *testing.B, msg []byte, want []netip.Prefix) {
	benchCheckBothSee(b, msg, want)
	perPrefix := func(b *testing.B, iters int) {
		if iters > 0 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(iters*len(want)), "ns/prefix")
		}
	}
	ours := func(bulk bool) func(b *testing.B) {
		return func(b *testing.B) {
			o := benchOpts
			u := new(Update)
			var buf []NLRI
			bp := &buf
			if !bulk {
				bp = nil
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			iters := 0
			for b.Loop() {
				h, err := ParseHeader(msg, &o)
				if err != nil {
					b.Fatal(err)
				}
				if err := DecodeUpdate(u, msg[HeaderLen:h.Length], &o); err != nil {
					b.Fatal(err)
				}
				n, x := benchWalkOurs(u, want, bp)
				if n != len(want) {
					b.Fatalf("walked %d prefixes", n)
				}
				benchSink += x
				iters++
			}
			perPrefix(b, iters)
		}
	}
	// bgplb decodes the prefixes in bulk into a reused slice, the way a
	// RIB takes a whole UPDATE; bgplb-iter walks them one by one.
	b.Run("bgplb", ours(true))
	b.Run("bgplb-iter", ours(false))
	b.Run("gobgp", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(msg)))
		iters := 0
		for b.Loop() {
			m, err := bgp.ParseBGPMessage(msg, benchGoOpt)
			if err != nil {
				b.Fatal(err)
			}
			n, x := benchWalkGoBGP(m, want)
			if n != len(want) {
				b.Fatalf("walked %d prefixes", n)
			}
			benchSink += x
			iters++
		}
		perPrefix(b, iters)
	})
}

// BenchmarkDecodeUpdate: the typical UPDATE, 1,000 IPv4 /32 NLRI.
func BenchmarkDecodeUpdate(b *testing.B) {
	benchDecode(b, benchTypicalUpdate(), benchV4Prefixes(benchPrefixes))
}

// BenchmarkDecodeUpdateIPv6: 1,000 IPv6 /128 in MP_REACH_NLRI.
func BenchmarkDecodeUpdateIPv6(b *testing.B) {
	benchDecode(b, benchIPv6Update(), benchV6Prefixes(benchPrefixes))
}

// benchEncode runs the encode pair for the typical UPDATE. With prebuilt,
// GoBGP's attribute and NLRI objects are made once; otherwise they are made
// from the netip values in each iteration, as a speaker holding routes in
// its own form must (ours always reads the caller's []NLRI and *Attrs).
func benchEncode(b *testing.B, prebuilt bool) {
	want := benchTypicalUpdate()
	ps := benchV4Prefixes(benchPrefixes)
	b.Run("bgplb", func(b *testing.B) {
		e := &Encoder{Options: benchOpts}
		a, nlri := benchAttrs(), benchNLRI(ps)
		buf := make([]byte, 0, 2*len(want))
		out, _, _ := e.AppendReach(buf, IPv4Unicast, benchNextHop4, netip.Addr{}, a, nlri)
		if !bytes.Equal(out, want) {
			b.Fatal("bgplb encodes other bytes than the fixture")
		}
		benchCheckBothSee(b, out, ps)
		b.ReportAllocs()
		b.SetBytes(int64(len(want)))
		for b.Loop() {
			var n int
			var err error
			buf, n, err = e.AppendReach(buf[:0], IPv4Unicast, benchNextHop4, netip.Addr{}, a, nlri)
			if err != nil || n != 1 {
				b.Fatal(n, err)
			}
		}
	})
	b.Run("gobgp", func(b *testing.B) {
		attrs, nlri := benchGoTypicalAttrs(b), benchGoNLRI(b, ps)
		out, err := bgp.NewBGPUpdateMessage(nil, attrs, nlri).Serialize(benchGoOpt)
		if err != nil {
			b.Fatal(err)
		}
		if !bytes.Equal(out, want) {
			b.Fatal("gobgp encodes other bytes than the fixture")
		}
		benchCheckBothSee(b, out, ps)
		b.ReportAllocs()
		b.SetBytes(int64(len(want)))
		for b.Loop() {
			if !prebuilt {
				attrs = benchGoTypicalAttrs(b)
				nlri = benchGoNLRI(b, ps)
			}
			out, err := bgp.NewBGPUpdateMessage(nil, attrs, nlri).Serialize(benchGoOpt)
			if err != nil || len(out) != len(want) {
				b.Fatal(len(out), err)
			}
		}
	})
}

// BenchmarkEncodeUpdate: the typical UPDATE from routes in netip form.
func BenchmarkEncodeUpdate(b *testing.B) { benchEncode(b, false) }

// BenchmarkEncodeUpdatePrebuilt: the same, with GoBGP's objects made once.
func BenchmarkEncodeUpdatePrebuilt(b *testing.B) { benchEncode(b, true) }

func BenchmarkDecodeOpen(b *testing.B) {
	msg := benchOpenMsg()
	b.Run("bgplb", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			h, err := ParseHeader(msg, nil)
			if err != nil {
				b.Fatal(err)
			}
			o, err := DecodeOpen(msg[HeaderLen:h.Length])
			if err != nil {
				b.Fatal(err)
			}
			benchSink += uint64(o.AS()) + uint64(len(o.Caps.Multiprotocol))
		}
	})
	b.Run("gobgp", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			m, err := bgp.ParseBGPMessage(msg)
			if err != nil {
				b.Fatal(err)
			}
			benchSink += uint64(len(m.Body.(*bgp.BGPOpen).OptParams))
		}
	})
}

// BenchmarkParseHeader. GoBGP's header decode checks the marker and a
// minimum length only; ours also checks the type and its length bounds.
func BenchmarkParseHeader(b *testing.B) {
	msg := benchTypicalUpdate()
	b.Run("bgplb", func(b *testing.B) {
		o := benchOpts
		b.ReportAllocs()
		for b.Loop() {
			h, err := ParseHeader(msg, &o)
			if err != nil {
				b.Fatal(err)
			}
			benchSink += uint64(h.Length)
		}
	})
	b.Run("gobgp", func(b *testing.B) {
		var h bgp.BGPHeader
		b.ReportAllocs()
		for b.Loop() {
			if err := h.DecodeFromBytes(msg, benchGoOpt); err != nil {
				b.Fatal(err)
			}
			benchSink += uint64(h.Len)
		}
	})
}
