package e2e

import (
	"context"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/daemons"
	"github.com/bgplb/bgplb/view"
)

const limitsConfig = `asn: 64512
routerID: 198.51.100.1
dynamicNeighbors:
  - {prefix: 198.51.100.0/24, peerASN: 64512, holdTime: 0}
import:
  prefixes: ["203.0.113.0/24"]
limits: {maxSessions: 1}
api: {socket: SOCKET}
`

// A config that does not validate for the new settings alone: every
// mistake is named by file, line and path.
const badLimitsConfig = `asn: 64512
routerID: 198.51.100.1
dynamicNeighbors:
  - {prefix: 198.51.100.0/24, peerASN: 64512, ttlSecurity: maybe}
import:
  prefixes: ["203.0.113.0/24"]
limits: {maxSessions: 0}
fib:
  protocol: kernel
  bogus: 1
api: {socket: SOCKET}
`

// TestRouterSessionLimit: with limits.maxSessions 1 a second node's
// connections are refused while the first node's session and routes stay
// as they were; holdTime 0 is negotiated as RFC 4271's hold time of zero;
// a reload with invalid new settings is refused, naming each mistake by
// file, line and path, and the last good config (the cap) stays in force.
func TestRouterSessionLimit(t *testing.T) {
	l := newRouterLab(t, 60*time.Second, limitsConfig, "bird")
	ctx, r, n1, n2, rp := l.ctx, l.r, l.n1, l.n2, l.rp
	p1 := prefix("203.0.113.51/32")
	b1 := peerWith(t, ctx, daemons.StartBIRD, n1, 64512, r, false)
	if err := b1.Announce(ctx, p1); err != nil {
		t.Fatal(err)
	}
	rp.waitEstablished(t, ctx, n1.v4)
	rp.waitKernel(t, ctx, want{p1: {n1.v4}})
	first := rp.neighbor(t, ctx, n1.v4)
	if first.HoldTime != 0 {
		t.Errorf("holdTime 0 in the config, %d s negotiated", first.HoldTime)
	}

	if err := os.WriteFile(rp.config, []byte(strings.ReplaceAll(badLimitsConfig, "SOCKET", rp.socket)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rp.proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	rp.waitLog(t, ctx, "reload refused")
	for _, want := range []string{
		"router.yaml:4: dynamicNeighbors[0].ttlSecurity:", "router.yaml:7: limits.maxSessions:",
		"router.yaml:9: fib.protocol:", "router.yaml:10: fib.bogus: unknown key",
	} {
		if !strings.Contains(rp.proc.Logs(), want) {
			t.Errorf("the refusal does not say %q", want)
		}
	}

	// The cap of the running config refuses node2.
	b2 := peerWith(t, ctx, daemons.StartBIRD, n2, 64512, r, false)
	if err := b2.Announce(ctx, prefix("203.0.113.52/32")); err != nil {
		t.Fatal(err)
	}
	rp.waitLog(t, ctx, "remote="+n2.v4.String()+" range=198.51.100.0/24 reason=\"limits.maxSessions reached\"")
	var ns []view.Neighbor
	rp.cli(t, ctx, &ns, "neighbor")
	if slices.ContainsFunc(ns, func(n view.Neighbor) bool { return n.Address == n2.v4 }) {
		t.Errorf("node2 has a session beyond limits.maxSessions: %+v", ns)
	}
	if now := rp.neighbor(t, ctx, n1.v4); now.State != "Established" || !now.Since.Equal(first.Since) {
		t.Errorf("node1's session was disturbed: %+v, before %+v", now, first)
	}
	rp.waitKernel(t, ctx, want{p1: {n1.v4}, prefix("203.0.113.52/32"): nil})
}

// neighbor returns the router's view of one peer.
func (rp *routerProc) neighbor(t *testing.T, ctx context.Context, a netip.Addr) view.Neighbor {
	t.Helper()
	var ns []view.Neighbor
	rp.cli(t, ctx, &ns, "neighbor")
	for _, n := range ns {
		if n.Address == a {
			return n
		}
	}
	t.Fatalf("no neighbor %s in %+v", a, ns)
	return view.Neighbor{}
}

// waitLog waits until the router's log says s.
func (rp *routerProc) waitLog(t *testing.T, ctx context.Context, s string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := lab.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		return strings.Contains(rp.proc.Logs(), s), nil
	}); err != nil {
		t.Fatalf("the router never logged %q", s)
	}
}
