package wire

import (
	"net/netip"
	"testing"
)

func TestSmokeRoundTrip(t *testing.T) {
	var a Attrs
	a.Origin = OriginIGP
	a.Set(AttrOrigin)
	a.ASPath = ASPath{{Type: ASSequence, ASNs: []uint32{64512, 70000}}}
	a.Set(AttrASPath)
	a.LocalPref = 100
	a.Set(AttrLocalPref)
	a.Communities = []Community{NewCommunity(64512, 1), CommunityGracefulShutdown}
	a.Set(AttrCommunities)
	var nlri []NLRI
	for i := 0; i < 1000; i++ {
		nlri = append(nlri, NLRI{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, byte(i >> 8), byte(i)}), 32)})
	}
	for _, o := range []Options{{AS4: true}, {}} {
		e := Encoder{Options: o}
		b, n, err := e.AppendReach(nil, IPv4Unicast, netip.MustParseAddr("198.51.100.1"), netip.Addr{}, &a, nlri)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d messages, %d bytes", n, len(b))
		var got []NLRI
		var u Update
		for len(b) > 0 {
			h, err := ParseHeader(b, &o)
			if err != nil {
				t.Fatal(err)
			}
			if err := DecodeUpdate(&u, b[HeaderLen:h.Length], &o); err != nil {
				t.Fatal(err)
			}
			got = u.NLRI.AppendTo(got)
			if u.Attrs.ASPath.String() != "64512 70000" || u.Attrs.NextHop.String() != "198.51.100.1" || len(u.Attrs.Communities) != 2 {
				t.Fatalf("attrs %+v", u.Attrs)
			}
			b = b[h.Length:]
		}
		if len(got) != len(nlri) || got[999] != nlri[999] {
			t.Fatalf("got %d", len(got))
		}
	}
}
