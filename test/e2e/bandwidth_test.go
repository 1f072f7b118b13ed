package e2e

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/daemons"
	"github.com/bgplb/bgplb/view"
)

// TestRouterInfiniteBandwidth: a node announcing a link bandwidth of +Inf
// neither breaks `bgplb rib` (it used to answer an empty 200, which JSON
// cannot encode) nor takes the whole ECMP route: the route falls back to
// equal weights, as when a member has no bandwidth.
func TestRouterInfiniteBandwidth(t *testing.T) {
	l := newRouterLab(t, 60*time.Second, guardConfig, "exabgp")
	ctx, r, n1, n2, rp := l.ctx, l.r, l.n1, l.n2, l.rp
	var exas []*daemons.ExaBGP
	for _, n := range []node{n1, n2} {
		exas = append(exas, peerWith(t, ctx, daemons.StartExaBGP, n, 64512, r, false))
	}
	rp.waitEstablished(t, ctx, n1.v4, n2.v4)
	vip := prefix("203.0.113.60/32")
	if err := exas[0].AnnounceWith(ctx, linkBandwidth(float32(math.Inf(1))), vip); err != nil {
		t.Fatal(err)
	}
	if err := exas[1].AnnounceWith(ctx, linkBandwidth(3), vip); err != nil {
		t.Fatal(err)
	}
	rp.waitKernel(t, ctx, want{vip: {n1.v4, n2.v4}})
	var rib []view.RIBEntry
	rp.cli(t, ctx, &rib, "rib", vip.String())
	if len(rib) != 1 || len(rib[0].Paths) != 2 {
		t.Fatalf("bgplb rib %s: %+v", vip, rib)
	}
	var all []view.RIBEntry
	rp.cli(t, ctx, &all, "rib")
	if !slices.ContainsFunc(all, func(e view.RIBEntry) bool { return e.Prefix == vip }) {
		t.Fatalf("bgplb rib: %+v", all)
	}
	var last []lab.Route
	_, err := r.ns.WaitRoutes(ctx, lab.RouteQuery{Proto: "bgp"}, func(rs []lab.Route) bool {
		last = rs
		i := slices.IndexFunc(rs, func(r lab.Route) bool { return r.Dst == vip })
		return i >= 0 && len(rs[i].NextHops) == 2 && rs[i].NextHops[0].Weight == rs[i].NextHops[1].Weight
	})
	if err != nil {
		t.Fatalf("no equal-weight ECMP route: %v\n%s", err, lab.FormatRoutes(last))
	}
}
