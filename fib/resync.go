package fib

import (
	"context"
	"net/netip"
	"time"
)

// Stats counts what the FIB did to keep the kernel equal to the desired
// state, for the daemon's metrics.
type Stats struct {
	Repairs   uint64 // routes written again: restored after a deletion, or a foreign change reverted
	Retries   uint64 // rounds of writing failed routes again
	Resyncs   uint64 // full comparisons with the kernel
	Failures  uint64 // route writes the kernel refused (or whose outcome was lost)
	Overruns  uint64 // monitor socket overruns (each leads to a resync)
	Events    uint64 // kernel notifications that concerned us
	Writes    uint64 // route messages sent to the kernel (adds, replaces, deletes)
	Flushed   uint64 // routes deleted with their gateway's nexthop object, not one by one
	Pending   int    // desired routes the kernel does not hold as desired right now
	Stale     int    // routes of a previous run still waiting for Apply or the grace time
	Unusable  int    // desired routes with no usable next hop (not in the kernel)
	Routes    int    // desired routes
	NextHops  int    // distinct next hop sets (nexthop objects in that mode)
	Degraded  int    // gateways left out of routes because they are unusable
	MovingOld bool   // routes of the previous configuration are still being moved
	// Groups is how ECMP routes are balanced: "resilient" or "mpath"
	// nexthop groups, or "inline" multipath routes.
	Groups string
	// Rekeyed counts groups changed in place because all their routes
	// moved to one new set (see FIB.Apply): flows on the members that
	// stayed keep their buckets.
	Rekeyed uint64
}

// Stats returns the counters.
func (f *FIB) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.stats
	s.Stale, s.Routes, s.MovingOld = f.stale, f.routes.len(), f.oldKey != (routeKey{})
	s.Groups = f.GroupType()
	if f.sets != nil {
		s.NextHops = len(f.sets.objs)
		for _, o := range f.sets.objs {
			if !o.group() && o.bad != nil {
				s.Degraded++
			}
		}
		f.routes.each(func(_ netip.Prefix, set uint32, fl uint8) uint8 {
			if fl&flagPending != 0 {
				s.Pending++
			}
			if !f.sets.usable(set) {
				s.Unusable++
			}
			return 0
		})
	}
	return s
}

// Report is the difference between the kernel and the desired state.
type Report struct {
	Routes    int            // desired routes
	Missing   []netip.Prefix // desired and usable, not in the kernel
	Extra     []netip.Prefix // ours in the kernel, not desired (or with no usable next hop)
	Different []netip.Prefix // in the kernel with other next hops
	Unusable  int            // desired with no usable next hop, so rightly absent
}

// Equal reports whether the kernel holds exactly the desired state.
func (r Report) Equal() bool {
	return len(r.Missing) == 0 && len(r.Extra) == 0 && len(r.Different) == 0
}

// maxReported bounds each list of a Report.
const maxReported = 1000

// Check compares the kernel with the desired state without changing
// either, for `bgplb fib` to show any difference. Lists are capped at 1000
// prefixes each.
func (f *FIB) Check(ctx context.Context) (Report, error) {
	if err := f.enter(); err != nil {
		return Report{}, err
	}
	defer f.mu.Unlock()
	// Deletes still deferred would read as extra routes.
	if _, err := f.settle(ctx, time.Now(), true); err != nil {
		return Report{}, err
	}
	if err := f.refreshLinks(ctx); err != nil {
		return Report{}, err
	}
	var r Report
	add := func(l *[]netip.Prefix, p netip.Prefix) {
		if len(*l) < maxReported {
			*l = append(*l, p)
		}
	}
	err := f.compare(ctx, func(p netip.Prefix, set uint32, kr *kernelRoute) {
		switch {
		case set == 0 || !f.sets.usable(set) && kr != nil:
			add(&r.Extra, p)
		case kr == nil:
			add(&r.Missing, p)
		default:
			add(&r.Different, p)
		}
	})
	r.Routes = f.routes.len()
	f.routes.each(func(_ netip.Prefix, set uint32, _ uint8) uint8 {
		if !f.sets.usable(set) {
			r.Unusable++
		}
		return 0
	})
	return r, err
}

// compare streams our kernel routes against the desired state and calls
// diff for every prefix that differs: set 0 for a kernel route that is not
// desired, kr nil for a desired route the kernel lacks.
func (f *FIB) compare(ctx context.Context, diff func(p netip.Prefix, set uint32, kr *kernelRoute)) error {
	err := f.scanRoutes(ctx, f.key, func(r *kernelRoute) {
		set, _, ok := f.routes.lookup(r.prefix)
		if !ok {
			diff(r.prefix, 0, r)
			return
		}
		f.routes.mark(r.prefix, flagSeen, 0)
		if !f.matches(r, set) {
			diff(r.prefix, set, r)
		}
	})
	f.routes.each(func(p netip.Prefix, set uint32, fl uint8) uint8 {
		if fl&flagSeen == 0 && err == nil && f.sets.usable(set) {
			diff(p, set, nil)
		}
		return flagSeen
	})
	return err
}

// resyncAll looks every gateway up again, brings our nexthop objects in
// line, compares every route with the kernel and writes the difference.
func (f *FIB) resyncAll(ctx context.Context) (Result, error) {
	f.stats.Resyncs++
	f.resync = false
	// Deferred deletes first: their routes would read as extras and be
	// deleted one by one.
	if _, err := f.settle(ctx, time.Now(), true); err != nil {
		return Result{}, err
	}
	// Links may have come, gone or been renamed (their changes lead here):
	// routes read back must name their interfaces as they are now.
	if err := f.refreshLinks(ctx); err != nil {
		return Result{}, err
	}
	for _, id := range f.sets.singles() {
		if err := f.resolveObj(ctx, id, f.sets.objs[id]); err != nil {
			return Result{}, err
		}
	}
	if f.useNH {
		if err := f.checkObjects(ctx); err != nil {
			return Result{}, err
		}
	}
	err := f.compare(ctx, func(p netip.Prefix, set uint32, kr *kernelRoute) {
		if set == 0 {
			f.extras = append(f.extras, p)
			return
		}
		f.routes.mark(p, flagPending, 0)
		f.pending = true
	})
	if err != nil {
		return Result{}, err
	}
	return f.flush(ctx)
}

// checkObjects compares our objects with the kernel's: one missing or
// different is written again by the next flush; one of ours the kernel
// has but we do not use, or that must not be there (no usable gateway), is
// deleted.
func (f *FIB) checkObjects(ctx context.Context) error {
	nhs, err := f.dumpNexthops(ctx)
	if err != nil {
		return err
	}
	inKernel := make(map[uint32]bool, len(f.sets.objs))
	var garbage []uint32
	var lm []nhMember
	for _, n := range nhs {
		if !f.sets.inRange(n.id) || n.proto != f.cfg.Protocol {
			continue
		}
		o, ok := f.sets.objs[n.id]
		switch {
		case !ok || !f.sets.usable(n.id):
			garbage = append(garbage, n.id)
		case !o.group():
			// By address and interface index: a zone may name the
			// interface by its index, which reading back does not.
			inKernel[n.id] = n.gw.Unmap().WithZone("") == o.gw.WithZone("") && n.oif == o.oif && n.group == nil
		case !n.form.sameKind(f.sets.formOf(o)):
			// Not replaceable in place (another type or bucket count):
			// deleted, and written again with its routes.
			garbage = append(garbage, n.id)
		default:
			lm = f.sets.liveMembers(lm[:0], o)
			inKernel[n.id] = slicesEqualMembers(lm, n.group) && n.form == f.sets.formOf(o)
		}
	}
	for id, o := range f.sets.objs {
		o.inKernel = inKernel[id]
		if o.group() {
			o.bad = nil // refused before; members may have changed
		}
	}
	if len(garbage) > 0 {
		// Groups first: a single cannot go while a group holds it.
		groupsFirst(garbage, nhs)
		if err := f.deleteNexthops(ctx, garbage); err != nil {
			return err
		}
	}
	return nil
}

func slicesEqualMembers(a, b []nhMember) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func groupsFirst(ids []uint32, nhs []kernelNexthop) {
	isGroup := map[uint32]bool{}
	for _, n := range nhs {
		isGroup[n.id] = n.group != nil
	}
	n := 0
	for i, id := range ids {
		if isGroup[id] {
			ids[n], ids[i] = ids[i], ids[n]
			n++
		}
	}
}

// objectsInKernel counts the objects the FIB believes the kernel holds.
func (f *FIB) objectsInKernel() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, o := range f.sets.objs {
		if o.inKernel {
			n++
		}
	}
	return n
}
