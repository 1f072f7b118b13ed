package fib

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// Resilient configures resilient nexthop groups (Linux 5.13+; see the
// kernel's Documentation/networking/nexthop-group-resilient.rst). A
// resilient group spreads flows over a table of buckets, each bucket
// holding one member: when a member leaves, only its buckets go to the
// others, and flows on the surviving members stay where they are, which a
// hash-threshold (mpath) group does not promise. When a member joins or a
// weight changes, buckets move to it once idle (IdleTimer), or after
// UnbalancedTimer even if busy.
type Resilient struct {
	// Off uses hash-threshold groups even where the kernel has resilient
	// ones. Without nexthop objects neither is used.
	Off bool
	// Buckets is the size of every group's bucket table; default 256, so
	// that each member of the largest set (MaxNextHops) has a bucket. A
	// member's share is rounded to whole buckets: 256 keeps the error
	// under 1/256 of the traffic per member, at a few KiB per group. The
	// kernel cannot change it in place: after a change, routes move to new
	// groups at Open, make-before-break.
	Buckets uint16
	// IdleTimer is how long a bucket must carry no traffic before it may
	// move to another member; default 120s (the kernel's). Whole seconds.
	IdleTimer time.Duration
	// UnbalancedTimer, when positive, is how long a group may stay
	// unbalanced before busy buckets are moved too (which moves their
	// flows); 0 never moves a busy bucket, as the kernel does by default,
	// so a member that joins a group whose buckets never go idle may
	// stay short of its share. Whole seconds.
	UnbalancedTimer time.Duration
}

const (
	defaultBuckets   = MaxNextHops
	defaultIdleTimer = 120 * time.Second
	// maxTimer is the most a clock_t in a u32 (1/100 s) holds.
	maxTimer = (1<<32 - 1) * 10 * time.Millisecond
)

func (r Resilient) withDefaults() (Resilient, error) {
	if r.Buckets == 0 {
		r.Buckets = defaultBuckets
	}
	if r.IdleTimer == 0 {
		r.IdleTimer = defaultIdleTimer
	}
	switch {
	case r.IdleTimer < 0 || r.IdleTimer > maxTimer || r.IdleTimer%time.Second != 0:
		return r, fmt.Errorf("fib: resilient idle timer %v: want whole seconds up to %v", r.IdleTimer, maxTimer.Truncate(time.Second))
	case r.UnbalancedTimer < 0 || r.UnbalancedTimer > maxTimer || r.UnbalancedTimer%time.Second != 0:
		return r, fmt.Errorf("fib: resilient unbalanced timer %v: want whole seconds up to %v", r.UnbalancedTimer, maxTimer.Truncate(time.Second))
	}
	return r, nil
}

// form is the group form r asks for. Timers are whole seconds, so that
// they survive the kernel's conversion to jiffies and back whatever HZ is.
func (r Resilient) form() groupForm {
	return groupForm{
		resilient:  true,
		buckets:    r.Buckets,
		idle:       uint32(r.IdleTimer / (10 * time.Millisecond)),
		unbalanced: uint32(r.UnbalancedTimer / (10 * time.Millisecond)),
	}
}

// groupForm decides the form of our groups: resilient when configured and
// the kernel has them, else hash-threshold, said once in the log.
func (f *FIB) groupForm(ctx context.Context) (groupForm, error) {
	if f.cfg.Resilient.Off {
		return groupForm{}, nil
	}
	ok, err := f.probeResilient(ctx)
	if err != nil {
		return groupForm{}, err
	}
	if !ok {
		f.log.Warn("fib: the kernel has no resilient nexthop groups (Linux 5.13+): ECMP uses hash-threshold groups, " +
			"so flows on the other next hops may move when one leaves")
		return groupForm{}, nil
	}
	return f.cfg.Resilient.form(), nil
}

// probeResilient asks for the bucket table of one id of our range: a
// kernel without resilient groups does not know the request
// (EOPNOTSUPP); one with them answers with the buckets, or that the
// group is missing (ENOENT) or not resilient (EINVAL).
func (f *FIB) probeResilient(ctx context.Context) (bool, error) {
	var req msgBuf
	seq := f.c.nextSeq(1)
	req.dumpBuckets(seq, f.cfg.NextHopIDBase)
	err := f.c.dump(ctx, req.b, seq, func(nlMsg) error { return nil })
	switch {
	case err == nil || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINVAL):
		return true, nil
	case errors.Is(err, unix.EOPNOTSUPP):
		return false, nil
	}
	return false, fmt.Errorf("fib: probing resilient nexthop groups: %w", err)
}

// ResilientGroups reports whether ECMP routes use resilient groups.
func (f *FIB) ResilientGroups() bool { return f.form.resilient }

// GroupType names how ECMP routes are balanced: "resilient" or "mpath"
// (nexthop groups), or "inline" (RTA_MULTIPATH, hash-threshold too).
func (f *FIB) GroupType() string {
	switch {
	case !f.useNH:
		return "inline"
	case f.form.resilient:
		return "resilient"
	}
	return "mpath"
}

// rekeyAhead changes groups in place before the changes of an Apply are
// planned, where the changes move every route of a group to one new set
// that has no group yet: what a peer that leaves (or joins) does to the
// routes it shares with others, when the router sweeps them in one call.
// A new resilient group would deal its buckets out afresh and move flows
// between the members that stayed; the group changed in place keeps their
// buckets, and every route moves at once. Planned after, the changes find
// their prefixes' routes through the group as desired: nothing else is
// written.
func (f *FIB) rekeyAhead(ctx context.Context, changes []Change) error {
	if !f.useNH || !f.form.resilient || len(changes) == 0 {
		return nil
	}
	var marked []netip.Prefix
	current := func(p netip.Prefix) (uint32, bool) {
		set, fl, ok := f.routes.lookup(p)
		if !ok || fl&flagSeen != 0 {
			return set, false
		}
		f.routes.mark(p, flagSeen, 0)
		marked = append(marked, p)
		return set, true
	}
	plan := rekeys(changes, current, f.sets)
	for _, p := range marked {
		f.routes.mark(p, 0, flagSeen)
	}
	if len(plan) == 0 {
		return nil
	}
	var created, deleted []uint32
	for _, r := range plan {
		var err error
		if created, deleted, err = f.sets.rekeyTo(r.from, r.hops, created, deleted); err != nil {
			return err
		}
		created = append(created, r.from)
		f.stats.Rekeyed++
	}
	if err := f.ensureObjects(ctx, created); err != nil {
		return err
	}
	for _, r := range plan {
		if f.sets.objs[r.from].bad != nil {
			// The kernel kept the old group: its routes must be compared.
			f.resync = true
		}
	}
	return f.deleteNexthops(ctx, deleted)
}

// rekey is a group to change in place and the canonical set it takes on.
type rekey struct {
	from uint32
	hops []NextHop
}

// rekeys decides which groups change in place: those all of whose routes
// (by reference count) the changes move to one new set of two or more
// next hops that has no group yet. current gives the set a prefix's route
// has now, and false for a prefix without one or seen before in changes
// (a prefix that repeats disqualifies its group: its last change wins).
// When several groups move wholly to one new set, the one with most routes
// (then the lowest id) is kept; the others' routes move to it.
func rekeys(changes []Change, current func(netip.Prefix) (uint32, bool), t *nhTable) []rekey {
	type move struct {
		key   []byte
		hops  []NextHop
		n     int
		mixed bool // some route stays, or leaves for another set
	}
	moves := map[uint32]*move{}
	var keyBuf []byte
	var hs []NextHop
	for _, c := range changes {
		pfx := c.Prefix.Masked()
		from, first := current(pfx)
		g := t.objs[from]
		if g == nil || !g.group() {
			continue
		}
		m := moves[from]
		if m == nil {
			m = &move{}
			moves[from] = m
		}
		m.n++
		if m.mixed {
			continue
		}
		if !first {
			m.mixed = true
			continue
		}
		hs = canonicalHops(hs[:0], c.NextHops)
		hops, _, _ := usableShape(pfx, hs)
		keyBuf = appendKey(keyBuf[:0], hops)
		if m.key == nil {
			m.key = slices.Clone(keyBuf)
			m.hops = slices.Clone(hops)
		}
		_, exists := t.index[string(keyBuf)]
		m.mixed = len(hops) < 2 || exists || string(keyBuf) != string(m.key)
	}
	var out []rekey
	for from, m := range moves {
		if !m.mixed && m.n == t.objs[from].refs {
			out = append(out, rekey{from: from, hops: m.hops})
		}
	}
	// Most routes first, then by id: the first of a set is kept.
	slices.SortFunc(out, func(a, b rekey) int {
		if c := cmp.Compare(t.objs[b.from].refs, t.objs[a.from].refs); c != 0 {
			return c
		}
		return cmp.Compare(a.from, b.from)
	})
	seen := map[string]bool{}
	return slices.DeleteFunc(out, func(r rekey) bool {
		k := string(appendKey(nil, r.hops))
		dup := seen[k]
		seen[k] = true
		return dup
	})
}
