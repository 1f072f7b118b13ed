package rib

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
)

// Errors returned by the RIB, for errors.Is.
var (
	ErrUnknownPeer = errors.New("rib: unknown peer")
	ErrPeerExists  = errors.New("rib: peer already added")
	ErrBadPeer     = errors.New("rib: invalid peer")
	ErrFamily      = errors.New("rib: unsupported address family or prefix of another family")
	ErrNoAttrs     = errors.New("rib: announcement without path attributes")
	// ErrMaxPrefixes: the peer announced a path past its Peer.MaxPrefixes.
	ErrMaxPrefixes = errors.New("rib: peer exceeded its prefix limit")
)

// PeerID names a peer for the life of its session. The daemon picks it.
type PeerID uint32

// Peer is a BGP neighbour whose session is Established.
type Peer struct {
	ID PeerID
	// Addr is the neighbour's address: the last tie-breaker.
	Addr netip.Addr
	// AS is the neighbour's AS number.
	AS uint32
	// RouterID is the BGP Identifier from the neighbour's OPEN.
	RouterID netip.Addr
	// LocalAS is our AS on this session; zero means Config.LocalAS. The
	// session is iBGP exactly when AS == LocalAS.
	LocalAS uint32
	// Multihop marks a session whose neighbour is not on a connected
	// network (eBGP multihop). The RIB only passes it to Config.NextHop,
	// which may then accept next hops reached through other routes.
	Multihop bool
	// MaxPrefixes caps the paths the peer may hold (both families, valid
	// or not); zero means no limit. See Update and SetMaxPrefixes.
	MaxPrefixes int
}

// Config sets up a RIB.
type Config struct {
	// LocalAS is our AS number.
	LocalAS uint32
	// RouterID is our BGP Identifier: a path whose ORIGINATOR_ID is ours
	// came back to us and is not used.
	RouterID netip.Addr
	// MaxPaths caps an ECMP set. Zero means 64; 1 turns multipath off.
	MaxPaths int
	// Policy tunes the decision process.
	Policy Policy
	// Now is the clock for path ages; nil means time.Now.
	Now func() time.Time
	// NextHop decides whether the paths of peer p via next hop nh can be
	// used: 0 when they can, any other value (the daemon's reason code,
	// e.g. a reach.Reason) when they cannot. Such paths stay in the RIB,
	// shown with the code in PathView.NextHopVerdict and counted as
	// received, but are never selected. It is asked once per source (peer,
	// attribute set, next hop), when the source is created and again by
	// Revalidate, with RIB locks held: it must be fast, must not call the
	// RIB, and must not modify p. Nil accepts every next hop (beyond the checks the RIB makes
	// itself: present and not unspecified).
	NextHop func(p *Peer, nh netip.Addr) uint8
	// UnknownAttrBytes is how much of unrecognised optional attributes
	// the RIB keeps, in total over its attribute sets. Zero keeps none:
	// the router re-advertises nothing, and a peer varying unknown
	// attributes must not be able to grow the RIB. An attribute set that
	// would take the total over is stored without them.
	UnknownAttrBytes int
}

// DefaultMaxPaths is the ECMP width when Config.MaxPaths is zero.
const DefaultMaxPaths = 64

// RIB holds the routes learned from BGP peers: for each, its Adj-RIB-In, and
// for each address family (IPv4 and IPv6 unicast) the Loc-RIB with the best
// path and ECMP set of every prefix.
//
// A path is stored once, in the Loc-RIB entry of its prefix; a peer's
// Adj-RIB-In is the set of paths that carry its ID (RFC 4271 §3.2 allows
// this: the three RIBs are conceptual, not copies).
//
// Concurrency: each peer's session calls Update from its own goroutine, and
// calls for different peers run in parallel. There is no RIB-wide lock on
// that path:
//   - the Loc-RIB of each family is split into shards by prefix hash, each
//     with its own mutex, held for one prefix at a time;
//   - each peer has a mutex held for the whole of one of its Update or
//     RemovePeer calls: calls for one peer are serialised, and everything
//     that belongs to the peer (its sources, their reference counts, its
//     scratch buffers) is touched only under it;
//   - attribute sets are interned under one mutex, taken at most once per
//     call (not at all when a peer repeats the attributes of its previous
//     UPDATE);
//   - r.mu guards the peer table and slot numbers only, and is held for a
//     map lookup per call.
//
// Lock order: peer → shard, peer → interner, peer → r.mu, r.mu → shard.
type RIB struct {
	cfg    Config
	epoch  time.Time
	intern interner
	v4     table[key4]
	v6     table[key6]

	mu        sync.RWMutex
	peers     map[PeerID]*peerState
	freeSlots []int
	nextSlot  int

	// reval serialises Revalidate and guards what follows.
	reval sync.Mutex
	gen   uint8 // the generation every shard is in between Revalidates
	rop   op    // Revalidate's op
	rbuf  Changes
}

// peerState is one peer's side of the RIB.
type peerState struct {
	peer     Peer // immutable
	slot     int  // immutable: index of the peer's counters in each shard
	external bool // immutable

	// mu is held for a whole Update or RemovePeer of the peer and guards
	// everything below.
	// received and accepted total the peer's paths over both families,
	// kept beside the per-shard counters so the daemon can check limits
	// after every UPDATE without visiting every shard.
	received, accepted atomic.Int64
	// limit is the peer's MaxPrefixes (0: none).
	limit atomic.Int64

	mu      sync.Mutex
	removed bool
	sources map[sourceKey]*source
	last    *source // the previous UPDATE's source: attributes usually repeat
	key     []byte  // scratch: attribute key
	op      op
	batch   Changes // RemovePeer's batches
}

// op is the context of one Update or RemovePeer call, reused from call to
// call of the same peer.
type op struct {
	r      *RIB
	ps     *peerState
	out    *Changes
	now    uint32
	ord    orderer
	old    []path    // scratch: an ECMP set before a change
	single [2]path   // scratch: ECMP sets of single-path prefixes
	pbuf   pair      // scratch: the paths of a two-path prefix
	dead   []*source // sources whose last path went, freed by reap
	gen    uint8     // the generation of the shard being worked on
	full   bool      // an announcement was refused: the peer is at its limit
}

// New returns an empty RIB.
func New(cfg Config) *RIB {
	if cfg.MaxPaths <= 0 {
		cfg.MaxPaths = DefaultMaxPaths
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &RIB{cfg: cfg, peers: make(map[PeerID]*peerState)}
	r.epoch = cfg.Now()
	r.intern.init()
	for i := range r.v4.shards {
		r.v4.shards[i].init()
	}
	for i := range r.v6.shards {
		r.v6.shards[i].init()
	}
	r.rop = op{r: r, ord: r.newOrderer()}
	return r
}

func (r *RIB) newOrderer() orderer {
	return orderer{pol: &r.cfg.Policy, maxPaths: r.cfg.MaxPaths, srcs: &r.intern.srcs}
}

// AddPeer registers a peer, usually when its session reaches Established.
func (r *RIB) AddPeer(p Peer) error {
	switch {
	case !p.Addr.IsValid():
		return fmt.Errorf("%w %d: no address", ErrBadPeer, p.ID)
	case !p.RouterID.Is4():
		return fmt.Errorf("%w %d: router ID %v is not an IPv4 address", ErrBadPeer, p.ID, p.RouterID)
	case p.AS == 0:
		return fmt.Errorf("%w %d: AS 0", ErrBadPeer, p.ID)
	}
	if p.LocalAS == 0 {
		p.LocalAS = r.cfg.LocalAS
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.peers[p.ID]; ok {
		return fmt.Errorf("%w: %d", ErrPeerExists, p.ID)
	}
	slot := r.nextSlot
	if n := len(r.freeSlots); n > 0 {
		slot, r.freeSlots = r.freeSlots[n-1], r.freeSlots[:n-1]
	} else {
		r.nextSlot++
	}
	ps := &peerState{peer: p, slot: slot, external: p.AS != p.LocalAS, sources: make(map[sourceKey]*source)}
	ps.limit.Store(int64(max(p.MaxPrefixes, 0)))
	ps.op = op{r: r, ps: ps, ord: r.newOrderer()}
	r.peers[p.ID] = ps
	return nil
}

// SetMaxPrefixes changes a peer's prefix limit (0: none) for its next
// announcements; paths it already holds are kept even above the new limit
// (the daemon decides whether to reset the session).
func (r *RIB) SetMaxPrefixes(id PeerID, n int) error {
	r.mu.RLock()
	ps := r.peers[id]
	r.mu.RUnlock()
	if ps == nil {
		return fmt.Errorf("%w %d", ErrUnknownPeer, id)
	}
	ps.limit.Store(int64(max(n, 0)))
	return nil
}

// lockPeer returns the peer with its mutex held.
func (r *RIB) lockPeer(id PeerID) (*peerState, error) {
	r.mu.RLock()
	ps := r.peers[id]
	r.mu.RUnlock()
	if ps == nil {
		return nil, fmt.Errorf("%w %d", ErrUnknownPeer, id)
	}
	ps.mu.Lock()
	if ps.removed {
		ps.mu.Unlock()
		return nil, fmt.Errorf("%w %d", ErrUnknownPeer, id)
	}
	return ps, nil
}

// RemovePeer drops a peer and, in one sweep over the Loc-RIB, every path it
// announced. The prefixes whose ECMP set changed (possibly every prefix in
// the RIB) are handed to emit in batches, from the calling goroutine with
// no RIB lock but the peer's held (so emit must not call the RIB for that
// peer); the batch is reused after emit returns. A nil emit discards them.
func (r *RIB) RemovePeer(id PeerID, emit func(*Changes)) error {
	ps, err := r.lockPeer(id)
	if err != nil {
		return err
	}
	defer ps.mu.Unlock()
	ps.removed = true
	var batch *Changes
	if emit != nil {
		batch = &ps.batch
	}
	o := ps.begin(batch)
	defer o.finish()
	r.inBatches(batch, emit, func(sh *shard[key4]) { sh.sweep(o) }, func(sh *shard[key6]) { sh.sweep(o) })
	ps.batch = Changes{} // a large batch is not kept for a peer that is gone
	r.mu.Lock()
	delete(r.peers, id)
	r.freeSlots = append(r.freeSlots, ps.slot)
	r.mu.Unlock()
	return nil
}

// inBatches calls visit4 and visit6 on every shard of each family, one
// after the other, and hands the Changes they add to batch over to emit
// whenever removeBatch have gathered, and the rest at the end. batch is nil
// when emit is.
func (r *RIB) inBatches(batch *Changes, emit func(*Changes), visit4 func(*shard[key4]), visit6 func(*shard[key6])) {
	flush := func(least int) {
		if batch != nil && len(batch.List) >= max(least, 1) {
			emit(batch)
			batch.Reset()
		}
	}
	for i := range r.v4.shards {
		visit4(&r.v4.shards[i])
		flush(removeBatch)
	}
	for i := range r.v6.shards {
		visit6(&r.v6.shards[i])
		flush(removeBatch)
	}
	flush(1)
}

// removeBatch is the number of Changes RemovePeer gathers before emitting:
// big enough for large netlink batches, small enough not to hold a copy of
// the RIB.
const removeBatch = 4096

// Update applies one UPDATE's worth of routes from a peer: first the
// withdrawals, then the announcements, which all share attrs and nextHop
// (attrs may be nil when announce is empty). It appends the prefixes whose
// ECMP set changed to out (which may be nil).
//
// The attributes are looked up once for the whole call and copied only when
// first seen: attrs and the NLRI slices may be reused by the caller as soon
// as Update returns. NEXT_HOP and the MP attributes in attrs are ignored:
// nextHop is the next hop. Announcing a prefix the peer already announced
// (with the same ADD-PATH identifier) replaces its path.
//
// An announcement that would give the peer more paths than its
// Peer.MaxPrefixes is refused, and Update returns ErrMaxPrefixes at once:
// the withdrawals and the announcements before it are applied (and in out),
// the rest of the UPDATE is not, so the peer never holds more than its
// limit. The session is expected to be reset, and RemovePeer to follow.
func (r *RIB) Update(id PeerID, fam wire.Family, attrs *wire.Attrs, nextHop netip.Addr, announce, withdraw []wire.NLRI, out *Changes) error {
	ps, err := r.lockPeer(id)
	if err != nil {
		return err
	}
	defer ps.mu.Unlock()
	if err := checkNLRI(fam, announce, withdraw); err != nil {
		return fmt.Errorf("rib: update from peer %d: %w", id, err)
	}
	if len(announce) > 0 && attrs == nil {
		return fmt.Errorf("rib: update from peer %d: %w", id, ErrNoAttrs)
	}
	o := ps.begin(out)
	defer o.finish()
	switch fam {
	case wire.IPv4Unicast:
		apply(&r.v4, o, makeKey4, attrs, nextHop, announce, withdraw)
	case wire.IPv6Unicast:
		apply(&r.v6, o, makeKey6, attrs, nextHop, announce, withdraw)
	}
	if o.full {
		return fmt.Errorf("rib: update from peer %d: %w (%d)", id, ErrMaxPrefixes, ps.limit.Load())
	}
	return nil
}

func checkNLRI(fam wire.Family, lists ...[]wire.NLRI) error {
	var v4 bool
	switch fam {
	case wire.IPv4Unicast:
		v4 = true
	case wire.IPv6Unicast:
	default:
		return fmt.Errorf("%w: %v", ErrFamily, fam)
	}
	for _, l := range lists {
		for _, n := range l {
			if !n.Prefix.IsValid() || n.Prefix.Addr().Is4() != v4 {
				return fmt.Errorf("%w: %v in %v", ErrFamily, n.Prefix, fam)
			}
		}
	}
	return nil
}

func apply[K prefixKey](t *table[K], o *op, key func(netip.Prefix) K, attrs *wire.Attrs, nh netip.Addr, announce, withdraw []wire.NLRI) {
	for _, n := range withdraw {
		pfx := n.Prefix.Masked()
		k := key(pfx)
		t.shard(k).lockedWithdraw(o, k, pfx, n.PathID)
	}
	if len(announce) == 0 {
		return
	}
	// Sources are pinned while in use, so that no path of theirs being
	// replaced can free them halfway.
	src := o.source(attrs, nh, announce[0].PathID)
	defer o.reap()
	defer o.unpin(src)
	for _, n := range announce {
		pfx := n.Prefix.Masked()
		k := key(pfx)
		s := src
		if n.PathID != s.pathID {
			s = o.r.intern.sibling(o.r, src, n.PathID)
			s.refs++
		}
		t.shard(k).lockedAnnounce(o, k, pfx, path{s.id, o.now}, s)
		if s != src {
			o.unpin(s)
		}
		if o.full {
			return
		}
	}
}

// The locked wrappers unlock with defer, so that a panic in one peer's
// call (which the session recovers) does not leave a shard locked.

func (sh *shard[K]) lockedAnnounce(o *op, k K, pfx netip.Prefix, np path, s *source) {
	sh.mu.Lock()
	defer o.reap()
	defer sh.mu.Unlock()
	o.enter(sh.gen)
	sh.announce(o, k, pfx, np, s)
}

func (sh *shard[K]) lockedWithdraw(o *op, k K, pfx netip.Prefix, id uint32) {
	sh.mu.Lock()
	defer o.reap()
	defer sh.mu.Unlock()
	o.enter(sh.gen)
	sh.withdraw(o, k, pfx, id)
}

// enter sets the generation of next-hop verdicts o works in: the locked
// shard's.
func (o *op) enter(gen uint8) {
	o.gen = gen
	o.ord.gen = gen
}

// admit reports whether o's peer may hold one more path, and notes when it
// may not.
func (o *op) admit() bool {
	if lim := o.ps.limit.Load(); lim > 0 && o.ps.received.Load() >= lim {
		o.full = true
		return false
	}
	return true
}

// begin readies the peer's op for a call. The caller holds ps.mu.
func (ps *peerState) begin(out *Changes) *op {
	o := &ps.op
	o.out = out
	o.now = o.r.clock()
	o.full = false
	return o
}

// finish drops what the call's scratch space still points to.
func (o *op) finish() {
	o.out = nil
	clear(o.single[:])
	o.pbuf = pair{}
	clear(o.old[:cap(o.old)])
}

// clock is the current time in whole seconds since the RIB's epoch.
func (r *RIB) clock() uint32 {
	d := r.cfg.Now().Sub(r.epoch)
	if d < 0 {
		return 0
	}
	return uint32(min(d/time.Second, ageMask)) // 68 years
}

// source returns the pinned source of the call's attributes, next hop and
// path ID.
func (o *op) source(attrs *wire.Attrs, nh netip.Addr, id uint32) *source {
	ps := o.ps
	ps.key = appendAttrKey(ps.key[:0], attrs, o.r.keepsUnknown(attrs))
	src := ps.last
	if src == nil || src.nextHop != nh || src.pathID != id || src.set.key != string(ps.key) {
		src = o.r.intern.acquire(o.r, ps, &ps.key, attrs, nh, id)
		ps.last = src
	}
	src.refs++
	return src
}

// src returns the source of a path in the Loc-RIB.
func (o *op) src(p path) *source { return o.r.intern.srcs.get(p.src) }

// ref and unref count the paths of one of the calling peer's sources. The
// last unref queues the source for reap, which frees it once the prefix's
// change has been recorded (that still reads it) and its shard unlocked.
func (o *op) ref(s *source) { s.refs++ }

func (o *op) unref(p path) { o.unpin(o.src(p)) }

func (o *op) unpin(s *source) {
	if s.refs--; s.refs == 0 {
		o.dead = append(o.dead, s)
	}
}

func (o *op) reap() {
	for i, s := range o.dead {
		if s.refs == 0 {
			if o.ps.last == s {
				o.ps.last = nil
			}
			o.r.intern.release(s)
		}
		o.dead[i] = nil
	}
	o.dead = o.dead[:0]
}

// ecmp1 is the ECMP set of a prefix whose only path is p, held in o's
// scratch slot i (0 or 1: an old and a new set may be needed at once).
func (o *op) ecmp1(i int, p path) []path {
	if !o.src(p).usable(o.gen) {
		return nil
	}
	o.single[i] = p
	return o.single[i : i+1]
}

// find returns the index of the path of peer ps with path ID id, or -1.
func (o *op) find(paths []path, ps *peerState, id uint32) int {
	for i, p := range paths {
		if s := o.src(p); s.peer == ps && s.pathID == id {
			return i
		}
	}
	return -1
}
