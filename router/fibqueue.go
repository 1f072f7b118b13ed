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
// (ADD-PATH) are merged, adding their weights.
func toFIB(c rib.Change, ecmp bool) fib.Change {
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
	for _, p := range paths {
		if !p.NextHop.IsValid() {
			continue
		}
		var w uint32
		if weighted {
			w = uint32(max(1, math.Round(min(float64(p.LinkBandwidth), math.MaxUint32))))
		}
		i, found := slices.BinarySearchFunc(out.NextHops, p.NextHop, func(h fib.NextHop, a netip.Addr) int { return h.Addr.Compare(a) })
		if found {
			out.NextHops[i].Weight += w
			continue
		}
		out.NextHops = slices.Insert(out.NextHops, i, fib.NextHop{Addr: p.NextHop, Weight: w})
	}
	return out
}

// fibQueue carries Loc-RIB changes to the FIB writer. Changes to the same
// prefix coalesce (the newest, by rib.Change.Seq, wins), so a burst of
// updates costs one kernel write per prefix. It is bounded: push blocks while
// limit prefixes wait, which slows the sessions down (TCP flow control does
// the rest) instead of growing without bound.
type fibQueue struct {
	limit int

	mu      sync.Mutex
	pending map[netip.Prefix]queued
	wake    chan struct{} // the writer waits here for work
	room    *sync.Cond    // pushers wait here for space
}

type queued struct {
	seq uint64
	c   fib.Change
}

func newFIBQueue(limit int) *fibQueue {
	q := &fibQueue{limit: limit, pending: make(map[netip.Prefix]queued), wake: make(chan struct{}, 1)}
	q.room = sync.NewCond(&q.mu)
	return q
}

// push queues cs. It returns false if ctx ended while it waited for room.
func (q *fibQueue) push(ctx context.Context, cs []rib.Change, ecmp bool) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, c := range cs {
		if old, ok := q.pending[c.Prefix]; ok {
			if c.Seq > old.seq {
				q.pending[c.Prefix] = queued{c.Seq, toFIB(c, ecmp)}
			}
			continue
		}
		for len(q.pending) >= q.limit {
			if ctx.Err() != nil {
				return false
			}
			q.signal()
			q.room.Wait()
		}
		q.pending[c.Prefix] = queued{c.Seq, toFIB(c, ecmp)}
	}
	q.signal()
	return true
}

// signal wakes the writer; q.mu is held.
func (q *fibQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take removes up to max queued changes and appends them to dst.
func (q *fibQueue) take(dst []fib.Change, max int) []fib.Change {
	q.mu.Lock()
	defer q.mu.Unlock()
	for p, e := range q.pending {
		if max == 0 {
			break
		}
		dst = append(dst, e.c)
		delete(q.pending, p)
		max--
	}
	q.room.Broadcast()
	return dst
}

// release wakes every blocked pusher, so they see their context ended.
func (q *fibQueue) release() {
	q.mu.Lock()
	q.room.Broadcast()
	q.mu.Unlock()
}

func (q *fibQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}
