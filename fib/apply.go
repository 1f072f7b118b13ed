package fib

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"golang.org/x/sys/unix"
)

// op is one planned route change.
type op struct {
	prefix netip.Prefix
	hops   []NextHop // canonical; nil for a delete
	nhID   uint32    // object the new route uses (0: inline or delete)
	done   bool      // the kernel's answer is known
	absent bool      // a delete found no route
	err    error
}

// planner holds the scratch state of Apply, reused from call to call.
type planner struct {
	ops     []op
	arena   []NextHop
	created []uint32
	deleted []uint32
	items   []int32 // message k of the current datagram -> item index
	replies []reply // message k of the current datagram -> its outcome
	offs    []int   // message k of the current datagram -> offset in the buffer
}

// applyChunk applies a slice of changes: plan (and take nexthop object
// references), create missing objects, send the routes, commit what the
// kernel accepted, then delete objects nothing uses any more.
func (f *FIB) applyChunk(ctx context.Context, changes []Change) (Result, error) {
	p := &f.plan
	f.planOps(changes)
	var sendErr error
	if len(p.created) > 0 {
		failed, err := f.createNexthops(ctx, p.created)
		if err != nil {
			sendErr = err
		}
		for i := range p.ops {
			o := &p.ops[i]
			if e, ok := failed[o.nhID]; ok && o.err == nil && o.nhID != 0 {
				o.err, o.done = e, true
			}
		}
	}
	if sendErr == nil {
		sendErr = f.sendRoutes(ctx)
	}
	res := f.commit(changes, sendErr)
	if err := f.deleteNexthops(ctx, p.deleted); err != nil && sendErr == nil {
		sendErr = err
	}
	return res, sendErr
}

// planOps turns changes into ops. In nexthop mode every new route takes a
// reference on the object of its set before any old reference is dropped,
// so an object shared by an old and a new route is never deleted between.
func (f *FIB) planOps(changes []Change) {
	p := &f.plan
	p.ops, p.arena, p.created, p.deleted = p.ops[:0], p.arena[:0], p.created[:0], p.deleted[:0]
	for _, c := range changes {
		o := op{prefix: c.Prefix.Masked()}
		if !c.Prefix.IsValid() {
			o.err, o.done = fmt.Errorf("%w: invalid prefix", ErrInvalidRoute), true
			p.ops = append(p.ops, o)
			continue
		}
		if !c.Delete() {
			start := len(p.arena)
			p.arena = canonicalHops(p.arena, c.NextHops)
			o.hops = p.arena[start:len(p.arena):len(p.arena)]
			o.err = validateRoute(o.prefix, o.hops)
		}
		if o.err == nil && !c.Delete() && f.useNH {
			o.nhID, p.created, o.err = f.nh.acquire(o.hops, p.created)
		}
		o.done = o.err != nil
		p.ops = append(p.ops, o)
	}
}

// sendRoutes sends every op that has not failed yet.
func (f *FIB) sendRoutes(ctx context.Context) error {
	p := &f.plan
	return f.sendBatch(ctx, len(p.ops), func(i int, seq uint32) bool {
		o := &p.ops[i]
		if o.done {
			return false
		}
		if o.hops == nil {
			f.buf.delRoute(seq, 0, f.key, o.prefix)
		} else {
			f.buf.addRoute(seq, 0, f.key, o.prefix, o.nhID, o.hops)
		}
		return true
	}, func(i int, errno unix.Errno, msg string) {
		o := &p.ops[i]
		o.done = true
		o.err, o.absent = nil, false
		switch {
		case errno == 0:
		case o.hops == nil && errno == unix.ESRCH:
			o.absent = true
		case o.hops == nil:
			o.err = &Error{Op: "delete", Prefix: o.prefix, Errno: errno, Msg: msg}
		default:
			o.err = &Error{Op: "add", Prefix: o.prefix, Errno: errno, Msg: msg}
		}
	})
}

// commit records what the kernel now holds, in change order (so that a
// prefix repeated in one chunk ends as its last successful change left it),
// and drops the references of replaced and failed routes. Ops whose outcome
// is unknown after a transport error count as failed, and the next call
// reloads the kernel state.
func (f *FIB) commit(changes []Change, sendErr error) Result {
	p := &f.plan
	var res Result
	for i := range p.ops {
		o := &p.ops[i]
		if !o.done {
			o.err = fmt.Errorf("fib: outcome unknown: %w", sendErr)
			f.resync = true
		}
		if o.err != nil {
			if o.nhID != 0 {
				p.deleted = f.nh.release(o.nhID, p.deleted)
				// An object we did not just create yet unknown to the
				// kernel was flushed behind our back.
				if isMissingNexthop(o.err) && !slices.Contains(p.created, o.nhID) {
					f.resync = true
				}
			}
			res.Failed = append(res.Failed, Failure{Change: changes[i], Err: o.err})
			continue
		}
		var old uint32
		var had bool
		if o.hops == nil {
			old, had = f.routes.remove(o.prefix)
		} else {
			old, had = f.routes.put(o.prefix, o.nhID)
		}
		if had && old != 0 && f.nh != nil {
			p.deleted = f.nh.release(old, p.deleted)
		}
		switch {
		case o.hops == nil:
			if !o.absent {
				res.Deleted++
			}
		case had:
			res.Replaced++
		default:
			res.Added++
		}
	}
	return res
}

// isMissingNexthop reports the kernel's answer to a route that names a
// nexthop object it does not have: ours was flushed behind our back.
func isMissingNexthop(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Errno == unix.EINVAL
}

// createNexthops resolves the interface of new single objects and creates
// the objects, members before groups. It returns the objects that failed.
func (f *FIB) createNexthops(ctx context.Context, ids []uint32) (map[uint32]error, error) {
	failed := make(map[uint32]error)
	for _, id := range ids {
		o := f.nh.objs[id]
		if o == nil || o.group() {
			continue
		}
		oif, err := f.resolve(ctx, o.gw)
		if err != nil {
			if ctx.Err() != nil {
				return failed, err
			}
			failed[id] = err
			continue
		}
		o.oif = oif
	}
	err := f.sendBatch(ctx, len(ids), func(i int, seq uint32) bool {
		id := ids[i]
		o := f.nh.objs[id]
		if o == nil || failed[id] != nil {
			return false
		}
		if !o.group() {
			f.buf.addNexthop(seq, 0, f.cfg.Protocol, id, o.gw, o.oif)
			return true
		}
		for _, m := range o.members {
			if e := failed[m.id]; e != nil {
				failed[id] = e
				return false
			}
		}
		f.buf.addGroup(seq, 0, f.cfg.Protocol, id, o.members)
		return true
	}, func(i int, errno unix.Errno, msg string) {
		if errno != 0 {
			failed[ids[i]] = &Error{Op: "nexthop", Errno: errno, Msg: msg}
		} else {
			delete(failed, ids[i])
		}
	})
	return failed, err
}

// deleteNexthops deletes objects nothing uses any more. One the kernel no
// longer has is already gone; one it refuses to delete is left behind and
// collected at the next load.
func (f *FIB) deleteNexthops(ctx context.Context, ids []uint32) error {
	if len(ids) == 0 {
		return nil
	}
	return f.sendBatch(ctx, len(ids), func(i int, seq uint32) bool {
		f.buf.delNexthop(seq, 0, ids[i])
		return true
	}, func(i int, errno unix.Errno, msg string) {
		if errno != 0 && errno != unix.ENOENT {
			f.log.Warn("fib: nexthop not deleted", "id", ids[i], "err", errno, "msg", msg)
		}
	})
}

// resolve finds the interface of an on-link gateway, as `ip route get`
// would: nexthop objects must name one, where inline gateways let the
// kernel find it.
func (f *FIB) resolve(ctx context.Context, gw netip.Addr) (int32, error) {
	var req msgBuf
	seq := f.c.nextSeq(1)
	req.getRoute(seq, gw)
	var r kernelRoute
	err := f.c.request(ctx, "resolve gateway "+gw.String(), req.b, seq, func(m nlMsg) error {
		if m.typ != unix.RTM_NEWROUTE {
			return fmt.Errorf("%w: answer type %d to a route lookup", errMalformed, m.typ)
		}
		var err error
		r, _, err = parseRoute(m.data, nil)
		return err
	})
	switch {
	case err != nil:
		return 0, err
	case r.typ != unix.RTN_UNICAST || r.gwSet || r.oif == 0:
		return 0, fmt.Errorf("%w: %v", ErrGatewayNotOnLink, gw)
	}
	return r.oif, nil
}
