package fib

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// op is one kernel route write: the route of prefix as the desired state
// has it now (through object nhID, or inline hops), or a delete.
type op struct {
	prefix  netip.Prefix
	set     uint32     // desired hop set (0: the prefix is not desired)
	nhID    uint32     // nexthop mode: the object the route uses
	hops    []NextHop  // inline: the usable next hops
	oifs    []int32    // inline: their interfaces, when a gateway is zoned
	del     bool       // delete the kernel route
	oldKey  bool       // delete it under the previous run's key
	old     uint32     // the set the prefix's desired route had (0: none)
	change  int        // index of the Change in Apply's input; -1 for a repair
	cause   error      // why next hops were left out, or why a desired route is deleted
	badGW   netip.Addr // a next hop left out for its shape
	had     bool       // the prefix had a desired route before the change
	refused bool       // the change was refused as it stands: nothing to write
	done    bool       // the kernel's answer is known
	absent  bool       // a delete found no route
	// deferred: the delete is left to the deletion of the object the route
	// goes through (flushgw.go); the route keeps its reference until then.
	deferred bool
	err      error
}

// planner holds the scratch state of a write, reused from call to call.
type planner struct {
	ops     []op
	arena   []NextHop
	oifs    []int32 // interfaces of the zoned hops in arena
	scratch []NextHop
	created []uint32
	deleted []uint32
	counts  map[uint32]int // deletes per object in the current chunk
	items   []int32        // message k of the current datagram -> item index
	replies []reply        // message k of the current datagram -> its outcome
	offs    []int          // message k of the current datagram -> offset in the buffer
}

func (p *planner) reset() {
	p.ops, p.arena, p.oifs = p.ops[:0], p.arena[:0], p.oifs[:0]
	p.created, p.deleted = p.created[:0], p.deleted[:0]
}

// applyChunk applies a slice of changes: record them as desired (taking
// hop set references), create missing objects, send the routes, then
// release the sets the prefixes used before and delete objects nothing uses
// any more.
func (f *FIB) applyChunk(ctx context.Context, changes []Change) (Result, error) {
	p := &f.plan
	p.reset()
	var res Result
	for i, c := range changes {
		if err := f.desire(c, i); err != nil {
			// Refused before the kernel: reported in change order, no write.
			p.ops = append(p.ops, op{prefix: c.Prefix, change: i, done: true, err: err, refused: true})
		}
	}
	f.deferDeletes(f.now())
	sendErr := f.ensureObjects(ctx, p.created)
	if sendErr == nil {
		f.formOps()
		sendErr = f.sendRoutes(ctx)
	}
	f.commit(changes, sendErr, &res)
	if err := f.releaseSets(ctx); err != nil && sendErr == nil {
		sendErr = err
	}
	if err := f.flushDeferred(ctx); err != nil && sendErr == nil {
		sendErr = err
	}
	return res, sendErr
}

// desire records change c as the desired route of its prefix and plans its
// write. Next hops that cannot be used by shape (another family, loopback)
// are left out; a change with none left removes the desired route and fails.
func (f *FIB) desire(c Change, i int) error {
	p := &f.plan
	pfx := c.Prefix.Masked()
	if !c.Prefix.IsValid() {
		return fmt.Errorf("%w: invalid prefix", ErrInvalidRoute)
	}
	var cause error
	var badGW netip.Addr
	set := uint32(0)
	if !c.Delete() {
		start := len(p.arena)
		p.arena = canonicalHops(p.arena, c.NextHops)
		hops := p.arena[start:len(p.arena):len(p.arena)]
		if err := refusal(pfx, hops); err != nil {
			return err
		}
		hops, badGW, cause = usableShape(pfx, hops)
		if len(hops) > 0 {
			var err error
			if set, p.created, err = f.sets.acquire(hops, p.created); err != nil {
				return err
			}
		}
	}
	var old uint32
	var had bool
	var fl uint8
	if set != 0 {
		old, fl, had = f.routes.swap(pfx, set)
		if fl&flagStale != 0 {
			f.routes.mark(pfx, 0, flagStale)
			f.stale--
		}
	} else {
		old, fl, had = f.routes.take(pfx)
		if fl&flagStale != 0 {
			f.stale--
		}
	}
	if !had {
		old = 0
	}
	if set == 0 && cause != nil && !had {
		// Nothing to delete in the kernel either: we never installed it.
		return cause
	}
	// The same set, not pending: the kernel holds the route as desired (had
	// it changed, a notification or a resync would have marked it), so
	// nothing is written. Peers re-announcing a million routes after a
	// restart cost no kernel work.
	same := had && set != 0 && old == set && fl&flagPending == 0
	p.ops = append(p.ops, op{prefix: pfx, set: set, old: old, del: set == 0, change: i, cause: cause, badGW: badGW, had: had, done: same})
	return nil
}

// refusal is why a change to the canonical hops is refused whole rather
// than installed with the usable ones. planMoves asks too: a change Apply
// refuses must not change a group in place either.
func refusal(pfx netip.Prefix, hops []NextHop) error {
	if len(hops) > MaxNextHops {
		return fmt.Errorf("%w: %v: %d next hops, at most %d", ErrInvalidRoute, pfx, len(hops), MaxNextHops)
	}
	return nil
}

// usableShape drops the next hops the kernel would refuse for their shape
// alone, and names one it dropped and why.
func usableShape(pfx netip.Prefix, hops []NextHop) ([]NextHop, netip.Addr, error) {
	var cause error
	var bad netip.Addr
	n := 0
	for _, h := range hops {
		if err := validateRoute(pfx, []NextHop{h}); err != nil {
			cause, bad = err, h.Addr
			continue
		}
		hops[n] = h
		n++
	}
	if n != len(hops) {
		hops = hops[:n]
		normalizeWeights(hops)
	}
	return hops, bad, cause
}

// formOps fills in how every planned route is written now: through its
// object, or inline with the usable next hops; a route without any usable
// next hop is deleted from the kernel (its desired state stays, for when a
// gateway comes back).
func (f *FIB) formOps() {
	p := &f.plan
	for i := range p.ops {
		o := &p.ops[i]
		if o.del || o.done {
			continue
		}
		if !f.sets.usable(o.set) {
			o.del = true
			f.sets.badMembers(o.set, func(_ netip.Addr, err error) {
				if o.cause == nil {
					o.cause = err
				}
			})
			if o.cause == nil {
				o.cause = fmt.Errorf("%w: no usable next hop", ErrGatewayNotOnLink)
			}
			continue
		}
		if f.useNH {
			o.nhID = o.set
			continue
		}
		start := len(p.arena)
		p.arena = f.sets.appendHops(p.arena, nil, o.set)
		o.hops = p.arena[start:len(p.arena):len(p.arena)]
		if anyZoned(o.hops) {
			// A link-local gateway is written with its interface, never
			// left for the kernel to look up.
			p.arena = f.sets.appendHops(p.arena[:start], &p.oifs, o.set)
			o.oifs = p.oifs[len(p.oifs)-len(o.hops) : len(p.oifs) : len(p.oifs)]
		}
	}
}

// sendRoutes sends every op that has not failed yet.
func (f *FIB) sendRoutes(ctx context.Context) error {
	p := &f.plan
	return f.sendBatch(ctx, len(p.ops), func(i int, seq uint32) bool {
		o := &p.ops[i]
		switch {
		case o.done:
			return false
		case o.del && o.oldKey:
			f.buf.delRoute(seq, 0, f.oldKey, o.prefix)
		case o.del:
			f.buf.delRoute(seq, 0, f.key, o.prefix)
		default:
			f.buf.addRoute(seq, 0, f.key, o.prefix, o.nhID, o.hops, o.oifs)
		}
		f.stats.Writes++
		return true
	}, func(i int, errno unix.Errno, msg string) {
		o := &p.ops[i]
		o.done = true
		o.err, o.absent = nil, false
		switch {
		case errno == 0:
		case o.del && errno == unix.ESRCH:
			o.absent = true
		case o.del:
			o.err = &Error{Op: "delete", Prefix: o.prefix, Errno: errno, Msg: msg}
		default:
			o.err = &Error{Op: "add", Prefix: o.prefix, Errno: errno, Msg: msg}
		}
	})
}

// commit counts what the writes did. A write that failed (or whose outcome
// is unknown after a transport error) leaves its prefix pending: the
// maintenance loop writes it again until the kernel takes it. Next hops
// left out of installed routes are reported once per gateway.
func (f *FIB) commit(changes []Change, sendErr error, res *Result) {
	p := &f.plan
	degraded := map[netip.Addr]int{}
	var why map[netip.Addr]error
	for i := range p.ops {
		o := &p.ops[i]
		if !o.done {
			o.err = fmt.Errorf("fib: outcome unknown: %w", sendErr)
		}
		if o.refused {
			res.Failed = append(res.Failed, Failure{Change: changes[o.change], Err: o.err})
			continue
		}
		if o.err != nil {
			f.stats.Failures++
			if isMissingNexthop(o.err) {
				f.resync = true
			}
			f.setPending(o)
		} else {
			f.clearPending(o)
		}
		if o.change < 0 {
			if o.err == nil && !o.absent {
				f.stats.Repairs++
			}
			continue
		}
		c := changes[o.change]
		switch {
		case o.err != nil:
			res.Failed = append(res.Failed, Failure{Change: c, Err: o.err})
		case o.set != 0 && o.cause != nil && o.del:
			res.Failed = append(res.Failed, Failure{Change: c, Err: o.cause})
		case o.del:
			if !o.absent {
				res.Deleted++
			}
		case o.had:
			res.Replaced++
		default:
			res.Added++
		}
		if o.err == nil && !o.del && o.set != 0 {
			f.sets.badMembers(o.set, func(gw netip.Addr, err error) {
				if why == nil {
					why = map[netip.Addr]error{}
				}
				degraded[gw]++
				why[gw] = err
			})
		}
		if o.cause != nil && !o.del && o.badGW.IsValid() {
			if why == nil {
				why = map[netip.Addr]error{}
			}
			degraded[o.badGW]++
			why[o.badGW] = o.cause
		}
	}
	for gw, n := range degraded {
		res.Degraded = append(res.Degraded, HopFailure{Addr: gw, Routes: n, Err: why[gw]})
	}
	sortHopFailures(res.Degraded)
}

// setPending marks a failed write for a retry: a desired prefix by its
// flag, an undesired one by the list of routes to delete.
func (f *FIB) setPending(o *op) {
	if o.set != 0 {
		if _, ok := f.routes.mark(o.prefix, flagPending, 0); ok {
			f.pending = true
		}
		return
	}
	if o.oldKey {
		f.oldLeft++
		return
	}
	f.extras = append(f.extras, o.prefix)
}

func (f *FIB) clearPending(o *op) {
	// Without f.pending no entry has the flag: skip the lookup.
	if o.set != 0 && f.pending {
		f.routes.mark(o.prefix, 0, flagPending)
	}
}

// releaseSets drops the references of the sets prefixes used before
// (except those of deferred deletes), and deletes the kernel objects
// nothing uses any more (after the routes that used them have moved).
func (f *FIB) releaseSets(ctx context.Context) error {
	p := &f.plan
	for i := range p.ops {
		if o := &p.ops[i]; o.old != 0 && !o.deferred {
			p.deleted = f.sets.release(o.old, p.deleted)
		}
	}
	if !f.useNH {
		return nil
	}
	return f.deleteNexthops(ctx, p.deleted)
}

// isMissingNexthop reports the kernel's answer to a route that names a
// nexthop object it does not have: ours was flushed behind our back.
func isMissingNexthop(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Errno == unix.EINVAL
}
