package fib

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// A peer that goes away takes every route through its gateway with it: a
// million deletes, one kernel message each (about 4 µs apiece here). In
// nexthop mode those routes all point at the gateway's single object, and
// deleting the object makes the kernel drop every route through it in one
// walk of its table, a million in about 0.6 s and with no notification per
// route. So deletes of routes through a single object are deferred when they
// come in bulk: the routes leave the desired state at once, but the kernel
// routes stay while the object is still referenced, and once every
// reference left is a deferred route the object is deleted instead. Deletes
// that do not empty their object (a peer withdrawing part of its routes)
// are written one by one after a quiet moment (settle), so no route is
// left behind, only late.
const (
	// deferMin is how many deletes through one object a chunk must carry
	// before they are deferred: a single withdrawal is written at once.
	deferMin = 64
	// settleQuiet is how long no Apply must have touched an object's
	// deferred deletes before they are written one by one; settleMax bounds
	// the wait under a steady stream of changes.
	settleQuiet = 100 * time.Millisecond
	settleMax   = time.Second
	// settleHeld bounds the wait while a Hold is outstanding, in case its
	// release never comes.
	settleHeld = 30 * time.Second
)

// Hold tells the FIB that more deletes are coming through the objects of
// the ones it is given now, say while a departed peer's routes are swept:
// deferred deletes are not settled one by one until every Hold is released
// (the returned func; calling it again does nothing), only when their
// object empties. A loaded machine can pause a sweep longer than the quiet
// time, and settling then would delete most of a million routes one by one.
func (f *FIB) Hold() (release func()) {
	f.mu.Lock()
	f.holds++
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			f.holds--
			f.mu.Unlock()
			select {
			case f.kick <- struct{}{}:
			default:
			}
		})
	}
}

// deferredSet is the kernel routes through one single object that are no
// longer desired but not deleted yet; each holds a reference to the object.
type deferredSet struct {
	v4           []uint64 // v4Key
	v6           []netip.Prefix
	since, touch time.Time
}

func (d *deferredSet) len() int { return len(d.v4) + len(d.v6) }

// deferDeletes marks the planned deletes of the current chunk that go
// through a single nexthop object, when enough of them do (or some already
// wait, or a Hold is out): they are not sent, and keep their reference to
// the object.
func (f *FIB) deferDeletes(now time.Time) {
	if !f.useNH {
		return
	}
	p := &f.plan
	if p.counts == nil {
		p.counts = make(map[uint32]int)
	}
	clear(p.counts)
	for i := range p.ops {
		if o := &p.ops[i]; f.deferrable(o) {
			p.counts[o.old]++
		}
	}
	for i := range p.ops {
		o := &p.ops[i]
		if !f.deferrable(o) {
			continue
		}
		// While a Hold is out, more deletes are known to come: even a
		// chunk's first few wait for the object to empty.
		d := f.deferred[o.old]
		if d == nil && p.counts[o.old] < deferMin && f.holds == 0 {
			continue
		}
		if d == nil {
			if f.deferred == nil {
				f.deferred = make(map[uint32]*deferredSet)
			}
			d = &deferredSet{since: now}
			f.deferred[o.old] = d
		}
		d.touch = now
		if o.prefix.Addr().Is4() {
			d.v4 = append(d.v4, v4Key(o.prefix))
		} else {
			d.v6 = append(d.v6, o.prefix)
		}
		o.done, o.deferred = true, true
	}
}

// deferrable: a delete of a desired route through a single object.
func (f *FIB) deferrable(o *op) bool {
	if !o.del || o.set != 0 || o.done || o.old == 0 || o.oldKey {
		return false
	}
	obj := f.sets.objs[o.old]
	return obj != nil && !obj.group()
}

// flushDeferred deletes every object whose references are all deferred
// deletes: the kernel drops the routes through it.
func (f *FIB) flushDeferred(ctx context.Context) error {
	for id, d := range f.deferred {
		if obj := f.sets.objs[id]; obj != nil && obj.refs > d.len() {
			continue
		}
		if err := f.dropDeferred(ctx, id, d, true); err != nil {
			return err
		}
	}
	return nil
}

// settle writes the held-back changes and deferred deletes that waited
// long enough (all of them with force): deletes one by one, or by deleting
// their object when nothing else uses it. It returns when the next ones
// will be due (zero: none left). Moves go first, and a failure of one
// kind does not keep the other waiting: each was reported done.
func (f *FIB) settle(ctx context.Context, now time.Time, force bool) (time.Time, error) {
	next, movesErr := f.settleMoves(ctx, now, force)
	var errs []error
	for id, d := range f.deferred {
		if due := dueAt(d.since, d.touch, f.holds > 0); !force && now.Before(due) {
			earlier(&next, due)
			continue
		}
		obj := f.sets.objs[id]
		if err := f.dropDeferred(ctx, id, d, obj == nil || obj.refs <= d.len()); err != nil {
			errs = append(errs, err)
			break // the connection failed: the rest wait for the next call
		}
	}
	if len(f.extras) > 0 {
		if _, err := f.flush(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		earlier(&next, now.Add(settleQuiet)) // try again, not at once
	}
	return next, errors.Join(append([]error{movesErr}, errs...)...)
}

// dueAt is when deferred work first touched at since and last at touch is
// settled: a quiet moment after the last touch, at most settleMax after
// the first, but not before settleHeld while a Hold is out (released holds
// kick Maintain, which looks again).
func dueAt(since, touch time.Time, held bool) time.Time {
	due := touch.Add(settleQuiet)
	if cap := since.Add(settleMax); cap.Before(due) {
		due = cap
	}
	if held {
		if h := since.Add(settleHeld); h.After(due) {
			due = h
		}
	}
	return due
}

// dropDeferred ends the deferral of id's deletes: with whole, by deleting
// the object (nothing else uses it); otherwise the routes not desired again
// since join the extras, which flush deletes one by one. Either way the
// deferred references are released.
func (f *FIB) dropDeferred(ctx context.Context, id uint32, d *deferredSet, whole bool) error {
	delete(f.deferred, id)
	if !whole {
		for _, k := range d.v4 {
			if p := fromV4Key(k); !f.desired(p) {
				f.extras = append(f.extras, p)
			}
		}
		for _, p := range d.v6 {
			if !f.desired(p) {
				f.extras = append(f.extras, p)
			}
		}
	}
	var gone []uint32
	for range d.len() {
		gone = f.sets.release(id, gone)
	}
	if len(gone) == 0 {
		return nil
	}
	if whole {
		f.stats.Flushed += uint64(d.len())
	}
	err := f.sendBatch(ctx, len(gone), func(i int, seq uint32) bool {
		f.buf.delNexthop(seq, 0, gone[i])
		return true
	}, func(i int, errno unix.Errno, msg string) {
		if errno != 0 && errno != unix.ENOENT {
			f.log.Warn("fib: nexthop not deleted", "id", gone[i], "err", errno, "msg", msg)
			f.resync = true
		}
	})
	if err != nil {
		// The routes through it may stay: a full comparison finds them.
		f.resync = true
	}
	return err
}

func (f *FIB) desired(p netip.Prefix) bool {
	_, ok := f.routes.get(p)
	return ok
}

// kickMaintain wakes Maintain when deferred deletes wait to be settled.
func (f *FIB) kickMaintain() {
	if len(f.deferred) == 0 && len(f.moves) == 0 {
		return
	}
	select {
	case f.kick <- struct{}{}:
	default:
	}
}
