package l2owner

import (
	"context"
	"math"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// heartbeat renews this node's heartbeat lease every RenewInterval while
// it is a candidate (a failed renewal is retried sooner), and deletes it
// while it is not. It runs apart from the deciding loop so that a hanging
// API call never delays the fence.
func (e *Elector) heartbeat(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	hb := beatState{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.beatc:
		}
		start := time.Now()
		ok := e.beat(ctx, &hb)
		wait := e.c.RenewInterval - time.Since(start)
		if !ok {
			wait = e.c.retryDelay()
		}
		t.Reset(wait)
	}
}

// beatState is the heartbeat goroutine's knowledge of its lease.
type beatState struct {
	cur    *coordinationv1.Lease // as last written or read; nil: read it first
	absent bool                  // known not to exist
}

// beat is one renewal (or deletion), and says whether it succeeded or
// there was nothing to do.
func (e *Elector) beat(ctx context.Context, hb *beatState) bool {
	e.mu.Lock()
	cand, gen, policies := e.candidate(), e.candGen, joinList(e.policies)
	set, stopping, applied := e.candSet, e.stopping, e.appliedGen
	stuck := time.Since(e.stepAt) > 2*e.c.RenewInterval
	fence := e.renewedAt.Add(e.c.LeaseDuration - e.c.fenceMargin())
	e.mu.Unlock()
	switch {
	case !set || stopping:
		// Nothing known yet, or Stop deletes it itself.
		return true
	case !cand && applied != gen:
		return false // the loop has not stopped answering yet; it wakes this
	case !cand:
		if hb.absent {
			return true
		}
		ok := e.deleteHeartbeat(ctx) == nil
		hb.cur, hb.absent = nil, ok
		return ok
	case stuck:
		// A loop blocked (in OnChange or OnTransition) must not keep the
		// node live: its addresses would go unanswered.
		e.c.Log.Warn("l2owner: deciding loop stuck; not renewing the heartbeat")
		e.kick()
		return false
	}
	start := time.Now()
	// A renewal may take as long as the fence holds: a slow API server
	// must not turn every attempt into a timeout.
	ctx, cancel := context.WithDeadline(ctx, later(fence, start.Add(e.c.minRenewTimeout())))
	defer cancel()
	got, err := e.renew(ctx, hb, policies, start)
	defer e.kick()
	if err != nil {
		e.c.Log.Warn("l2owner: renewing heartbeat", "err", err)
		return false
	}
	hb.cur, hb.absent = got, false
	e.mu.Lock()
	renewed := e.candGen == gen
	if renewed {
		e.renewedAt = start
	}
	e.mu.Unlock()
	if renewed && e.c.OnFence != nil {
		e.c.OnFence(start.Add(e.c.LeaseDuration - e.c.fenceMargin()))
	}
	return true
}

// renew writes the heartbeat once. The version it writes against is kept
// across failures: only a Conflict makes it read the lease again, so that
// against a slow API server an attempt costs one request, not two.
func (e *Elector) renew(ctx context.Context, hb *beatState, policies string, start time.Time) (*coordinationv1.Lease, error) {
	api := e.beatAPI.CoordinationV1().Leases(e.c.Namespace)
	if hb.cur == nil && !hb.absent {
		got, err := api.Get(ctx, NodeLeaseName(e.c.Node), metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			hb.absent = true
		case err != nil:
			return nil, err
		default:
			hb.cur = got
		}
	}
	l := e.heartbeatLease(hb.cur, policies, start)
	var (
		got *coordinationv1.Lease
		err error
	)
	if l.ResourceVersion == "" {
		got, err = api.Create(ctx, l, metav1.CreateOptions{})
	} else {
		got, err = api.Update(ctx, l, metav1.UpdateOptions{})
	}
	switch {
	case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err):
		hb.cur, hb.absent = nil, false
	case apierrors.IsNotFound(err):
		hb.cur, hb.absent = nil, true
	}
	return got, err
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (e *Elector) heartbeatLease(cur *coordinationv1.Lease, policies string, now time.Time) *coordinationv1.Lease {
	var l *coordinationv1.Lease
	if cur == nil {
		l = e.newLease(NodeLeaseName(e.c.Node), kindNode)
	} else {
		l = cur.DeepCopy()
		if l.Annotations == nil {
			l.Annotations = map[string]string{}
		}
		if l.Labels == nil {
			l.Labels = map[string]string{}
		}
		l.Labels[labelKind] = kindNode
	}
	node := e.c.Node
	secs := int32(math.Ceil(e.c.LeaseDuration.Seconds()))
	l.Spec.HolderIdentity = &node
	l.Spec.LeaseDurationSeconds = &secs
	l.Spec.RenewTime = &metav1.MicroTime{Time: now}
	if l.Spec.AcquireTime == nil {
		l.Spec.AcquireTime = &metav1.MicroTime{Time: now}
	}
	l.Annotations[annDuration] = e.c.LeaseDuration.String()
	l.Annotations[annPolicies] = policies
	return l
}

// deleteHeartbeat deletes this node's heartbeat: observers count it dead
// at once.
func (e *Elector) deleteHeartbeat(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*e.c.RenewInterval)
	defer cancel()
	err := e.beatAPI.CoordinationV1().Leases(e.c.Namespace).Delete(ctx, NodeLeaseName(e.c.Node), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		e.c.Log.Warn("l2owner: deleting heartbeat", "err", err)
		return err
	}
	e.mu.Lock()
	e.renewedAt = time.Time{}
	e.mu.Unlock()
	return nil
}
