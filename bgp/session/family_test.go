package session

import (
	"net/netip"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
)

// reach encodes an announcement of prefix in family f.
func reach(t *testing.T, f wire.Family, prefix, nextHop string) []byte {
	t.Helper()
	a := &wire.Attrs{Origin: wire.OriginIGP, ASPath: wire.ASPath{}, LocalPref: 100}
	a.Set(wire.AttrOrigin)
	a.Set(wire.AttrASPath)
	a.Set(wire.AttrLocalPref)
	e := wire.Encoder{Options: wire.Options{AS4: true}}
	b, _, err := e.AppendReach(nil, f, netip.MustParseAddr(nextHop), netip.Addr{}, a,
		[]wire.NLRI{{Prefix: netip.MustParsePrefix(prefix)}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUnnegotiatedFamiliesIgnored: routes of a family the OPEN exchange did
// not agree on never reach the handler (RFC 4760 §7), whether they come in
// MP_REACH_NLRI, MP_UNREACH_NLRI, an End-of-RIB or the classic IPv4 fields;
// the session stays up and the rest of the traffic flows.
func TestUnnegotiatedFamiliesIgnored(t *testing.T) {
	leakCheck(t)
	v4 := reach(t, wire.IPv4Unicast, "203.0.113.1/32", "198.51.100.11")
	v6 := reach(t, wire.IPv6Unicast, "2001:db8::1/128", "2001:db8::11")
	enc := wire.Encoder{Options: wire.Options{AS4: true}}
	eor6 := enc.AppendEndOfRIB(nil, wire.IPv6Unicast)
	eor4 := enc.AppendEndOfRIB(nil, wire.IPv4Unicast)
	cases := []struct {
		name     string
		ours     wire.Family
		refused  [][]byte
		accepted []byte
		want     string
	}{
		{"IPv6 on an IPv4-only session", wire.IPv4Unicast, [][]byte{v6, eor6}, v4, "203.0.113.1/32"},
		{"IPv4 on an IPv6-only session", wire.IPv6Unicast, [][]byte{v4, eor4}, v6, "2001:db8::1/128"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(64512, 64512, idA)
			cfg.Families = []wire.Family{tc.ours}
			rec := newRecorder()
			p, addr := passive(t, cfg, rec)
			f := dialFake(t, addr) // announces IPv4 and IPv6 unicast
			f.establish(64512, 90, idB)
			if n := wait(t, rec.established, 2*time.Second, "established"); len(n.Families) != 1 {
				t.Fatalf("negotiated %v", n.Families)
			}
			for _, m := range tc.refused {
				f.write(m)
			}
			f.write(tc.accepted)
			u := wait(t, rec.updates, 2*time.Second, "the negotiated family's update")
			if len(u.nlri) != 1 || u.nlri[0].Prefix.String() != tc.want {
				t.Fatalf("first update delivered: %v, want %s", u, tc.want)
			}
			expectNone(t, rec.eor, 0, "End-of-RIB of a family not negotiated")
			if got := p.Info().Unnegotiated; got != uint64(len(tc.refused)) {
				t.Errorf("Unnegotiated = %d, want %d", got, len(tc.refused))
			}
			if s := p.State(); s != Established {
				t.Errorf("state %v", s)
			}
		})
	}
}
