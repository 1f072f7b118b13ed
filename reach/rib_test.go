package reach_test

import (
	"context"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/rib"
	"github.com/bgplb/bgplb/bgp/wire"
	"github.com/bgplb/bgplb/lab/labtest"
	"github.com/bgplb/bgplb/reach"
)

// TestRIBFollowsLinks wires Watch to a RIB as the router does: two nodes
// announce one address, the link to one of them goes down, and its path
// leaves the ECMP set (and comes back with the link); a node announcing
// the router's own address as next hop never gets in.
func TestRIBFollowsLinks(t *testing.T) {
	ns := labtest.Netns(t, "reachrib")
	ctx := labtest.Context(t, 30*time.Second)
	for _, args := range [][]string{
		{"link", "add", "ra0", "type", "veth", "peer", "name", "ra1"},
		{"link", "add", "rb0", "type", "veth", "peer", "name", "rb1"},
		{"link", "set", "ra0", "up"}, {"link", "set", "ra1", "up"},
		{"link", "set", "rb0", "up"}, {"link", "set", "rb1", "up"},
		{"addr", "add", "198.51.100.1/25", "dev", "ra0"},
		{"addr", "add", "198.51.100.129/25", "dev", "rb0"},
	} {
		if err := ns.IP(ctx, args...); err != nil {
			t.Fatal(err)
		}
	}
	var state atomic.Pointer[reach.State]
	updates := make(chan struct{}, 1)
	r := rib.New(rib.Config{LocalAS: 64512, RouterID: netip.MustParseAddr("198.51.100.1"),
		NextHop: func(p *rib.Peer, nh netip.Addr) uint8 { return uint8(state.Load().Check(nh, p.Multihop)) }})
	wctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		errc <- reach.Watch(wctx, reach.Options{Netns: ns.Path(), Settle: 20 * time.Millisecond}, func(s *reach.State) {
			state.Store(s)
			select {
			case updates <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Error(err)
		}
	})
	<-updates

	vip := netip.MustParsePrefix("203.0.113.10/32")
	nodes := []netip.Addr{netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("198.51.100.130"), netip.MustParseAddr("198.51.100.3")}
	hops := []netip.Addr{nodes[0], nodes[1], netip.MustParseAddr("198.51.100.1")} // the third claims our address
	a := &wire.Attrs{}
	a.Set(wire.AttrOrigin)
	a.Set(wire.AttrASPath)
	for i, n := range nodes {
		p := rib.Peer{ID: rib.PeerID(i + 1), Addr: n, AS: 64512, RouterID: n}
		if err := r.AddPeer(p); err != nil {
			t.Fatal(err)
		}
		if err := r.Update(p.ID, wire.IPv4Unicast, a, hops[i], []wire.NLRI{{Prefix: vip}}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	ecmp := func() []netip.Addr {
		var out []netip.Addr
		for _, v := range r.Lookup(vip) {
			if v.ECMP {
				out = append(out, v.NextHop)
			}
		}
		return out
	}
	// wait revalidates after each new State until the ECMP set is want.
	wait := func(what string, want ...netip.Addr) {
		t.Helper()
		for {
			r.Revalidate(nil)
			got := ecmp()
			if slices.Equal(got, want) {
				return
			}
			select {
			case <-updates:
			case <-ctx.Done():
				t.Fatalf("%s: ECMP set %v, want %v", what, got, want)
			}
		}
	}
	wait("start", hops[0], hops[1])
	for _, v := range r.Lookup(vip) {
		if v.NextHop == hops[2] && (v.ECMP || reach.Reason(v.NextHopVerdict) != reach.OwnAddress) {
			t.Fatalf("own address as next hop: %+v", v)
		}
	}
	if err := ns.IP(ctx, "link", "set", "rb1", "down"); err != nil {
		t.Fatal(err)
	}
	wait("link to node 2 down", hops[0])
	if err := ns.IP(ctx, "link", "set", "rb1", "up"); err != nil {
		t.Fatal(err)
	}
	wait("link to node 2 up", hops[0], hops[1])
}
