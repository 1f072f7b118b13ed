package announce

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/bgp/wire"
)

// stopTimeout bounds closing one session when a peer is removed or
// restarted: the NOTIFICATION must not wait forever on a dead peer.
const stopTimeout = 5 * time.Second

// Options configure an Announcer.
type Options struct {
	// RouterID is our BGP Identifier, used for every peer whose
	// Session.RouterID is not set.
	RouterID netip.Addr
	// Log may be nil.
	Log *slog.Logger
	// ListenAddrs are bound by Run to accept connections from peers, for
	// passive ones (Session.Passive) or routers that dial the speaker.
	// Optional.
	ListenAddrs []netip.AddrPort
	// OnSession, if set, is told each time a peer's session is
	// established (up, with the local address it runs from) or leaves
	// Established; the speaker's BFD follows it. Called from the
	// session's goroutine: it must not block.
	OnSession func(name string, up bool, local netip.Addr)
}

// PeerConfig is one router to announce to.
type PeerConfig struct {
	// Name identifies the peer in Announce and Status; unique.
	Name string
	// Session is the BGP session (LocalAS, PeerAS, PeerAddr, timers,
	// password, passive, multihop, families, ...). RouterID defaults to
	// Options.RouterID.
	Session session.Config
	// NextHop4 and NextHop6 are the next hops of IPv4 and IPv6 routes.
	// Each defaults to the session's local address when it is of that
	// family; an IPv6 route over an IPv4 session needs NextHop6, or it is
	// skipped. Changing them re-announces without restarting the session.
	NextHop4, NextHop6 netip.Addr
}

// desiredSet is the latest Announce for one peer name.
type desiredSet struct {
	routes []Route
	gen    uint64
}

type lifecycle uint8

const (
	idle lifecycle = iota
	running
	stopping
	stopped
)

// Announcer keeps BGP sessions to a set of peers and announces to each the
// routes Announce gave for it. Create it with New and start it with Run;
// every method is safe for concurrent use.
type Announcer struct {
	opts     Options
	log      *slog.Logger
	reconfig chan struct{} // capacity 1: SetPeers wakes Run
	stopReq  chan *stopRequest
	runDone  chan struct{} // closed when Run has returned

	mu      sync.Mutex // guards everything below; held only briefly
	state   lifecycle
	configs map[string]PeerConfig // the valid peers of the last SetPeers
	invalid map[string]error      // the refused ones, shown by Status
	routes  map[string]desiredSet
	gen     uint64
	// peers and byAddr are the running peers, changed only by Run's
	// goroutine (under mu, so Announce, Status and dispatch can read them).
	peers    map[string]*peer
	byAddr   map[netip.Addr]*peer
	listener *session.Listener
	// resets are the peers Reset asked to restart, by name.
	resets map[string]bool
}

// stopRequest carries Shutdown to Run's goroutine.
type stopRequest struct {
	ctx context.Context
	msg string
	// keep: leave the sessions that negotiated graceful restart (Restart).
	keep bool
	done chan struct{}
	// kept are the peers left with their routes, set before done closes.
	kept []string
}

// New returns an Announcer; nothing happens until Run.
func New(o Options) *Announcer {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Announcer{
		opts: o, log: o.Log,
		reconfig: make(chan struct{}, 1), stopReq: make(chan *stopRequest), runDone: make(chan struct{}),
		configs: map[string]PeerConfig{}, invalid: map[string]error{}, routes: map[string]desiredSet{},
		peers: map[string]*peer{}, byAddr: map[netip.Addr]*peer{}, resets: map[string]bool{},
	}
}

// Reset ends the named peer's session with Cease / Administrative Reset
// and starts it again, as when BFD says the path is gone: the routes go
// with the session at once rather than when the hold time runs out. It
// only records the request; Run's goroutine acts on it.
func (a *Announcer) Reset(name string) {
	a.mu.Lock()
	if _, ok := a.peers[name]; ok {
		a.resets[name] = true
	}
	a.mu.Unlock()
	select {
	case a.reconfig <- struct{}{}:
	default:
	}
}

// Announce sets the full set of routes to announce to the named peer,
// replacing the previous set; nil withdraws everything. It only records the
// set and wakes the peer's goroutine, which sends the difference once the
// session is up: it may be called at any time, also before SetPeers names
// the peer, and bursts coalesce (the latest set wins).
//
// Announce keeps routes without copying them (a copy of a big set would
// cost more than everything else it does): the caller must not change the
// slice, or the slices and values its routes point to, afterwards. Build a
// new slice for each call. Sorted routes (by prefix) are cheapest; invalid
// routes are skipped and reported in Status.
func (a *Announcer) Announce(peerName string, routes []Route) {
	a.mu.Lock()
	if a.state >= stopping {
		a.mu.Unlock()
		return
	}
	a.gen++
	a.routes[peerName] = desiredSet{routes: routes, gen: a.gen}
	p := a.peers[peerName]
	a.mu.Unlock()
	if p != nil {
		p.poke()
	}
}

// desired returns the latest set for a peer and its generation.
func (a *Announcer) desired(name string) ([]Route, uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.routes[name]
	return d.routes, d.gen
}

// SetPeers sets the peers to keep sessions with. Peers not in cs are
// closed; peers whose session settings changed are restarted (their routes
// are sent again on the new session); peers whose only change is a next hop
// keep their session and re-announce. A removed peer's routes are
// forgotten: if it comes back, Announce must give them again. Invalid
// configs are refused with an error naming them, shown in Status, and do
// not affect the valid ones. It returns at once: Run applies the change.
func (a *Announcer) SetPeers(cs []PeerConfig) error {
	configs, invalid := map[string]PeerConfig{}, map[string]error{}
	addrs := map[netip.Addr]string{}
	var errs []error
	for _, c := range cs {
		if !c.Session.RouterID.IsValid() {
			c.Session.RouterID = a.opts.RouterID
		}
		err := checkPeer(c, configs, addrs)
		if err != nil {
			errs = append(errs, err)
			if c.Name != "" {
				invalid[c.Name] = err
			}
			continue
		}
		configs[c.Name] = c
		addrs[c.Session.PeerAddr.Unmap()] = c.Name
	}
	a.mu.Lock()
	if a.state < stopping {
		for name := range a.configs {
			if _, ok := configs[name]; !ok {
				// A removed peer starts afresh if it comes back; a name
				// never configured keeps its routes for when it is.
				delete(a.routes, name)
			}
		}
		a.configs, a.invalid = configs, invalid
	}
	a.mu.Unlock()
	select {
	case a.reconfig <- struct{}{}:
	default:
	}
	return errors.Join(errs...)
}

// checkPeer validates c against itself and the peers accepted so far.
func checkPeer(c PeerConfig, seen map[string]PeerConfig, addrs map[netip.Addr]string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("peer %q: %s", c.Name, fmt.Sprintf(format, args...))
	}
	if c.Name == "" {
		return fmt.Errorf("peer %v: empty name", c.Session.PeerAddr)
	}
	if _, dup := seen[c.Name]; dup {
		return bad("name used twice")
	}
	if err := c.Session.Validate(); err != nil {
		return bad("%v", err)
	}
	if other, dup := addrs[c.Session.PeerAddr.Unmap()]; dup {
		return bad("address %v is also peer %q", c.Session.PeerAddr, other)
	}
	if nh := c.NextHop4; nh.IsValid() && (!nh.Is4() || nh.IsUnspecified()) {
		return bad("NextHop4 %v is not an IPv4 address", nh)
	}
	if nh := c.NextHop6; nh.IsValid() && (!nh.Is6() || nh.Is4In6() || nh.IsUnspecified() || nh.Zone() != "") {
		return bad("NextHop6 %v is not a global IPv6 address", nh)
	}
	return nil
}

// sameSession reports whether two configs give the same session. Nil and
// empty lists are the same. The graceful restart R bit is not a difference:
// it marks only the first session after a restart, so a speaker clears it
// once that session is up, and must not restart the session for it.
func sameSession(x, y session.Config) bool {
	if !slices.Equal(x.Families, y.Families) || !slices.Equal(x.AddPathReceive, y.AddPathReceive) {
		return false
	}
	x.Families, y.Families, x.AddPathReceive, y.AddPathReceive = nil, nil, nil, nil
	x.GracefulRestart, y.GracefulRestart = withoutRestarting(x.GracefulRestart), withoutRestarting(y.GracefulRestart)
	return reflect.DeepEqual(x, y)
}

func withoutRestarting(g *session.GracefulRestart) *session.GracefulRestart {
	if g == nil {
		return nil
	}
	c := *g
	c.Restarting = false
	return &c
}

// Run starts the sessions and keeps them until ctx ends, then closes them
// (Cease / Administrative Shutdown) and returns; or until Shutdown has
// done its work. It binds Options.ListenAddrs first and returns the error
// if it cannot. Run may be called once.
func (a *Announcer) Run(ctx context.Context) error {
	a.mu.Lock()
	switch a.state {
	case running, stopping:
		a.mu.Unlock()
		return errors.New("announce: Run called twice")
	case stopped:
		a.mu.Unlock()
		return nil // Shutdown came first
	}
	a.state = running
	a.mu.Unlock()
	defer close(a.runDone)
	defer a.setState(stopped)

	var wg sync.WaitGroup // every peer's goroutines, and the listener's
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // before wg.Wait: it ends what is still running
	if len(a.opts.ListenAddrs) > 0 {
		l, err := session.Listen(a.opts.ListenAddrs, a.dispatch, a.log.With("part", "listener"))
		if err != nil {
			return err
		}
		a.mu.Lock()
		a.listener = l
		a.mu.Unlock()
		wg.Go(func() {
			if err := l.Run(ctx); err != nil {
				a.log.Error("listener", "err", err)
			}
		})
	}
	a.reconcile(ctx, &wg)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.reconfig:
			a.reconcile(ctx, &wg)
		case req := <-a.stopReq:
			a.shutdownPeers(req)
			close(req.done)
			return nil
		}
	}
}

func (a *Announcer) setState(s lifecycle) {
	a.mu.Lock()
	a.state = s
	a.mu.Unlock()
}

// dispatch hands an incoming connection to the peer with that address.
func (a *Announcer) dispatch(remote, _ netip.AddrPort) (*session.Peer, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := a.byAddr[remote.Addr().Unmap()]
	if !ok {
		return nil, false
	}
	return p.sess, true
}

// reconcile makes the running peers match the configs: it closes removed
// and changed peers (in parallel, each bounded by stopTimeout), then starts
// the new ones. Run's goroutine only.
func (a *Announcer) reconcile(ctx context.Context, wg *sync.WaitGroup) {
	type stop struct {
		p *peer
		n *wire.Notification
	}
	var stops []stop
	a.mu.Lock()
	for name, p := range a.peers {
		c, ok := a.configs[name]
		switch {
		case !ok:
			stops = append(stops, stop{p, &wire.Notification{Code: wire.ErrCodeCease, Subcode: wire.CeasePeerDeconfigured}})
		case !sameSession(p.cfg.Session, c.Session):
			stops = append(stops, stop{p, &wire.Notification{Code: wire.ErrCodeCease, Subcode: wire.CeaseOtherConfigChange}})
		case a.resets[name]:
			stops = append(stops, stop{p, wire.NewShutdown(wire.CeaseAdminReset, "BFD down")})
		case c.NextHop4 != p.cfg.NextHop4 || c.NextHop6 != p.cfg.NextHop6:
			p.cfg.NextHop4, p.cfg.NextHop6 = c.NextHop4, c.NextHop6
			p.update(func(in *inputs) { in.nh4, in.nh6 = c.NextHop4, c.NextHop6 })
		}
	}
	clear(a.resets)
	a.mu.Unlock()
	var stopping sync.WaitGroup
	for _, s := range stops {
		stopping.Go(func() { s.p.stop(s.n) })
	}
	stopping.Wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range stops {
		a.forget(s.p)
	}
	for name, c := range a.configs {
		if _, ok := a.peers[name]; !ok && ctx.Err() == nil {
			a.start(ctx, wg, newPeer(a, c))
		}
	}
}

// start runs p under ctx; a.mu is held.
func (a *Announcer) start(ctx context.Context, wg *sync.WaitGroup, p *peer) {
	ctx, p.cancel = context.WithCancel(ctx)
	a.peers[p.cfg.Name] = p
	addr := p.cfg.Session.PeerAddr.Unmap()
	a.byAddr[addr] = p
	if pw := p.cfg.Session.Password; pw != "" && a.listener != nil {
		if err := a.listener.SetPassword(netip.PrefixFrom(addr, addr.BitLen()), pw); err != nil {
			p.log.Error("TCP-MD5 key on the listener", "err", err)
		}
	}
	p.log.Info("peer added", "addr", addr, "as", p.cfg.Session.PeerAS)
	wg.Go(func() { p.run(ctx) })
}

// forget drops a stopped peer; a.mu is held.
func (a *Announcer) forget(p *peer) {
	name, addr := p.cfg.Name, p.cfg.Session.PeerAddr.Unmap()
	if a.peers[name] == p {
		delete(a.peers, name)
	}
	if a.byAddr[addr] == p {
		delete(a.byAddr, addr)
	}
	if p.cfg.Session.Password != "" && a.listener != nil {
		_ = a.listener.SetPassword(netip.PrefixFrom(addr, addr.BitLen()), "")
	}
}

// stop closes p's session with n (the RFC 4486 Cease subcode that says
// why) and waits for its goroutines.
func (p *peer) stop(n *wire.Notification) {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	p.closeSession(ctx, n)
	p.cancel()
	<-p.done
	p.log.Info("peer removed", "reason", n.String())
}

// Shutdown withdraws every route from every peer, waits until the
// withdrawals are written, then closes each session with Cease /
// Administrative Shutdown carrying msg (RFC 9003, at most 255 bytes), all
// peers in parallel. Afterwards Announce and SetPeers do nothing and Run
// returns. If ctx ends first, the remaining sessions are closed at once and
// ctx's error is returned.
func (a *Announcer) Shutdown(ctx context.Context, msg string) error {
	_, err := a.shutdown(ctx, msg, false)
	return err
}

// Restart is Shutdown for a speaker about to be replaced by a new process
// (RFC 4724 §4.1, the restarting speaker): every session that negotiated
// graceful restart is left as is, its UPDATEs already queued written but
// nothing withdrawn, and closed without a NOTIFICATION (session.Peer.
// Abandon), so that the peer keeps our routes until the new process sends
// them again; the other sessions withdraw and close as Shutdown does. It
// returns the names of the peers left with our routes.
func (a *Announcer) Restart(ctx context.Context, msg string) ([]string, error) {
	return a.shutdown(ctx, msg, true)
}

func (a *Announcer) shutdown(ctx context.Context, msg string, keep bool) ([]string, error) {
	a.mu.Lock()
	st := a.state
	if st == idle {
		a.state = stopped
	}
	if st == running {
		a.state = stopping
	}
	a.mu.Unlock()
	switch st {
	case idle:
		return nil, nil
	case stopping, stopped:
		select {
		case <-a.runDone:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	req := &stopRequest{ctx: ctx, msg: msg, keep: keep, done: make(chan struct{})}
	select {
	case a.stopReq <- req:
	case <-a.runDone:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var kept []string
	select {
	case <-req.done:
		kept = req.kept
	case <-ctx.Done():
	}
	select {
	case <-a.runDone:
	case <-ctx.Done():
	}
	return kept, ctx.Err()
}

// shutdownPeers asks every worker to withdraw, flush and close, and waits
// for them, or for req.ctx (then Run's return cancels the rest). Run's
// goroutine only.
func (a *Announcer) shutdownPeers(req *stopRequest) {
	a.mu.Lock()
	peers := make([]*peer, 0, len(a.peers))
	for _, p := range a.peers {
		peers = append(peers, p)
	}
	a.mu.Unlock()
	for _, p := range peers {
		p.update(func(in *inputs) { in.stopping, in.stop, in.keep = true, req.msg, req.keep })
	}
	for _, p := range peers {
		select {
		case <-p.done:
		case <-req.ctx.Done():
			return
		}
		if p.kept.Load() {
			req.kept = append(req.kept, p.cfg.Name)
		}
	}
	slices.Sort(req.kept)
}
