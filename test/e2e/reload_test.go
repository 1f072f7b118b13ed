package e2e

import (
	"context"
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

const reloadConfig = `asn: 64512
routerID: 198.51.100.1
neighbors:
  - {address: 198.51.100.11, peerASN: 64512, passive: true, holdTime: 9s}
  - {address: 198.51.100.12, peerASN: 64512, passive: true, holdTime: 9s}
import:
  prefixes: ["203.0.113.0/24", "2001:db8:100::/48"]
fib: {graceTime: GRACE}
api: {socket: SOCKET}
`

// TestRouterReloadAndRestart: SIGHUP with a broken config keeps the running
// one; SIGHUP without a neighbour closes only that session, with Cease /
// Peer De-configured (the other keeps its uptime); after the router is
// killed its routes stay in the kernel, and the next start removes them
// once the grace time passes without the peer coming back.
func TestRouterReloadAndRestart(t *testing.T) {
	l := newRouterLab(t, 90*time.Second, strings.ReplaceAll(reloadConfig, "GRACE", "3s"), "bird")
	ctx, r, n1, n2, rp := l.ctx, l.r, l.n1, l.n2, l.rp
	var birds []daemons.Daemon
	for i, n := range []node{n1, n2} {
		b := peerWith(t, ctx, daemons.StartBIRD, n, 64512, r, false)
		if err := b.Announce(ctx, prefix([]string{"203.0.113.41/32", "203.0.113.42/32"}[i])); err != nil {
			t.Fatal(err)
		}
		birds = append(birds, b)
	}
	p1, p2 := prefix("203.0.113.41/32"), prefix("203.0.113.42/32")
	rp.waitEstablished(t, ctx, n1.v4, n2.v4)
	rp.waitKernel(t, ctx, want{p1: {n1.v4}, p2: {n2.v4}})
	since := func() map[string]time.Time {
		var ns []view.Neighbor
		rp.cli(t, ctx, &ns, "neighbor")
		m := map[string]time.Time{}
		for _, n := range ns {
			if n.State == "Established" {
				m[n.Address.String()] = n.Since
			}
		}
		return m
	}
	before := since()

	// A config that does not validate is refused; nothing changes.
	if err := os.WriteFile(rp.config, []byte("asn: 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rp.proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := lab.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		return strings.Contains(rp.proc.Logs(), "reload refused"), nil
	}); err != nil {
		t.Fatal("no 'reload refused' in the router's log")
	}
	if !strings.Contains(rp.proc.Logs(), "asn:") {
		t.Error("the refusal does not name the field")
	}
	if got := since(); len(got) != 2 || got["198.51.100.11"] != before["198.51.100.11"] {
		t.Fatalf("sessions changed after a refused reload: %v, before %v", got, before)
	}

	// Drop node2: its session closes and its route goes; node1's stays up.
	cfg := strings.ReplaceAll(reloadConfig, "GRACE", "3s")
	cfg = strings.ReplaceAll(cfg, "  - {address: 198.51.100.12, peerASN: 64512, passive: true, holdTime: 9s}\n", "")
	if err := os.WriteFile(rp.config, []byte(strings.ReplaceAll(cfg, "SOCKET", rp.socket)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rp.proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	rp.waitKernel(t, ctx, want{p1: {n1.v4}, p2: nil})
	// It was told why (RFC 4486), as BIRD logs.
	logCtx, cancelLog := context.WithTimeout(ctx, 5*time.Second)
	defer cancelLog()
	if err := lab.Poll(logCtx, 50*time.Millisecond, func() (bool, error) {
		return strings.Contains(birds[1].Procs()[0].Logs(), "Received: Peer de-configured"), nil
	}); err != nil {
		t.Errorf("node2's BIRD did not receive Cease / Peer De-configured; its log:\n%s", birds[1].Procs()[0].Logs())
	}
	var ns []view.Neighbor
	rp.cli(t, ctx, &ns, "neighbor")
	if slices.ContainsFunc(ns, func(n view.Neighbor) bool { return n.Address == n2.v4 }) {
		t.Errorf("node2 still listed after it was removed: %+v", ns)
	}
	if got := since(); got["198.51.100.11"] != before["198.51.100.11"] {
		t.Errorf("node1's session was restarted by an unrelated edit: since %v, before %v", got["198.51.100.11"], before["198.51.100.11"])
	}

	// Kill the router: its routes stay in the kernel. Start it again
	// without node1 coming back: they stay for the grace time, then go.
	if err := rp.proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-rp.proc.Done()
	if err := birds[0].Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := waitKernel(ctx, r.ns, want{p1: {n1.v4}}); err != nil {
		t.Fatalf("routes did not survive the router's death: %v", err)
	}
	rp2 := startRouter(t, ctx, r, cfg)
	restarted := time.Now()
	rp2.waitEstablished(t, ctx) // listening again
	if _, err := waitKernel(ctx, r.ns, want{p1: {n1.v4}}); err != nil || time.Since(restarted) > 2*time.Second {
		t.Fatalf("a route of the previous run was not kept during the grace time: %v", err)
	}
	rp2.waitKernel(t, ctx, want{p1: nil})
	if took := time.Since(restarted); took < 2*time.Second {
		t.Errorf("stale route removed after %v, before the 3 s grace time", took)
	}
}

// TestRouterReloadRefresh: a reload that widens the import ranges asks the
// peers for their routes again (ROUTE-REFRESH, not a session restart): a
// route refused before lands in the kernel and the session keeps its
// uptime.
func TestRouterReloadRefresh(t *testing.T) {
	narrow := strings.ReplaceAll(strings.ReplaceAll(reloadConfig, "GRACE", "3s"), `"203.0.113.0/24"`, `"203.0.113.0/25"`)
	l := newRouterLab(t, 60*time.Second, narrow, "bird")
	ctx, r, n1, n2, rp := l.ctx, l.r, l.n1, l.n2, l.rp
	b := peerWith(t, ctx, daemons.StartBIRD, n1, 64512, r, false)
	_ = n2
	in, out := prefix("203.0.113.41/32"), prefix("203.0.113.200/32")
	if err := b.Announce(ctx, in, out); err != nil {
		t.Fatal(err)
	}
	rp.waitEstablished(t, ctx, n1.v4)
	rp.waitKernel(t, ctx, want{in: {n1.v4}, out: nil})
	var before []view.Neighbor
	rp.cli(t, ctx, &before, "neighbor")

	wide := strings.ReplaceAll(reloadConfig, "GRACE", "3s")
	if err := os.WriteFile(rp.config, []byte(strings.ReplaceAll(wide, "SOCKET", rp.socket)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rp.proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	rp.waitKernel(t, ctx, want{in: {n1.v4}, out: {n1.v4}})
	var after []view.Neighbor
	rp.cli(t, ctx, &after, "neighbor")
	i := slices.IndexFunc(after, func(n view.Neighbor) bool { return n.Address == n1.v4 })
	j := slices.IndexFunc(before, func(n view.Neighbor) bool { return n.Address == n1.v4 })
	if i < 0 || j < 0 || !after[i].Since.Equal(before[j].Since) {
		t.Errorf("the session restarted instead of refreshing: before %+v, after %+v", before, after)
	}
}
