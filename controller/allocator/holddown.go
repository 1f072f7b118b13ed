package allocator

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

// Held is one held-down address: nobody holds it, and until Until only
// Service (which released it) gets it automatically.
type Held struct {
	Addr netip.Addr
	// Pool is the pool the address lies in, "" when none covers it now.
	Pool    string
	Service lbmodel.Key
	Until   time.Time
}

// HeldDown lists the hold-downs in force at now (expiring those that ended),
// ordered by address. The reconciler persists them, so that a restarted
// controller or a new leader keeps them for their full time (see
// RestoreHoldDown).
func (a *Allocator) HeldDown(now time.Time) []Held {
	a.clock(now)
	out := make([]Held, 0, len(a.released))
	for x, r := range a.released {
		h := Held{Addr: x, Service: r.key, Until: r.at.Add(a.cfg.HoldDown)}
		if p := a.ix.poolOf(x); p != nil {
			h.Pool = p.Name
		}
		out = append(out, h)
	}
	slices.SortFunc(out, func(p, q Held) int { return p.Addr.Compare(q.Addr) })
	return out
}

// RestoreHoldDown holds x down until until, as released by key: a
// hold-down a previous controller started and persisted. It is ignored (and
// false returned) when hold-down is disabled, when until is not after now,
// when x is held (call it after restoring the Services) or already held
// down, or when x is not a valid address. A hold-down longer than the
// configured one (the previous controller had a longer HoldDown) is kept
// whole: the promise was made to the caches already pointing at x.
func (a *Allocator) RestoreHoldDown(x netip.Addr, key lbmodel.Key, until, now time.Time) bool {
	now = a.clock(now)
	if a.cfg.HoldDown <= 0 || !until.After(now) || !x.IsValid() || x.Zone() != "" || x.Is4In6() ||
		len(a.holders[x]) > 0 {
		return false
	}
	if _, ok := a.released[x]; ok {
		return false
	}
	at := until.Add(-a.cfg.HoldDown)
	a.released[x] = release{key: key, at: at}
	a.releasedBy[key] = append(a.releasedBy[key], x)
	a.enqueue(x, at)
	if p := a.ix.poolOf(x); p != nil {
		p.holdDown[fi(FamilyOf(x))]++
	}
	return true
}

// enqueue queues a hold-down started at at, keeping the queue in release
// order. Releases happen in time order, so this is an append, except for a
// restored hold-down, which may start before ones already queued, or after
// (one longer than the configured length).
func (a *Allocator) enqueue(x netip.Addr, at time.Time) {
	if n := len(a.queue); n == a.qhead || !at.Before(a.queue[n-1].at) {
		a.queue = append(a.queue, queued{addr: x, at: at})
		return
	}
	i, _ := slices.BinarySearchFunc(a.queue[a.qhead:], at, func(e queued, t time.Time) int {
		return cmp.Or(e.at.Compare(t), -1)
	})
	a.queue = slices.Insert(a.queue, a.qhead+i, queued{addr: x, at: at})
}
