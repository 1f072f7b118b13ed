package rib

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
)

// peerOp is one call a session goroutine makes.
type peerOp struct {
	remove   bool // RemovePeer, then AddPeer again
	fam      wire.Family
	attrs    *wire.Attrs
	nh       netip.Addr
	announce []netip.Prefix
	withdraw []netip.Prefix
}

// TestConcurrentPeers runs several peers' sessions in parallel over shared
// prefixes, with readers walking the RIB meanwhile (run it with -race).
// Each peer's final paths follow from its own calls alone, so the final
// RIB must equal the twin fed each peer's calls one peer after another;
// and the newest Change of every prefix (by Seq) must be its final ECMP
// set, whatever order the goroutines' Changes came in.
func TestConcurrentPeers(t *testing.T) { testConcurrent(t, false) }

// TestConcurrentRevalidate is TestConcurrentPeers with next hops becoming
// unreachable and reachable again while the peers update, and Revalidate
// running meanwhile: its Changes join the peers' in checkNewest.
func TestConcurrentRevalidate(t *testing.T) { testConcurrent(t, true) }

func testConcurrent(t *testing.T, flap bool) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := Config{Now: func() time.Time { return now }}
	var unreach atomic.Pointer[map[netip.Addr]uint8]
	unreach.Store(&map[netip.Addr]uint8{})
	cfg.NextHop = func(_ *Peer, nh netip.Addr) uint8 { return (*unreach.Load())[nh] }
	peers := []Peer{node(11), node(12), node(13), ebgp(21, 65001), ebgp(22, 65002), twinPeers[6]}
	r := newRIB(t, cfg, peers...)
	tw := newTwin(r.cfg)
	tw.now = now
	for _, p := range peers {
		if err := tw.addPeer(p); err != nil {
			t.Fatal(err)
		}
	}

	space := concurrentSpace()
	ops := 400
	if testing.Short() || raceEnabled {
		ops = 150
	}
	script := concurrentScript(peers, space, ops)

	var flapper func() []Change
	if flap {
		// Two next hops in turn: a node's own address and the shared
		// one the generator draws.
		rng := rand.New(rand.NewPCG(3, 3))
		hops := []netip.Addr{node(12).Addr, netip.MustParseAddr("198.51.100.77")}
		flapper = func() []Change {
			m := map[netip.Addr]uint8{}
			for _, a := range hops {
				if rng.IntN(2) == 0 {
					m[a] = uint8(1 + rng.IntN(2))
				}
			}
			unreach.Store(&m)
			return collectRevalidate(r)
		}
	}
	changes := runConcurrent(t, r, peers, script, space[0], flapper)
	if t.Failed() {
		return
	}
	if flap && len(changes[len(peers)]) == 0 {
		t.Fatal("Revalidate changed nothing while the peers ran")
	}
	if flap {
		// The final verdicts, as the twin sees them.
		m := map[netip.Addr]uint8{node(12).Addr: 1}
		unreach.Store(&m)
		changes = append(changes, collectRevalidate(r))
		tw.unreach = m
	}

	for i, p := range peers {
		for _, op := range script[i] {
			if op.remove {
				if _, err := tw.removePeer(p.ID); err != nil {
					t.Fatal(err)
				}
				if err := tw.addPeer(p); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if _, err := tw.update(p.ID, op.announce, op.withdraw, make([]uint32, len(op.announce)+len(op.withdraw)), op.attrs, op.nh); err != nil {
				t.Fatal(err)
			}
		}
	}
	compareState(t, "final", r, tw)

	checkNewest(t, r, changes, len(space))
}

// concurrentSpace is the prefixes the peers fight over: 96 IPv4, 32 IPv6.
func concurrentSpace() []netip.Prefix {
	var space []netip.Prefix
	for i := range 96 {
		space = append(space, netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), 32))
	}
	for i := range 32 {
		space = append(space, netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 1, 15: byte(i)}), 128))
	}
	return space
}

// concurrentScript draws each peer's calls.
func concurrentScript(peers []Peer, space []netip.Prefix, ops int) [][]peerOp {
	script := make([][]peerOp, len(peers))
	for i, p := range peers {
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		var pool []*wire.Attrs
		g := &gen{rng: rng, peer: p, pool: &pool}
		for range ops {
			if rng.IntN(40) == 0 {
				script[i] = append(script[i], peerOp{remove: true})
				continue
			}
			op := peerOp{fam: wire.IPv4Unicast, attrs: g.attrs(), nh: g.nextHop()}
			lo, hi := 0, 96
			if rng.IntN(4) == 0 {
				op.fam, lo, hi = wire.IPv6Unicast, 96, 128
			}
			for range rng.IntN(12) {
				op.announce = append(op.announce, space[lo+rng.IntN(hi-lo)])
			}
			for range rng.IntN(6) {
				op.withdraw = append(op.withdraw, space[lo+rng.IntN(hi-lo)])
			}
			script[i] = append(script[i], op)
		}
	}
	return script
}

func collectRevalidate(r *RIB) []Change {
	var got []Change
	r.Revalidate(func(c *Changes) {
		for _, ch := range c.List {
			ch.Paths = slices.Clone(ch.Paths)
			got = append(got, ch)
		}
	})
	return got
}

// runConcurrent plays every peer's script in its own goroutine, with a
// reader walking the RIB meanwhile, and (when flap is not nil) another
// goroutine calling flap in a loop; it returns the Changes each made.
func runConcurrent(t *testing.T, r *RIB, peers []Peer, script [][]peerOp, probe netip.Prefix, flap func() []Change) [][]Change {
	changes := make([][]Change, len(peers), len(peers)+2)
	var wg sync.WaitGroup
	done := make(chan struct{})
	for i, p := range peers {
		wg.Go(func() {
			var out Changes
			keep := func(c *Changes) {
				for _, ch := range c.List {
					ch.Paths = slices.Clone(ch.Paths)
					changes[i] = append(changes[i], ch)
				}
			}
			for _, op := range script[i] {
				if op.remove {
					if err := r.RemovePeer(p.ID, keep); err != nil {
						t.Error(err)
					}
					if err := r.AddPeer(p); err != nil {
						t.Error(err)
					}
					continue
				}
				out.Reset()
				if err := r.Update(p.ID, op.fam, op.attrs, op.nh, nlri(op.announce...), nlri(op.withdraw...), &out); err != nil {
					t.Error(err)
				}
				keep(&out)
			}
		})
	}
	var readers sync.WaitGroup
	until := func(fn func()) {
		readers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				fn()
			}
		})
	}
	until(func() {
		r.Walk(wire.IPv4Unicast, func(netip.Prefix, []PathView) bool { return true })
		r.Lookup(probe)
		r.Stats()
		_ = r.AdjRIBIn(peers[0].ID, wire.IPv6Unicast, func(netip.Prefix, PathView) bool { return true })
	})
	var flapped []Change
	if flap != nil {
		until(func() { flapped = append(flapped, flap()...) })
	}
	wg.Wait()
	close(done)
	readers.Wait()
	return append(changes, flapped)

}

// checkNewest: the newest Change of every prefix is its ECMP set now.
func checkNewest(t *testing.T, r *RIB, changes [][]Change, spaceLen int) {
	t.Helper()
	newest := map[netip.Prefix]Change{}
	for _, cs := range changes {
		for _, c := range cs {
			if c.Seq > newest[c.Prefix].Seq {
				newest[c.Prefix] = c
			}
		}
	}
	if len(newest) < spaceLen/2 {
		t.Fatalf("changes for only %d prefixes", len(newest))
	}
	for p, c := range newest {
		if want := ecmp(r, p); !slices.EqualFunc(c.Paths, want, func(a, b PathView) bool {
			return a.Peer == b.Peer && a.NextHop == b.NextHop && a.Attrs == b.Attrs
		}) {
			t.Fatalf("%v: newest change %s, RIB %s", p, describe(c.Paths), describe(want))
		}
	}
}
