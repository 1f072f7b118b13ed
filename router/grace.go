package router

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/fib"
)

// The router's own restart: the kernel routes of its previous run stay
// (fib.graceTime at most) until every peer expected back has sent
// End-of-RIB for every family of its session; then the routes no peer sent
// again go at once.

// graceWait tracks the peers the routes of a previous run wait for. The
// zero value waits for nothing.
type graceWait struct {
	mu sync.Mutex
	// open while the routes wait; until is graceTime's end.
	open  bool
	start time.Time
	until time.Time
	// expected is every static neighbour, and every address in a dynamic
	// range that next hops of the previous run's routes name: a node that
	// had routes there is likely to come back. synced is the peers whose
	// session sent End-of-RIB for all its families. Both without zones
	// (graceKey): a link-local next hop names its interface, a peer its
	// own way.
	expected map[netip.Addr]bool
	synced   map[netip.Addr]bool
	// known: expected is complete. Reading the old routes' next hops
	// takes a while with a large table, and sessions must not wait for it;
	// when that read fails, expected stays incomplete and only graceTime
	// ends the wait.
	known bool
}

// graceKey is how the grace names a peer or a next hop.
func graceKey(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// waiting reports whether the router restarted with routes and still
// waits for its peers.
func (g *graceWait) waiting() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open && time.Now().Before(g.until)
}

// graceOver decides whether the routes of a previous run may go before
// graceTime: every expected peer, and every peer up now, has sent
// End-of-RIB for all its families, and at least one has.
func graceOver(expected, synced map[netip.Addr]bool, up []netip.Addr) bool {
	if len(synced) == 0 {
		return false
	}
	for a := range expected {
		if !synced[a] {
			return false
		}
	}
	for _, a := range up {
		if !synced[a] {
			return false
		}
	}
	return true
}

// expectedPeers is who the routes of a previous run wait for: the static
// neighbours, and the next hops of those routes that fall in a dynamic
// range (the nodes announce themselves as next hop).
func expectedPeers(cfg *Config, old []fib.Route) map[netip.Addr]bool {
	m := map[netip.Addr]bool{}
	for _, n := range cfg.Neighbors {
		m[graceKey(n.Address)] = true
	}
	for _, r := range old {
		for _, h := range r.NextHops {
			// Contains is false for any zoned address, and link-local
			// next hops carry their interface as zone.
			a := graceKey(h.Addr)
			if m[a] {
				continue // routes share few next hops: look each up once
			}
			for _, dn := range cfg.DynamicNeighbors {
				if dn.Prefix.Contains(a) {
					m[a] = true
				}
			}
		}
	}
	return m
}

// startGrace begins waiting for the peers when the FIB kept routes of a
// previous run; before any session starts. The nodes of dynamic ranges
// that the old routes point at are read meanwhile.
func (d *Daemon) startGrace(ctx context.Context, cfg *Config, stale int) {
	if stale == 0 || cfg.FIB.GraceTime == 0 {
		return
	}
	g := &d.grace
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open, g.start = true, time.Now()
	g.until = g.start.Add(cfg.FIB.GraceTime)
	g.expected, g.synced = expectedPeers(cfg, nil), map[netip.Addr]bool{}
	g.known = len(cfg.DynamicNeighbors) == 0
	d.log.Info("routes from a previous run kept until every peer has sent End-of-RIB", "routes", stale,
		"staticNeighbors", len(g.expected), "graceTime", cfg.FIB.GraceTime)
	if g.known {
		return
	}
	d.spawn(func() {
		old, err := d.fib.Dump(ctx)
		d.expectNextHops(ctx, cfg, old, err)
	})
}

// expectNextHops completes the expected peers with the dynamic ones
// the routes of the previous run, old, point at, once read (err).
func (d *Daemon) expectNextHops(ctx context.Context, cfg *Config, old []fib.Route, err error) {
	if err != nil {
		// Without the old next hops, the first dynamic peer's
		// End-of-RIB would end the wait for all the others.
		if ctx.Err() == nil {
			d.log.Warn("reading the routes of the previous run: they are kept for all of graceTime", "err", err,
				"graceTime", cfg.FIB.GraceTime)
		}
		return
	}
	g := &d.grace
	g.mu.Lock()
	for a := range expectedPeers(cfg, old) {
		g.expected[a] = true
	}
	g.known = true
	n := len(g.expected)
	g.mu.Unlock()
	d.log.Info("peers the routes of the previous run wait for", "peers", n)
	d.checkGrace()
}

// peerSynced notes that addr's session sent End-of-RIB for all its
// families, and ends the grace once every peer did.
func (d *Daemon) peerSynced(addr netip.Addr) {
	g := &d.grace
	g.mu.Lock()
	if g.open {
		g.synced[graceKey(addr)] = true
	}
	g.mu.Unlock()
	d.checkGrace()
}

// checkGrace ends the grace when graceOver says so.
func (d *Daemon) checkGrace() {
	var up []netip.Addr
	for _, p := range d.peerList() {
		if p.sess.State() == session.Established {
			up = append(up, graceKey(p.addr))
		}
	}
	g := &d.grace
	g.mu.Lock()
	if !g.open || !g.known || !time.Now().Before(g.until) {
		g.mu.Unlock()
		return
	}
	over := graceOver(g.expected, g.synced, up)
	if over {
		g.open = false
	}
	start, peers, expected := g.start, len(g.synced), len(g.expected)
	g.mu.Unlock()
	if !over {
		// Said once the decision is taken: a test can wait for it.
		d.log.Debug("routes of the previous run still wait for End-of-RIB", "synced", peers, "expected", expected, "up", len(up))
		return
	}
	// After the routes the peers sent are in the kernel: those of the
	// previous run they replace must not be deleted first.
	d.queue.after(func() {
		res, err := d.fib.EndGrace(d.ctx)
		if err != nil && !stopped(err) {
			d.log.Error("ending the grace time", "err", err)
			return
		}
		d.log.Info("every peer sent End-of-RIB: routes of the previous run not sent again are removed",
			"removed", res.Deleted, "peers", peers, "after", time.Since(start).Round(time.Millisecond))
	})
}
