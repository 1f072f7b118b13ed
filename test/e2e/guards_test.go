package e2e

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/daemons"
	"github.com/bgplb/bgplb/view"
)

const ebgpConfig = `asn: 64512
routerID: 198.51.100.1
neighbors:
  - {address: 198.51.100.11, peerASN: 64513, passive: true, holdTime: 9s}
  - {address: 198.51.100.12, peerASN: 64514, passive: true, holdTime: 9s}
import:
  prefixes: ["203.0.113.0/24", "2001:db8:100::/48"]
api: {socket: SOCKET}
`

// TestRouterEBGP has FRR (AS 64513) and ExaBGP (AS 64514) dial in as static
// eBGP neighbours. The prefix both announce is one ECMP route across the
// two neighbour ASes; each node's own /32 and /128 arrive via that node; a
// withdrawal leaves the other node's routes alone.
func TestRouterEBGP(t *testing.T) {
	l := newRouterLab(t, 90*time.Second, ebgpConfig, "exabgp", "/usr/lib/frr/bgpd")
	ctx, r, n1, n2, rp := l.ctx, l.r, l.n1, l.n2, l.rp

	frr := peerWith(t, ctx, daemons.StartFRR, n1, 64513, r, false)
	exa := peerWith(t, ctx, daemons.StartExaBGP, n2, 64514, r, false)
	shared := prefix("203.0.113.30/32")
	p1, p1v6 := prefix("203.0.113.31/32"), prefix("2001:db8:100::31/128")
	p2, p2v6 := prefix("203.0.113.32/32"), prefix("2001:db8:100::32/128")
	rp.waitEstablished(t, ctx, n1.v4, n2.v4)
	if err := frr.Announce(ctx, shared, p1, p1v6); err != nil {
		t.Fatal(err)
	}
	if err := exa.Announce(ctx, shared, p2, p2v6); err != nil {
		t.Fatal(err)
	}
	rp.waitKernel(t, ctx, want{
		shared: {n1.v4, n2.v4},
		p1:     {n1.v4}, p1v6: {n1.v6},
		p2: {n2.v4}, p2v6: {n2.v6},
	})
	if err := exa.Withdraw(ctx, shared, p2); err != nil {
		t.Fatal(err)
	}
	rp.waitKernel(t, ctx, want{shared: {n1.v4}, p2: nil, p2v6: {n2.v6}, p1: {n1.v4}, p1v6: {n1.v6}})
}

const guardConfig = `asn: 64512
routerID: 198.51.100.1
dynamicNeighbors:
  - {prefix: 198.51.100.0/24, peerASN: 64512, holdTime: 9s}
import:
  prefixes: ["203.0.113.0/24", "2001:db8:100::/48"]
  maxPrefixes: 4
api: {socket: SOCKET}
`

// TestRouterGuards: a node announcing a default route, prefixes outside the
// import ranges and one shorter than a host route gets none of them in, and
// its neighbour's routes are untouched; when it then goes past maxPrefixes
// its session is closed with Cease / Maximum Number of Prefixes Reached and
// its routes leave, the neighbour's stay.
func TestRouterGuards(t *testing.T) {
	l := newRouterLab(t, 90*time.Second, guardConfig, "exabgp", "bird")
	ctx, r, n1, n2, rp := l.ctx, l.r, l.n1, l.n2, l.rp

	bad := peerWith(t, ctx, daemons.StartExaBGP, n1, 64512, r, false)
	good := peerWith(t, ctx, daemons.StartBIRD, n2, 64512, r, false)
	rp.waitEstablished(t, ctx, n1.v4, n2.v4)
	valid, neighbour := prefix("203.0.113.20/32"), prefix("203.0.113.21/32")
	refused := []string{"0.0.0.0/0", "::/0", "198.51.100.128/32", "2001:db8:200::1/128", "203.0.113.0/24"}
	if err := good.Announce(ctx, neighbour); err != nil {
		t.Fatal(err)
	}
	ann := []netip.Prefix{valid}
	for _, s := range refused {
		ann = append(ann, prefix(s))
	}
	if err := bad.Announce(ctx, ann...); err != nil {
		t.Fatal(err)
	}
	w := want{valid: {n1.v4}, neighbour: {n2.v4}}
	for _, s := range refused {
		w[prefix(s)] = nil
	}
	rs := rp.waitKernel(t, ctx, w)
	if len(rs) != 2 {
		t.Fatalf("router kernel holds more than the two valid routes:\n%s", lab.FormatRoutes(rs))
	}
	var ns []view.Neighbor
	rp.cli(t, ctx, &ns, "neighbor")
	i := slices.IndexFunc(ns, func(n view.Neighbor) bool { return n.Address == n1.v4 })
	if i < 0 || ns[i].Rejected != len(refused) || ns[i].Accepted != 1 {
		t.Fatalf("bgplb neighbor: %+v", ns)
	}

	// Four more valid host routes: five in all, over maxPrefixes 4.
	more := []netip.Prefix{prefix("203.0.113.22/32"), prefix("203.0.113.23/32"), prefix("203.0.113.24/32"), prefix("203.0.113.25/32")}
	if err := bad.Announce(ctx, more...); err != nil {
		t.Fatal(err)
	}
	w = want{valid: nil, neighbour: {n2.v4}}
	for _, p := range more {
		w[p] = nil
	}
	err := lab.Poll(ctx, 100*time.Millisecond, func() (bool, error) {
		return strings.Contains(rp.proc.Logs(), "exceeded import.maxPrefixes"), nil
	})
	if err != nil {
		t.Fatal("the router never closed the session over maxPrefixes")
	}
	rp.waitKernel(t, ctx, w)
	if !strings.Contains(rp.proc.Logs(), "Maximum Number of Prefixes Reached") {
		t.Error("no Cease / Maximum Number of Prefixes Reached in the router's log")
	}
}
