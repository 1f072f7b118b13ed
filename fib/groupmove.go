package fib

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"net/netip"
	"slices"
	"time"
)

// A resilient group keeps the buckets of its members when it is changed in
// place; a new group deals its buckets out afresh, which moves flows
// between members that were in both. So when the changes move every route
// of a group to one new set that has no group yet (a peer leaving or
// joining the routes it shares with others), the group is changed in place
// instead: every route moves at once, and none is written. The router
// sweeps a departed peer's routes in pieces, though, over several Apply
// calls, and a peer that joins announces its routes in pieces too. So the
// changes that move part of a group's routes to one new set are held back
// (the routes stay on the group, as deferred deletes stay on their
// object) until the rest follow: while a Hold is out, or when the new set
// drops no gateway of the group (one joins, or weights change: waiting
// costs nothing then) and they come in bulk (deferMin in one call, or
// some already wait). A gateway that leaves outside a sweep is not waited
// for. Held-back changes are written as ordinary ones if the rest do not
// follow: once no Apply has added to them for settleQuiet (at most
// settleMax, or settleHeld while held), when another change makes the move
// partial, or when Check or Sync compare.

// groupMove is the held-back changes moving routes of one group to hops.
type groupMove struct {
	hops         []NextHop // the canonical new set
	key          string    // its index key
	v4           []uint64  // v4Key
	v6           []netip.Prefix
	since, touch time.Time
}

// maxMoveScratch bounds the scratch kept between Applies: 64k changes,
// a few MiB, cover a sweep's chunks; a larger one is dropped after use.
const maxMoveScratch = 64 << 10

func (m *groupMove) len() int { return len(m.v4) + len(m.v6) }

// movePlan is what the changes of one Apply do to the routes of a group.
type movePlan struct {
	key   []byte    // index key of the first new set
	hops  []NextHop // the first new set
	n     int       // changes of the group's routes
	mixed bool      // they do not all move to one new set of 2+ hops without a group, or one is refused
	drops bool      // the new set leaves out a gateway of the group
}

// planMoves reads the changes for routes through groups. current gives the
// set a prefix's route has now, whether this is the prefix's first change
// here, and whether a change of it is held back already; a repeat or an
// override makes its group's move mixed.
func planMoves(changes []Change, current func(netip.Prefix) (set uint32, first, held bool), t *nhTable) map[uint32]*movePlan {
	var plans map[uint32]*movePlan
	var keyBuf []byte
	var hs, hops, prevRaw []NextHop
	var prev4, exists, refused bool
	for _, c := range changes {
		if !c.Prefix.IsValid() {
			continue // refused when planned
		}
		pfx := c.Prefix.Masked()
		from, first, held := current(pfx)
		if from == 0 { // not on a group: current looked already
			continue
		}
		if plans == nil {
			plans = map[uint32]*movePlan{}
		}
		pl := plans[from]
		if pl == nil {
			pl = &movePlan{}
			plans[from] = pl
		}
		pl.n++
		if pl.mixed {
			continue
		}
		if !first || held {
			pl.mixed = true
			continue
		}
		// A sweep gives many prefixes the same set in a row: the set is
		// read once per run.
		if is4 := pfx.Addr().Is4(); prevRaw == nil || is4 != prev4 || !slices.Equal(c.NextHops, prevRaw) {
			hs = canonicalHops(hs[:0], c.NextHops)
			refused = refusal(pfx, hs) != nil
			hops, _, _ = usableShape(pfx, hs)
			keyBuf = appendKey(keyBuf[:0], hops)
			_, exists = t.index[string(keyBuf)]
			prevRaw, prev4 = c.NextHops, is4
		}
		if refused {
			pl.mixed = true // desire refuses it: the route keeps its group
			continue
		}
		if pl.key == nil {
			pl.key, pl.hops = slices.Clone(keyBuf), slices.Clone(hops)
			pl.drops = dropsMember(t, from, hops)
		}
		pl.mixed = len(hops) < 2 || exists || string(keyBuf) != string(pl.key)
	}
	return plans
}

// dropsMember reports whether group id has a gateway that hops lacks.
func dropsMember(t *nhTable, id uint32, hops []NextHop) bool {
	for _, m := range t.objs[id].members {
		mo := t.objs[m.id]
		if mo == nil || !slices.ContainsFunc(hops, func(h NextHop) bool { return h.Addr == mo.gw }) {
			return true
		}
	}
	return false
}

// moveGroups runs before an Apply's changes are planned: it changes in
// place the groups whose routes have all moved to one new set (with those
// held back before), holds back the changes of partial moves while a Hold
// is out, and releases held-back changes that a change made partial. It
// returns the changes to plan now, the first nrel of them released ones,
// and how many it held back.
func (f *FIB) moveGroups(ctx context.Context, changes []Change, now time.Time) (out []Change, nrel, held int, err error) {
	if !f.useNH || !f.form.resilient || len(changes) == 0 || (!f.sets.hasGroups() && len(f.moves) == 0) {
		return changes, 0, 0, nil
	}
	plans := f.planGroups(changes)
	if len(plans) == 0 {
		return changes, 0, 0, nil
	}
	f.releasedMoves = f.releasedMoves[:0]
	released := f.moveScratch[:0] // out is built on it
	var whole []rekey
	var holdBack map[uint32]*movePlan
	for _, from := range slices.Sorted(maps.Keys(plans)) {
		pl, m := plans[from], f.moves[from]
		if m != nil && (pl.mixed || m.key != string(pl.key)) {
			released = f.releaseMove(from, m, released)
			continue
		}
		switch {
		case pl.mixed:
		case pl.n+m.lenOrZero() == f.sets.objs[from].refs:
			whole = append(whole, rekey{from: from, hops: pl.hops})
		case f.holds > 0 || !pl.drops && (pl.n >= deferMin || m != nil):
			// During a sweep; and when no gateway leaves (one joins, or
			// weights change: waiting costs nothing) in bulk, as
			// deferred deletes are.
			if holdBack == nil {
				holdBack = map[uint32]*movePlan{}
			}
			holdBack[from] = pl
		case m != nil:
			released = f.releaseMove(from, m, released)
		}
	}
	released, err = f.rekeyWhole(ctx, whole, released)
	if err != nil {
		// Nothing of this call is applied: the released changes wait again.
		f.restoreMoves(0)
		return changes, 0, 0, err
	}
	if len(holdBack) == 0 && len(released) == 0 {
		return changes, 0, 0, nil // the hot path: a sweep of mixed changes
	}
	out, held = f.holdBack(released, changes, holdBack, now)
	f.moveScratch = out
	return out, len(released), held, nil
}

// planGroups plans the moves of changes. flagSeen marks the prefixes met,
// to tell a repeat; it is cleared by a second pass rather than from a
// list, which a million-change Apply would have to hold.
func (f *FIB) planGroups(changes []Change) map[uint32]*movePlan {
	marked := 0
	current := func(p netip.Prefix) (uint32, bool, bool) {
		set, fl, ok := f.routes.lookup(p)
		if g := f.sets.objs[set]; !ok || g == nil || !g.group() {
			return 0, false, false // planMoves looks at groups only
		}
		if fl&flagSeen != 0 {
			return set, false, fl&flagMoving != 0
		}
		f.routes.mark(p, flagSeen, 0)
		marked++
		return set, true, fl&flagMoving != 0
	}
	plans := planMoves(changes, current, f.sets)
	for i := 0; i < len(changes) && marked > 0; i++ {
		if c := changes[i]; c.Prefix.IsValid() {
			if fl, _ := f.routes.mark(c.Prefix.Masked(), 0, flagSeen); fl&flagSeen != 0 {
				marked--
			}
		}
	}
	return plans
}

// holdBack appends to out the changes not held back by the plans of
// holdBack, and holds back the others.
func (f *FIB) holdBack(out, changes []Change, holdBack map[uint32]*movePlan, now time.Time) ([]Change, int) {
	if len(holdBack) == 0 {
		return append(out, changes...), 0
	}
	held := 0
	for _, c := range changes {
		pfx := c.Prefix.Masked()
		var set uint32
		var fl uint8
		ok := c.Prefix.IsValid()
		if ok {
			set, fl, ok = f.routes.lookup(pfx)
		}
		pl := holdBack[set]
		if !ok || pl == nil {
			out = append(out, c)
			continue
		}
		f.holdChange(set, pl, pfx, fl, now)
		held++
	}
	return out, held
}

// dropScratch forgets the changes moveGroups returned once they are
// applied (they point at the caller's next hops), and the scratch itself
// when it grew past what an ordinary Apply needs.
func (f *FIB) dropScratch() {
	if cap(f.moveScratch) > maxMoveScratch {
		f.moveScratch = nil
		return
	}
	clear(f.moveScratch)
	f.moveScratch = f.moveScratch[:0]
}

func (m *groupMove) lenOrZero() int {
	if m == nil {
		return 0
	}
	return m.len()
}

// rekey is a group to change in place and the canonical set it takes on.
type rekey struct {
	from uint32
	hops []NextHop
	undo rekeyUndo // what the group had, while the kernel is asked
	done bool      // rekeyTo changed the table
}

// rekeyWhole changes the groups of whole in place. When several move to
// one new set, the one with most routes (then the lowest id) is kept and
// the others' held-back changes are released to move to it. A group that
// cannot take the set is left as it is and its held-back changes are
// released: with no nexthop id left for a new member, desire then refuses
// them one by one; when the kernel refuses the change, they move to a new
// group as ordinary changes do.
func (f *FIB) rekeyWhole(ctx context.Context, whole []rekey, released []Change) ([]Change, error) {
	if len(whole) == 0 {
		return released, nil
	}
	slices.SortFunc(whole, func(a, b rekey) int {
		if c := cmp.Compare(f.sets.objs[b.from].refs, f.sets.objs[a.from].refs); c != 0 {
			return c
		}
		return cmp.Compare(a.from, b.from)
	})
	var created, deleted []uint32
	kept := map[string]bool{}
	for i := range whole {
		r := &whole[i]
		k := string(appendKey(nil, r.hops))
		var err error
		if !kept[k] {
			r.undo, created, err = f.sets.rekeyTo(r.from, r.hops, created)
		}
		if kept[k] || err != nil {
			released = f.releaseHeld(r.from, released)
			continue
		}
		kept[k], r.done = true, true
		created = append(created, r.from)
	}
	if err := f.ensureObjects(ctx, created); err != nil {
		// Whatever the kernel took, the table goes back to what the
		// routes are desired through; the comparison mends the kernel.
		for _, r := range whole {
			if r.done {
				f.sets.undoRekey(r.from, r.undo, nil)
			}
		}
		f.resync = true
		return released, err
	}
	for _, r := range whole {
		if !r.done {
			continue
		}
		if o := f.sets.objs[r.from]; o.bad != nil {
			// The kernel kept the group as it was.
			f.log.Warn("fib: kernel refused to change a resilient group in place; its routes move to a new group", "id", r.from, "err", o.bad)
			deleted = f.sets.undoRekey(r.from, r.undo, deleted)
			released = f.releaseHeld(r.from, released)
			continue
		}
		deleted = f.sets.endRekey(r.undo, deleted)
		if m := f.moves[r.from]; m != nil {
			f.dropMove(r.from, m) // the group took them in place
		}
		f.stats.Rekeyed++
	}
	return released, f.deleteNexthops(ctx, deleted)
}

// releaseHeld releases the held-back changes of group from, if any.
func (f *FIB) releaseHeld(from uint32, out []Change) []Change {
	if m := f.moves[from]; m != nil {
		return f.releaseMove(from, m, out)
	}
	return out
}

// holdChange holds back the change of pfx (a route through group from),
// which stays desired through the group until the move is settled.
func (f *FIB) holdChange(from uint32, pl *movePlan, pfx netip.Prefix, fl uint8, now time.Time) {
	if f.moves == nil {
		f.moves = map[uint32]*groupMove{}
	}
	m := f.moves[from]
	if m == nil {
		m = &groupMove{hops: pl.hops, key: string(pl.key), since: now}
		f.moves[from] = m
	}
	m.touch = now
	if pfx.Addr().Is4() {
		m.v4 = append(m.v4, v4Key(pfx))
	} else {
		m.v6 = append(m.v6, pfx)
	}
	clearFl := uint8(0)
	if fl&flagStale != 0 {
		// Set by Apply, as desire would record: not the previous run's.
		clearFl = flagStale
		f.stale--
	}
	f.routes.mark(pfx, flagMoving, clearFl)
}

// releaseMove ends a hold: the held-back changes are appended to out, to
// be applied as ordinary changes. out must hold only released changes
// since releasedMoves was emptied: restoreMoves finds them by index.
func (f *FIB) releaseMove(from uint32, m *groupMove, out []Change) []Change {
	f.dropMove(from, m)
	lo := len(out)
	m.each(func(p netip.Prefix) { out = append(out, Change{Prefix: p, NextHops: m.hops}) })
	f.releasedMoves = append(f.releasedMoves, releasedMove{from: from, m: m, lo: lo})
	return out
}

// releasedMove is a move released to the changes from index lo on.
type releasedMove struct {
	from uint32
	m    *groupMove
	lo   int
}

// restoreMoves holds back again the released changes from index n on,
// which did not reach desire (an error stopped the Apply): they were
// reported applied when held, so they must not be lost. Their routes are
// still on the group they were held on.
func (f *FIB) restoreMoves(n int) {
	for _, r := range f.releasedMoves {
		m, skip := r.m, max(n-r.lo, 0)
		if skip >= m.len() {
			continue
		}
		back := &groupMove{hops: m.hops, key: m.key, since: m.since, touch: m.touch}
		if skip < len(m.v4) {
			back.v4, back.v6 = m.v4[skip:], m.v6
		} else {
			back.v6 = m.v6[skip-len(m.v4):]
		}
		if f.moves == nil {
			f.moves = map[uint32]*groupMove{}
		}
		if cur := f.moves[r.from]; cur != nil {
			back.v4, back.v6 = append(back.v4, cur.v4...), append(back.v6, cur.v6...)
		}
		f.moves[r.from] = back
		back.each(func(p netip.Prefix) { f.routes.mark(p, flagMoving, 0) })
	}
	f.releasedMoves = f.releasedMoves[:0]
}

// dropMove forgets a hold whose changes need no write (the group took
// them in place) or are being released.
func (f *FIB) dropMove(from uint32, m *groupMove) {
	delete(f.moves, from)
	m.each(func(p netip.Prefix) { f.routes.mark(p, 0, flagMoving) })
}

// each calls fn for every held prefix, IPv4 first: restoreMoves counts
// released changes in that order.
func (m *groupMove) each(fn func(netip.Prefix)) {
	for _, k := range m.v4 {
		fn(fromV4Key(k))
	}
	for _, p := range m.v6 {
		fn(p)
	}
}

// settleMoves applies the held-back changes that waited long enough (all
// of them with force) and returns when the next are due (zero: none). A
// move is forgotten only once its changes went through desire: those an
// error left unapplied wait again.
func (f *FIB) settleMoves(ctx context.Context, now time.Time, force bool) (time.Time, error) {
	var next time.Time
	var released []Change
	f.releasedMoves = f.releasedMoves[:0]
	for _, from := range slices.Sorted(maps.Keys(f.moves)) {
		m := f.moves[from]
		if due := dueAt(m.since, m.touch, f.holds > 0); !force && now.Before(due) {
			earlier(&next, due)
			continue
		}
		released = f.releaseMove(from, m, released)
	}
	if len(released) == 0 {
		return next, nil
	}
	_, n, err := f.applyN(ctx, released)
	if errors.Is(err, ErrPartial) {
		err = nil // the failed ones are pending: Maintain writes them again
	}
	if err != nil {
		f.restoreMoves(n)
		earlier(&next, now.Add(settleQuiet)) // try again, not at once
	}
	f.releasedMoves = f.releasedMoves[:0]
	return next, err
}
