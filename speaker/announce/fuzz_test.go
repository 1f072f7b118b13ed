package announce

import (
	"encoding/binary"
	"math"
	"net/netip"
	"testing"

	"github.com/bgplb/bgplb/bgp/wire"
)

// routesFrom reads arbitrary routes from data, 26 bytes each: 16 address
// bytes, prefix length (any value, valid or not), flags, bandwidth bits
// (any float, NaN and negatives included), LOCAL_PREF, and a community.
func routesFrom(data []byte) []Route {
	var rs []Route
	for ; len(data) >= 26; data = data[26:] {
		var a netip.Addr
		switch data[17] & 3 {
		case 0:
			a = netip.AddrFrom4([4]byte(data[:4]))
		case 1:
			a = netip.AddrFrom16([16]byte(data[:16]))
		case 2:
			a = netip.AddrFrom16([16]byte(data[:16])).WithZone("eth0")
		}
		r := Route{Prefix: netip.PrefixFrom(a, int(int8(data[16]))), Bandwidth: math.Float32frombits(binary.BigEndian.Uint32(data[18:]))}
		if data[17]&4 != 0 {
			lp := binary.BigEndian.Uint32(data[22:])
			r.LocalPref = &lp
		}
		if data[17]&8 != 0 {
			r.Prefix = r.Prefix.Masked() // mostly valid routes too
		}
		for range data[17] >> 4 {
			r.Communities = append(r.Communities, wire.Community(binary.BigEndian.Uint32(data[22:])))
		}
		rs = append(rs, r)
	}
	return rs
}

// FuzzRoutes: whatever routes the planner passes, normalizing, diffing and
// building never panic, every message decodes, and what a peer would hold
// afterwards is exactly the Adj-RIB-Out.
func FuzzRoutes(f *testing.F) {
	f.Add(uint8(0), []byte{})
	f.Add(uint8(1), append(make([]byte, 16), 32, 8|4|0x10, 0x3f, 0x80, 0, 0, 0, 0, 0, 200))
	f.Add(uint8(2), append([]byte{32, 1, 0xd, 0xb8, 15: 1}, 128, 1|8, 0x7f, 0xc0, 0, 0, 0, 0, 0, 1)) // NaN bandwidth
	f.Add(uint8(3), append([]byte{203, 0, 113, 7, 15: 0}, 33, 0, 0, 0, 0, 0, 0, 0, 0, 0))
	f.Fuzz(fuzzBody)
}

// fuzzBody is FuzzRoutes' body.
func fuzzBody(t *testing.T, sel uint8, data []byte) {
	rs := routesFrom(data)
	var n normalizer
	ws, skipped := n.normalize(rs, nil, nil)
	if len(ws)+len(skipped) > len(rs) {
		t.Fatalf("%d wanted and %d skipped of %d routes", len(ws), len(skipped), len(rs))
	}
	for _, w := range ws {
		if checkRoute(&Route{Prefix: w.prefix}) != "" {
			t.Fatalf("invalid prefix %v kept", w.prefix)
		}
	}
	tg := newTarget(both, addr("198.51.100.11"), netip.Addr{}, addr("2001:db8::11"), false)
	if sel&1 != 0 {
		tg = newTarget([]wire.Family{wire.IPv4Unicast}, addr("2001:db8::11"), netip.Addr{}, netip.Addr{}, sel&2 != 0)
	}
	params := sessionParams{localAS: 64512, external: sel&4 != 0, tx: wire.Options{AS4: sel&8 != 0, External: sel&4 != 0}}
	params.tx.ExtendedNextHop = wire.FamilySetOf(wire.IPv4Unicast)
	o := newAdjRIBOut()
	var c changes
	o.diff(ws, &tg, 1, &c)
	chunks, b := buildAll(t, params, &c, tg.families)
	o.forget(prefixesOfSkipped(b.failed))
	st := decodeAll(t, chunks, params.tx)
	if len(st.rib) != len(o.routes) {
		t.Fatalf("the peer holds %d routes, the Adj-RIB-Out %d", len(st.rib), len(o.routes))
	}
	for p, e := range o.routes {
		if got, ok := st.rib[p]; !ok || got.NextHop != e.path.nextHop {
			t.Fatalf("%v: peer has %+v, Adj-RIB-Out %+v", p, got, e.path)
		}
	}
}

func prefixesOfSkipped(s []SkippedRoute) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, r := range s {
		out[i] = r.Prefix
	}
	return out
}
