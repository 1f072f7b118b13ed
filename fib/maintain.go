package fib

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"
)

// MaintainOptions tune Maintain. Zero fields take defaults.
type MaintainOptions struct {
	// ResyncInterval is how often the whole kernel state is compared with
	// the desired state, the safety net under the notifications; default 5
	// minutes.
	ResyncInterval time.Duration
	// Grace is how long after Open the routes of a previous run are kept
	// while peers reconnect; those Apply has not set by then are deleted.
	// 0 keeps them until EndGrace.
	Grace time.Duration
	// Coalesce is how long route notifications are gathered before the
	// routes they name are repaired; default 20 ms. Link and address
	// changes wait 5 times as long, since they come in bursts.
	Coalesce time.Duration
	// MaxBackoff bounds the wait between retries of failed writes; they
	// start at 100 ms and double. Default 30 s.
	MaxBackoff time.Duration
}

func (o MaintainOptions) withDefaults() MaintainOptions {
	if o.ResyncInterval <= 0 {
		o.ResyncInterval = 5 * time.Minute
	}
	if o.Coalesce <= 0 {
		o.Coalesce = 20 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	return o
}

const minBackoff = 100 * time.Millisecond

// schedule is the pure timing state of Maintain: when each kind of work
// is next due (zero: not due).
type schedule struct {
	repair, resync, periodic, grace, settle time.Time
	backoff                                 time.Duration
}

// earlier sets *t to at unless it is already due sooner.
func earlier(t *time.Time, at time.Time) {
	if t.IsZero() || at.Before(*t) {
		*t = at
	}
}

// next is the earliest due time.
func (s *schedule) next() time.Time {
	var n time.Time
	for _, t := range []time.Time{s.repair, s.resync, s.periodic, s.grace, s.settle} {
		if !t.IsZero() {
			earlier(&n, t)
		}
	}
	return n
}

// Maintain keeps the kernel equal to the desired state until ctx ends: it
// follows the kernel's route, nexthop, link and address notifications and
// writes again the routes of ours that were deleted or changed behind our
// back, within the Coalesce time; it compares everything after links or
// addresses change (gateways are looked up again, routes flushed with an
// interface come back), after the notification socket overran, and every
// ResyncInterval; it retries failed writes with backoff; and it deletes the
// stale routes of a previous run when the grace time ends. The caller owns
// the goroutine that runs it.
func (f *FIB) Maintain(ctx context.Context, o MaintainOptions) error {
	o = o.withDefaults()
	mon, err := f.dialMonitor()
	if err != nil {
		return err
	}
	f.watchWriter(mon, true)
	events := make(chan event, 256)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		f.readEvents(mon, events, stop)
	}()
	defer func() {
		close(stop)
		f.unwatch()
		mon.close()
		wg.Wait()
	}()
	now := time.Now()
	// Notifications before the subscription are lost: compare once.
	s := schedule{resync: now, periodic: now.Add(o.ResyncInterval), backoff: minBackoff}
	if o.Grace > 0 {
		s.grace = f.openedAt.Add(o.Grace)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now = time.Now()
		if err := f.due(ctx, &s, now, o); err != nil {
			return err
		}
		if n := s.next(); !n.IsZero() {
			timer.Reset(max(time.Until(n), 0))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		case <-f.kick:
			earlier(&s.settle, time.Now().Add(settleQuiet))
		case e := <-events:
			f.onEvent(e, &s, o)
			// Take what else is queued before acting: a storm is handled
			// as one.
			for more := true; more; {
				select {
				case e := <-events:
					f.onEvent(e, &s, o)
				default:
					more = false
				}
			}
		}
	}
}

func (f *FIB) onEvent(e event, s *schedule, o MaintainOptions) {
	now := time.Now()
	switch e.kind {
	case evRoute:
		f.mu.Lock()
		marked := f.noteRoute(e)
		f.mu.Unlock()
		if marked {
			earlier(&s.repair, now.Add(o.Coalesce))
		}
	case evResync:
		earlier(&s.resync, now.Add(5*o.Coalesce))
	case evOverrun:
		f.mu.Lock()
		f.stats.Overruns++
		f.mu.Unlock()
		// Let the storm that overran the socket settle first.
		earlier(&s.resync, now.Add(time.Second))
	}
}

// due does the work whose time has come.
func (f *FIB) due(ctx context.Context, s *schedule, now time.Time, o MaintainOptions) error {
	var err error
	switch {
	case !s.grace.IsZero() && !now.Before(s.grace):
		s.grace = time.Time{}
		_, err = f.EndGrace(ctx)
	case !s.resync.IsZero() && !now.Before(s.resync), !now.Before(s.periodic):
		s.resync, s.repair = time.Time{}, time.Time{}
		s.periodic = now.Add(o.ResyncInterval)
		_, err = f.Sync(ctx)
	case !s.repair.IsZero() && !now.Before(s.repair):
		s.repair = time.Time{}
		err = f.repair(ctx)
	case !s.settle.IsZero() && !now.Before(s.settle):
		s.settle, err = f.settleDue(ctx, now)
	default:
		return nil
	}
	if errors.Is(err, ErrClosed) || ctx.Err() != nil {
		return err
	}
	if err != nil {
		f.log.Warn("fib: maintenance round failed; retrying", "err", err, "in", s.backoff)
	}
	f.mu.Lock()
	retry := f.pending || len(f.extras) > 0 || f.resync || err != nil
	f.mu.Unlock()
	if retry {
		earlier(&s.repair, now.Add(s.backoff))
		s.backoff = min(2*s.backoff, o.MaxBackoff)
	} else {
		s.backoff = minBackoff
	}
	return nil
}

// repair writes the pending routes again.
func (f *FIB) repair(ctx context.Context) error {
	if err := f.enter(); err != nil {
		return err
	}
	defer f.mu.Unlock()
	if f.resync {
		_, err := f.resyncAll(ctx)
		return err
	}
	f.stats.Retries++
	res, err := f.flush(ctx)
	if n := len(res.Failed); n > 0 {
		f.log.Debug("fib: repair left routes pending", "count", n, "first", res.Failed[0].Change.Prefix, "err", res.Failed[0].Err)
	}
	if err == nil && f.oldKey == (routeKey{}) {
		err = f.saveState()
	}
	return err
}

// settleDue writes the deferred deletes that are due and returns when the
// next are.
func (f *FIB) settleDue(ctx context.Context, now time.Time) (time.Time, error) {
	if err := f.enter(); err != nil {
		return time.Time{}, err
	}
	defer f.mu.Unlock()
	return f.settle(ctx, now, false)
}

// EndGrace deletes the routes of a previous run that Apply has not set
// since Open (say, once every peer has sent End-of-RIB), and ends the grace
// time. Maintain calls it when MaintainOptions.Grace ends.
func (f *FIB) EndGrace(ctx context.Context) (Result, error) {
	if err := f.enter(); err != nil {
		return Result{}, err
	}
	defer f.mu.Unlock()
	var res Result
	if f.stale > 0 {
		f.log.Info("fib: grace time over, deleting routes that did not come back", "count", f.stale)
	}
	var cs []Change
	for f.stale > 0 {
		cs = cs[:0]
		f.routes.each(func(p netip.Prefix, _ uint32, fl uint8) uint8 {
			if fl&flagStale != 0 && len(cs) < graceChunk {
				cs = append(cs, Change{Prefix: p})
			}
			return 0
		})
		if len(cs) == 0 {
			f.stale = 0
			break
		}
		part, err := f.apply(ctx, cs)
		res.add(part)
		if err != nil && !errors.Is(err, ErrPartial) {
			return res, err
		}
	}
	return res, nil
}
