package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/daemons"
	"github.com/bgplb/bgplb/lab/labtest"
)

const resilientConfig = `asn: 64512
routerID: 198.51.100.1
listen: ["0.0.0.0:179"]
dynamicNeighbors:
  - {prefix: 198.51.100.0/24, peerASN: 64512, holdTime: 9s}
import:
  prefixes: ["203.0.113.0/24"]
fib: {graceTime: 5s, resilient: {idleTimer: 5s}}
api: {socket: SOCKET}
`

// TestRouterResilientECMP: three nodes announce the same prefixes, and the
// router installs them through one resilient nexthop group. When one node
// stops, the router sweeps its paths and the group changes in place: the
// routes keep the group, and every bucket that sent flows to one of the two
// other nodes still does, so their flows do not move.
func TestRouterResilientECMP(t *testing.T) {
	labtest.Require(t)
	labtest.RequireBinaries(t, "bird")
	ctx := labtest.Context(t, 60*time.Second)
	nodes := []node{newNode("node1", 11), newNode("node2", 12), newNode("node3", 13)}
	r := topology(t, &nodes[0], &nodes[1], &nodes[2])
	rp := startRouter(t, ctx, r, resilientConfig)
	ps := []netip.Prefix{prefix("203.0.113.20/32"), prefix("203.0.113.21/32"), prefix("203.0.113.22/32")}
	var birds []*daemons.BIRD
	for _, n := range nodes {
		b := peerWith(t, ctx, daemons.StartBIRD, n, 64512, r, false)
		if err := b.Announce(ctx, ps...); err != nil {
			t.Fatal(err)
		}
		birds = append(birds, b)
	}
	rp.waitEstablished(t, ctx, nodes[0].v4, nodes[1].v4, nodes[2].v4)
	all, two := want{}, want{}
	for _, p := range ps {
		all[p] = []netip.Addr{nodes[0].v4, nodes[1].v4, nodes[2].v4}
		two[p] = []netip.Addr{nodes[0].v4, nodes[1].v4}
	}
	rp.waitKernel(t, ctx, all)
	g := groupOf(t, ctx, r, ps)
	if typ := nexthopType(t, ctx, r, g); typ != "resilient" {
		labtest.Missing(t, "resilient nexthop groups (Linux 5.13+): the router made a %s group", typ)
	}
	before := bucketsOf(t, ctx, r, g)
	leaver := singleOf(t, ctx, r, nodes[2].v4)

	if err := birds[2].Stop(); err != nil {
		t.Fatal(err)
	}
	rp.waitKernel(t, ctx, two)
	if got := groupOf(t, ctx, r, ps); got != g {
		t.Fatalf("routes moved from group %d to %d when a node left: their buckets were dealt afresh", g, got)
	}
	after := bucketsOf(t, ctx, r, g)
	moved, dealt := 0, 0
	for i := range before {
		if before[i] == leaver {
			dealt++
		}
		switch {
		case after[i] == leaver:
			t.Errorf("bucket %d still sends flows to the node that left", i)
		case before[i] != leaver && after[i] != before[i]:
			moved++
		}
	}
	if moved > 0 {
		t.Errorf("%d of %d buckets of the nodes that stayed moved", moved, len(before))
	}
	t.Logf("node3 left: its %d buckets of %d went to the others; none of theirs moved", dealt, len(before))
}

// groupOf returns the nexthop object every route of ps uses in r.
func groupOf(t *testing.T, ctx context.Context, r node, ps []netip.Prefix) uint32 {
	t.Helper()
	var g uint32
	for _, p := range ps {
		var rs []struct {
			NHID uint32 `json:"nhid"`
		}
		ipJSON(t, ctx, r, &rs, "-j", "route", "show", p.String(), "proto", "bgp")
		if len(rs) != 1 || rs[0].NHID == 0 || (g != 0 && rs[0].NHID != g) {
			t.Fatalf("route %s: %+v, want one through group %d", p, rs, g)
		}
		g = rs[0].NHID
	}
	return g
}

func nexthopType(t *testing.T, ctx context.Context, r node, id uint32) string {
	t.Helper()
	var nhs []struct {
		Type string `json:"type"`
	}
	ipJSON(t, ctx, r, &nhs, "-j", "-d", "nexthop", "show", "id", fmt.Sprint(id))
	if len(nhs) != 1 {
		t.Fatalf("nexthop %d: %+v", id, nhs)
	}
	if nhs[0].Type == "" {
		return "mpath"
	}
	return nhs[0].Type
}

// bucketsOf is the member id of every bucket of group id, by index.
func bucketsOf(t *testing.T, ctx context.Context, r node, id uint32) []uint32 {
	t.Helper()
	out, err := r.ns.IPOutput(ctx, "-j", "nexthop", "bucket", "show", "id", fmt.Sprint(id))
	if err != nil {
		t.Fatal(err)
	}
	bs, err := lab.ParseBuckets(out)
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

// singleOf is the id of the router's nexthop object for gateway gw.
func singleOf(t *testing.T, ctx context.Context, r node, gw netip.Addr) uint32 {
	t.Helper()
	var nhs []struct {
		ID      uint32 `json:"id"`
		Gateway string `json:"gateway"`
	}
	ipJSON(t, ctx, r, &nhs, "-j", "nexthop", "show")
	for _, n := range nhs {
		if n.Gateway == gw.String() {
			return n.ID
		}
	}
	t.Fatalf("no nexthop object for %v: %+v", gw, nhs)
	return 0
}

func ipJSON(t *testing.T, ctx context.Context, r node, v any, args ...string) {
	t.Helper()
	out, err := r.ns.IPOutput(ctx, args...)
	if err != nil {
		t.Fatalf("ip %v: %v", args, err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("ip %v: %v: %s", args, err, out)
	}
}
