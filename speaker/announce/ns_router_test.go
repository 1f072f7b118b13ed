package announce

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/labtest"
	"github.com/bgplb/bgplb/view"
)

// routerConfig is our router accepting any node of the LAN over iBGP.
const routerConfig = `asn: 64512
routerID: 198.51.100.1
listen: ["0.0.0.0:179"]
dynamicNeighbors:
  - {prefix: 198.51.100.0/24, peerASN: 64512, holdTime: 9s}
import:
  prefixes: ["203.0.113.0/24", "2001:db8:100::/48"]
fib: {graceTime: 3s}
api: {socket: SOCKET}
`

// TestNSRouter: the speaker on node1 dials our router daemon. Its routes
// reach the router's kernel (proto bgp) with their attributes; a change of
// attributes and a withdrawal follow; after the router restarts with an
// empty RIB the speaker sends everything again; Shutdown withdraws it all
// and the router sees the Cease with our message. The speaker's own view
// (bgplb neighbor / bgplb rib --socket) shows its session and routes.
func TestNSRouter(t *testing.T) {
	r, nodes := newLab(t, 1)
	n1 := nodes[0]
	ctx := labtest.Context(t, 60*time.Second)
	rp := startRouter(t, ctx, r, routerConfig)
	sp := startSpeaker(t, ctx, n1, routerPeer("router", n1, r, 64512, 64512))

	p10, p11, p6 := prefix("203.0.113.10/32"), prefix("203.0.113.11/32"), prefix("2001:db8:100::10/128")
	routes := func(lp uint32) []Route {
		return []Route{
			{Prefix: p10},
			{Prefix: p11, LocalPref: u32(lp), Communities: []wire.Community{wire.NewCommunity(64512, 11)},
				LargeCommunities: []wire.LargeCommunity{{Global: 64512, Local1: 1, Local2: 1}}},
			{Prefix: p6},
		}
	}
	sp.announce(t, ctx, "router", routes(200))
	waitKernel(t, ctx, r.ns, want{p10: {n1.v4}, p11: {n1.v4}, p6: {n1.v6}})
	es := rp.waitRIB(t, ctx, "three routes", func(es []view.RIBEntry) bool { return len(es) == 3 })
	if p, _ := pathOf(es, p11); p.LocalPref == nil || *p.LocalPref != 200 || !slices.Equal(p.Communities, []string{"64512:11", "64512:1:1"}) ||
		p.ASPath != "" || p.NextHop != n1.v4 {
		t.Errorf("router's path for %v: %+v", p11, p)
	}

	// The speaker's own view, as `bgplb neighbor` and `bgplb rib --socket` read it.
	ns, err := sp.view.Neighbors(ctx)
	if err != nil || len(ns) != 1 || ns[0].Address != r.v4 || ns[0].State != "Established" || ns[0].Description != "router" {
		t.Errorf("speaker neighbors %+v %v", ns, err)
	}
	if es, err := sp.view.RIB(ctx, "ipv6", p6); err != nil || len(es) != 1 || es[0].Paths[0].NextHop != n1.v6 {
		t.Errorf("speaker rib %+v %v", es, err)
	}

	// Change attributes, then withdraw.
	sp.announce(t, ctx, "router", routes(300))
	rp.waitRIB(t, ctx, "LOCAL_PREF 300", func(es []view.RIBEntry) bool {
		p, ok := pathOf(es, p11)
		return ok && p.LocalPref != nil && *p.LocalPref == 300
	})
	sp.announce(t, ctx, "router", routes(300)[1:])
	waitKernel(t, ctx, r.ns, want{p10: nil, p11: {n1.v4}, p6: {n1.v6}})

	// The router restarts: its new RIB gets everything again.
	rp.restart(t, ctx)
	es = rp.waitRIB(t, ctx, "the routes again", func(es []view.RIBEntry) bool { return len(es) == 2 })
	if p, _ := pathOf(es, p11); p.LocalPref == nil || *p.LocalPref != 300 {
		t.Errorf("after the restart: %+v", p)
	}
	waitKernel(t, ctx, r.ns, want{p10: nil, p11: {n1.v4}, p6: {n1.v6}})
	if st := sp.waitStatus(t, ctx, "router", synced); st.Flaps != 1 || st.Announced != 2 {
		t.Errorf("speaker status after the restart %+v", st)
	}

	// Shutdown: the routes leave the kernel, the router saw our reason.
	sp.shutdown(t, ctx, "node1 drained for maintenance")
	waitKernel(t, ctx, r.ns, want{p11: nil, p6: nil})
	nb := rp.waitNeighbor(t, ctx, n1.v4, func(n view.Neighbor) bool { return n.State != "Established" })
	if !strings.Contains(nb.LastError, "Administrative Shutdown") || !strings.Contains(nb.LastError, "node1 drained for maintenance") {
		t.Errorf("router's view of the speaker: %+v", nb)
	}
}

// TestNSRouterWeightedECMP: two speakers announce the same /32 with link
// bandwidths 1 and 3; the router's kernel route weights them 1:3. When one
// speaker changes its bandwidth, the weights follow.
func TestNSRouterWeightedECMP(t *testing.T) {
	r, nodes := newLab(t, 2)
	ctx := labtest.Context(t, 60*time.Second)
	startRouter(t, ctx, r, routerConfig)
	var sps []*speakerProc
	for _, n := range nodes {
		sps = append(sps, startSpeaker(t, ctx, n, routerPeer("router", n, r, 64512, 64512)))
	}
	vip := prefix("203.0.113.50/32")
	sps[0].announce(t, ctx, "router", []Route{{Prefix: vip, Bandwidth: 1}})
	sps[1].announce(t, ctx, "router", []Route{{Prefix: vip, Bandwidth: 3}})
	weights := func(w0, w1 int) {
		t.Helper()
		_, err := r.ns.WaitRoutes(ctx, lab.RouteQuery{Proto: "bgp"}, func(rs []lab.Route) bool {
			i := slices.IndexFunc(rs, func(r lab.Route) bool { return r.Dst == vip })
			if i < 0 || len(rs[i].NextHops) != 2 {
				return false
			}
			for _, h := range rs[i].NextHops {
				if (h.Gateway == nodes[0].v4 && h.Weight != w0) || (h.Gateway == nodes[1].v4 && h.Weight != w1) {
					return false
				}
			}
			return true
		})
		if err != nil {
			t.Fatalf("weights %d:%d: %v", w0, w1, err)
		}
	}
	weights(1, 3)
	sps[1].announce(t, ctx, "router", []Route{{Prefix: vip, Bandwidth: 2}})
	weights(1, 2)
}
