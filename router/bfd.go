package router

import (
	"context"
	"net/netip"

	"github.com/bgplb/bgplb/bfd"
	"github.com/bgplb/bgplb/bgp/wire"
)

// peerBFD is the BFD session a peer runs while its BGP session is
// established. A pointer on the peer, so the thousands of dynamic peers
// without BFD do not pay for it.
type peerBFD struct {
	cfg  BFD
	key  bfd.Key
	stop context.CancelFunc // ends the watcher
}

// bfdFor is the bfd block that applies to a peer now, and whether its BFD
// session is multihop: the static neighbour's by address, or the dynamic
// range's the peer came from. Disabled (zero) when none.
func bfdFor(cfg *Config, addr netip.Addr, dynamic bool, rangePfx netip.Prefix) (BFD, bool) {
	if dynamic {
		for _, r := range cfg.DynamicNeighbors {
			if r.Prefix == rangePfx {
				// GTSM or not, a dynamic peer is on the LAN.
				return r.BFD, false
			}
		}
		return BFD{}, false
	}
	for _, n := range cfg.Neighbors {
		if n.Address == addr {
			return n.BFD, n.Multihop > 1
		}
	}
	return BFD{}, false
}

// bfdKey is the session with peer from local; a single-hop session is
// bound to the link the BGP session runs over, when known.
func bfdKey(peer, local netip.Addr, link string, multihop bool) bfd.Key {
	k := bfd.Key{Peer: peer.Unmap(), Local: local.Unmap(), Multihop: multihop}
	if !multihop {
		k.Interface = link
	}
	return k
}

func bfdConfig(b BFD) bfd.Config {
	return bfd.Config{DesiredMinTx: b.MinTx, RequiredMinRx: b.MinRx, DetectMult: b.Multiplier, Passive: b.Passive}
}

// bfdStep is what syncBFD does to a peer's BFD session.
type bfdStep int

const (
	bfdKeep bfdStep = iota
	bfdStop
	bfdRetune
	bfdStart
)

// bfdPlan decides bfdStep for a peer whose BFD session runs (running, with
// settings cur) or not, given the settings that apply now, whether its BGP
// session is established and whether paths of an ended session are kept
// as stale for its restart. BFD starts only with an established session
// (it needs the session's addresses), and keeps running while stale
// paths wait: a path failure then means a dead node, not a restart, and
// its paths go at once instead of at the restart time (RFC 5882 §4.3.2).
func bfdPlan(running bool, cur, want BFD, established, stale bool) bfdStep {
	switch {
	case running && (!want.Enabled || !established && !stale):
		return bfdStop
	case running && cur != want:
		return bfdRetune
	case !running && established && want.Enabled:
		return bfdStart
	}
	return bfdKeep
}

// syncBFD starts, retunes or stops p's BFD session to match the config
// and p's state (bfdPlan). Called from the session's handler calls, from
// reloads and from the restart timer. It reads the state under p.bfdMu,
// so that calls racing with each other are seen in order: Established
// stores ribID before it syncs, Down and the timer clear ribID and
// staleID before they sync.
func (p *peer) syncBFD() {
	d := p.d
	if d.bfd == nil {
		return
	}
	want, multihop := bfdFor(d.config(), p.addr, p.dynamic, p.rangePfx)
	p.bfdMu.Lock()
	defer p.bfdMu.Unlock()
	established, stale := p.ribID.Load() != 0, p.staleID.Load() != 0
	cur := p.bfd
	var curCfg BFD
	if cur != nil {
		curCfg = cur.cfg
		// A new session from other addresses than the one whose stale
		// paths BFD guarded needs a session of its own.
		if established {
			if k := p.bfdKeyNow(multihop); k.Local.IsValid() && k != cur.key {
				p.stopBFD(cur)
				cur = nil
			}
		}
	}
	switch bfdPlan(cur != nil, curCfg, want, established, stale) {
	case bfdStop:
		p.stopBFD(cur)
	case bfdRetune:
		if err := d.bfd.Reconfigure(cur.key, bfdConfig(want)); err != nil {
			d.log.Warn("bfd reconfigure", "peer", p.label, "err", err)
			return
		}
		cur.cfg = want
	case bfdStart:
		p.bfd = p.startBFD(want, multihop)
	}
}

// bfdKeyNow is the BFD session the current BGP session needs; p.bfdMu is
// held.
func (p *peer) bfdKeyNow(multihop bool) bfd.Key {
	return bfdKey(p.addr, p.sess.Info().Local.Addr(), p.bfdZone, multihop)
}

// stopBFD ends p's BFD session cur; p.bfdMu is held.
func (p *peer) stopBFD(cur *peerBFD) {
	p.bfd = nil
	cur.stop()
	// Remove tells the peer AdminDown: not a path failure for it.
	if err := p.d.bfd.Remove(cur.key); err != nil {
		p.d.log.Debug("bfd remove", "peer", p.label, "err", err)
	}
}

// startBFD adds the session and a watcher that resets the BGP session when
// BFD goes down; nil if the session could not be added. p.bfdMu is held.
func (p *peer) startBFD(want BFD, multihop bool) *peerBFD {
	d := p.d
	k := p.bfdKeyNow(multihop)
	if err := d.bfd.Add(bfd.SessionConfig{Key: k, Config: bfdConfig(want)}); err != nil {
		d.log.Error("bfd: cannot start the session: the BGP session runs without it", "peer", p.label, "err", err)
		return nil
	}
	ctx, cancel := context.WithCancel(d.ctx)
	pb := &peerBFD{cfg: want, key: k, stop: cancel}
	watch, err := d.bfd.WatchPathDown(ctx, k, func(ev bfd.Event) { d.bfdDown(p, pb, ev) })
	if err != nil {
		cancel()
		_ = d.bfd.Remove(k)
		d.log.Error("bfd subscribe", "peer", p.label, "err", err)
		return nil
	}
	d.log.Info("bfd session started", "peer", p.label, "session", k.String(), "minTx", want.MinTx, "minRx", want.MinRx, "multiplier", want.Multiplier)
	d.spawn(watch)
	return pb
}

// bfdDown takes p's paths out of the RIB and the kernel at once, then
// resets its BGP session; a static neighbour is started again, a dynamic
// one connects again when its path is back. When the BGP session was down
// already, with its paths kept for a restart, only those go.
func (d *Daemon) bfdDown(p *peer, pb *peerBFD, ev bfd.Event) {
	// Only the BFD session that is p's now may take p down: one of an
	// earlier BGP session (stopped, its event late) must not reset a new one.
	p.bfdMu.Lock()
	mine := p.bfd == pb
	if mine {
		p.stopBFD(pb)
	}
	p.bfdMu.Unlock()
	if !mine || d.ctx.Err() != nil {
		return
	}
	d.metrics.BFDTeardowns.Inc()
	if p.ribID.Load() == 0 && p.staleID.Load() != 0 {
		d.log.Warn("BFD down while the peer's routes were kept for its restart: they are removed", "peer", p.label,
			"diag", ev.Diag.String())
		// Only the stale generation: a session that came up meanwhile
		// keeps its paths, and gets a BFD session of its own.
		p.grMu.Lock()
		p.dropStale(grReset)
		p.grMu.Unlock()
		p.syncBFD()
		return
	}
	d.log.Warn("BFD down: closing the BGP session", "peer", p.label, "diag", ev.Diag.String())
	p.down()
	// RFC 9384's own Cease subcode, which tells the peer's operator why.
	d.stopPeer(d.ctx, p, &wire.Notification{Code: wire.ErrCodeCease, Subcode: wire.CeaseBFDDown})
	if p.dynamic || d.ctx.Err() != nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, taken := d.peers[p.addr]; taken {
		return // a reload started it again meanwhile
	}
	for _, n := range d.config().Neighbors {
		if n.Address == p.addr {
			d.startStatic(n)
		}
	}
}

// bfdStatus is p's BFD session's state, if it runs one.
func (p *peer) bfdStatus() (bfd.Status, bool) {
	p.bfdMu.Lock()
	cur := p.bfd
	p.bfdMu.Unlock()
	if cur == nil || p.d.bfd == nil {
		return bfd.Status{}, false
	}
	return p.d.bfd.Status(cur.key)
}

// syncAllBFD brings every peer's BFD session in line with a new config.
func (d *Daemon) syncAllBFD() {
	for _, p := range d.peerList() {
		p.syncBFD()
	}
}
