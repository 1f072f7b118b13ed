package router

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bgplb/bgplb/bgp/rib"
	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/bgp/wire"
)

// peer is one neighbour of the daemon: its session, and the state the
// session goroutine keeps for it. Fields marked (session) are touched only by
// that goroutine, inside the Handler calls.
type peer struct {
	d        *Daemon
	addr     netip.Addr
	label    string // for metrics
	dynamic  bool
	rangePfx netip.Prefix // the dynamicNeighbors range, if dynamic
	static   *Neighbor    // the config, if static (nil for dynamic peers: it is large)
	sess     *session.Peer
	cancel   context.CancelFunc
	created  time.Time

	updatesIn atomic.Uint64 // UPDATEs handled, for bgplb_router_updates_total

	ribID    atomic.Uint32 // 0 while not established
	received atomic.Int64  // prefixes held in the Adj-RIB-In
	accepted atomic.Int64
	rejected atomic.Int64

	// (session)
	zone string // the session's interface, for link-local next hops
	// bfdZone is zone for the BFD session, which a reload may start from
	// another goroutine; guarded by bfdMu.
	bfdZone string

	bfdMu sync.Mutex // guards bfd and bfdZone
	bfd   *peerBFD   // nil while no BFD session runs

	// staleID is gr.stale, for the UPDATE path to read without grMu.
	staleID atomic.Uint32
	grMu    sync.Mutex // guards gr
	gr      grState
}

// scratch is what handling one UPDATE needs, from a pool shared by all
// peers: kept per peer, it would be some 1 KB for each idle one.
type scratch struct {
	announce, withdraw []wire.NLRI
	restale            []wire.NLRI // what the stale generation loses
	changes            rib.Changes
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// sessionConfig is the session side of a neighbour's config.
func sessionConfig(cfg *Config, addr netip.Addr, peerAS uint32, t Timers, passive bool) session.Config {
	return session.Config{
		LocalAS: cfg.ASN, RouterID: cfg.RouterID, PeerAS: peerAS, PeerAddr: addr, Passive: passive,
		HoldTime: t.Hold, DisableHoldTime: t.NoHold, KeepaliveTime: t.Keepalive, ConnectRetry: t.ConnectRetry,
		Families:        []wire.Family{wire.IPv4Unicast, wire.IPv6Unicast},
		ExtendedNextHop: true, ExtendedMessage: true, RouteRefresh: true, EnhancedRouteRefresh: true,
	}
}

// startStatic starts the session of a configured neighbour; d.mu is held.
func (d *Daemon) startStatic(n Neighbor) {
	// Two restarts at once (a reload and a BFD teardown) must not start two
	// sessions for one neighbour: the second would orphan the first.
	if _, taken := d.peers[n.Address]; taken {
		d.log.Debug("neighbour already running", "peer", n.Address)
		return
	}
	sc := sessionConfig(d.config(), n.Address, n.PeerASN, n.Timers, n.Passive)
	sc.PeerPort, sc.Password, sc.LocalAddr, sc.LocalPort = n.Port, n.Password, n.SourceAddress, n.SourcePort
	sc.TTLSecurity, sc.MultihopTTL = n.TTLSecurity, n.Multihop
	sc.GracefulRestart = d.ourGR(n.GracefulRestart)
	p := &peer{d: d, addr: n.Address, static: &n}
	d.startPeer(p, sc)
}

// startPeer runs p's session under the daemon's context; d.mu is held.
func (d *Daemon) startPeer(p *peer, sc session.Config) {
	p.label = p.addr.String()
	p.created = time.Now()
	// The session names its peer on every line itself.
	p.sess = session.New(sc, p, d.log)
	ctx, cancel := context.WithCancel(d.ctx)
	p.cancel = cancel
	d.peers[p.addr] = p
	// Start, not Run in a goroutine: an idle session has no goroutine but
	// its connection's reader, and with thousands of dynamic neighbours
	// one more stack each would be most of what a peer costs. shutdown
	// waits for every peer's Done.
	if err := p.sess.Start(ctx); err != nil {
		d.log.Error("session ended", "peer", p.label, "err", err)
	}
}

// stopPeer closes p's session with n (nil: Cease / Administrative
// Shutdown) and forgets it, unless ctx ends first; d.mu is not held.
func (d *Daemon) stopPeer(ctx context.Context, p *peer, n *wire.Notification) {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if p.sess.State() == session.Established {
		_ = p.sess.Close(cctx, n)
	}
	p.cancel()
	select {
	case <-p.sess.Done():
	case <-ctx.Done():
		return
	}
	d.mu.Lock()
	if d.peers[p.addr] == p {
		delete(d.peers, p.addr)
	}
	d.mu.Unlock()
	p.down() // in case the session never reported Down
	p.syncBFD()
}

// dispatch maps an incoming connection to its peer: a configured neighbour,
// or a new dynamic one when the address falls in a dynamicNeighbors range.
func (d *Daemon) dispatch(remote, _ netip.AddrPort) (*session.Peer, bool) {
	addr := remote.Addr().Unmap()
	d.mu.Lock()
	defer d.mu.Unlock()
	if p, ok := d.peers[addr]; ok {
		return p.sess, true
	}
	if d.ctx.Err() != nil {
		return nil, false
	}
	cfg := d.config()
	for _, r := range cfg.DynamicNeighbors {
		// Contains is false for any zoned address: a link-local peer
		// matches a range such as fe80::/64 by its address alone, and keeps
		// its zone (the interface it came in on) as its identity.
		if !r.Prefix.Contains(addr.WithZone("")) {
			continue
		}
		if why := admit(len(d.peers), d.countRange(r.Prefix), r, cfg.Limits); why != "" {
			d.refuse(addr, r.Prefix, why)
			return nil, false
		}
		sc := sessionConfig(cfg, addr, r.PeerASN, r.Timers, true)
		sc.Password, sc.TTLSecurity = r.Password, r.TTLSecurity
		sc.GracefulRestart = d.ourGR(r.GracefulRestart)
		p := &peer{d: d, addr: addr, dynamic: true, rangePfx: r.Prefix}
		d.startPeer(p, sc)
		d.log.Info("dynamic neighbor", "remote", addr, "range", r.Prefix)
		return p.sess, true
	}
	return nil, false
}

// admit decides whether one more dynamic peer may connect from range r,
// given the number of sessions in all and of those from r: "" if so, else
// why not.
func admit(sessions, inRange int, r DynamicNeighbor, l Limits) string {
	switch {
	case sessions >= l.MaxSessions:
		return "limits.maxSessions reached"
	case inRange >= r.MaxPeers:
		return "the range's maxPeers reached"
	}
	return ""
}

// refuse counts a refused connection, and logs it unless a refusal was
// logged in the last ten seconds: a flood of connections must not become a
// flood of log lines. d.mu is held.
func (d *Daemon) refuse(addr netip.Addr, r netip.Prefix, why string) {
	d.metrics.SessionsRefused.WithLabelValues(why).Inc()
	d.refused++
	if now := time.Now(); now.Sub(d.refusedLogged) >= 10*time.Second {
		d.log.Warn("dynamic neighbor refused", "remote", addr, "range", r, "reason", why, "refusedSinceLastLine", d.refused)
		d.refused, d.refusedLogged = 0, now
	}
}

func (d *Daemon) countRange(r netip.Prefix) int {
	n := 0
	for _, p := range d.peers {
		if p.dynamic && p.rangePfx == r {
			n++
		}
	}
	return n
}

// reapDynamic forgets dynamic peers whose node went away: not established
// for a minute after their last session (or their connection) ended, and
// no stale routes of theirs waiting.
func (d *Daemon) reapDynamic(ctx context.Context) {
	t := time.NewTicker(15 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var gone []*peer
		d.mu.Lock()
		now := time.Now()
		for _, p := range d.peers {
			if reapable(p, now) {
				gone = append(gone, p)
			}
		}
		d.mu.Unlock()
		for _, p := range gone {
			// The node may have come back since: look again, and take
			// the peer out of d.peers under the same lock, so that no
			// connection reaches it on its way out.
			d.mu.Lock()
			still := d.peers[p.addr] == p && reapable(p, time.Now())
			if still {
				delete(d.peers, p.addr)
			}
			d.mu.Unlock()
			if still {
				d.log.Info("forgetting dynamic neighbor", "peer", p.label)
				d.stopPeer(ctx, p, nil)
			}
		}
	}
}

// reapable decides whether dynamic peer p is forgotten at now: not
// established for a minute after its last session (or its connection)
// ended, and no stale routes of its restart waiting for it.
func reapable(p *peer, now time.Time) bool {
	if !p.dynamic || p.staleID.Load() != 0 {
		return false
	}
	info := p.sess.Info()
	last := info.Since
	if last.IsZero() {
		last = p.created
	}
	return info.State != session.Established && now.Sub(last) > time.Minute
}

// shutdown closes every session, in parallel, with msg, until ctx ends.
func (d *Daemon) shutdown(ctx context.Context, msg string) {
	d.mu.Lock()
	peers := make([]*peer, 0, len(d.peers))
	for _, p := range d.peers {
		peers = append(peers, p)
	}
	l := d.listener
	d.mu.Unlock()
	if l != nil {
		l.Close()
	}
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.stopPeer(ctx, p, wire.NewShutdown(wire.CeaseAdminShutdown, msg))
		}()
	}
	wg.Wait()
}

// Established registers the peer with the RIB, with the prefix limit
// import.maxPrefixes that the RIB enforces path by path.
func (p *peer) Established(s *session.Peer, n session.Negotiated) {
	d := p.d
	d.mu.Lock()
	d.nextID++
	id := d.nextID
	d.mu.Unlock()
	p.zone = p.addr.Zone()
	if links := d.links.Load(); p.zone == "" && links != nil {
		p.zone, _ = links.LinkOf(s.Info().Local.Addr())
	}
	err := d.rib.AddPeer(rib.Peer{ID: id, Addr: p.addr, AS: n.PeerAS, RouterID: n.PeerID,
		Multihop: p.static != nil && p.static.Multihop > 1, MaxPrefixes: d.config().Import.MaxPrefixes})
	if err != nil {
		d.log.Error("rib", "peer", p.label, "err", err)
		return
	}
	p.bfdMu.Lock()
	p.bfdZone = p.zone
	p.bfdMu.Unlock()
	p.ribID.Store(uint32(id))
	p.resume(n)
	p.syncBFD()
	p.sendEndOfRIB(s, n)
}

// sendEndOfRIB tells the peer that our initial update is complete: the
// router announces nothing, so at once. A peer restarting with graceful
// restart may wait for it before it selects routes (RFC 4724 §4.1), and it
// helps convergence anyway (§2).
func (p *peer) sendEndOfRIB(s *session.Peer, n session.Negotiated) {
	if s == nil {
		return
	}
	enc := wire.Encoder{Options: n.Tx}
	var b []byte
	for _, f := range n.Families {
		b = enc.AppendEndOfRIB(b, f)
	}
	ctx, cancel := context.WithTimeout(p.d.ctx, time.Second)
	defer cancel()
	if err := s.Send(ctx, b); err != nil {
		p.d.log.Debug("sending End-of-RIB", "peer", p.label, "err", err)
	}
}

// Down keeps the peer's paths as stale when it negotiated graceful restart
// and the session ended as a restart does, BFD still guarding them; else
// it removes them all in one sweep, and stops BFD. The session has logged
// why it went down.
func (p *peer) Down(_ *session.Peer, reason error) {
	if !p.keep(reason) {
		p.down()
	}
	p.syncBFD()
	// The peer no longer counts among those up: the router's own
	// restart may wait for nobody else now.
	p.d.checkGrace()
}

// down forgets the peer's routes, the stale ones of a restart too: BFD, a
// NOTIFICATION, a reload or a removal is no restart. When the daemon is
// stopping it leaves them alone: the kernel keeps them for the next start,
// and the RIB goes with the process.
func (p *peer) down() {
	d := p.d
	p.grMu.Lock()
	defer p.grMu.Unlock()
	p.gr.neg, p.gr.eor = nil, nil
	if d.ctx.Err() != nil {
		p.stopTimer()
		return
	}
	if id := rib.PeerID(p.ribID.Swap(0)); id != 0 {
		d.removePaths(id)
		p.received.Store(0)
		p.accepted.Store(0)
	}
	p.dropStale(grReset)
}

// removePaths removes a registration of a peer and all its paths.
func (d *Daemon) removePaths(id rib.PeerID) {
	ecmp := d.config().FIB.ECMP
	release := d.holdFIB()
	_ = d.rib.RemovePeer(id, func(c *rib.Changes) { d.queue.push(d.ctx, c.List, ecmp) })
	d.queue.after(release)
}

// pushSweep queues the changes of a sweep of many paths of one peer (a
// family of its stale generation).
func (d *Daemon) pushSweep(cs []rib.Change) {
	if len(cs) == 0 {
		return
	}
	release := d.holdFIB()
	d.queue.push(d.ctx, cs, d.config().FIB.ECMP)
	d.queue.after(release)
}

// holdFIB keeps the FIB from settling deferred deletes one by one until
// the returned release: it may then delete a departed peer's gateway
// object, and with it every route through it in one go.
func (d *Daemon) holdFIB() (release func()) {
	if d.fib == nil {
		return func() {}
	}
	return d.fib.Hold()
}

// EndOfRIB ends what waited for the peer's routes of family f: its stale
// routes of a restart that were not sent again, and, once every peer is
// done, the kernel routes of the router's previous run.
func (p *peer) EndOfRIB(_ *session.Peer, f wire.Family) {
	p.d.log.Debug("end of RIB", "peer", p.label, "family", f)
	if p.endOfRIB(f) {
		p.d.peerSynced(p.addr)
	}
}

// maxPrefixError is the Cease the session sends when a peer sends too much.
func maxPrefixError(limit int) error {
	// RFC 4486 §4: the data is the AFI, SAFI and the limit; we count
	// over all families, so AFI/SAFI say IPv4 unicast only by convention.
	data := []byte{0, 1, 1, byte(limit >> 24), byte(limit >> 16), byte(limit >> 8), byte(limit)}
	return &session.NotificationError{Notification: wire.Notification{Code: wire.ErrCodeCease, Subcode: wire.CeaseMaxPrefixes, Data: data},
		Err: fmt.Errorf("more than %d prefixes", limit)}
}

// Update applies one UPDATE: guards, then the RIB, then the FIB queue.
func (p *peer) Update(_ *session.Peer, u *wire.Update, action wire.Action) error {
	id := rib.PeerID(p.ribID.Load())
	if id == 0 {
		return fmt.Errorf("UPDATE before the peer was registered")
	}
	d := p.d
	cfg := d.config()
	p.updatesIn.Add(1)
	a := &u.Attrs
	withdrawAll := action == wire.TreatAsWithdraw

	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	// The classic fields carry IPv4 unicast, next hop NEXT_HOP.
	if err := p.apply(s, id, cfg, wire.IPv4Unicast, a, a.NextHop, u.NLRI, u.Withdrawn, withdrawAll); err != nil {
		return err
	}
	if a.Has(wire.AttrMPReach) {
		m := &a.MPReach
		if err := p.apply(s, id, cfg, m.Family, a, m.NextHop, m.NLRI, wire.Prefixes{}, withdrawAll); err != nil {
			return err
		}
	}
	if a.Has(wire.AttrMPUnreach) {
		m := &a.MPUnreach
		if err := p.apply(s, id, cfg, m.Family, a, netip.Addr{}, wire.Prefixes{}, m.Withdrawn, false); err != nil {
			return err
		}
	}
	return p.checkLimit(id, cfg)
}

// apply sends one family's announcements and withdrawals to the RIB.
// Refused announcements withdraw whatever the peer had announced before for
// the prefix, so a guard never leaves an older path behind.
func (p *peer) apply(s *scratch, id rib.PeerID, cfg *Config, fam wire.Family, a *wire.Attrs, nh netip.Addr, reach, unreach wire.Prefixes, withdrawAll bool) error {
	if reach.Len() == 0 && unreach.Len() == 0 {
		return nil
	}
	if fam != wire.IPv4Unicast && fam != wire.IPv6Unicast {
		return nil
	}
	s.announce = reach.AppendTo(s.announce[:0])
	s.withdraw = unreach.AppendTo(s.withdraw[:0])
	if withdrawAll {
		s.withdraw, s.announce = append(s.withdraw, s.announce...), s.announce[:0]
	}
	kept := s.announce[:0]
	for _, n := range s.announce {
		if v := cfg.Import.Check(n.Prefix); v != Accept {
			p.rejected.Add(1)
			p.d.metrics.PrefixesRejected.WithLabelValues(p.label, v.String()).Inc()
			s.withdraw = append(s.withdraw, n)
			continue
		}
		kept = append(kept, n)
	}
	s.announce = kept
	if len(s.announce) > 0 && !nh.IsValid() {
		return fmt.Errorf("%s announcement without a next hop", fam)
	}
	// RFC 2545 link-local next hops name no interface: it is the one the
	// session runs over, and without it the kernel could pick another LAN.
	if nh.Is6() && nh.IsLinkLocalUnicast() && nh.Zone() == "" && p.zone != "" {
		nh = nh.WithZone(p.zone)
	}
	s.changes.Reset()
	err := p.d.rib.Update(id, fam, a, nh, s.announce, s.withdraw, &s.changes)
	if stale := rib.PeerID(p.staleID.Load()); stale != 0 {
		// Sent again (or withdrawn): no longer stale. In the same batch as
		// the new path, so the kernel sees one change at most, and none
		// when the next hops are the same.
		s.restale = append(append(s.restale[:0], s.announce...), s.withdraw...)
		_ = p.d.rib.Update(stale, fam, nil, netip.Addr{}, nil, s.restale, &s.changes) // gone meanwhile: nothing to withdraw
	}
	// Past the limit the RIB applied the UPDATE up to it: those changes
	// go to the kernel before the session is reset.
	if len(s.changes.List) > 0 {
		p.d.queue.push(p.d.ctx, s.changes.List, cfg.FIB.ECMP)
	}
	s.changes.Reset() // no references into the RIB's attributes stay in the pool
	if errors.Is(err, rib.ErrMaxPrefixes) {
		p.d.log.Warn("peer exceeded import.maxPrefixes: closing the session", "peer", p.label, "maxPrefixes", cfg.Import.MaxPrefixes)
		return maxPrefixError(cfg.Import.MaxPrefixes)
	}
	return err
}

// checkLimit enforces import.maxPrefixes after an update.
func (p *peer) checkLimit(id rib.PeerID, cfg *Config) error {
	received, accepted, ok := p.d.rib.PeerTotals(id)
	if !ok {
		return nil
	}
	p.received.Store(int64(received))
	p.accepted.Store(int64(accepted))
	if received > cfg.Import.MaxPrefixes {
		p.d.log.Warn("peer exceeded import.maxPrefixes: closing the session", "peer", p.label,
			"received", received, "maxPrefixes", cfg.Import.MaxPrefixes)
		return maxPrefixError(cfg.Import.MaxPrefixes)
	}
	return nil
}
