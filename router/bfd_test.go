package router

import (
	"net/netip"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bfd"
)

func TestBFDFor(t *testing.T) {
	on := BFD{Enabled: true, MinTx: 50 * time.Millisecond, MinRx: 50 * time.Millisecond, Multiplier: 3}
	slow := BFD{Enabled: true, MinTx: time.Second, MinRx: time.Second, Multiplier: 3}
	a := netip.MustParseAddr
	rng, other := netip.MustParsePrefix("198.51.100.0/25"), netip.MustParsePrefix("2001:db8::/64")
	cfg := &Config{
		Neighbors: []Neighbor{
			{Address: a("198.51.100.200"), BFD: on},
			{Address: a("203.0.113.9"), Multihop: 4, BFD: slow},
			{Address: a("198.51.100.201"), Multihop: 1, BFD: on},
			{Address: a("198.51.100.202")},
		},
		DynamicNeighbors: []DynamicNeighbor{{Prefix: rng, BFD: slow}, {Prefix: other}},
	}
	tests := []struct {
		name     string
		addr     netip.Addr
		dynamic  bool
		rangePfx netip.Prefix
		want     BFD
		multihop bool
	}{
		{"static single hop", a("198.51.100.200"), false, netip.Prefix{}, on, false},
		{"static multihop", a("203.0.113.9"), false, netip.Prefix{}, slow, true},
		{"ebgpMultihop 1 is one hop", a("198.51.100.201"), false, netip.Prefix{}, on, false},
		{"static without bfd", a("198.51.100.202"), false, netip.Prefix{}, BFD{}, false},
		{"static no longer configured", a("198.51.100.203"), false, netip.Prefix{}, BFD{}, false},
		{"dynamic from a bfd range", a("198.51.100.7"), true, rng, slow, false},
		{"dynamic from a range without bfd", a("2001:db8::7"), true, other, BFD{}, false},
		{"dynamic from a removed range", a("198.51.100.7"), true, netip.MustParsePrefix("198.51.100.0/24"), BFD{}, false},
		// The range decides for a dynamic peer, even at a static address.
		{"dynamic at a static address", a("198.51.100.200"), true, other, BFD{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, mh := bfdFor(cfg, tc.addr, tc.dynamic, tc.rangePfx)
			if got != tc.want || mh != tc.multihop {
				t.Fatalf("got %+v multihop %v, want %+v multihop %v", got, mh, tc.want, tc.multihop)
			}
		})
	}
}

func TestBFDTearsDown(t *testing.T) {
	tests := []struct {
		name     string
		from, to bfd.State
		remote   bfd.State
		teardown bool
	}{
		{"detection timeout", bfd.Up, bfd.Down, bfd.Up, true},
		{"peer signalled down", bfd.Up, bfd.Down, bfd.Down, true},
		{"peer went admin down", bfd.Up, bfd.Down, bfd.AdminDown, false},
		{"local admin down", bfd.Up, bfd.AdminDown, bfd.Up, false},
		{"first event while up", bfd.Up, bfd.Up, bfd.Up, false},
		{"never came up", bfd.Down, bfd.Down, bfd.Down, false},
		{"coming up", bfd.Init, bfd.Up, bfd.Init, false},
		{"init lost", bfd.Init, bfd.Down, bfd.Down, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := bfd.Event{From: tc.from, To: tc.to, RemoteState: tc.remote}
			if got := ev.PathDown(); got != tc.teardown {
				t.Fatalf("PathDown(%+v) = %v", ev, got)
			}
		})
	}
}

func TestBFDKey(t *testing.T) {
	peer, local := netip.MustParseAddr("::ffff:198.51.100.11"), netip.MustParseAddr("::ffff:198.51.100.1")
	k := bfdKey(peer, local, "eth0", false)
	if k.Peer != netip.MustParseAddr("198.51.100.11") || k.Local != netip.MustParseAddr("198.51.100.1") || k.Interface != "eth0" || k.Multihop {
		t.Fatalf("single hop key %+v", k)
	}
	if k := bfdKey(peer, local, "eth0", true); k.Interface != "" || !k.Multihop {
		t.Fatalf("multihop key %+v", k)
	}
}
