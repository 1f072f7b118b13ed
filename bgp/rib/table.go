package rib

import (
	"encoding/binary"
	"maps"
	"net/netip"
	"slices"
	"sync"
)

// path is one route of one peer for one prefix: 8 bytes and no pointer, so
// that the Loc-RIB maps are never scanned by the garbage collector. The
// source says everything else (peer, attributes, next hop, path ID).
type path struct {
	src srcID
	// meta holds the seconds from the RIB's epoch to the path's last
	// change, and in its top bit, for prefixes with several paths,
	// membership of the ECMP set.
	meta uint32
}

const (
	ecmpBit = 1 << 31
	ageMask = ecmpBit - 1
)

func (p path) since() uint32 { return p.meta & ageMask }
func (p path) inECMP() bool  { return p.meta&ecmpBit != 0 }

// ecmpLen is the size of the ECMP set of ranked paths.
func ecmpLen(ps []path) int {
	n := 0
	for n < len(ps) && ps[n].inECMP() {
		n++
	}
	return n
}

// prefixKey is a map key for the prefixes of one family: a compact value
// type (an IPv4 prefix fits a uint64) that spreads over the shards.
type prefixKey interface {
	comparable
	shardHash() uint64
	prefix() netip.Prefix
}

type key4 uint64

func makeKey4(p netip.Prefix) key4 {
	a := p.Addr().As4()
	return key4(uint64(binary.BigEndian.Uint32(a[:]))<<8 | uint64(p.Bits()))
}

// shardHash mixes all of k's bits (a splitmix64 finalizer). It must not be
// plain Fibonacci hashing, which the FIB's prefix map uses for its slots: a
// peer-down sweep goes shard by shard, and the FIB would then delete its
// entries in slot order, packing what remains into one long probe run.
func (k key4) shardHash() uint64 { return mix64(uint64(k)) }

// mix64 is the splitmix64 finalizer: every bit of x moves every bit of the
// result.
func mix64(x uint64) uint64 {
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

func (k key4) prefix() netip.Prefix {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], uint32(k>>8))
	return netip.PrefixFrom(netip.AddrFrom4(a), int(k&0xff))
}

type key6 struct {
	hi, lo uint64
	bits   uint8
}

func makeKey6(p netip.Prefix) key6 {
	a := p.Addr().As16()
	return key6{binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:]), uint8(p.Bits())}
}

func (k key6) shardHash() uint64 {
	return (k.hi*0x9e3779b97f4a7c15^k.lo)*0xbf58476d1ce4e5b9 ^ uint64(k.bits)*0x94d049bb133111eb
}

func (k key6) prefix() netip.Prefix {
	var a [16]byte
	binary.BigEndian.PutUint64(a[:8], k.hi)
	binary.BigEndian.PutUint64(a[8:], k.lo)
	return netip.PrefixFrom(netip.AddrFrom16(a), int(k.bits))
}

// shardBits sets the number of Loc-RIB shards per family: enough that peers
// updating in parallel rarely meet on one lock, few enough that a sweep
// over all of them stays cheap.
const shardBits = 6

// table is the Loc-RIB of one address family, sharded by prefix hash.
type table[K prefixKey] struct {
	shards [1 << shardBits]shard[K]
}

func (t *table[K]) shard(k K) *shard[K] { return &t.shards[k.shardHash()>>(64-shardBits)] }

// peerCounts are one peer's paths in one shard.
type peerCounts struct {
	received, accepted, selected int32
}

// shard is a slice of one family's Loc-RIB. Everything in it is guarded by
// mu, which is held for one prefix at a time (or one shard's worth of a
// peer-down sweep), never across shards.
//
// Most prefixes have one path: those live in one, 16 bytes a slot with no
// allocation of their own. Prefixes with two paths (a service on two nodes,
// two upstreams) live in two, also without an allocation; with more, in
// many. The paths of two and many are kept ranked (orderer.order).
type shard[K prefixKey] struct {
	mu     sync.Mutex
	one    flatMap[K, path]
	two    flatMap[K, pair]
	many   map[K][]path
	counts []peerCounts // by peer slot
	seq    uint64       // last Change.Seq given out for this shard
	gen    uint8        // which of source.reach the shard reads

	// High-water marks since the maps were last rebuilt: Go maps never
	// shrink, so a map that fell well below its mark is copied into a
	// smaller one, or a million withdrawn routes would stay resident.
	oneHigh, twoHigh, manyHigh int

	_ [64]byte // keep neighbouring shards' locks off one cache line
}

// Maps are rebuilt when they fall to a quarter of a high-water mark of at
// least shrinkFloor, or empty from one of at least emptyFloor: smaller ones
// are not worth the churn of a flapping peer.
const (
	shrinkFloor = 1024
	emptyFloor  = 128
)

func (sh *shard[K]) init() {
	sh.many = make(map[K][]path)
}

func (sh *shard[K]) maybeShrink() {
	if shrinks(sh.one.len(), sh.oneHigh) {
		sh.one.shrink()
		sh.oneHigh = sh.one.len()
	}
	if shrinks(sh.two.len(), sh.twoHigh) {
		sh.two.shrink()
		sh.twoHigh = sh.two.len()
	}
	if shrinks(len(sh.many), sh.manyHigh) {
		sh.many = resized(sh.many)
		sh.manyHigh = len(sh.many)
	}
}

// shrinks says when a map of n entries that held up to high is rebuilt.
// Each rebuild is paid for by the deletions before it.
func shrinks(n, high int) bool {
	return n < high/4 && (high >= shrinkFloor || n == 0 && high >= emptyFloor)
}

// resized copies m into a map sized for what it holds. (maps.Clone would
// keep m's capacity.)
func resized[K comparable, V any](m map[K]V) map[K]V {
	n := make(map[K]V, len(m))
	maps.Insert(n, maps.All(m))
	return n
}

func (sh *shard[K]) setOne(k K, p path) {
	p.meta &= ageMask
	sh.one.set(k, p)
	sh.oneHigh = max(sh.oneHigh, sh.one.len())
}

func (sh *shard[K]) setMany(k K, ps []path) {
	sh.many[k] = ps
	sh.manyHigh = max(sh.manyHigh, len(sh.many))
}

func (sh *shard[K]) counter(s *source) *peerCounts {
	slot := s.peer.slot
	if slot >= len(sh.counts) {
		sh.counts = slices.Grow(sh.counts, slot+1-len(sh.counts))[:slot+1]
	}
	return &sh.counts[slot]
}

// add and remove keep the received/accepted counters of s's peer.
func (sh *shard[K]) add(s *source) {
	c := sh.counter(s)
	c.received++
	s.peer.received.Add(1)
	if s.usable(sh.gen) {
		c.accepted++
		s.peer.accepted.Add(1)
	}
}

func (sh *shard[K]) remove(s *source) {
	c := sh.counter(s)
	c.received--
	s.peer.received.Add(-1)
	if s.usable(sh.gen) {
		c.accepted--
		s.peer.accepted.Add(-1)
	}
}

// settle records a Change when the ECMP set of pfx went from old to now
// (paths are the same route exactly when their sources are the same), and
// moves the selected counters of the paths that left or joined it.
func (sh *shard[K]) settle(o *op, pfx netip.Prefix, old, now []path) {
	same := func(a, b path) bool { return a.src == b.src }
	if slices.EqualFunc(old, now, same) {
		return
	}
	for _, p := range old {
		if !slices.ContainsFunc(now, func(q path) bool { return same(p, q) }) {
			sh.counter(o.src(p)).selected--
		}
	}
	for _, p := range now {
		if !slices.ContainsFunc(old, func(q path) bool { return same(p, q) }) {
			sh.counter(o.src(p)).selected++
		}
	}
	sh.seq++
	o.out.add(o.r, pfx, sh.seq, now, sh.gen)
}

// multi returns the ranked paths of k when it has two or more: a pair
// copied into buf, or the slice many holds.
func (sh *shard[K]) multi(k K, buf *pair) ([]path, bool) {
	if pr, ok := sh.two.get(k); ok {
		*buf = pr
		return buf[:], true
	}
	ps, ok := sh.many[k]
	return ps, ok
}

// placeOf is where a prefix with n paths is filed: nowhere, one, two or
// many.
func placeOf(n int) int { return min(n, 3) }

// file stores the ranked paths of k where their number says, taking k out
// of where it was filed with from paths (0 when it is filed nowhere now).
func (sh *shard[K]) file(k K, paths []path, from int) {
	if to := placeOf(len(paths)); to != placeOf(from) {
		switch placeOf(from) {
		case 1:
			sh.one.del(k)
		case 2:
			sh.two.del(k)
		case 3:
			delete(sh.many, k)
		}
	}
	switch len(paths) {
	case 0:
	case 1:
		sh.setOne(k, paths[0])
	case 2:
		sh.two.set(k, pair{paths[0], paths[1]})
		sh.twoHigh = max(sh.twoHigh, sh.two.len())
	default:
		sh.setMany(k, paths)
	}
}

// announce stores np, a path of source s (one of o's peer's), for prefix k.
func (sh *shard[K]) announce(o *op, k K, pfx netip.Prefix, np path, s *source) {
	if p, ok := sh.one.get(k); ok {
		if ps := o.src(p); ps.peer != s.peer || ps.pathID != s.pathID {
			// A second path: the prefix moves to two.
			if !o.admit() {
				return
			}
			o.ref(s)
			sh.add(s)
			o.pbuf = pair{p, np}
			paths := o.pbuf[:]
			o.ord.order(paths)
			sh.file(k, paths, 1)
			sh.settle(o, pfx, o.ecmp1(0, p), paths[:ecmpLen(paths)])
			sh.maybeShrink()
			return
		} else if p.src == np.src {
			return // the same route again: nothing changed, not even its age
		}
		sh.one.set(k, np)
		o.ref(s)
		sh.add(s)
		sh.remove(o.src(p))
		o.unref(p)
		sh.settle(o, pfx, o.ecmp1(0, p), o.ecmp1(1, np))
		return
	}
	if paths, ok := sh.multi(k, &o.pbuf); ok {
		from := len(paths)
		o.old = append(o.old[:0], paths[:ecmpLen(paths)]...)
		if i := o.find(paths, s.peer, s.pathID); i < 0 {
			if !o.admit() {
				return
			}
			paths = append(paths, np)
		} else {
			p := paths[i]
			if p.src == np.src {
				return
			}
			paths[i] = np
			sh.remove(o.src(p))
			o.unref(p)
		}
		o.ref(s)
		sh.add(s)
		o.ord.order(paths)
		sh.file(k, paths, from)
		sh.settle(o, pfx, o.old, paths[:ecmpLen(paths)])
		sh.maybeShrink()
		return
	}
	if !o.admit() {
		return
	}
	sh.setOne(k, np)
	o.ref(s)
	sh.add(s)
	sh.settle(o, pfx, nil, o.ecmp1(1, np))
}

// withdraw removes the path of o's peer with identifier id from prefix k.
func (sh *shard[K]) withdraw(o *op, k K, pfx netip.Prefix, id uint32) {
	if p, ok := sh.one.get(k); ok {
		if s := o.src(p); s.peer != o.ps || s.pathID != id {
			return
		}
		sh.one.del(k)
		sh.remove(o.src(p))
		o.unref(p)
		sh.settle(o, pfx, o.ecmp1(0, p), nil)
		sh.maybeShrink()
		return
	}
	paths, ok := sh.multi(k, &o.pbuf)
	if !ok {
		return
	}
	i := o.find(paths, o.ps, id)
	if i < 0 {
		return
	}
	o.old = append(o.old[:0], paths[:ecmpLen(paths)]...)
	from := len(paths)
	p := paths[i]
	paths = slices.Delete(paths, i, i+1)
	sh.remove(o.src(p))
	o.unref(p)
	sh.reshape(o, k, pfx, paths, from)
	sh.maybeShrink()
}

// reshape re-ranks paths after some left the prefix (filed with from
// paths, 0 if no longer filed), files it again by how many remain, and
// records the change. It leaves the tables' sizes alone, as a sweep may be
// ranging over them.
func (sh *shard[K]) reshape(o *op, k K, pfx netip.Prefix, paths []path, from int) {
	if len(paths) > 1 {
		o.ord.order(paths)
	}
	sh.file(k, paths, from)
	switch len(paths) {
	case 0:
		sh.settle(o, pfx, o.old, nil)
	case 1:
		sh.settle(o, pfx, o.old, o.ecmp1(1, paths[0]))
	default:
		sh.settle(o, pfx, o.old, paths[:ecmpLen(paths)])
	}
}

// sweep removes every path of o's peer from the shard.
func (sh *shard[K]) sweep(o *op) {
	sh.mu.Lock()
	defer o.reap()
	defer sh.mu.Unlock()
	if slot := o.ps.slot; slot >= len(sh.counts) || sh.counts[slot].received == 0 {
		return
	}
	o.enter(sh.gen)
	mine := func(p path) bool { return o.src(p).peer == o.ps }
	sh.one.deleteIf(func(_ K, p path) bool { return mine(p) }, func(k K, p path) {
		sh.remove(o.src(p))
		o.unref(p)
		sh.settle(o, k.prefix(), o.ecmp1(0, p), nil)
	})
	// mine is asked again about entries a deletion moved: its answer only
	// depends on the path.
	drop := func(p path) bool {
		if !mine(p) {
			return false
		}
		sh.remove(o.src(p))
		o.unref(p)
		return true
	}
	sh.two.deleteIf(func(_ K, pr pair) bool { return mine(pr[0]) || mine(pr[1]) }, func(k K, pr pair) {
		o.old = append(o.old[:0], pr[:ecmpLen(pr[:])]...)
		o.pbuf = pr
		sh.reshape(o, k, k.prefix(), slices.DeleteFunc(o.pbuf[:], drop), 0)
	})
	for k, paths := range sh.many {
		if !slices.ContainsFunc(paths, mine) {
			continue
		}
		o.old = append(o.old[:0], paths[:ecmpLen(paths)]...)
		from := len(paths)
		sh.reshape(o, k, k.prefix(), slices.DeleteFunc(paths, drop), from)
	}
	sh.maybeShrink()
}
