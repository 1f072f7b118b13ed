package fib

import (
	"context"
	"net/netip"
	"slices"
)

// adopt loads what a previous run left: our nexthop objects, and the
// routes of our key (and of the previous key, when the state file names
// one) into the desired state as stale routes, which keep forwarding until
// Apply sets them or the grace time ends. Routes are streamed from the
// kernel straight into the prefix map. A route not in the form this run
// writes (another next hop mode, a duplicate object, the previous key) is
// marked pending, and the first flush rewrites it in place: the kernel
// replaces a route atomically, so the move is make-before-break.
func (f *FIB) adopt(ctx context.Context, prev *routeKey) error {
	var nhs []kernelNexthop
	if f.haveNH {
		var err error
		if nhs, err = f.dumpNexthops(ctx); err != nil {
			return err
		}
	}
	byID := nexthopIndex(nhs)
	lo, hi := f.cfg.NextHopIDBase, f.cfg.NextHopIDBase+f.cfg.NextHopIDCount-1
	if f.useNH {
		f.sets = newNHTable(lo, hi)
		f.sets.form = f.form
		f.sets.adopt(nhs, f.cfg.Protocol)
	} else {
		f.sets = newNHTable(1, ^uint32(0))
		if f.haveNH {
			f.old = newNHTable(lo, hi)
			f.old.adopt(nhs, f.cfg.Protocol)
		}
	}
	f.routes = newPrefixMap()
	// Count first and size the map once: a dump costs less time than a
	// growing map costs memory at the peak of a restart.
	n := 0
	count := func(r *kernelRoute) {
		if r.prefix.Addr().Is4() {
			n++
		}
	}
	if err := f.scanRoutes(ctx, f.key, count); err != nil {
		return err
	}
	if prev != nil {
		if err := f.scanRoutes(ctx, *prev, count); err != nil {
			return err
		}
	}
	f.routes.reserve(n)
	p := &f.plan
	p.reset()
	var scratch []NextHop
	load := func(r *kernelRoute, old bool) {
		scratch = routeHops(scratch[:0], r, byID)
		hops, _, _ := usableShape(r.prefix, scratch)
		if len(hops) == 0 {
			if !old {
				f.extras = append(f.extras, r.prefix)
			}
			return
		}
		if _, _, ok := f.routes.lookup(r.prefix); ok {
			// Seen already: in a re-run dump, or under both keys.
			if old {
				f.routes.mark(r.prefix, flagOld, 0)
			}
			return
		}
		set, created, err := f.sets.acquire(hops, p.created)
		p.created = created
		if err != nil {
			f.extras = append(f.extras, r.prefix)
			return
		}
		f.routes.put(r.prefix, set)
		flags := flagStale
		if old || !f.sameForm(r, set) {
			flags |= flagPending
			f.pending = true
		}
		if old {
			flags |= flagOld
		}
		f.routes.mark(r.prefix, flags, 0)
		f.stale++
	}
	if err := f.scanRoutes(ctx, f.key, func(r *kernelRoute) { load(r, false) }); err != nil {
		return err
	}
	if prev != nil {
		if err := f.scanRoutes(ctx, *prev, func(r *kernelRoute) { load(r, true) }); err != nil {
			return err
		}
	}
	created := append([]uint32(nil), p.created...)
	for _, id := range f.sets.singles() {
		if o := f.sets.objs[id]; !o.resolved {
			if err := f.resolveObj(ctx, id, o); err != nil {
				return err
			}
		}
	}
	if f.useNH {
		if err := f.writeObjects(ctx, created); err != nil {
			return err
		}
	}
	return nil
}

// sameForm reports whether a kernel route is written the way this run
// writes the route of set (before gateways are looked up again).
func (f *FIB) sameForm(r *kernelRoute, set uint32) bool {
	if f.useNH {
		return r.nhID == set
	}
	return r.nhID == 0
}

// matches reports whether a kernel route is what the desired set needs now.
func (f *FIB) matches(r *kernelRoute, set uint32) bool {
	if !f.sets.usable(set) {
		return false
	}
	if f.useNH {
		return r.nhID == set
	}
	if r.nhID != 0 {
		return false
	}
	p := &f.plan
	p.scratch = f.sets.appendHops(p.scratch[:0], nil, set)
	n := len(p.scratch)
	if links := f.links.Load(); links.namedHops(p.scratch) {
		// A zone given as an index reads back as its interface's name.
		slices.SortFunc(p.scratch, func(a, b NextHop) int { return a.Addr.Compare(b.Addr) })
	}
	p.scratch = canonicalHops(p.scratch, r.hops)
	return hopsEqual(p.scratch[:n], p.scratch[n:])
}

// flush writes every pending route, deletes the extra ones and the
// previous key's routes that were moved, then deletes objects nothing uses.
func (f *FIB) flush(ctx context.Context) (Result, error) {
	var res Result
	if f.useNH {
		if err := f.writeObjects(ctx, f.sets.ids()); err != nil {
			return res, err
		}
	}
	p := &f.plan
	p.reset()
	var err error
	send := func() {
		if err == nil && len(p.ops) > 0 {
			var part Result
			f.formOps()
			err = f.sendRoutes(ctx)
			f.commit(nil, err, &part)
			res.add(part)
			p.reset()
		}
	}
	if f.pending {
		f.pending = false
		f.routes.each(func(pfx netip.Prefix, set uint32, fl uint8) uint8 {
			if fl&flagPending == 0 || err != nil {
				return 0
			}
			// Cleared before the write: a failure sets it again.
			f.routes.mark(pfx, 0, flagPending)
			p.ops = append(p.ops, op{prefix: pfx, set: set, change: -1})
			if len(p.ops) == planChunk {
				send()
			}
			return 0
		})
		send()
	}
	extras := undesired(f.extras, &f.routes)
	f.extras = nil
	for _, pfx := range extras {
		p.ops = append(p.ops, op{prefix: pfx, del: true, change: -1})
		if len(p.ops) == planChunk {
			send()
		}
	}
	send()
	waiting := 0
	if f.oldKey != (routeKey{}) && err == nil {
		f.oldLeft = 0
		f.routes.each(func(pfx netip.Prefix, _ uint32, fl uint8) uint8 {
			if fl&flagOld == 0 || err != nil {
				return 0
			}
			if fl&flagPending != 0 {
				waiting++ // not in place under our key yet: keep the old one
				return 0
			}
			f.routes.mark(pfx, 0, flagOld)
			p.ops = append(p.ops, op{prefix: pfx, del: true, oldKey: true, change: -1})
			if len(p.ops) == planChunk {
				send()
			}
			return 0
		})
		send()
	}
	if err != nil {
		f.pending = true
		return res, err
	}
	if f.oldKey != (routeKey{}) && waiting == 0 && f.oldLeft == 0 {
		f.log.Info("fib: the routes of the previous configuration have moved")
		f.oldKey = routeKey{}
	}
	return res, f.collect(ctx)
}

// collect deletes the objects no route uses: adopted ones whose routes
// moved, and inline, those of a nexthop-mode run once no route is pending.
func (f *FIB) collect(ctx context.Context) error {
	garbage := f.sets.collect()
	if !f.useNH {
		garbage = garbage[:0]
		if f.old != nil && !f.pending {
			garbage = f.old.collect()
			f.old = nil
		}
	}
	if len(garbage) > 0 {
		f.log.Info("fib: deleting nexthop objects no route uses", "count", len(garbage))
	}
	return f.deleteNexthops(ctx, garbage)
}

// undesired returns the prefixes of extras that are still to be deleted,
// each once: a prefix noted twice (a notification, then a resync) is
// deleted once, and one that Apply has made desired since it was noted
// keeps the route Apply wrote.
func undesired(extras []netip.Prefix, routes *prefixMap) []netip.Prefix {
	slices.SortFunc(extras, comparePrefix)
	extras = slices.Compact(extras)
	return slices.DeleteFunc(extras, func(p netip.Prefix) bool {
		_, ok := routes.get(p)
		return ok
	})
}
