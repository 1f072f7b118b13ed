package rib

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/bgplb/bgplb/bgp/wire"
)

// hostRoutesIn returns n /32s from 198.18.0.0/15 starting at offset.
func hostRoutesIn(offset, n int) []wire.NLRI {
	out := make([]wire.NLRI, n)
	for i := range out {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], 0xc6120000+uint32(offset+i))
		out[i].Prefix = netip.PrefixFrom(netip.AddrFrom4(a), 32)
	}
	return out
}

// TestUnknownAttrsNotKept: a peer that sends a new unknown optional
// attribute with every UPDATE does not grow the RIB's attribute sets,
// unless the configuration keeps some, and then only up to the cap.
func TestUnknownAttrsNotKept(t *testing.T) {
	const updates = 500
	for _, tc := range []struct {
		name      string
		cap       int
		wantBytes func(int) bool
	}{
		{"default", 0, func(n int) bool { return n == 0 }},
		{"capped", 1000, func(n int) bool { return n > 0 && n <= 1000 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := node(11)
			r := newRIB(t, Config{UnknownAttrBytes: tc.cap}, p)
			for i, n := range hostRoutesIn(0, updates) {
				a := seedAttrs()
				v := make([]byte, 64)
				binary.BigEndian.PutUint32(v, uint32(i))
				a.Unknown = []wire.RawAttr{{Flags: wire.FlagOptional | wire.FlagTransitive, Type: 200, Value: v}}
				if err := r.Update(p.ID, wire.IPv4Unicast, a, p.Addr, []wire.NLRI{n}, nil, nil); err != nil {
					t.Fatal(err)
				}
			}
			s := r.Stats()
			if s.IPv4Paths != updates {
				t.Fatalf("%d paths, want %d", s.IPv4Paths, updates)
			}
			if !tc.wantBytes(s.UnknownAttrBytes) {
				t.Fatalf("%d bytes of unknown attributes kept (cap %d)", s.UnknownAttrBytes, tc.cap)
			}
			// Each kept set costs at least its 64-byte value, and all
			// the stripped ones share one set.
			if max := 1 + tc.cap/64; s.AttrSets > max {
				t.Fatalf("%d attribute sets for %d UPDATEs, want at most %d", s.AttrSets, updates, max)
			}
			if tc.cap == 0 {
				if vs := r.Lookup(hostRoutesIn(7, 1)[0].Prefix); len(vs) != 1 || len(vs[0].Attrs.Unknown) != 0 {
					t.Fatalf("unknown attributes stored: %+v", vs)
				}
			}
			checkInvariants(t, r)
			removePeer(t, r, p.ID)
			if s := r.Stats(); s.AttrSets != 0 || s.UnknownAttrBytes != 0 {
				t.Fatalf("left after the peer went: %+v", s)
			}
		})
	}
}

// TestMaxPrefixes: the limit is enforced within an UPDATE: the peer never
// holds more paths than its limit, the announcements up to it are applied
// and reported, the rest of the UPDATE is not.
func TestMaxPrefixes(t *testing.T) {
	p, other := node(11), node(12)
	p.MaxPrefixes = 10
	r := newRIB(t, Config{}, p, other)
	all := hostRoutesIn(0, 25)
	// The other peer holds some of the same prefixes: they count for
	// each peer separately.
	if err := r.Update(other.ID, wire.IPv4Unicast, seedAttrs(), other.Addr, all[:5], nil, nil); err != nil {
		t.Fatal(err)
	}
	var out Changes
	err := r.Update(p.ID, wire.IPv4Unicast, seedAttrs(), p.Addr, all, nil, &out)
	if !errors.Is(err, ErrMaxPrefixes) {
		t.Fatalf("error %v, want ErrMaxPrefixes", err)
	}
	if rcv, _, _ := r.PeerTotals(p.ID); rcv != 10 {
		t.Fatalf("peer holds %d paths, limit 10", rcv)
	}
	if len(out.List) != 10 || out.List[9].Prefix != all[9].Prefix {
		t.Fatalf("%d changes reported, want the first 10", len(out.List))
	}
	if vs := r.Lookup(all[10].Prefix); vs != nil {
		t.Fatalf("%v past the limit was stored: %+v", all[10].Prefix, vs)
	}
	checkInvariants(t, r)

	// At the limit: replacing held paths, and withdrawing to make room in
	// the same UPDATE, are fine; one more is not, in either family.
	if err := r.Update(p.ID, wire.IPv4Unicast, attrs(withMED(5)), p.Addr, all[:10], nil, nil); err != nil {
		t.Fatalf("re-announcing held paths at the limit: %v", err)
	}
	if err := r.Update(p.ID, wire.IPv4Unicast, seedAttrs(), p.Addr, all[10:12], all[:2], nil); err != nil {
		t.Fatalf("withdraw two, announce two at the limit: %v", err)
	}
	err = r.Update(p.ID, wire.IPv6Unicast, seedAttrs(), netip.MustParseAddr("2001:db8::11"), nlri(vip6), nil, nil)
	if !errors.Is(err, ErrMaxPrefixes) {
		t.Fatalf("an 11th path in IPv6: error %v", err)
	}
	// A second ADD-PATH path of a held prefix is one more path.
	err = r.Update(p.ID, wire.IPv4Unicast, seedAttrs(), p.Addr, []wire.NLRI{{Prefix: all[5].Prefix, PathID: 2}}, nil, nil)
	if !errors.Is(err, ErrMaxPrefixes) {
		t.Fatalf("a second path ID at the limit: error %v", err)
	}
	if rcv, _, _ := r.PeerTotals(p.ID); rcv != 10 {
		t.Fatalf("peer holds %d paths, limit 10", rcv)
	}
	// Raised, the limit lets more in; the other peer never had one.
	if err := r.SetMaxPrefixes(p.ID, 20); err != nil {
		t.Fatal(err)
	}
	if err := r.Update(p.ID, wire.IPv4Unicast, seedAttrs(), p.Addr, all[12:20], nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Update(other.ID, wire.IPv4Unicast, seedAttrs(), other.Addr, all, nil, nil); err != nil {
		t.Fatal(err)
	}
	if rcv, _, _ := r.PeerTotals(p.ID); rcv != 18 {
		t.Fatalf("peer holds %d paths, want 18", rcv)
	}
	checkInvariants(t, r)
	if err := r.SetMaxPrefixes(99, 1); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("unknown peer: %v", err)
	}
}

// TestRemoveOrderUnlikeFIB: a peer-down sweep reports prefixes in an order
// unrelated to Fibonacci hashing of the IPv4 key, which the FIB's prefix
// map uses for its slots (deleting in slot order makes it pack the
// remaining entries into one long run: the withdraw of 1M routes took 16 s).
func TestRemoveOrderUnlikeFIB(t *testing.T) {
	p := node(11)
	r := newRIB(t, Config{}, p)
	if err := r.Update(p.ID, wire.IPv4Unicast, seedAttrs(), p.Addr, hostRoutesIn(0, 20000), nil, nil); err != nil {
		t.Fatal(err)
	}
	// The top bits of the golden-ratio product are the FIB's slot order;
	// the sweep must not go through the table region by region.
	var prev uint64
	descents, n := 0, 0
	err := r.RemovePeer(p.ID, func(c *Changes) {
		for _, ch := range c.List {
			slot := uint64(makeKey4(ch.Prefix)) * 0x9e3779b97f4a7c15 >> 60
			if n > 0 && slot < prev {
				descents++
			}
			prev = slot
			n++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if descents < n/4 {
		t.Fatalf("%d of %d removals go down in the FIB's slot order: the sweep follows it", descents, n)
	}
}
