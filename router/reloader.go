package router

import (
	"context"
	"net/netip"
	"slices"

	"github.com/bgplb/bgplb/bgp/rib"
	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/bgp/wire"
)

// Reload puts a new, already validated config in force. Sessions whose
// settings did not change stay up; an import change asks peers to send
// their routes again (ROUTE-REFRESH) so every route is judged by the new
// guards. FIB, API and metrics settings take a restart, and say so.
func (d *Daemon) Reload(cfg *Config) {
	d.mu.Lock()
	old := d.cfg.Swap(cfg)
	plan := PlanReload(old, cfg)
	stop := reloadStops(plan, d.peers)
	d.mu.Unlock()

	d.log.Info("reloading config", "add", len(plan.Add), "remove", len(plan.Remove), "restart", len(plan.Restart),
		"keep", len(plan.Keep), "reimport", plan.Reimport)
	for p, n := range stop {
		d.stopPeer(d.ctx, p, n)
	}
	if plan.Listen || passwordsChanged(old, cfg) {
		d.mu.Lock()
		l := d.listener
		d.mu.Unlock()
		if l != nil {
			l.Close()
		}
		if err := d.listen(cfg); err != nil {
			d.log.Error("reload: listening", "err", err)
		}
	}
	d.mu.Lock()
	for _, n := range cfg.Neighbors {
		if slices.Contains(plan.Add, n.Address) || slices.Contains(plan.Restart, n.Address) {
			d.startStatic(n)
		}
	}
	d.mu.Unlock()
	if plan.BFD {
		d.syncAllBFD()
	}
	if plan.GracefulRestart {
		d.regrace()
	}
	if plan.Reimport {
		d.setPrefixLimits(cfg.Import.MaxPrefixes)
		d.refreshAll()
	}
	if plan.FIB || plan.API || plan.Metrics {
		d.log.Warn("reload: fib, api and metrics settings take effect at the next restart")
	}
}

// The Ceases a reload closes sessions with (RFC 4486), so the peer's
// operator sees why.
var (
	ceaseDeconfigured = wire.Notification{Code: wire.ErrCodeCease, Subcode: wire.CeasePeerDeconfigured}
	ceaseReconfigured = wire.Notification{Code: wire.ErrCodeCease, Subcode: wire.CeaseOtherConfigChange}
)

// reloadStops returns the running peers plan closes, each with its Cease:
// Peer De-configured when its neighbour or dynamic range is gone, Other
// Configuration Change when it restarts with new settings. peers is
// d.peers: d.mu is held.
func reloadStops(plan ReloadPlan, peers map[netip.Addr]*peer) map[*peer]*wire.Notification {
	stop := map[*peer]*wire.Notification{}
	for _, a := range plan.Remove {
		if p, ok := peers[a]; ok {
			stop[p] = &ceaseDeconfigured
		}
	}
	for _, a := range plan.Restart {
		if p, ok := peers[a]; ok {
			stop[p] = &ceaseReconfigured
		}
	}
	for _, p := range peers {
		switch {
		case !p.dynamic:
		case slices.Contains(plan.RemoveRanges, p.rangePfx):
			stop[p] = &ceaseDeconfigured
		case plan.RestartAll || slices.Contains(plan.RestartRanges, p.rangePfx):
			stop[p] = &ceaseReconfigured
		}
	}
	return stop
}

func passwordsChanged(old, cur *Config) bool {
	pw := func(c *Config) map[string]string {
		return byPeer(c, func(n *Neighbor) string { return n.Password }, func(r *DynamicNeighbor) string { return r.Password })
	}
	a, b := pw(old), pw(cur)
	if len(a) != len(b) {
		return true
	}
	for k, v := range a {
		if b[k] != v {
			return true
		}
	}
	return false
}

// refreshAll asks every established peer to send its routes again; a peer
// that cannot refresh is restarted instead.
func (d *Daemon) refreshAll() {
	d.mu.Lock()
	peers := make([]*peer, 0, len(d.peers))
	for _, p := range d.peers {
		peers = append(peers, p)
	}
	d.mu.Unlock()
	for _, p := range peers {
		info := p.sess.Info()
		if info.State != session.Established || info.Negotiated == nil {
			continue
		}
		if !info.Negotiated.RouteRefresh {
			d.log.Info("peer cannot refresh its routes: restarting its session", "peer", p.label)
			d.stopPeer(d.ctx, p, &ceaseReconfigured)
			if !p.dynamic {
				d.mu.Lock()
				d.startStatic(*p.static)
				d.mu.Unlock()
			}
			continue
		}
		var msg []byte
		for _, f := range info.Negotiated.Families {
			msg = wire.AppendRouteRefresh(msg, &wire.RouteRefresh{Family: f})
		}
		if err := p.sess.Send(context.Background(), msg); err != nil {
			d.log.Warn("route refresh", "peer", p.label, "err", err)
		}
	}
}

// regrace restarts the sessions that are not established and whose
// graceful-restart capability the new config turns on or off, so their
// next OPEN says so. Established sessions stay up: the helper decisions
// follow the new settings at once (off: a restart keeps nothing), while
// the capability itself changes when the peer's session object is next
// made (a restart for another setting, a dynamic peer reconnecting after it
// was forgotten, or the router's restart).
func (d *Daemon) regrace() {
	for _, p := range d.peerList() {
		want := p.grConfig().Enabled
		if (p.sess.Config().GracefulRestart != nil) == want {
			continue
		}
		if p.sess.State() == session.Established {
			d.log.Info("reload: graceful restart capability changes at the session's next restart", "peer", p.label, "enabled", want)
			continue
		}
		if !want {
			// Its stale routes go as stopPeer would remove them, but
			// counted for what ended their wait.
			p.grMu.Lock()
			p.dropStale(grDisabled)
			p.grMu.Unlock()
		}
		d.stopPeer(d.ctx, p, &ceaseReconfigured)
		if !p.dynamic {
			d.mu.Lock()
			for _, n := range d.config().Neighbors {
				if n.Address == p.addr {
					d.startStatic(n)
				}
			}
			d.mu.Unlock()
		}
	}
}

// setPrefixLimits gives every registered peer the new import.maxPrefixes.
// A peer already over a lowered limit is reset by its next UPDATE's check.
func (d *Daemon) setPrefixLimits(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.peers {
		if id := rib.PeerID(p.ribID.Load()); id != 0 {
			_ = d.rib.SetMaxPrefixes(id, n) // a peer that just went down has nothing to limit
		}
	}
}
