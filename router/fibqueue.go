package router

import (
	"context"
	"math"
	"net/netip"
	"slices"
	"sync"

	"github.com/bgplb/bgplb/bgp/rib"
	"github.com/bgplb/bgplb/fib"
)

// toFIB turns a Loc-RIB change into the kernel route it asks for: the next
// hops of the ECMP set (or of the best path alone without ECMP), weighted by
// the link-bandwidth community when every member carries one, so a router can
// share load by pods rather than by nodes. Paths through the same next hop
// (ADD-PATH) are merged, adding their weights. The next hops are appended to
// arena, so a burst of changes shares one allocation; the returned change's
// next hops alias it.
func toFIB(arena []fib.NextHop, c rib.Change, ecmp bool) (fib.Change, []fib.NextHop) {
	out := fib.Change{Prefix: c.Prefix}
	paths := c.Paths
	if !ecmp && len(paths) > 1 {
		paths = paths[:1]
	}
	weighted := len(paths) > 1
	for _, p := range paths {
		if !(p.LinkBandwidth > 0) {
			weighted = false
		}
	}
	start := len(arena)
	for _, p := range paths {
		if !p.NextHop.IsValid() {
			continue
		}
		var w uint32
		if weighted {
			w = uint32(max(1, math.Round(min(float64(p.LinkBandwidth), math.MaxUint32))))
		}
		i, found := slices.BinarySearchFunc(arena[start:], p.NextHop, func(h fib.NextHop, a netip.Addr) int { return h.Addr.Compare(a) })
		if found {
			arena[start+i].Weight += w
			continue
		}
		arena = slices.Insert(arena, start+i, fib.NextHop{Addr: p.NextHop, Weight: w})
	}
	if len(arena) > start {
		out.NextHops = arena[start:len(arena):len(arena)]
	}
	return out, arena
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
}

func (b *fibBatch) reset() {
	clear(b.changes) // drop references into the old arena
	b.changes, b.seqs, b.hops = b.changes[:0], b.seqs[:0], b.hops[:0]
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
