package e2e

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/daemons"
)

// linkBandwidth is ExaBGP's spelling of a non-transitive link-bandwidth
// extended community (AS 64512) carrying v bytes per second.
func linkBandwidth(v float32) string {
	return fmt.Sprintf("extended-community [ 0x4004fc00%08x ]", math.Float32bits(v))
}

// TestRouterWeightedECMP: two nodes announce the same /32, one with a link
// bandwidth of 1 and one of 3 (what a speaker sends for 1 and 3 local pods);
// the router's kernel route weights its next hops 1:3. When one node stops
// sending the community the route falls back to equal weights.
func TestRouterWeightedECMP(t *testing.T) {
	l := newRouterLab(t, 60*time.Second, guardConfig, "exabgp")
	ctx, r, n1, n2, rp := l.ctx, l.r, l.n1, l.n2, l.rp
	var exas []*daemons.ExaBGP
	for _, n := range []node{n1, n2} {
		e := peerWith(t, ctx, daemons.StartExaBGP, n, 64512, r, false)
		exas = append(exas, e)
	}
	rp.waitEstablished(t, ctx, n1.v4, n2.v4)
	vip := prefix("203.0.113.50/32")
	if err := exas[0].AnnounceWith(ctx, linkBandwidth(1), vip); err != nil {
		t.Fatal(err)
	}
	if err := exas[1].AnnounceWith(ctx, linkBandwidth(3), vip); err != nil {
		t.Fatal(err)
	}
	weights := func(want map[string]int) {
		t.Helper()
		var last []lab.Route
		_, err := r.ns.WaitRoutes(ctx, lab.RouteQuery{Proto: "bgp"}, func(rs []lab.Route) bool {
			last = rs
			i := slices.IndexFunc(rs, func(r lab.Route) bool { return r.Dst == vip })
			if i < 0 || len(rs[i].NextHops) != len(want) {
				return false
			}
			for _, h := range rs[i].NextHops {
				if w, ok := want[h.Gateway.String()]; !ok || h.Weight != w {
					return false
				}
			}
			return true
		})
		if err != nil {
			t.Fatalf("weights %v: %v\n%s", want, err, lab.FormatRoutes(last))
		}
	}
	weights(map[string]int{"198.51.100.11": 1, "198.51.100.12": 3})
	if err := exas[1].Announce(ctx, vip); err != nil {
		t.Fatal(err)
	}
	weights(map[string]int{"198.51.100.11": 1, "198.51.100.12": 1})
}
