package fib

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"time"
)

// Reconciler decides the fate of the routes a previous run left in the
// kernel. After a restart they keep forwarding while peers reconnect; every
// prefix the daemon sets or deletes becomes the daemon's again, and those it
// has not touched when the grace time ends are deleted. Graceful restart
// gives peers the same kind of window to re-announce.
//
// Reconciler is a pure state machine over plain values and explicit times;
// Run is the timer shell that drives it. It is not safe for concurrent use.
type Reconciler struct {
	stale    map[netip.Prefix]struct{}
	deadline time.Time
	done     bool
}

// NewReconciler starts the grace time at now for the stale routes (as Dump
// returns them right after Open).
func NewReconciler(stale []Route, now time.Time, grace time.Duration) *Reconciler {
	r := &Reconciler{stale: make(map[netip.Prefix]struct{}, len(stale)), deadline: now.Add(grace)}
	for _, s := range stale {
		r.stale[s.Prefix.Masked()] = struct{}{}
	}
	r.done = len(r.stale) == 0
	return r
}

// Observe records changes the daemon is about to apply: their prefixes are
// no longer stale, whatever the change does.
func (r *Reconciler) Observe(changes []Change) {
	if r.done {
		return
	}
	for _, c := range changes {
		delete(r.stale, c.Prefix.Masked())
	}
}

// Expire returns, once now has reached the deadline, deletions for every
// route still stale, and ends the grace; before that, and ever after, it
// returns nothing.
func (r *Reconciler) Expire(now time.Time) []Change {
	if r.done || now.Before(r.deadline) {
		return nil
	}
	return r.Finish()
}

// Finish ends the grace early (say, every configured peer has sent its
// End-of-RIB) and returns deletions for the routes still stale, sorted by
// prefix.
func (r *Reconciler) Finish() []Change {
	if r.done {
		return nil
	}
	r.done = true
	out := make([]Change, 0, len(r.stale))
	for p := range r.stale {
		out = append(out, Change{Prefix: p})
	}
	clear(r.stale)
	sortChanges(out)
	return out
}

// Deadline is when the grace ends; ok is false once it has.
func (r *Reconciler) Deadline() (t time.Time, ok bool) {
	return r.deadline, !r.done
}

// Stale is the number of routes still waiting for their paths to come back.
func (r *Reconciler) Stale() int { return len(r.stale) }

// IsStale reports whether p is still waiting.
func (r *Reconciler) IsStale(p netip.Prefix) bool {
	_, ok := r.stale[p.Masked()]
	return ok
}

// Applier is what Run needs of a FIB.
type Applier interface {
	Apply(ctx context.Context, changes []Change) (Result, error)
}

// Run is the FIB writer: it applies every batch of changes from in, first
// showing it to r, and applies r's deletions when the grace ends. It
// returns when ctx ends, when in is closed, or on an Apply error other than
// a partial failure (failures are logged; the daemon's next Sync repairs
// them).
func (r *Reconciler) Run(ctx context.Context, a Applier, in <-chan []Change, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var timer *time.Timer
	var expiry <-chan time.Time
	if d, ok := r.Deadline(); ok {
		timer = time.NewTimer(time.Until(d))
		defer timer.Stop()
		expiry = timer.C
	}
	apply := func(changes []Change, why string) error {
		if len(changes) == 0 {
			return nil
		}
		res, err := a.Apply(ctx, changes)
		for _, f := range res.Failed {
			log.Warn("fib change failed", "prefix", f.Change.Prefix, "err", f.Err)
		}
		if err != nil && !errors.Is(err, ErrPartial) {
			return err
		}
		log.Debug("fib applied", "why", why, "added", res.Added, "replaced", res.Replaced,
			"deleted", res.Deleted, "failed", len(res.Failed))
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case now := <-expiry:
			if d, ok := r.Deadline(); ok && now.Before(d) {
				timer.Reset(d.Sub(now))
				continue
			}
			expiry = nil
			stale := r.Expire(now)
			log.Info("fib grace time over, deleting routes that did not come back", "count", len(stale))
			if err := apply(stale, "grace"); err != nil {
				return err
			}
		case changes, ok := <-in:
			if !ok {
				return nil
			}
			r.Observe(changes)
			if err := apply(changes, "rib"); err != nil {
				return err
			}
		}
	}
}

func sortChanges(cs []Change) {
	slices.SortFunc(cs, func(a, b Change) int { return comparePrefix(a.Prefix, b.Prefix) })
}
