package fib

import (
	"context"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// ensureObjects resolves the gateways of new single sets and, in nexthop
// mode, writes the objects the kernel does not hold in their current form.
func (f *FIB) ensureObjects(ctx context.Context, ids []uint32) error {
	for _, id := range ids {
		if o := f.sets.objs[id]; o != nil && !o.group() && !o.resolved {
			if err := f.resolveObj(ctx, id, o); err != nil {
				return err
			}
		}
	}
	if !f.useNH {
		return nil
	}
	return f.writeObjects(ctx, ids)
}

// resolveObj looks a single gateway up again. A gateway that became
// unusable or usable again, or moved to another interface, is logged once
// and its object and the groups holding it are rewritten.
func (f *FIB) resolveObj(ctx context.Context, id uint32, o *nhObject) error {
	oif, err := f.resolve(ctx, o.gw)
	if err != nil && ctx.Err() != nil {
		return err
	}
	switch {
	case err != nil && (o.bad == nil || !o.resolved):
		f.log.Warn("fib: gateway unusable; routes are installed without it", "gateway", o.gw, "err", err)
	case err == nil && o.bad != nil && o.resolved:
		f.log.Info("fib: gateway usable again", "gateway", o.gw)
	}
	// An object adopted from the kernel that resolves as it stands there
	// is not rewritten: replacing an object makes the kernel notify every
	// route through it, a million at a restart.
	changed := (o.bad == nil) != (err == nil) || (err == nil && o.oif != oif)
	o.resolved, o.bad = true, err
	if err == nil {
		o.oif = oif
	}
	if changed {
		o.inKernel = false
		for _, g := range f.sets.objs {
			if g.group() && hasMember(g, id) {
				g.inKernel, g.bad = false, nil
			}
		}
	}
	return nil
}

func hasMember(g *nhObject, id uint32) bool {
	for _, m := range g.members {
		if m.id == id {
			return true
		}
	}
	return false
}

// writeObjects creates or replaces, singles before groups, the objects of
// ids that the kernel does not hold in their current form: a single with a
// usable gateway, a group with its usable members. An object the kernel
// refuses is marked bad and its routes are written without it; a new
// group it refuses as resilient is written as a hash-threshold one.
func (f *FIB) writeObjects(ctx context.Context, ids []uint32) error {
	var retry []uint32
	for pass := range 2 {
		if err := f.writePass(ctx, ids, pass == 1, &retry); err != nil {
			return err
		}
	}
	if len(retry) == 0 {
		return nil
	}
	return f.writePass(ctx, retry, true, nil)
}

// writePass writes the singles or the groups of ids. A new resilient group
// refused for its form is marked mpath and appended to retry, when given.
func (f *FIB) writePass(ctx context.Context, ids []uint32, groups bool, retry *[]uint32) error {
	var lm []nhMember
	return f.sendBatch(ctx, len(ids), func(i int, seq uint32) bool {
		o := f.sets.objs[ids[i]]
		if o == nil || o.inKernel || o.bad != nil || o.group() != groups {
			return false
		}
		if !o.group() {
			if !o.resolved {
				return false
			}
			f.buf.addNexthop(seq, 0, f.cfg.Protocol, ids[i], o.gw, o.oif)
			return true
		}
		lm = f.sets.liveMembers(lm[:0], o)
		if len(lm) == 0 {
			return false
		}
		f.buf.addGroup(seq, 0, f.cfg.Protocol, ids[i], lm, f.sets.formOf(o))
		return true
	}, func(i int, errno unix.Errno, msg string) {
		o := f.sets.objs[ids[i]]
		if errno == 0 {
			o.inKernel, o.unwritten = true, false
			return
		}
		o.bad = &Error{Op: "nexthop", Errno: errno, Msg: msg}
		switch {
		case retry != nil && o.group() && o.unwritten && f.sets.formOf(o).resilient && refusedForm(errno):
			f.warnMpath(o.bad)
			o.mpath, o.bad = true, nil
			*retry = append(*retry, ids[i])
		case !o.group():
			f.log.Warn("fib: kernel refused a gateway; routes are installed without it", "gateway", o.gw, "err", o.bad)
		}
	})
}

// refusedForm: errors with which a kernel may refuse a resilient group it
// would take as a hash-threshold one (a form it does not take, or no
// memory for the bucket table).
func refusedForm(errno unix.Errno) bool {
	return errno == unix.EINVAL || errno == unix.EOPNOTSUPP || errno == unix.ENOMEM
}

// warnMpath says once that a group is hash-threshold against the config.
func (f *FIB) warnMpath(err error) {
	if f.warnedMpath {
		return
	}
	f.warnedMpath = true
	f.log.Warn("fib: kernel refused a resilient nexthop group; it and others refused later are hash-threshold groups, "+
		"so flows on the other next hops may move when one leaves", "err", err)
}

// deleteNexthops deletes objects nothing uses any more. One the kernel no
// longer has is already gone; one it refuses to delete is left behind and
// collected by the next resync.
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
// would (a link-local gateway's is its zone's): nexthop objects must name one, and either way a gateway that is
// not on link is left out of the routes instead of failing them whole.
func (f *FIB) resolve(ctx context.Context, gw netip.Addr) (int32, error) {
	if gw.Zone() != "" {
		return f.resolveZone(ctx, gw)
	}
	var req msgBuf
	seq := f.c.nextSeq(1)
	req.getRoute(seq, gw)
	var r kernelRoute
	err := f.c.request(ctx, "resolve gateway "+gw.String(), req.b, seq, func(m nlMsg) error {
		if m.typ != unix.RTM_NEWROUTE {
			return fmt.Errorf("%w: answer type %d to a route lookup", errMalformed, m.typ)
		}
		var err error
		r, _, err = parseRoute(m.data, nil, nil)
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
