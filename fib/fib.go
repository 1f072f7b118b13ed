package fib

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// ProtoBGP is the route protocol number our routes carry; iproute2 names it
// "bgp" (/etc/iproute2/rt_protos), so `ip route` shows "proto bgp".
const ProtoBGP = unix.RTPROT_BGP

// Mode selects how multipath routes are programmed.
type Mode int

const (
	// NextHopAuto uses nexthop objects when the kernel has them (Linux 5.3+).
	NextHopAuto Mode = iota
	// NextHopOn requires nexthop objects; Open fails without them.
	NextHopOn
	// NextHopOff puts next hops inline in every route (RTA_GATEWAY,
	// RTA_MULTIPATH), as kernels before nexthop objects need.
	NextHopOff
)

func (m Mode) String() string {
	switch m {
	case NextHopAuto:
		return "auto"
	case NextHopOn:
		return "on"
	case NextHopOff:
		return "off"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Config says where and how routes are installed. Zero fields take defaults.
type Config struct {
	Table uint32 // routing table; default 254 (main)
	// Metric is our routes' priority; default 20. The kernel identifies a
	// route by table, prefix and metric, and NLM_F_REPLACE replaces a route
	// with the same three whoever installed it: give us a metric of our own.
	Metric         uint32
	Protocol       uint8 // route and nexthop protocol; default ProtoBGP
	NextHopObjects Mode
	// Nexthop object ids are ours from NextHopIDBase to
	// NextHopIDBase+NextHopIDCount-1; default Protocol<<24 and 1<<24, so the
	// top byte of an id names its owner the way the protocol does.
	NextHopIDBase  uint32
	NextHopIDCount uint32
	NetNS          string // network namespace path (/run/netns/NAME); empty: the current one
	// BatchSize is the most route messages sent in one datagram; default
	// 2048. Datagrams are also kept under 256 KiB.
	BatchSize int
	// StateFile records the key (table, metric, protocol) and next hop id
	// range of the routes this FIB writes, so that the next Open, under a
	// changed configuration, finds the old routes and moves them
	// make-before-break instead of leaving them or touching another
	// daemon's. /run/bgplb/fib.state suits: kernel routes do not survive a
	// reboot either. Empty: only routes of the current key are adopted.
	StateFile string
	// ReceiveBuffer is the socket receive buffer in bytes; default 16 MiB.
	// It must hold the errors of one datagram; if it does not, the datagram
	// is replayed with an ACK per message (slower, still exact).
	ReceiveBuffer int
	// Resilient configures the nexthop groups of ECMP routes (nexthop mode
	// only): resilient where the kernel has them (Linux 5.13+), unless Off.
	Resilient Resilient
}

const (
	defaultTable  = unix.RT_TABLE_MAIN
	defaultMetric = 20
	defaultBatch  = 2048
	defaultRcvBuf = 16 << 20
	maxDatagram   = 256 << 10
	maxMessage    = 16 << 10 // a route with MaxNextHops IPv6 gateways fits
	// planChunk is how many changes are planned at once: the planner's
	// scratch (about 150 bytes a change) is kept from call to call, so it
	// bounds what a large Apply leaves behind; two datagrams' worth keeps
	// the per-chunk work (gateway lookups, object writes) rare.
	planChunk = 2 * defaultBatch
	// graceChunk is how many stale routes EndGrace gathers per pass over
	// the prefix map.
	graceChunk       = 32 << 10
	dumpRetries      = 5
	defaultIDCount   = 1 << 24
	replayFirstChunk = 256
	// closeSettle bounds what Close spends writing held-back work.
	closeSettle = 5 * time.Second
)

func (c Config) withDefaults() (Config, error) {
	if c.Table == 0 {
		c.Table = defaultTable
	}
	if c.Metric == 0 {
		c.Metric = defaultMetric
	}
	if c.Protocol == 0 {
		c.Protocol = ProtoBGP
	}
	if c.NextHopIDBase == 0 {
		c.NextHopIDBase = uint32(c.Protocol) << 24
	}
	if c.NextHopIDCount == 0 {
		c.NextHopIDCount = defaultIDCount
	}
	if c.BatchSize <= 0 {
		c.BatchSize = defaultBatch
	}
	if c.ReceiveBuffer <= 0 {
		c.ReceiveBuffer = defaultRcvBuf
	}
	var err error
	if c.Resilient, err = c.Resilient.withDefaults(); err != nil {
		return c, err
	}
	switch {
	case c.NextHopObjects < NextHopAuto || c.NextHopObjects > NextHopOff:
		return c, fmt.Errorf("fib: invalid next hop mode %d", c.NextHopObjects)
	case uint64(c.NextHopIDBase)+uint64(c.NextHopIDCount) > 1<<32:
		return c, fmt.Errorf("fib: nexthop id range %d+%d overflows", c.NextHopIDBase, c.NextHopIDCount)
	case c.Protocol <= unix.RTPROT_STATIC:
		return c, fmt.Errorf("fib: protocol %d is reserved for the kernel and static routes", c.Protocol)
	}
	return c, nil
}

var (
	// ErrClosed is returned by methods of a closed FIB.
	ErrClosed = errors.New("fib: closed")
	// ErrPartial is wrapped by Apply's error when some changes failed;
	// Result.Failed lists them and everything else was applied.
	ErrPartial = errors.New("fib: some changes failed")
	// ErrInvalidRoute marks a change rejected before reaching the kernel.
	ErrInvalidRoute = errors.New("fib: invalid route")
	// ErrNoNexthopObjects is returned by Open when NextHopOn was asked for
	// and the kernel has no nexthop objects.
	ErrNoNexthopObjects = errors.New("fib: kernel has no nexthop objects")
	// ErrGatewayNotOnLink reports a gateway that is not directly connected.
	ErrGatewayNotOnLink = errors.New("fib: gateway not on a connected network")
)

// Error is a failure the kernel reported; errors.Is matches its Errno.
type Error struct {
	Op     string       // add, delete, nexthop, dump, or resolve gateway ADDR
	Prefix netip.Prefix // the route, when about one
	Errno  unix.Errno
	Msg    string // the kernel's extended ack text, if any
}

func (e *Error) Error() string {
	s := "fib: " + e.Op
	if e.Prefix.IsValid() {
		s += " " + e.Prefix.String()
	}
	s += ": " + e.Errno.Error()
	if e.Msg != "" {
		s += " (" + e.Msg + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Errno }

// Result tells what an Apply did. Counts follow the desired state: a
// prefix that had a desired route is replaced, others are added.
type Result struct {
	Added, Replaced, Deleted int
	// Failed lists the changes the kernel does not hold. Each stays desired
	// and is written again by Maintain until the kernel takes it (a route
	// with no usable next hop, when a gateway becomes usable); meanwhile the
	// prefix has no route of ours, never the route it had before.
	Failed []Failure
	// Degraded lists the next hops left out of routes that were installed
	// with their other members, one entry per gateway.
	Degraded []HopFailure
}

// Failure is a change that did not take effect (yet).
type Failure struct {
	Change Change
	Err    error
}

// HopFailure is a gateway that routes were installed without.
type HopFailure struct {
	Addr   netip.Addr
	Routes int // routes of this call installed without it
	Err    error
}

func (r *Result) add(o Result) {
	r.Added += o.Added
	r.Replaced += o.Replaced
	r.Deleted += o.Deleted
	r.Failed = append(r.Failed, o.Failed...)
	for _, h := range o.Degraded {
		i := slices.IndexFunc(r.Degraded, func(x HopFailure) bool { return x.Addr == h.Addr })
		if i < 0 {
			r.Degraded = append(r.Degraded, h)
			continue
		}
		r.Degraded[i].Routes += h.Routes
	}
}

func sortHopFailures(h []HopFailure) {
	slices.SortFunc(h, func(a, b HopFailure) int { return a.Addr.Compare(b.Addr) })
}

// FIB programs our routes in one kernel routing table. Its methods are safe
// for concurrent use and run one at a time.
type FIB struct {
	mu     sync.Mutex
	cfg    Config
	key    routeKey
	log    *slog.Logger
	c      *conn
	haveNH bool // the kernel has nexthop objects
	useNH  bool // routes use them
	// form is how our groups balance: resilient when configured and the
	// kernel has them (probed at Open), else hash-threshold.
	form groupForm
	// routes is the desired state, what Apply was asked for: prefix -> hop
	// set in sets, with flags (stale, pending).
	routes prefixMap
	// sets interns hop sets, reference counted by routes. In nexthop mode
	// its entries are our kernel objects; inline, they exist only here.
	sets *nhTable
	// old holds, inline, the nexthop objects a run in nexthop mode left:
	// deleted once the routes using them are rewritten inline.
	old *nhTable
	// oldKey is the key of a previous run's routes (fib.state) that are
	// being moved to ours; oldLeft counts deletes of them that failed.
	oldKey  routeKey
	oldLeft int
	// pending is set while some desired routes may differ in the kernel
	// (flagPending); extras are kernel routes of ours to delete.
	pending bool
	extras  []netip.Prefix
	stale   int // routes of a previous run not set since Open
	// deferred holds, by single object, deletes left to the deletion of
	// the object (flushgw.go); kick wakes Maintain to settle them.
	deferred map[uint32]*deferredSet
	// moves holds, by resilient group, changes held back until the rest
	// of the group's routes follow (groupmove.go).
	moves map[uint32]*groupMove
	// moveScratch holds the changes moveGroups returns when it adds or
	// removes some, kept from Apply to Apply.
	moveScratch []Change
	// releasedMoves records the moves released into the changes being
	// applied, to hold back again those an error leaves unapplied.
	releasedMoves []releasedMove
	// warnedMpath: the log said a resilient group was refused (once).
	warnedMpath bool
	// clock is time.Now but in tests that drive settling by hand.
	clock func() time.Time
	kick  chan struct{}
	holds int // outstanding Holds
	// resync is set when the kernel lost state we rely on (a nexthop object
	// flushed with its interface): the next call rescans the kernel.
	resync bool
	stats  Stats
	closed bool
	// writer is the port id of c, read by the monitor without the lock.
	writer atomic.Uint32
	// links names interfaces by index, to give link-local gateways read
	// back their zone; read by the monitor without the lock.
	links atomic.Pointer[linkTable]
	// mon is Maintain's notification socket, whose kernel filter drops the
	// echo of writer's changes; monMu guards it, taken after mu.
	monMu    sync.Mutex
	mon      *conn
	openedAt time.Time
	// overruns counts datagrams replayed after ENOBUFS.
	overruns int
	buf      msgBuf
	plan     planner
}

// Open connects to the kernel, picks the next-hop mode and loads the routes
// and nexthop objects a previous run left, so that they are replaced in
// place rather than flushed (see Reconciler for removing those that do not
// come back).
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*FIB, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	prev, err := readState(cfg.StateFile)
	if err != nil {
		return nil, err
	}
	c, err := dial(cfg.NetNS, cfg.ReceiveBuffer, 2*maxDatagram)
	if err != nil {
		return nil, err
	}
	f := &FIB{
		cfg:  cfg,
		key:  routeKey{table: cfg.Table, metric: cfg.Metric, proto: cfg.Protocol},
		log:  log,
		c:    c,
		kick: make(chan struct{}, 1),
	}
	f.writer.Store(c.pid)
	f.openedAt = time.Now()
	if err := f.open(ctx, prev); err != nil {
		c.close()
		return nil, err
	}
	log.Info("fib open", "netns", cfg.NetNS, "table", cfg.Table, "metric", cfg.Metric,
		"protocol", cfg.Protocol, "nexthop_objects", f.useNH, "groups", f.GroupType(), "routes", f.routes.len())
	return f, nil
}

func (f *FIB) open(ctx context.Context, prev *state) error {
	if err := f.refreshLinks(ctx); err != nil {
		return err
	}
	_, probeErr := f.dumpNexthops(ctx)
	f.haveNH = probeErr == nil
	var err error
	if f.useNH, err = useNexthops(f.cfg.NextHopObjects, probeErr); err != nil {
		return err
	}
	if f.useNH {
		if f.form, err = f.groupForm(ctx); err != nil {
			return err
		}
	}
	var prevKey *routeKey
	if prev != nil && prev.key != f.key {
		prevKey = &prev.key
		f.oldKey = prev.key
		f.log.Info("fib: moving the routes of the previous configuration", "table", prev.key.table,
			"metric", prev.key.metric, "protocol", prev.key.proto)
	}
	if err := f.adopt(ctx, prevKey); err != nil {
		return err
	}
	if _, err := f.flush(ctx); err != nil {
		return err
	}
	if prevKey != nil && f.oldKey == (routeKey{}) {
		if err := f.deletePrevObjects(ctx, prev); err != nil {
			return err
		}
	}
	return f.saveState()
}

// useNexthops decides the mode from the configuration and the outcome of a
// nexthop dump: kernels without nexthop objects answer EOPNOTSUPP.
func useNexthops(m Mode, probeErr error) (bool, error) {
	unsupported := errors.Is(probeErr, unix.EOPNOTSUPP) || errors.Is(probeErr, unix.EINVAL)
	switch {
	case m == NextHopOff:
		return false, nil
	case probeErr == nil:
		return true, nil
	case unsupported && m == NextHopAuto:
		return false, nil
	case unsupported:
		return false, fmt.Errorf("%w: %w", ErrNoNexthopObjects, probeErr)
	}
	return false, fmt.Errorf("fib: probing nexthop objects: %w", probeErr)
}

// NextHopObjects reports whether routes use kernel nexthop objects.
func (f *FIB) NextHopObjects() bool { return f.useNH }

// Close releases the socket. Routes stay in the kernel: the next run adopts
// them. Held-back changes and deferred deletes are written first, as far
// as closeSettle allows: what they were reported to do is done.
func (f *FIB) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	if (len(f.moves) > 0 || len(f.deferred) > 0) && !f.c.dirty {
		ctx, cancel := context.WithTimeout(context.Background(), closeSettle)
		if _, err := f.settle(ctx, f.now(), true); err != nil {
			f.log.Warn("fib: held-back changes or deferred deletes not written at close", "err", err)
		}
		cancel()
	}
	f.closed = true
	return f.c.close()
}

// enter takes the lock for a method; a socket left mid-dump by an
// abandoned call is replaced first.
func (f *FIB) enter() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return ErrClosed
	}
	if f.c.dirty {
		c, err := dial(f.cfg.NetNS, f.cfg.ReceiveBuffer, 2*maxDatagram)
		if err != nil {
			f.mu.Unlock()
			return err
		}
		f.c.close()
		f.c, f.resync = c, true
		f.writer.Store(c.pid)
		f.watchWriter(nil, false)
	}
	return nil
}

// Sync makes the kernel hold exactly the desired state (what Apply was
// asked for, and the stale routes of a previous run): it looks every
// gateway up again, compares our nexthop objects and routes in the kernel
// with the desired state, and writes the difference. Maintain calls it
// periodically, after monitor overruns and after link changes; it repairs
// whatever happened behind our back.
func (f *FIB) Sync(ctx context.Context) (Result, error) {
	if err := f.enter(); err != nil {
		return Result{}, err
	}
	defer f.mu.Unlock()
	return f.resyncAll(ctx)
}

// now is when Apply and settle think it is.
func (f *FIB) now() time.Time {
	if f.clock != nil {
		return f.clock()
	}
	return time.Now()
}

// Apply sets the kernel route of every change's prefix. Changes are sent in
// batches without waiting for each answer; the kernel answers only failures,
// which are matched to their change by sequence number, and one
// acknowledgement closes each batch. Every change is recorded as desired
// first: one that fails is listed in Result.Failed (the error then wraps
// ErrPartial) and Maintain writes it again until the kernel takes it. A
// route is installed with the next hops that can be used; those left out
// are listed in Result.Degraded. Any other error means the rest of the
// changes were not applied. A prefix that repeats is set by its last change.
//
// With resilient groups, changes that move part of a group's routes to a
// new set may be held back (counted as replaced here, not again by the
// call that writes them, whose Result is about its own changes) until the
// rest follow;
// the next Apply writes those overdue, and Maintain must run to write them
// when no Apply comes (see groupmove.go), as it must for deferred deletes.
func (f *FIB) Apply(ctx context.Context, changes []Change) (Result, error) {
	if err := f.enter(); err != nil {
		return Result{}, err
	}
	defer f.mu.Unlock()
	if f.resync {
		if _, err := f.resyncAll(ctx); err != nil {
			return Result{}, err
		}
	}
	now := f.now()
	if len(f.moves) > 0 {
		if _, err := f.settleMoves(ctx, now, false); err != nil {
			return Result{}, err
		}
	}
	defer f.dropScratch()
	out, nrel, held, err := f.moveGroups(ctx, changes, now)
	if err != nil {
		return Result{}, err
	}
	res, err := f.applyReleased(ctx, out, nrel)
	res.Replaced += held
	f.kickMaintain()
	return res, err
}

// applyReleased applies out, whose first nrel changes were released from
// a hold: they were counted when held, so the result is the others'. Those
// an error keeps from desire are held back again.
func (f *FIB) applyReleased(ctx context.Context, out []Change, nrel int) (Result, error) {
	defer func() { f.releasedMoves = f.releasedMoves[:0] }()
	if nrel > 0 {
		_, n, err := f.applyN(ctx, out[:nrel])
		if err != nil && !errors.Is(err, ErrPartial) {
			f.restoreMoves(n)
			return Result{}, err
		}
	}
	return f.apply(ctx, out[nrel:])
}

func (f *FIB) apply(ctx context.Context, changes []Change) (Result, error) {
	res, _, err := f.applyN(ctx, changes)
	return res, err
}

// applyN is apply that also says how many changes went through desire
// (recorded as desired, written or pending): all but those after the
// chunk an error stopped at.
func (f *FIB) applyN(ctx context.Context, changes []Change) (Result, int, error) {
	var res Result
	for start := 0; start < len(changes); start += planChunk {
		end := min(start+planChunk, len(changes))
		part, err := f.applyChunk(ctx, changes[start:end])
		res.add(part)
		if err != nil {
			return res, end, err
		}
	}
	if len(res.Failed) > 0 {
		return res, len(changes), fmt.Errorf("%w: %d of %d", ErrPartial, len(res.Failed), len(changes))
	}
	return res, len(changes), nil
}
