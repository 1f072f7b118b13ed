package fib

import (
	"context"
	"errors"
	"fmt"
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
	// Buckets is the size of every group's bucket table, MinBuckets to
	// MaxBuckets; default 256, so that each member of the largest set
	// (MaxNextHops) has a bucket: with fewer, a member left without one
	// would get no traffic while its route says it does. A
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
	// MinBuckets gives every member of the largest set a bucket.
	MinBuckets = MaxNextHops
	// MaxBuckets bounds the kernel memory of a group's table (tens of
	// bytes a bucket, per group): 8192 keeps a member's share within
	// 1/8192, finer than hashing spreads flows anyway.
	MaxBuckets = 8192

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
	case r.Buckets < MinBuckets || r.Buckets > MaxBuckets:
		return r, fmt.Errorf("fib: Resilient.Buckets %d: want %d..%d, so that every member of a set of %d has a bucket", r.Buckets, MinBuckets, MaxBuckets, MaxNextHops)
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
		if ctx.Err() != nil {
			return groupForm{}, err
		}
		// Hash-threshold groups still balance: not worth failing Open.
		f.log.Warn("fib: could not tell whether the kernel has resilient nexthop groups: ECMP uses hash-threshold groups, "+
			"so flows on the other next hops may move when one leaves", "err", err)
		return groupForm{}, nil
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
