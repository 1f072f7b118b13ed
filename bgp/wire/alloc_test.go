package wire

// The "allocates nothing" claims of the package documentation, as tests. Each
// one warms the reused state (Update, Encoder, output buffer) first, then
// requires testing.AllocsPerRun to report exactly zero. The fixtures and
// benchWalkOurs, which reads every prefix and every attribute value, are in
// bench_test.go.

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

const allocRuns = 100

// allocRequireNone fails t unless f allocates nothing once warm.
func allocRequireNone(t *testing.T, what string, f func()) {
	t.Helper()
	for range 3 {
		f()
	}
	if n := testing.AllocsPerRun(allocRuns, f); n != 0 {
		t.Errorf("%s: %v allocations per run, want 0", what, n)
	}
}

// allocDecodeAndWalk returns a closure that decodes msg into u and reads it all,
// failing t if the decode errs or finds other than want prefixes.
func allocDecodeAndWalk(t *testing.T, u *Update, msg []byte, o *Options, want int) func() {
	return func() {
		h, err := ParseHeader(msg, o)
		if err != nil {
			t.Fatal(err)
		}
		if err := DecodeUpdate(u, msg[HeaderLen:h.Length], o); err != nil {
			t.Fatal(err)
		}
		n, x := benchWalkOurs(u, nil, nil)
		if n != 0 || x == 0 {
			t.Fatal("walk read nothing")
		}
		if got := u.NLRI.Len() + u.Attrs.MPReach.NLRI.Len(); got != want {
			t.Fatalf("%d announced prefixes, want %d", got, want)
		}
		benchSink += x
	}
}

// At the time of writing the four DecodeUpdate tests fail with 1 allocation
// (24 B): DecodeUpdate's decoder value (update.go, "d := decoder{...}") is
// moved to the heap because (*decoder).attr passes it to spec.decode, an
// indirect call through the attrSpecs table, and escape analysis must assume
// the arguments of an indirect call escape. See `go build -gcflags=-m=2`.
func TestAllocDecodeUpdateTypical(t *testing.T) {
	u := new(Update)
	allocRequireNone(t, "ParseHeader + DecodeUpdate + walk of the typical UPDATE",
		allocDecodeAndWalk(t, u, benchTypicalUpdate(), &benchOpts, benchPrefixes))
}

func TestAllocDecodeUpdateIPv6(t *testing.T) {
	u := new(Update)
	allocRequireNone(t, "ParseHeader + DecodeUpdate + walk of 1,000 IPv6 /128 in MP_REACH_NLRI",
		allocDecodeAndWalk(t, u, benchIPv6Update(), &benchOpts, benchPrefixes))
}

// allocMixedV4 and allocMixedV6 are prefixes of assorted lengths, masked.
func allocMixedV4(n int) []NLRI {
	out := make([]NLRI, n)
	for i := range out {
		bits := []int{24, 25, 22, 32, 16, 28}[i%6]
		a := netip.AddrFrom4([4]byte{198, 18 + byte(i>>8&1), byte(i), 0x80})
		out[i] = NLRI{Prefix: netip.PrefixFrom(a, bits).Masked()}
	}
	return out
}

func allocMixedV6(n int) []NLRI {
	out := make([]NLRI, n)
	for i := range out {
		bits := []int{48, 64, 56, 128, 127, 33}[i%6]
		a := [16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 8), byte(i), 0xaa, 0xbb, 15: 1}
		out[i] = NLRI{Prefix: netip.PrefixFrom(netip.AddrFrom16(a), bits).Masked()}
	}
	return out
}

func allocPrefixes(t *testing.T, f Family, nlri []NLRI) Prefixes {
	t.Helper()
	p, err := NewPrefixes(f, false, nlri)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// allocFullAttrs sets every attribute the codec knows, for an iBGP session.
func allocFullAttrs(t *testing.T) *Attrs {
	a := new(Attrs)
	set := func(ts ...uint8) {
		for _, x := range ts {
			a.Set(x)
		}
	}
	a.Origin = OriginEGP
	a.ASPath = ASPath{
		{Type: ASConfedSequence, ASNs: []uint32{64600, 64601}},
		{Type: ASSequence, ASNs: []uint32{64512, 64513, 4200000001}},
		{Type: ASSet, ASNs: []uint32{64520, 4200000002}},
	}
	a.NextHop = benchNextHop4
	a.MED = 50
	a.LocalPref = 200
	a.Aggregator = Aggregator{AS: 4200000003, Addr: netip.MustParseAddr("203.0.113.9")}
	a.Communities = []Community{NewCommunity(64512, 1), NewCommunity(64512, 2), CommunityNoExport}
	a.OriginatorID = netip.MustParseAddr("203.0.113.7")
	a.ClusterList = []netip.Addr{netip.MustParseAddr("203.0.113.8"), netip.MustParseAddr("203.0.113.10")}
	a.MPReach = MPReach{Family: IPv6Unicast, NextHop: benchNextHop6, LinkLocal: benchLinkLocal,
		NLRI: allocPrefixes(t, IPv6Unicast, allocMixedV6(60))}
	a.MPUnreach = MPUnreach{Family: IPv6Unicast, Withdrawn: allocPrefixes(t, IPv6Unicast, allocMixedV6(20))}
	a.ExtCommunities = []ExtCommunity{NewLinkBandwidth(64512, 1.25e9, false), {0x00, 0x02, 0xfc, 0x00, 0, 0, 0, 7}}
	a.LargeCommunities = []LargeCommunity{{4200000001, 1, 2}, {4200000001, 3, 4}}
	a.OTC = 64512
	a.Unknown = []RawAttr{
		{Flags: optTrans, Type: 200, Value: []byte{1, 2, 3}},
		{Flags: optTrans, Type: 201, Value: make([]byte, 300)}, // extended length
		{Flags: optNonTrans, Type: 202, Value: []byte{9}},      // ignored on decode
	}
	set(AttrOrigin, AttrASPath, AttrNextHop, AttrMED, AttrLocalPref, AttrAtomicAggregate, AttrAggregator,
		AttrCommunities, AttrOriginatorID, AttrClusterList, AttrMPReach, AttrMPUnreach, AttrExtCommunities,
		AttrLargeCommunity, AttrOTC)
	return a
}

func TestAllocDecodeUpdateAllAttributes(t *testing.T) {
	o := Options{AS4: true}
	src := &Update{
		Withdrawn: allocPrefixes(t, IPv4Unicast, allocMixedV4(30)),
		NLRI:      allocPrefixes(t, IPv4Unicast, allocMixedV4(90)),
		Attrs:     *allocFullAttrs(t),
	}
	msg, err := AppendUpdate(nil, src, &o)
	if err != nil {
		t.Fatal(err)
	}
	// Check the message really carries all of it.
	_, u := benchOurPrefixes(t, msg, &o)
	a := &u.Attrs
	for _, ty := range []uint8{AttrOrigin, AttrASPath, AttrNextHop, AttrMED, AttrLocalPref, AttrAtomicAggregate,
		AttrAggregator, AttrCommunities, AttrOriginatorID, AttrClusterList, AttrMPReach, AttrMPUnreach,
		AttrExtCommunities, AttrLargeCommunity, AttrOTC} {
		if !a.Has(ty) {
			t.Errorf("decoded UPDATE lacks %s", AttrTypeString(ty))
		}
	}
	if a.ASPath.String() != src.Attrs.ASPath.String() || len(a.Unknown) != 2 || len(a.Unknown[1].Value) != 300 ||
		a.MPReach.LinkLocal != benchLinkLocal || a.MPReach.NLRI.Len() != 60 || a.MPUnreach.Withdrawn.Len() != 20 ||
		u.Withdrawn.Len() != 30 || u.NLRI.Len() != 90 || len(a.ClusterList) != 2 || len(a.ExtCommunities) != 2 {
		t.Fatalf("decoded %+v", a)
	}

	u = new(Update)
	allocRequireNone(t, "DecodeUpdate + walk of an UPDATE with every attribute",
		allocDecodeAndWalk(t, u, msg, &o, 150))
}

// allocTwoOctetUpdate is an UPDATE from a 2-octet AS session: AS_PATH with
// AS_TRANS, one AS prepended by an OLD speaker after AS4_PATH was made, and
// AGGREGATOR / AS4_AGGREGATOR. It is built by hand, as our encoder never
// produces the prepend.
func allocTwoOctetUpdate(nlri []netip.Prefix) []byte {
	seg := func(b []byte, typ uint8, asLen int, asns ...uint32) []byte {
		b = append(b, typ, byte(len(asns)))
		for _, as := range asns {
			if asLen == 2 {
				b = binary.BigEndian.AppendUint16(b, uint16(as))
			} else {
				b = binary.BigEndian.AppendUint32(b, as)
			}
		}
		return b
	}
	var path, path4 []byte
	path = seg(path, ASConfedSequence, 2, 64600)
	path = seg(path, ASSequence, 2, 64999, 64512, ASTrans, 64513)
	path = seg(path, ASSet, 2, ASTrans, 64514)
	path4 = seg(path4, ASSequence, 4, 64512, 4200000001, 64513)
	path4 = seg(path4, ASSet, 4, 4200000002, 64514)
	agg := append(binary.BigEndian.AppendUint16(nil, ASTrans), 192, 0, 2, 9)
	agg4 := append(binary.BigEndian.AppendUint32(nil, 4200000003), 192, 0, 2, 9)

	var b []byte
	b = benchRawAttr(b, wellKnown, AttrOrigin, []byte{byte(OriginIGP)})
	b = benchRawAttr(b, wellKnown, AttrASPath, path)
	b = benchRawAttr(b, wellKnown, AttrNextHop, benchNextHop4.AsSlice())
	b = benchRawAttr(b, wellKnown, AttrLocalPref, benchRawU32s(benchLocalPref))
	b = benchRawAttr(b, optTrans, AttrAggregator, agg)
	b = benchRawAttr(b, optTrans, AttrCommunities, benchRawU32s(benchComms...))
	b = benchRawAttr(b, optTrans, AttrAS4Path, path4)
	b = benchRawAttr(b, optTrans, AttrAS4Aggregator, agg4)
	return benchRawUpdate(nil, b, benchRawPrefixes(nlri))
}

func TestAllocDecodeUpdateAS4Merge(t *testing.T) {
	var o Options // 2-octet AS, no extended messages
	ps := benchV4Prefixes(500)
	msg := allocTwoOctetUpdate(ps)
	if len(msg) > MaxLen {
		t.Fatalf("fixture of %d bytes needs extended messages", len(msg))
	}
	u := new(Update)
	// Decode twice first: the merge swaps two path buffers, so both are
	// checked, and the merged result must be the same each time.
	for range 3 {
		allocDecodeAndWalk(t, u, msg, &o, len(ps))()
		if got, want := u.Attrs.ASPath.String(), "(64600) 64999 64512 4200000001 64513 {4200000002 64514}"; got != want {
			t.Fatalf("merged AS_PATH %q, want %q", got, want)
		}
		if u.Attrs.Aggregator.AS != 4200000003 {
			t.Fatalf("merged AGGREGATOR %+v", u.Attrs.Aggregator)
		}
	}
	allocRequireNone(t, "DecodeUpdate + walk with AS4_PATH merge on a 2-octet session",
		allocDecodeAndWalk(t, u, msg, &o, len(ps)))
}

func TestAllocParseHeader(t *testing.T) {
	o := benchOpts
	for name, msg := range map[string][]byte{
		"update":    benchTypicalUpdate(),
		"open":      benchOpenMsg(),
		"keepalive": AppendKeepalive(nil),
	} {
		allocRequireNone(t, "ParseHeader of "+name, func() {
			if _, err := ParseHeader(msg, &o); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// allocEncodeCase is one warm-encoder scenario.
type allocEncodeCase struct {
	name string
	o    Options
	run  func(e *Encoder, b []byte) ([]byte, int, error)
	msgs int
}

// At the time of writing the ipv6-mp-reach case fails with 3 allocations:
// AppendReach builds the MP_REACH_NLRI head with appendMPReachHead(nil, ...),
// which grows a fresh slice three times (AFI, next hop, link-local) on every
// call, whatever the number of prefixes.
func TestAllocEncoder(t *testing.T) {
	v4 := benchNLRI(benchV4Prefixes(benchPrefixes))
	v6 := benchNLRI(benchV6Prefixes(benchPrefixes))
	typical, full := benchAttrs(), allocFullAttrs(t)
	cases := []allocEncodeCase{
		{"AppendReach/ipv4-typical", benchOpts, func(e *Encoder, b []byte) ([]byte, int, error) {
			return e.AppendReach(b, IPv4Unicast, benchNextHop4, netip.Addr{}, typical, v4)
		}, 1},
		{"AppendReach/ipv4-split-4096", Options{AS4: true}, func(e *Encoder, b []byte) ([]byte, int, error) {
			return e.AppendReach(b, IPv4Unicast, benchNextHop4, netip.Addr{}, typical, v4)
		}, 2},
		{"AppendReach/ipv4-all-attributes", benchOpts, func(e *Encoder, b []byte) ([]byte, int, error) {
			return e.AppendReach(b, IPv4Unicast, benchNextHop4, netip.Addr{}, full, v4)
		}, 1},
		{"AppendReach/ipv4-2-octet-as4-path", Options{}, func(e *Encoder, b []byte) ([]byte, int, error) {
			return e.AppendReach(b, IPv4Unicast, benchNextHop4, netip.Addr{}, full, v4)
		}, 2},
		{"AppendReach/ipv6-mp-reach-link-local", benchOpts, func(e *Encoder, b []byte) ([]byte, int, error) {
			return e.AppendReach(b, IPv6Unicast, benchNextHop6, benchLinkLocal, typical, v6)
		}, 1},
		{"AppendWithdraw/ipv4", benchOpts, func(e *Encoder, b []byte) ([]byte, int, error) {
			return e.AppendWithdraw(b, IPv4Unicast, v4)
		}, 1},
		{"AppendWithdraw/ipv6-mp-unreach", benchOpts, func(e *Encoder, b []byte) ([]byte, int, error) {
			return e.AppendWithdraw(b, IPv6Unicast, v6)
		}, 1},
		{"AppendEndOfRIB/ipv6", benchOpts, func(e *Encoder, b []byte) ([]byte, int, error) {
			return e.AppendEndOfRIB(b, IPv6Unicast), 1, nil
		}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := &Encoder{Options: c.o}
			buf := make([]byte, 0, 64<<10)
			allocRequireNone(t, c.name, func() {
				out, n, err := c.run(e, buf[:0])
				if err != nil || n != c.msgs {
					t.Fatalf("%d messages, %v; want %d", n, err, c.msgs)
				}
				if cap(out) != cap(buf) {
					t.Fatalf("output of %d bytes outgrew the %d-byte buffer", len(out), cap(buf))
				}
			})
		})
	}
}
