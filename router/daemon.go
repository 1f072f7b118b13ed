// Package router is the `bgplb router` daemon: it accepts BGP sessions from
// the cluster nodes, guards what they may announce, selects best paths and
// ECMP sets in the RIB and programs the kernel FIB over netlink. It imports
// nothing from Kubernetes.
package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bgplb/bgplb/bfd"
	"github.com/bgplb/bgplb/bgp/rib"
	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/fib"
	"github.com/bgplb/bgplb/reach"
	"github.com/bgplb/bgplb/view"
)

// Daemon is a running router.
type Daemon struct {
	log     *slog.Logger
	netns   string
	metrics *Metrics
	rib     *rib.RIB
	fib     *fib.FIB
	queue   *fibQueue
	// bfd runs the peers' BFD sessions; set by Run before any session
	// starts. It outlives Run's context so that shutdown can tell every
	// BFD peer AdminDown; stop closes it.
	bfd *bfd.Manager
	// ctx is Run's context: peers started later (dynamic ones, reloads)
	// live under it.
	ctx context.Context
	wg  sync.WaitGroup

	// cfg is read on every UPDATE, so it is an atomic pointer rather than
	// something behind mu: sessions never wait on each other for it.
	cfg atomic.Pointer[Config]
	// links is what next hops are judged by: the namespace's links and
	// addresses as last seen (see watchNextHops). The RIB reads it on every
	// new source, so it is an atomic pointer too.
	links atomic.Pointer[reach.State]

	shutdownTimeout time.Duration
	// grace is the wait for the peers after a restart with kept routes.
	grace graceWait

	mu       sync.Mutex // guards everything below
	listener *session.Listener
	peers    map[netip.Addr]*peer
	nextID   rib.PeerID
	fibErrs  int
	// Connections refused by the session limits since the last log line
	// about them, and when that was.
	refused       int
	refusedLogged time.Time
}

// Options are what a Daemon needs besides its config.
type Options struct {
	Log *slog.Logger
	// NetNS is the network namespace (a /run/netns path) whose FIB the
	// daemon programs; empty for its own.
	NetNS string
	// ShutdownTimeout bounds how long Run takes to return once its context
	// ends; default DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
}

// DefaultShutdownTimeout is Options.ShutdownTimeout's default: long enough
// for every peer to get its Cease, short enough for a service manager.
const DefaultShutdownTimeout = 10 * time.Second

// ErrShutdownTimeout is returned by Run when the daemon did not stop within
// Options.ShutdownTimeout; it returned regardless.
var ErrShutdownTimeout = errors.New("router: shutdown did not finish in time")

// New checks cfg and prepares a daemon; Run starts it.
func New(cfg *Config, o Options) *Daemon {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	d := &Daemon{
		log:             o.Log,
		shutdownTimeout: o.ShutdownTimeout,
		netns:           o.NetNS,
		metrics:         NewMetrics(),
		peers:           make(map[netip.Addr]*peer),
		queue:           newFIBQueue(1 << 14),
	}
	d.rib = rib.New(rib.Config{LocalAS: cfg.ASN, RouterID: cfg.RouterID, MaxPaths: maxPaths(cfg), NextHop: d.nextHopVerdict})
	d.cfg.Store(cfg)
	d.metrics.Registry.MustRegister(sessionCollector{d.sessionStates}, fibCollector{d.fibStats}, peerCollector{d})
	return d
}

// sessionStates counts the sessions in each FSM state.
func (d *Daemon) sessionStates() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := map[string]int{"Established": 0}
	for _, p := range d.peers {
		m[p.sess.State().String()]++
	}
	return m
}

// peerList is the peers the daemon knows, in no order.
func (d *Daemon) peerList() []*peer {
	d.mu.Lock()
	defer d.mu.Unlock()
	peers := make([]*peer, 0, len(d.peers))
	for _, p := range d.peers {
		peers = append(peers, p)
	}
	return peers
}

// fibStats reads the FIB's counters once Run has opened it.
func (d *Daemon) fibStats() (fib.Stats, bool) {
	d.mu.Lock()
	f := d.fib
	d.mu.Unlock()
	if f == nil {
		return fib.Stats{}, false
	}
	return f.Stats(), true
}

func maxPaths(c *Config) int {
	if !c.FIB.ECMP {
		return 1
	}
	return 0
}

// Metrics returns the daemon's metrics.
func (d *Daemon) Metrics() *Metrics { return d.metrics }

// Run runs the daemon until ctx ends, then closes every session with a
// Cease / Administrative Shutdown. Routes stay in the kernel, for the next
// start to reconcile. It returns within the shutdown timeout of ctx ending,
// with ErrShutdownTimeout if something was still running then.
func (d *Daemon) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d.ctx = ctx
	cfg := d.config()
	f, err := fib.Open(ctx, fibConfig(cfg, d.netns), d.log.With("part", "fib"))
	if err != nil {
		return fmt.Errorf("opening the kernel FIB: %w", err)
	}
	d.mu.Lock()
	d.fib = f
	d.mu.Unlock()
	d.bfd = bfd.NewManager(context.WithoutCancel(ctx), bfd.Options{Logger: d.log})
	if err := d.run(ctx, cfg); err != nil {
		cancel()
		_ = d.stop()
		return err
	}
	return d.stop()
}

// run starts everything and waits for ctx to end.
func (d *Daemon) run(ctx context.Context, cfg *Config) error {
	d.startGrace(ctx, cfg, d.fib.Stats().Stale)
	d.spawn(func() { d.maintainFIB(ctx, cfg) })
	d.spawn(func() { d.writeFIB(ctx) })

	// Next hops are judged from the first session on: the snapshot comes
	// before the listener.
	ro := reach.Options{Netns: d.netns, OwnProtocol: cfg.FIB.Protocol, Routes: anyMultihop(cfg)}
	links, err := reach.Snapshot(ro)
	if err != nil {
		return fmt.Errorf("reading the links and addresses next hops are judged by: %w", err)
	}
	d.links.Store(links)
	d.spawn(func() { d.watchNextHops(ctx, ro) })

	if err := d.listen(cfg); err != nil {
		return err
	}
	d.mu.Lock()
	for _, n := range cfg.Neighbors {
		d.startStatic(n)
	}
	d.mu.Unlock()
	d.spawn(func() { d.serveAPI(ctx, cfg.API.Socket) })
	if cfg.Metrics.Address != "" {
		d.spawn(func() {
			if err := ServeMetrics(ctx, cfg.Metrics.Address, d.metrics, d.log); err != nil {
				d.log.Error("metrics", "err", err)
			}
		})
	}
	d.spawn(func() { d.reapDynamic(ctx) })
	d.log.Info("router running", "asn", cfg.ASN, "routerID", cfg.RouterID, "neighbors", len(cfg.Neighbors),
		"dynamicNeighbors", len(cfg.DynamicNeighbors))
	<-ctx.Done()
	return nil
}

// stop closes the sessions and waits for every goroutine, for at most the
// shutdown timeout. The FIB queue is closed first: the writer has returned
// or is about to, and routes stay in the kernel anyway, so nothing a
// session does on its way down may wait for it.
func (d *Daemon) stop() error {
	d.queue.close()
	sctx, cancel := context.WithTimeout(context.Background(), d.shutdownTimeout)
	defer cancel()
	peers := d.peerList() // shutdown forgets them
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		d.shutdown(sctx, "router shutting down")
		// Graceful-restart timers of peers whose stop timed out, or
		// that reapDynamic forgot meanwhile, must not fire later.
		for _, p := range peers {
			p.grMu.Lock()
			p.stopTimer()
			p.grMu.Unlock()
		}
		d.wg.Wait()
		if d.bfd != nil {
			// AdminDown to the peers still there: a router stopping on
			// purpose is no failure of the path (RFC 5882 §3.2).
			_ = d.bfd.Shutdown(sctx)
		}
		if d.fib != nil {
			d.fib.Close()
		}
	}()
	select {
	case <-stopped:
		return nil
	case <-sctx.Done():
		// The process is about to exit: what is still running dies with
		// it, and the kernel closes the FIB's socket.
		d.log.Error("shutdown did not finish in time: exiting anyway", "timeout", d.shutdownTimeout)
		return fmt.Errorf("%w (%s)", ErrShutdownTimeout, d.shutdownTimeout)
	}
}

// nextHopVerdict is the RIB's next-hop check (rib.Config.NextHop): a
// reach.Reason, Usable (0) when the kernel could forward through nh.
func (d *Daemon) nextHopVerdict(p *rib.Peer, nh netip.Addr) uint8 {
	links := d.links.Load()
	if links == nil { // before Run: nothing is announced yet
		return uint8(reach.Usable)
	}
	return uint8(links.Check(nh, p.Multihop))
}

// watchNextHops re-judges every next hop when links, addresses (or, for
// multihop sessions, other routes) change, and queues the routes whose ECMP
// set changed: a path via a node whose network went away leaves the kernel
// and comes back with it.
func (d *Daemon) watchNextHops(ctx context.Context, ro reach.Options) {
	err := reach.Watch(ctx, ro, func(links *reach.State) {
		d.links.Store(links)
		n := d.rib.Revalidate(func(c *rib.Changes) { d.queue.push(ctx, c.List, d.config().FIB.ECMP) })
		if n > 0 {
			d.log.Info("next hops judged again after a link or address change", "prefixes", n)
		}
	})
	if err != nil && ctx.Err() == nil {
		d.log.Error("watching links and addresses: next hops are no longer re-judged", "err", err)
	}
}

// anyMultihop reports whether a neighbour may use next hops behind routes,
// which next-hop checks then have to read.
func anyMultihop(c *Config) bool {
	for _, n := range c.Neighbors {
		if n.Multihop > 1 {
			return true
		}
	}
	return false
}

func (d *Daemon) spawn(f func()) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		f()
	}()
}

func (d *Daemon) config() *Config { return d.cfg.Load() }

func fibConfig(c *Config, netns string) fib.Config {
	mode := fib.NextHopAuto
	switch c.FIB.NextHopObjects {
	case "on":
		mode = fib.NextHopOn
	case "off":
		mode = fib.NextHopOff
	}
	r := c.FIB.Resilient
	return fib.Config{Table: uint32(c.FIB.Table), Metric: c.FIB.Metric, Protocol: c.FIB.Protocol, NextHopObjects: mode, NetNS: netns,
		StateFile: fibStateFile(c.API.Socket),
		Resilient: fib.Resilient{Off: !r.Enabled, Buckets: uint16(r.Buckets), IdleTimer: r.IdleTimer, UnbalancedTimer: r.UnbalancedTimer}}
}

// fibStateFile is where the FIB records the table, metric, protocol and
// mode its routes were written with, so that a restart with other settings
// moves them make-before-break. It sits beside the API socket: in the
// runtime directory, which (like kernel routes) does not outlive a reboot,
// and unique per router, as the socket must be.
func fibStateFile(socket string) string {
	return strings.TrimSuffix(socket, filepath.Ext(socket)) + ".fib-state"
}

// listenOptions bounds connections that have not become sessions yet by
// the session cap, and sets GTSM (RFC 5082) on the listening sockets when
// every peer that may connect asks for it, so the kernel drops segments
// from farther away before a connection exists. With a mix, GTSM stays per
// session, set after accept.
func listenOptions(c *Config) session.ListenOptions {
	o := session.ListenOptions{MaxPending: c.Limits.MaxSessions}
	gtsm := len(c.Neighbors)+len(c.DynamicNeighbors) > 0
	for _, n := range c.Neighbors {
		gtsm = gtsm && n.TTLSecurity && n.Multihop <= 1
	}
	for _, r := range c.DynamicNeighbors {
		gtsm = gtsm && r.TTLSecurity
	}
	if gtsm {
		o.MinTTL = 255
	}
	return o
}

// listen (re)binds the listening sockets and their TCP-MD5 keys.
func (d *Daemon) listen(cfg *Config) error {
	l, err := session.ListenWithOptions(cfg.Listen, d.dispatch, d.log.With("part", "listener"), listenOptions(cfg))
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	for _, n := range cfg.Neighbors {
		if n.Password != "" {
			if err := l.SetPassword(netip.PrefixFrom(n.Address, n.Address.BitLen()), n.Password); err != nil {
				l.Close()
				return fmt.Errorf("neighbor %s password: %w", n.Address, err)
			}
		}
	}
	for _, r := range cfg.DynamicNeighbors {
		if r.Password != "" {
			if err := l.SetPassword(r.Prefix, r.Password); err != nil {
				l.Close()
				return fmt.Errorf("dynamic neighbors %s password: %w", r.Prefix, err)
			}
		}
	}
	d.mu.Lock()
	old := d.listener
	d.listener = l
	d.mu.Unlock()
	if old != nil {
		old.Close()
	}
	d.spawn(func() {
		if err := l.Run(d.ctx); err != nil {
			d.log.Error("listener", "err", err)
		}
	})
	return nil
}

// writeFIB applies queued Loc-RIB changes to the kernel in batches.
func (d *Daemon) writeFIB(ctx context.Context) {
	var batch *fibBatch
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.queue.wake:
		}
		for {
			batch = d.queue.take(batch)
			if len(batch.changes) == 0 && len(batch.after) == 0 {
				break
			}
			for cs := batch.changes; len(cs) > 0; {
				n := min(len(cs), 8192)
				d.apply(ctx, cs[:n])
				cs = cs[n:]
			}
			batch.finish()
		}
	}
}

// maintainFIB keeps the kernel equal to what the RIB asked for: routes
// deleted or changed behind the router's back come back, failed writes are
// retried, everything is compared every fib.resyncInterval, and the routes
// of a previous run that no peer announced again go when the grace time
// ends (fib.Maintain).
func (d *Daemon) maintainFIB(ctx context.Context, cfg *Config) {
	// graceTime: 0 means no grace: the old routes go at once (Maintain's
	// zero would keep them until told).
	grace := max(cfg.FIB.GraceTime, time.Nanosecond)
	err := d.fib.Maintain(ctx, fib.MaintainOptions{ResyncInterval: cfg.FIB.ResyncInterval, Grace: grace})
	if err != nil && ctx.Err() == nil {
		d.log.Error("keeping the kernel FIB in line stopped: routes deleted behind the router's back are no longer restored", "err", err)
	}
}

func (d *Daemon) apply(ctx context.Context, cs []fib.Change) {
	if len(cs) == 0 {
		return
	}
	start := time.Now()
	res, err := d.fib.Apply(ctx, cs)
	d.metrics.FIBBatchSeconds.Observe(time.Since(start).Seconds())
	d.metrics.FIBOps.WithLabelValues("add").Add(float64(res.Added))
	d.metrics.FIBOps.WithLabelValues("replace").Add(float64(res.Replaced))
	d.metrics.FIBOps.WithLabelValues("delete").Add(float64(res.Deleted))
	refused, unsent := splitFailures(res.Failed)
	if n := len(refused); n > 0 {
		d.metrics.FIBErrors.Add(float64(n))
		d.log.Warn("kernel refused routes", "count", n, "first", refused[0].Change.Prefix, "err", refused[0].Err)
	}
	if unsent > 0 || stopped(err) {
		// Not the kernel's doing: the daemon is stopping, and the routes
		// stay as they are for the next start.
		d.log.Debug("kernel batch abandoned: shutting down", "routes", unsent)
		return
	}
	if err != nil && !errors.Is(err, fib.ErrPartial) {
		d.metrics.FIBErrors.Inc()
		d.log.Error("programming the kernel FIB", "err", err)
	}
}

// stopped reports an error that only says the caller gave up.
func stopped(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, fib.ErrClosed)
}

// splitFailures separates the changes the kernel refused from those that
// were never sent, or never answered, because the batch was abandoned.
func splitFailures(fs []fib.Failure) (refused []fib.Failure, unsent int) {
	for _, f := range fs {
		if stopped(f.Err) {
			unsent++
			continue
		}
		refused = append(refused, f)
	}
	return refused, unsent
}

func (d *Daemon) serveAPI(ctx context.Context, socket string) {
	if err := view.Serve(ctx, socket, view.Handler(d), d.log.With("part", "api")); err != nil {
		d.log.Error("api", "err", err)
	}
}
