package announce

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/bgp/wire"
)

const benchRoutes = 10000

func benchSet() []Route {
	rs := make([]Route, benchRoutes)
	for i := range rs {
		rs[i] = Route{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)}
	}
	return rs
}

// BenchmarkAnnounceLoopback announces 10,000 /32s to one peer through a
// real session over loopback TCP, from Announce until the receiving
// session has decoded every prefix, and reports the rate. Withdrawing them
// again between iterations is not timed.
func BenchmarkAnnounceLoopback(b *testing.B) {
	r := newReceiver(b, 64512, "198.51.100.1", loopback)
	r.countOnly = true
	a := New(Options{RouterID: speakerID})
	p := PeerConfig{Name: "r1", Session: loopPeerSession(r)}
	if err := a.SetPeers([]PeerConfig{p}); err != nil {
		b.Fatal(err)
	}
	runAnnouncerB(b, a)
	waitB(b, func() bool { s := a.Status(); return len(s) == 1 && s[0].Synced })
	rs := benchSet()
	b.ResetTimer()
	for i := range b.N {
		a.Announce("r1", rs)
		waitB(b, func() bool { return r.announced.Load() >= int64((i+1)*benchRoutes) })
		b.StopTimer()
		a.Announce("r1", nil)
		waitB(b, func() bool { return r.withdrew.Load() >= int64((i+1)*benchRoutes) })
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*benchRoutes)/b.Elapsed().Seconds(), "prefixes/s")
}

// BenchmarkDiffOneChange is the announcer's work when one route of 10,000
// changes: normalizing the new desired set, the diff against the
// Adj-RIB-Out, and encoding the one UPDATE (the network is left out).
// "attrs" changes one route's attributes, prefixes in the same order (the
// fast path); "prefix" replaces one prefix by another (the general diff:
// one withdrawal, one announcement); "unsorted" is "attrs" with the routes
// in no order, which costs the duplicate check a set.
func BenchmarkDiffOneChange(b *testing.B) {
	for _, mode := range []string{"attrs", "prefix", "unsorted"} {
		b.Run(mode, func(b *testing.B) {
			rs := benchSet()
			if mode == "unsorted" {
				rand.New(rand.NewPCG(1, 1)).Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
			}
			tg := newTarget(both, speakerID, netip.Addr{}, netip.Addr{}, false)
			o := newAdjRIBOut()
			bl := newBuilder(sessionParams{localAS: 64512, tx: wire.Options{AS4: true}}, func([]byte, int) error { return nil })
			var n normalizer
			var ws []wanted
			var skipped []SkippedRoute
			var c changes
			ws, skipped = n.normalize(rs, ws, skipped)
			o.diff(ws, &tg, 0, &c)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				// Every other iteration changes a route, the next one
				// changes it back: the set differs from the last one by
				// one route, among routes sharing their attributes.
				r := &rs[(i/2)%benchRoutes]
				if mode == "prefix" {
					a := r.Prefix.Addr().As4()
					a[0] ^= 1 // 10.x <-> 11.x: still sorted
					r.Prefix = netip.PrefixFrom(netip.AddrFrom4(a), 32)
				} else {
					r.Bandwidth = float32(1 - i%2)
				}
				ws, skipped = n.normalize(rs, ws[:0], skipped[:0])
				c.reset()
				o.diff(ws, &tg, int64(i), &c)
				if len(c.announce) != 1 || (mode == "prefix" && len(c.withdraw) != 1) {
					b.Fatalf("%d announcements, %d withdrawals", len(c.announce), len(c.withdraw))
				}
				if err := bl.build(&c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDiffFull is the same work for a new session: all 10,000 routes
// into an empty Adj-RIB-Out and encoded.
func BenchmarkDiffFull(b *testing.B) {
	rs := benchSet()
	tg := newTarget(both, speakerID, netip.Addr{}, netip.Addr{}, false)
	bl := newBuilder(sessionParams{localAS: 64512, tx: wire.Options{AS4: true}}, func([]byte, int) error { return nil })
	var n normalizer
	var c changes
	b.ReportAllocs()
	for b.Loop() {
		ws, _ := n.normalize(rs, nil, nil)
		c.reset()
		newAdjRIBOut().diff(ws, &tg, 0, &c)
		if err := bl.build(&c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAnnounceCall is what the planner pays per Announce of 10,000
// routes: a copy and a wake-up.
func BenchmarkAnnounceCall(b *testing.B) {
	a := New(Options{RouterID: speakerID})
	rs := benchSet()
	b.ReportAllocs()
	for b.Loop() {
		a.Announce("r1", rs)
	}
}

func loopPeerSession(r *receiver) session.Config {
	return loopPeer("", r, 64512).Session
}

func runAnnouncerB(b *testing.B, a *Announcer) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
}

func waitB(b *testing.B, cond func() bool) {
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatal("timed out")
		}
		time.Sleep(20 * time.Microsecond)
	}
}
