package wire

import (
	"bytes"
	"net/netip"
	"reflect"
	"testing"
)

var as4 = &Options{AS4: true}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func mustAddr(s string) netip.Addr     { return netip.MustParseAddr(s) }

type attrVector struct {
	name  string
	o     Options
	attrs string // full path attributes field
	check func(t *testing.T, a *Attrs)
}

// attributeVectors are hand-built attributes, shared with the fuzz corpus.
func attributeVectors() []attrVector {
	return []attrVector{
		{"origin egp", Options{AS4: true}, "40 01 01 01" + hASPath4 + hNextHop, func(t *testing.T, a *Attrs) {
			eq(t, a.Origin, OriginEGP)
		}},
		{"origin incomplete", Options{AS4: true}, "40 01 01 02" + hASPath4 + hNextHop, func(t *testing.T, a *Attrs) {
			eq(t, a.Origin, OriginIncomplete)
		}},
		{"as_path all segment types 4-octet", Options{AS4: true},
			hOrigin + "40 02 20 | 03 01 0000fde8 | 04 01 0000fde9 | 02 02 0000fc00 00011170 | 01 02 00000001 00000002" + hNextHop,
			func(t *testing.T, a *Attrs) {
				eq(t, a.ASPath.String(), "(65000) [65001] 64512 70000 {1 2}")
				eq(t, a.ASPath.Len(), 3)
			}},
		{"as_path 2-octet", Options{}, hOrigin + "40 02 06 02 02 fc00 fc01" + hNextHop, func(t *testing.T, a *Attrs) {
			eq(t, a.ASPath.String(), "64512 64513")
		}},
		{"empty as_path (iBGP origination)", Options{AS4: true}, hOrigin + "40 02 00" + hNextHop, func(t *testing.T, a *Attrs) {
			eq(t, len(a.ASPath), 0)
			eq(t, a.Has(AttrASPath), true)
		}},
		{"as_path with extended length", Options{AS4: true}, hOrigin + "50 02 0006 02 01 0000fc00" + hNextHop, func(t *testing.T, a *Attrs) {
			eq(t, a.ASPath.String(), "64512")
		}},
		{"med", Options{AS4: true}, hBase4 + "80 04 04 00000064", func(t *testing.T, a *Attrs) {
			eq(t, a.MED, uint32(100))
		}},
		{"med zero is present", Options{AS4: true}, hBase4 + "80 04 04 00000000", func(t *testing.T, a *Attrs) {
			eq(t, a.Has(AttrMED), true)
		}},
		{"local_pref", Options{AS4: true}, hBase4 + "40 05 04 000000c8", func(t *testing.T, a *Attrs) {
			eq(t, a.LocalPref, uint32(200))
		}},
		{"atomic_aggregate", Options{AS4: true}, hBase4 + "40 06 00", func(t *testing.T, a *Attrs) {
			eq(t, a.Has(AttrAtomicAggregate), true)
		}},
		{"aggregator 4-octet", Options{AS4: true}, hBase4 + "c0 07 08 00011170 cb007101", func(t *testing.T, a *Attrs) {
			eq(t, a.Aggregator, Aggregator{70000, mustAddr("203.0.113.1")})
		}},
		{"aggregator 2-octet", Options{}, hBase2 + "c0 07 06 fc00 cb007101", func(t *testing.T, a *Attrs) {
			eq(t, a.Aggregator, Aggregator{64512, mustAddr("203.0.113.1")})
		}},
		{"communities with well-known", Options{AS4: true}, hBase4 + "c0 08 0c fc000001 ffff0000 ffffff01", func(t *testing.T, a *Attrs) {
			eq(t, a.Communities, []Community{NewCommunity(64512, 1), CommunityGracefulShutdown, CommunityNoExport})
			eq(t, a.HasCommunity(CommunityGracefulShutdown), true)
			eq(t, CommunityGracefulShutdown.String(), "graceful-shutdown")
		}},
		{"originator_id and cluster_list", Options{AS4: true}, hBase4 + "80 09 04 c6336402 | 80 0a 08 c6336403 c6336404", func(t *testing.T, a *Attrs) {
			eq(t, a.OriginatorID, mustAddr("198.51.100.2"))
			eq(t, a.ClusterList, []netip.Addr{mustAddr("198.51.100.3"), mustAddr("198.51.100.4")})
		}},
		{"extended communities with link bandwidth", Options{AS4: true}, hBase4 + "c0 10 10 4004fc00 49742400 | 0002fc00 00000064", func(t *testing.T, a *Attrs) {
			eq(t, len(a.ExtCommunities), 2)
			as, bw, ok := a.ExtCommunities[0].LinkBandwidth()
			eq(t, ok, true)
			eq(t, as, uint16(64512))
			eq(t, bw, float32(1e6))
			eq(t, a.ExtCommunities[0], NewLinkBandwidth(64512, 1e6, false))
			_, _, ok = a.ExtCommunities[1].LinkBandwidth()
			eq(t, ok, false)
		}},
		{"large communities", Options{AS4: true}, hBase4 + "c0 20 18 0000fc00 00000001 00000002 | 00011170 00000003 00000004", func(t *testing.T, a *Attrs) {
			eq(t, a.LargeCommunities, []LargeCommunity{{64512, 1, 2}, {70000, 3, 4}})
		}},
		{"otc", Options{AS4: true}, hBase4 + "c0 23 04 0000fde8", func(t *testing.T, a *Attrs) {
			eq(t, a.OTC, uint32(65000))
		}},
		{"unknown optional transitive kept byte-exact", Options{AS4: true}, hBase4 + "c0 c8 03 010203 | e0 c9 01 ff", func(t *testing.T, a *Attrs) {
			eq(t, a.Unknown, []RawAttr{{optTrans, 200, []byte{1, 2, 3}}, {optTrans | FlagPartial, 201, []byte{0xff}}})
		}},
		{"mp_reach ipv6 with link-local", Options{AS4: true}, "80 0e 2e 0002 01 20 20010db8000000000000000000000001 fe800000000000000000000000000001 00 | 40 20010db800000000" + hOrigin + hASPath4,
			func(t *testing.T, a *Attrs) {
				m := a.MPReach
				eq(t, m.Family, IPv6Unicast)
				eq(t, m.NextHop, mustAddr("2001:db8::1"))
				eq(t, m.LinkLocal, mustAddr("fe80::1"))
				eq(t, m.NLRI.AppendTo(nil), []NLRI{{Prefix: mustPrefix("2001:db8::/64")}})
			}},
		{"mp_reach ipv4 with ipv6 next hop (RFC 8950)", Options{AS4: true, ExtendedNextHop: FamilySetOf(IPv4Unicast)}, "80 0e 1a 0001 01 10 20010db8000000000000000000000001 00 | 20 cb007105" + hOrigin + hASPath4,
			func(t *testing.T, a *Attrs) {
				eq(t, a.MPReach.NextHop, mustAddr("2001:db8::1"))
				eq(t, a.MPReach.NLRI.AppendTo(nil), []NLRI{{Prefix: mustPrefix("203.0.113.5/32")}})
			}},
		{"mp_reach with add-path", Options{AS4: true, AddPath: FamilySetOf(IPv6Unicast)}, "80 0e 20 0002 01 10 20010db8000000000000000000000001 00 | 00000007 30 20010db80001" + hOrigin + hASPath4,
			func(t *testing.T, a *Attrs) {
				eq(t, a.MPReach.NLRI.AppendTo(nil), []NLRI{{Prefix: mustPrefix("2001:db8:1::/48"), PathID: 7}})
			}},
		{"mp_unreach ipv6", Options{AS4: true}, "80 0f 0d 0002 01 | 40 20010db800000000 | 00", func(t *testing.T, a *Attrs) {
			eq(t, a.MPUnreach.Family, IPv6Unicast)
			eq(t, a.MPUnreach.Withdrawn.AppendTo(nil), []NLRI{{Prefix: mustPrefix("2001:db8::/64")}, {Prefix: mustPrefix("::/0")}})
		}},
		{"mp_reach of a family we do not parse is kept raw", Options{AS4: true}, "80 0e 0b 0001 80 04 c6336401 00 | 0102" + hOrigin + hASPath4, func(t *testing.T, a *Attrs) {
			eq(t, a.MPReach.Family, Family{AFIIPv4, 128})
			eq(t, a.MPReach.NLRI.Raw(), []byte{1, 2})
			eq(t, a.MPReach.NLRI.Len(), 0)
			eq(t, a.MPReach.OtherNextHop, []byte{198, 51, 100, 1})
		}},
	}
}

// TestAttributeVectors decodes one hand-built attribute at a time (on top of
// the mandatory three) and checks the decoded value, then that encoding the
// result gives back the same bytes.
func TestAttributeVectors(t *testing.T) {
	tests := attributeVectors()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Only UPDATEs with NEXT_HOP carry classic NLRI (else NEXT_HOP
			// would be missing); the MP cases announce in MP_REACH_NLRI.
			classic := bytes.Contains(hx(t, tc.attrs), hx(t, hNextHop))
			nlri := ""
			if classic {
				nlri = hNLRI
			}
			body := updBody(t, "", tc.attrs, nlri)
			var u Update
			if err := DecodeUpdate(&u, body, &tc.o); err != nil {
				t.Fatal(err)
			}
			tc.check(t, &u.Attrs)
			if got := u.NLRI.AppendTo(nil); classic && len(got) != 2 || classic && got[0].Prefix != mustPrefix("203.0.113.0/24") {
				t.Fatalf("NLRI %v", got)
			}
			// Re-encode. Attribute order and one-byte lengths are canonical
			// in these vectors except where noted, and Unknown gains the
			// Partial bit.
			out, err := AppendUpdate(nil, &u, &tc.o)
			if err != nil {
				t.Fatal(err)
			}
			var u2 Update
			if err := DecodeUpdate(&u2, out[HeaderLen:], &tc.o); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(u.Attrs.ASPath, u2.Attrs.ASPath) || u.Attrs.present != u2.Attrs.present {
				t.Fatalf("re-encoded differently:\n%x\n%x", body, out[HeaderLen:])
			}
			if tc.name != "as_path with extended length" && tc.name != "unknown optional transitive kept byte-exact" &&
				!bytes.Equal(out[HeaderLen:], body) {
				t.Errorf("re-encoding changed the bytes:\n in %x\nout %x", body, out[HeaderLen:])
			}
		})
	}
}

func eq[T any](t *testing.T, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// TestCapabilityVectors decodes each capability from hand-built bytes and
// encodes it back to the same bytes.
func TestCapabilityVectors(t *testing.T) {
	tests := []struct {
		name string
		caps string // code, length, value
		want Capabilities
	}{
		{"multiprotocol", "01 04 0001 00 01 | 01 04 0002 00 01", Capabilities{Multiprotocol: []Family{IPv4Unicast, IPv6Unicast}}},
		{"route refresh", "02 00", Capabilities{RouteRefresh: true}},
		{"extended next hop", "05 06 0001 0001 0002", Capabilities{ExtendedNextHop: []ExtendedNextHop{{IPv4Unicast, AFIIPv6}}}},
		{"extended message", "06 00", Capabilities{ExtendedMessage: true}},
		{"role", "09 01 03", Capabilities{HasRole: true, Role: RoleCustomer}},
		{"graceful restart", "40 06 c078 0001 01 80", Capabilities{GracefulRestart: &GracefulRestart{
			Restarting: true, Notification: true, Time: 120, Families: []GRFamily{{IPv4Unicast, true}}}}},
		{"4-octet as", "41 04 00011170", Capabilities{HasAS4: true, AS4: 70000}},
		{"add-path", "45 08 0001 01 03 | 0002 01 01", Capabilities{AddPath: []AddPathFamily{{IPv4Unicast, AddPathBoth}, {IPv6Unicast, AddPathReceive}}}},
		{"enhanced route refresh", "46 00", Capabilities{EnhancedRouteRefresh: true}},
		{"long-lived graceful restart", "47 07 0002 01 80 000e10", Capabilities{LongLivedGR: []LLGRFamily{{IPv6Unicast, true, 3600}}}},
		{"fqdn", "49 0b 05 6e6f646531 04 6c616e30", Capabilities{FQDN: &FQDN{"node1", "lan0"}}},
		{"unknown kept raw", "80 00 | 83 02 abcd", Capabilities{Unknown: []RawCapability{{128, []byte{}}, {131, []byte{0xab, 0xcd}}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := hx(t, tc.caps)
			var c Capabilities
			if err := c.decode(raw); err != nil {
				t.Fatal(err)
			}
			eq(t, c, tc.want)
			out, err := c.appendTo(nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, raw) {
				t.Fatalf("encoded %x, want %x", out, raw)
			}
		})
	}
}

func TestOpenVectors(t *testing.T) {
	// OPEN: version 4, AS 23456 (AS_TRANS), hold 90, ID 198.51.100.1,
	// one capabilities parameter with MP IPv4 unicast and AS4 70000.
	classic := "04 5ba0 005a c6336401 | 0e | 02 0c 01 04 0001 00 01 41 04 00011170"
	o, err := DecodeOpen(hx(t, classic))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, o.AS(), uint32(70000))
	eq(t, o.HoldTime, uint16(90))
	eq(t, o.ID, mustAddr("198.51.100.1"))
	eq(t, o.Caps.Multiprotocol, []Family{IPv4Unicast})
	out, err := AppendOpen(nil, o)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, out, msg(TypeOpen, hx(t, classic)))

	// The same in the RFC 9072 extended format: 255, 255, 2-byte length,
	// parameters with 2-byte lengths.
	ext := "04 5ba0 005a c6336401 | ff ff 000f | 02 000c 01 04 0001 00 01 41 04 00011170"
	o2, err := DecodeOpen(hx(t, ext))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, o2.Extended, true)
	eq(t, o2.Caps, o.Caps)
	out, err = AppendOpen(nil, o2)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, out, msg(TypeOpen, hx(t, ext)))

	// Several parameters of one capability each, as many speakers send.
	multi := "04 fc00 00b4 c6336402 | 10 | 02 06 01 04 0002 00 01 | 02 02 02 00 | 02 02 46 00"
	o3, err := DecodeOpen(hx(t, multi))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, o3.Caps, Capabilities{Multiprotocol: []Family{IPv6Unicast}, RouteRefresh: true, EnhancedRouteRefresh: true})
	eq(t, o3.AS(), uint32(64512))

	// Capabilities that overflow 255 bytes force the extended format.
	big := NewOpen(64512, 90, mustAddr("198.51.100.1"), Capabilities{FQDN: &FQDN{string(bytes.Repeat([]byte("h"), 200)), string(bytes.Repeat([]byte("d"), 50))}, RouteRefresh: true})
	out, err = AppendOpen(nil, big)
	if err != nil {
		t.Fatal(err)
	}
	if out[HeaderLen+9] != 255 || out[HeaderLen+10] != 255 {
		t.Fatalf("expected the RFC 9072 format, got %x", out[HeaderLen:HeaderLen+12])
	}
	back, err := DecodeOpen(out[HeaderLen:])
	if err != nil {
		t.Fatal(err)
	}
	eq(t, back.Caps, big.Caps)
}

func TestMessageVectors(t *testing.T) {
	ka := hx(t, "ffffffffffffffffffffffffffffffff 0013 04")
	eq(t, AppendKeepalive(nil), ka)
	m, err := DecodeMessage(ka, nil)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, m, Message(Keepalive{}))

	// Cease / Administrative Shutdown with an RFC 9003 message.
	n := NewShutdown(CeaseAdminShutdown, "node node1 shutting down")
	wire := AppendNotification(nil, n, nil)
	eq(t, wire[HeaderLen:], hx(t, "06 02 18 6e6f6465206e6f64653120736875747469 6e6720646f776e"))
	m, err = DecodeMessage(wire, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := m.(*Notification)
	s, ok := got.ShutdownMessage()
	eq(t, ok, true)
	eq(t, s, "node node1 shutting down")
	eq(t, got.String(), `Cease / Administrative Shutdown: "node node1 shutting down"`)

	// A shutdown message is cut at 255 bytes on a UTF-8 boundary.
	long := NewShutdown(CeaseAdminReset, string(bytes.Repeat([]byte("é"), 200)))
	s, ok = long.ShutdownMessage()
	eq(t, ok, true)
	eq(t, len(s), 254)
	// Invalid UTF-8 is not a message (RFC 9003 §5).
	_, ok = (&Notification{Code: ErrCodeCease, Subcode: CeaseAdminShutdown, Data: []byte{2, 0xff, 0xfe}}).ShutdownMessage()
	eq(t, ok, false)

	// ROUTE-REFRESH with the RFC 7313 subtypes.
	for _, sub := range []uint8{RefreshNormal, RefreshBoRR, RefreshEoRR} {
		rr := AppendRouteRefresh(nil, &RouteRefresh{IPv6Unicast, sub})
		eq(t, rr[HeaderLen:], []byte{0, 2, sub, 1})
		m, err := DecodeMessage(rr, nil)
		if err != nil {
			t.Fatal(err)
		}
		eq(t, m, Message(&RouteRefresh{IPv6Unicast, sub}))
	}

	// End-of-RIB markers.
	var e Encoder
	eor := e.AppendEndOfRIB(nil, IPv4Unicast)
	eq(t, eor[HeaderLen:], hx(t, "0000 0000"))
	eor6 := e.AppendEndOfRIB(nil, IPv6Unicast)
	eq(t, eor6[HeaderLen:], hx(t, "0000 0006 800f03 000201"))
	for _, b := range [][]byte{eor, eor6} {
		var u Update
		if err := DecodeUpdate(&u, b[HeaderLen:], nil); err != nil {
			t.Fatal(err)
		}
		if _, ok := u.EndOfRIB(); !ok {
			t.Fatalf("%x is not End-of-RIB", b)
		}
	}
	var u Update
	if err := DecodeUpdate(&u, updBody(t, "", hBase4, hNLRI), as4); err != nil {
		t.Fatal(err)
	}
	if _, ok := u.EndOfRIB(); ok {
		t.Fatal("an announcement is not End-of-RIB")
	}
}

func TestAddPathNLRI(t *testing.T) {
	o := &Options{AS4: true, AddPath: FamilySetOf(IPv4Unicast)}
	body := updBody(t, "00000001 18 cb0071", hBase4, "00000002 20 c6336407 | 00000003 00")
	var u Update
	if err := DecodeUpdate(&u, body, o); err != nil {
		t.Fatal(err)
	}
	eq(t, u.Withdrawn.AppendTo(nil), []NLRI{{mustPrefix("203.0.113.0/24"), 1}})
	eq(t, u.NLRI.AppendTo(nil), []NLRI{{mustPrefix("198.51.100.7/32"), 2}, {mustPrefix("0.0.0.0/0"), 3}})
	var all []NLRI
	for n := range u.NLRI.All() {
		all = append(all, n)
	}
	eq(t, len(all), 2)
}

// Host bits past the prefix length are cleared, so equal prefixes compare
// equal as netip values.
func TestNLRIHostBitsMasked(t *testing.T) {
	var u Update
	if err := DecodeUpdate(&u, updBody(t, "", hBase4, "17 cb0071"), as4); err != nil {
		t.Fatal(err)
	}
	eq(t, u.NLRI.AppendTo(nil), []NLRI{{Prefix: mustPrefix("203.0.112.0/23")}})
}
