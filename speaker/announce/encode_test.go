package announce

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/bgplb/bgplb/bgp/wire"
)

// rxPath is a received path as the tests compare it, whichever decoder read it.
type rxPath struct {
	NextHop     netip.Addr
	Origin      uint8
	ASPath      []uint32 // flattened AS_SEQUENCE, AS4_PATH merged
	LocalPref   uint32
	HasLP       bool
	Communities []uint32
	Large       []wire.LargeCommunity
	BandwidthAS uint16
	Bandwidth   float32
	Transitive  bool // link bandwidth
}

// rxMsg is one decoded UPDATE.
type rxMsg struct {
	Announce map[netip.Prefix]rxPath
	Withdraw []netip.Prefix
	EoR      string // the family of an End-of-RIB marker
}

// splitMessages cuts a buffer of whole messages.
func splitMessages(t *testing.T, b []byte, max int) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		if len(b) < wire.HeaderLen {
			t.Fatalf("%d trailing bytes", len(b))
		}
		l := int(binary.BigEndian.Uint16(b[16:]))
		if l > len(b) || l > max || l < wire.HeaderLen {
			t.Fatalf("message of %d bytes (limit %d, %d left)", l, max, len(b))
		}
		out = append(out, b[:l])
		b = b[l:]
	}
	return out
}

// decodeOurs reads msg with bgp/wire.
func decodeOurs(t *testing.T, msg []byte, o wire.Options) rxMsg {
	t.Helper()
	m, err := wire.DecodeMessage(msg, &o)
	if err != nil {
		t.Fatalf("bgp/wire refuses our UPDATE: %v", err)
	}
	return rxFromUpdate(m.(*wire.Update))
}

// rxFromUpdate reads a decoded UPDATE.
func rxFromUpdate(u *wire.Update) rxMsg {
	r := rxMsg{Announce: map[netip.Prefix]rxPath{}}
	if f, ok := u.EndOfRIB(); ok {
		r.EoR = f.String()
		return r
	}
	a := &u.Attrs
	p := rxPath{Origin: uint8(a.Origin), LocalPref: a.LocalPref, HasLP: a.Has(wire.AttrLocalPref)}
	for _, s := range a.ASPath {
		p.ASPath = append(p.ASPath, s.ASNs...)
	}
	for _, c := range a.Communities {
		p.Communities = append(p.Communities, uint32(c))
	}
	p.Large = slices.Clone(a.LargeCommunities)
	for _, e := range a.ExtCommunities {
		if as, bw, ok := e.LinkBandwidth(); ok {
			p.BandwidthAS, p.Bandwidth, p.Transitive = as, bw, e[0]&0x40 == 0
		}
	}
	for n := range u.Withdrawn.All() {
		r.Withdraw = append(r.Withdraw, n.Prefix)
	}
	for n := range a.MPUnreach.Withdrawn.All() {
		r.Withdraw = append(r.Withdraw, n.Prefix)
	}
	for n := range u.NLRI.All() {
		q := p
		q.NextHop = a.NextHop
		r.Announce[n.Prefix] = q
	}
	if a.Has(wire.AttrMPReach) {
		for n := range a.MPReach.NLRI.All() {
			q := p
			q.NextHop = a.MPReach.NextHop
			r.Announce[n.Prefix] = q
		}
	}
	return r
}

// decodeGoBGP reads msg with GoBGP, the oracle.
func decodeGoBGP(t *testing.T, msg []byte, o wire.Options) rxMsg {
	t.Helper()
	g, err := bgp.ParseBGPMessage(msg, &bgp.MarshallingOption{Use2ByteAS: !o.AS4, ExtendedMessage: o.ExtendedMessage})
	if err != nil {
		t.Fatalf("GoBGP refuses our UPDATE: %v\n%x", err, msg)
	}
	u := g.Body.(*bgp.BGPUpdate)
	r := rxMsg{Announce: map[netip.Prefix]rxPath{}}
	if len(u.NLRI) == 0 && len(u.WithdrawnRoutes) == 0 {
		switch {
		case len(u.PathAttributes) == 0:
			r.EoR = wire.IPv4Unicast.String()
			return r
		case len(u.PathAttributes) == 1:
			if mp, ok := u.PathAttributes[0].(*bgp.PathAttributeMpUnreachNLRI); ok && len(mp.Value) == 0 {
				r.EoR = wire.Family{AFI: mp.AFI, SAFI: mp.SAFI}.String()
				return r
			}
		}
	}
	var p rxPath
	var as4 []uint32
	var reach []bgp.PathNLRI
	for _, pa := range u.PathAttributes {
		switch a := pa.(type) {
		case *bgp.PathAttributeOrigin:
			p.Origin = a.Value
		case *bgp.PathAttributeAsPath:
			for _, s := range a.Value {
				p.ASPath = append(p.ASPath, s.GetAS()...)
			}
		case *bgp.PathAttributeAs4Path:
			for _, s := range a.Value {
				as4 = append(as4, s.AS...)
			}
		case *bgp.PathAttributeNextHop:
			p.NextHop = a.Value
		case *bgp.PathAttributeLocalPref:
			p.LocalPref, p.HasLP = a.Value, true
		case *bgp.PathAttributeCommunities:
			p.Communities = a.Value
		case *bgp.PathAttributeLargeCommunities:
			for _, c := range a.Values {
				p.Large = append(p.Large, wire.LargeCommunity{Global: c.ASN, Local1: c.LocalData1, Local2: c.LocalData2})
			}
		case *bgp.PathAttributeExtendedCommunities:
			for _, e := range a.Value {
				if lb, ok := e.(*bgp.LinkBandwidthExtended); ok {
					p.BandwidthAS, p.Bandwidth = lb.AS, lb.Bandwidth
				}
			}
		case *bgp.PathAttributeMpReachNLRI:
			p.NextHop, reach = a.Nexthop, a.Value
		case *bgp.PathAttributeMpUnreachNLRI:
			for _, n := range a.Value {
				r.Withdraw = append(r.Withdraw, n.NLRI.(*bgp.IPAddrPrefix).Prefix)
			}
		default:
			t.Fatalf("GoBGP found an attribute we do not send: %T", pa)
		}
	}
	if as4 != nil { // RFC 6793: AS4_PATH replaces the AS_TRANS-bearing path
		p.ASPath = as4
	}
	for _, n := range u.WithdrawnRoutes {
		r.Withdraw = append(r.Withdraw, n.NLRI.(*bgp.IPAddrPrefix).Prefix)
	}
	for _, n := range append(slices.Clone(u.NLRI), reach...) {
		r.Announce[n.NLRI.(*bgp.IPAddrPrefix).Prefix] = p
	}
	return r
}

// decodeAll decodes every message with both decoders, requires them to
// agree, and merges the result in order: the Adj-RIB-In a peer builds.
type rxState struct {
	rib       map[netip.Prefix]rxPath
	withdrawn []netip.Prefix
	eor       []string
	msgs      int
}

func decodeAll(t *testing.T, chunks [][]byte, o wire.Options) rxState {
	t.Helper()
	st := rxState{rib: map[netip.Prefix]rxPath{}}
	max := wire.MaxLen
	if o.ExtendedMessage {
		max = wire.MaxExtendedLen
	}
	for _, c := range chunks {
		for _, msg := range splitMessages(t, c, max) {
			ours, theirs := decodeOurs(t, msg, o), decodeGoBGP(t, msg, o)
			if !reflect.DeepEqual(ours, theirs) {
				t.Fatalf("decoders disagree:\nbgp/wire %+v\nGoBGP    %+v", ours, theirs)
			}
			st.msgs++
			if ours.EoR != "" {
				st.eor = append(st.eor, ours.EoR)
				continue
			}
			for _, p := range ours.Withdraw {
				delete(st.rib, p)
				st.withdrawn = append(st.withdrawn, p)
			}
			for p, path := range ours.Announce {
				st.rib[p] = path
			}
		}
	}
	return st
}

// buildAll runs changes through a builder and collects the chunks.
func buildAll(t *testing.T, p sessionParams, c *changes, eor []wire.Family) ([][]byte, *builder) {
	t.Helper()
	var chunks [][]byte
	msgs := 0
	b := newBuilder(p, func(buf []byte, n int) error {
		chunks = append(chunks, buf)
		msgs += n
		return nil
	})
	if err := b.build(c); err != nil {
		t.Fatal(err)
	}
	if eor != nil {
		if err := b.endOfRIB(eor); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	for _, ch := range chunks {
		got += len(splitMessages(t, ch, wire.MaxExtendedLen))
	}
	if got != msgs {
		t.Errorf("builder counted %d messages, emitted %d", msgs, got)
	}
	return chunks, b
}

// diffFor normalizes rs, diffs it into a fresh Adj-RIB-Out for tg.
func diffFor(t *testing.T, o *adjRIBOut, rs []Route, tg target) *changes {
	t.Helper()
	var n normalizer
	ws, skipped := n.normalize(rs, nil, nil)
	if len(skipped) > 0 {
		t.Fatalf("skipped %+v", skipped)
	}
	c := &changes{}
	o.diff(ws, &tg, 1, c)
	return c
}

func TestBuildIBGP(t *testing.T) {
	nh4, nh6 := addr("198.51.100.11"), addr("2001:db8::11")
	tg := newTarget(both, nh4, netip.Addr{}, nh6, false)
	comms := []wire.Community{wire.NewCommunity(64512, 20), wire.NewCommunity(64512, 10)}
	large := []wire.LargeCommunity{{Global: 64512, Local1: 1, Local2: 1}}
	var rs []Route
	for i := range 300 {
		rs = append(rs, Route{Prefix: host4(i), Communities: comms})
	}
	for i := range 5 {
		rs = append(rs, Route{Prefix: host4(300 + i), LocalPref: u32(200), Bandwidth: 3, LargeCommunities: large})
	}
	for i := range 20 {
		rs = append(rs, Route{Prefix: host6(i), Communities: comms})
	}
	o := newAdjRIBOut()
	params := sessionParams{localAS: 64512, tx: wire.Options{AS4: true}}
	chunks, _ := buildAll(t, params, diffFor(t, o, rs, tg), both)
	st := decodeAll(t, chunks, params.tx)
	if len(st.rib) != len(rs) || !slices.Equal(st.eor, []string{"ipv4-unicast", "ipv6-unicast"}) {
		t.Fatalf("received %d routes, EoR %v", len(st.rib), st.eor)
	}
	// Three groups, each fits one message: three UPDATEs and two EoRs.
	if st.msgs != 5 {
		t.Errorf("%d messages, want 5", st.msgs)
	}
	wantA := rxPath{NextHop: nh4, ASPath: nil, LocalPref: 100, HasLP: true, Communities: []uint32{64512<<16 | 10, 64512<<16 | 20}}
	wantB := rxPath{NextHop: nh4, LocalPref: 200, HasLP: true, Large: large, BandwidthAS: 64512, Bandwidth: 3}
	wantC := wantA
	wantC.NextHop = nh6
	for i, r := range rs {
		want := wantA
		switch {
		case i >= 305:
			want = wantC
		case i >= 300:
			want = wantB
		}
		if got := st.rib[r.Prefix]; !reflect.DeepEqual(got, want) {
			t.Fatalf("%v: got %+v, want %+v", r.Prefix, got, want)
		}
	}

	// Withdraw 50 IPv4 and 10 IPv6 routes, change one route's community:
	// one message per family of withdrawals, one announcement.
	rs2 := slices.Clone(rs[50:300])
	rs2 = append(rs2, rs[300:305]...)
	rs2 = append(rs2, rs[315:]...)
	rs2[0].Communities = []wire.Community{1}
	var n normalizer
	ws, _ := n.normalize(rs2, nil, nil)
	c := &changes{}
	o.diff(ws, &tg, 2, c)
	if len(c.withdraw) != 60 || len(c.announce) != 1 {
		t.Fatalf("diff: %d withdrawals, %d announcements", len(c.withdraw), len(c.announce))
	}
	chunks, _ = buildAll(t, params, c, nil)
	st2 := decodeAll(t, chunks, params.tx)
	if len(st2.withdrawn) != 60 || len(st2.rib) != 1 || st2.msgs != 3 {
		t.Errorf("second sync: %d withdrawn, %d announced, %d messages", len(st2.withdrawn), len(st2.rib), st2.msgs)
	}
	if got := st2.rib[rs2[0].Prefix]; !reflect.DeepEqual(got.Communities, []uint32{1}) {
		t.Errorf("changed route: %+v", got)
	}
}

// TestBuildEBGP: AS_PATH is our AS, LOCAL_PREF is not sent; a 4-octet AS
// toward a peer without the capability goes as AS_TRANS plus AS4_PATH, and
// the link bandwidth community carries AS_TRANS.
func TestBuildEBGP(t *testing.T) {
	for _, tc := range []struct {
		localAS uint32
		as4     bool
		bwAS    uint16
	}{
		{64513, true, 64513},
		{64513, false, 64513},
		{4200000001, true, wire.ASTrans},
		{4200000001, false, wire.ASTrans},
	} {
		t.Run(fmt.Sprintf("AS%d/as4=%v", tc.localAS, tc.as4), func(t *testing.T) {
			tg := newTarget(both, addr("198.51.100.11"), netip.Addr{}, addr("2001:db8::11"), false)
			rs := []Route{{Prefix: host4(1), LocalPref: u32(300), Bandwidth: 1.5}, {Prefix: host6(1)}}
			params := sessionParams{localAS: tc.localAS, external: true, tx: wire.Options{AS4: tc.as4, External: true}}
			chunks, _ := buildAll(t, params, diffFor(t, newAdjRIBOut(), rs, tg), nil)
			st := decodeAll(t, chunks, params.tx)
			want := rxPath{NextHop: addr("198.51.100.11"), ASPath: []uint32{tc.localAS}, BandwidthAS: tc.bwAS, Bandwidth: 1.5}
			if got := st.rib[host4(1)]; !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
			want = rxPath{NextHop: addr("2001:db8::11"), ASPath: []uint32{tc.localAS}}
			if got := st.rib[host6(1)]; !reflect.DeepEqual(got, want) {
				t.Errorf("IPv6: got %+v, want %+v", got, want)
			}
		})
	}
}

// TestBuildPacking: 10,000 host routes with one set of attributes fill
// every message but the last to the brim, in standard and extended messages.
func TestBuildPacking(t *testing.T) {
	for _, ext := range []bool{false, true} {
		tg := newTarget(both, addr("198.51.100.11"), netip.Addr{}, addr("2001:db8::11"), false)
		var rs []Route
		for i := range 10000 {
			rs = append(rs, Route{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)})
		}
		params := sessionParams{localAS: 64512, tx: wire.Options{AS4: true, ExtendedMessage: ext}}
		chunks, _ := buildAll(t, params, diffFor(t, newAdjRIBOut(), rs, tg), nil)
		st := decodeAll(t, chunks, params.tx)
		max := wire.MaxLen
		if ext {
			max = wire.MaxExtendedLen
		}
		// Header 19, lengths 4, ORIGIN 4, AS_PATH 3, NEXT_HOP 7, LOCAL_PREF 7.
		perMsg := (max - 19 - 4 - 4 - 3 - 7 - 7) / 5
		want := (10000 + perMsg - 1) / perMsg
		// Each chunk of chunkPrefixes may leave one message short.
		want += (10000 - 1) / chunkPrefixes
		if len(st.rib) != 10000 || st.msgs > want {
			t.Errorf("extended=%v: %d routes in %d messages, want at most %d", ext, len(st.rib), st.msgs, want)
		}
	}
}

// TestBuildExtendedNextHop: an IPv4 route over an IPv6 session whose peer
// accepts RFC 8950 goes in MP_REACH_NLRI with the IPv6 next hop.
func TestBuildExtendedNextHop(t *testing.T) {
	nh := addr("2001:db8::11")
	tg := newTarget(both, nh, netip.Addr{}, netip.Addr{}, true)
	params := sessionParams{localAS: 64512, tx: wire.Options{AS4: true, ExtendedNextHop: wire.FamilySetOf(wire.IPv4Unicast)}}
	chunks, _ := buildAll(t, params, diffFor(t, newAdjRIBOut(), []Route{{Prefix: host4(7)}, {Prefix: host6(7)}}, tg), nil)
	st := decodeAll(t, chunks, params.tx)
	if st.rib[host4(7)].NextHop != nh || st.rib[host6(7)].NextHop != nh || st.msgs != 2 {
		t.Errorf("%d messages, %+v", st.msgs, st.rib)
	}
}

// TestBuildUnencodable: a route whose attributes cannot fit a message is
// withdrawn (the peer may hold an older path) and reported; the others go.
func TestBuildUnencodable(t *testing.T) {
	tg := newTarget(both, addr("198.51.100.11"), netip.Addr{}, netip.Addr{}, false)
	huge := make([]wire.Community, 1100) // 4400 bytes of COMMUNITIES
	for i := range huge {
		huge[i] = wire.Community(i)
	}
	o := newAdjRIBOut()
	c := diffFor(t, o, []Route{{Prefix: host4(1)}, {Prefix: host4(2), Communities: huge}}, tg)
	chunks, b := buildAll(t, sessionParams{localAS: 64512, tx: wire.Options{AS4: true}}, c, nil)
	st := decodeAll(t, chunks, wire.Options{AS4: true})
	if len(b.failed) != 1 || b.failed[0].Prefix != host4(2) || !strings.Contains(b.failed[0].Reason, "no room") {
		t.Errorf("failed %+v", b.failed)
	}
	if _, ok := st.rib[host4(1)]; !ok || !slices.Equal(st.withdrawn, []netip.Prefix{host4(2)}) {
		t.Errorf("rib %v withdrawn %v", st.rib, st.withdrawn)
	}
}
