package router

import (
	"context"
	"math"
	"math/bits"
	"net/netip"
	"slices"
	"sync"

	"github.com/bgplb/bgplb/bgp/rib"
	"github.com/bgplb/bgplb/fib"
)

// toFIB turns a Loc-RIB change into the kernel route it asks for: the next
// hops of the ECMP set (or of the best path alone without ECMP), weighted by
// the link-bandwidth community when every member carries a usable one, so a
// router can share load by pods rather than by nodes. Paths through the same
// next hop (ADD-PATH) are merged, adding their weights. The next hops are
// appended to arena, so a burst of changes shares one allocation; the
// returned change's next hops alias it.
func toFIB(arena []fib.NextHop, c rib.Change, ecmp bool) (fib.Change, []fib.NextHop) {
	out := fib.Change{Prefix: c.Prefix}
	paths := c.Paths
	if !ecmp && len(paths) > 1 {
		paths = paths[:1]
	}
	weighted := len(paths) > 1
	var top float32
	for _, p := range paths {
		if !usableBandwidth(p.LinkBandwidth) {
			weighted = false
		}
		top = max(top, p.LinkBandwidth)
	}
	start := len(arena)
	for _, p := range paths {
		if !p.NextHop.IsValid() {
			continue
		}
		var w uint32
		if weighted {
			w = pathWeight(p.LinkBandwidth, top)
		}
		i, found := slices.BinarySearchFunc(arena[start:], p.NextHop, func(h fib.NextHop, a netip.Addr) int { return h.Addr.Compare(a) })
		if found {
			arena[start+i].Weight = satAdd(arena[start+i].Weight, w)
			continue
		}
		arena = slices.Insert(arena, start+i, fib.NextHop{Addr: p.NextHop, Weight: w})
	}
	if len(arena) > start {
		out.NextHops = arena[start:len(arena):len(arena)]
	}
	return out, arena
}

// weightScale bounds the weight of the ECMP set's largest bandwidth, which
// lands in [weightScale/2, weightScale]: far finer than the kernel's 1..256
// (fib scales it down), and room for 4,096 merged paths of it before the
// sum saturates.
const weightScale = 1 << 20

// usableBandwidth: a weight can be taken from bw, a finite positive rate.
// NaN, infinities, zero and negatives mean the member is unweighted.
func usableBandwidth(bw float32) bool {
	return bw > 0 && !math.IsInf(float64(bw), 1)
}

// pathWeight is bw scaled by the power of two that brings top (the set's
// largest bandwidth) just under weightScale: ratios survive whatever the
// unit, from fractions of a byte per second to terabits, exactly when the
// bandwidths are small multiples of one another (1 and 3 stay 1:3 once fib
// divides by their GCD), and the smallest share is still 1.
func pathWeight(bw, top float32) uint32 {
	_, exp := math.Frexp(float64(top)) // top = frac × 2^exp, frac in [0.5, 1)
	return uint32(max(1, math.Round(math.Ldexp(float64(bw), bits.Len(weightScale)-1-exp))))
}

// satAdd adds weights without wrapping: a sum past the largest uint32
// stays there.
func satAdd(a, b uint32) uint32 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxUint32
}

// fibQueue carries Loc-RIB changes to the FIB writer. Changes to the same
// prefix coalesce (the newest, by rib.Change.Seq, wins), so a burst of
// updates costs one kernel write per prefix. It is bounded: push blocks while
// limit prefixes wait, which slows the sessions down (TCP flow control does
// the rest) instead of growing without bound. Two batches take turns, one
// filling while the writer applies the other, so a steady stream of changes
// allocates nothing.
//
// A push never waits for ever: it gives up when its context ends or when
// the queue is closed, which the daemon does as soon as it stops, before
// the writer is gone and nobody would make room any more.
type fibQueue struct {
	limit int

	mu     sync.Mutex
	index  map[netip.Prefix]int // position of a prefix in cur
	cur    *fibBatch
	wake   chan struct{} // the writer waits here for work
	room   chan struct{} // closed, and replaced, each time the writer takes cur
	closed chan struct{} // closed by close: pushes fail from then on
}

// fibBatch is a set of coalesced changes; seqs[i] is the rib.Change.Seq of
// changes[i], and hops is the arena their next hops live in.
type fibBatch struct {
	changes []fib.Change
	seqs    []uint64
	hops    []fib.NextHop
	// after runs once the changes are applied (see fibQueue.after).
	after []func()
}

func (b *fibBatch) reset() {
	clear(b.changes) // drop references into the old arena
	clear(b.after)
	b.changes, b.seqs, b.hops, b.after = b.changes[:0], b.seqs[:0], b.hops[:0], b.after[:0]
}

// finish runs the batch's after funcs; the writer calls it once the
// changes are applied.
func (b *fibBatch) finish() {
	for _, fn := range b.after {
		fn()
	}
}

func newFIBQueue(limit int) *fibQueue {
	return &fibQueue{limit: limit, index: make(map[netip.Prefix]int), cur: new(fibBatch),
		wake: make(chan struct{}, 1), room: make(chan struct{}), closed: make(chan struct{})}
}

// push queues cs. It returns false, with only part of cs queued, if ctx
// ended or the queue was closed while it waited for room, or the queue was
// closed before.
func (q *fibQueue) push(ctx context.Context, cs []rib.Change, ecmp bool) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.isClosed() {
		return false
	}
	for i := 0; i < len(cs); {
		c := &cs[i]
		if j, ok := q.index[c.Prefix]; ok {
			if c.Seq > q.cur.seqs[j] {
				q.cur.seqs[j] = c.Seq
				q.cur.changes[j], q.cur.hops = toFIB(q.cur.hops, *c, ecmp)
			}
			i++
			continue
		}
		if len(q.cur.changes) >= q.limit {
			if !q.waitRoom(ctx) {
				return false
			}
			// Look c up again: another push may have queued its
			// prefix while the lock was free.
			continue
		}
		var fc fib.Change
		fc, q.cur.hops = toFIB(q.cur.hops, *c, ecmp)
		q.index[c.Prefix] = len(q.cur.changes)
		q.cur.changes = append(q.cur.changes, fc)
		q.cur.seqs = append(q.cur.seqs, c.Seq)
		i++
	}
	q.signal()
	return true
}

// after runs fn once every change pushed so far has been applied (at
// once if the queue is closed: nothing will be).
func (q *fibQueue) after(fn func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.isClosed() {
		fn()
		return
	}
	q.cur.after = append(q.cur.after, fn)
	q.signal()
}

// waitRoom waits, with q.mu released, until the writer takes the queued
// changes; false if ctx ends or the queue is closed first. q.mu is held.
func (q *fibQueue) waitRoom(ctx context.Context) bool {
	if q.isClosed() || ctx.Err() != nil {
		return false
	}
	q.signal()
	room := q.room
	q.mu.Unlock()
	defer q.mu.Lock()
	select {
	case <-room:
		return true
	case <-ctx.Done():
	case <-q.closed:
	}
	return false
}

func (q *fibQueue) isClosed() bool {
	select {
	case <-q.closed:
		return true
	default:
		return false
	}
}

// close makes every push, waiting or to come, fail at once. The daemon
// closes the queue when it stops: routes stay in the kernel for the next
// start, so nothing still queued needs to reach it.
func (q *fibQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.isClosed() {
		close(q.closed)
	}
}

// signal wakes the writer; q.mu is held.
func (q *fibQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take hands the writer every queued change, in exchange for the batch it
// finished with (nil the first time), which becomes the next to fill.
func (q *fibQueue) take(done *fibBatch) *fibBatch {
	if done == nil {
		done = new(fibBatch)
	}
	done.reset()
	q.mu.Lock()
	defer q.mu.Unlock()
	full := q.cur
	q.cur = done
	// clear keeps the map's memory and leaves no tombstones behind, so a
	// queue that fills and drains for ever stays the size of its limit.
	clear(q.index)
	close(q.room)
	q.room = make(chan struct{})
	return full
}

func (q *fibQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.cur.changes)
}
