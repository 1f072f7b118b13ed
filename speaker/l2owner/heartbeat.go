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
	var cur *coordinationv1.Lease
	absent := false // known not to exist
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.beatc:
		}
		start := time.Now()
		var ok bool
		cur, absent, ok = e.beat(ctx, cur, absent)
		wait := e.c.RenewInterval - time.Since(start)
		if !ok {
			wait = e.c.retryDelay()
		}
		t.Reset(wait)
	}
}

// beat is one renewal (or deletion); it returns the lease as written,
// whether it is known absent, and whether the attempt succeeded.
func (e *Elector) beat(ctx context.Context, cur *coordinationv1.Lease, absent bool) (*coordinationv1.Lease, bool, bool) {
	e.mu.Lock()
	cand, gen, policies := e.candidate(), e.candGen, joinList(e.policies)
	e.mu.Unlock()
	if !cand {
		if absent {
			return nil, true, true
		}
		ok := e.deleteHeartbeat(ctx) == nil
		return nil, ok, ok
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, e.c.renewTimeout())
	defer cancel()
	api := e.beatAPI.CoordinationV1().Leases(e.c.Namespace)
	if cur == nil && !absent {
		got, err := api.Get(ctx, NodeLeaseName(e.c.Node), metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			e.c.Log.Warn("l2owner: reading heartbeat", "err", err)
			return nil, false, false
		default:
			cur = got
		}
	}
	l := e.heartbeatLease(cur, policies, start)
	var (
		got *coordinationv1.Lease
		err error
	)
	if l.ResourceVersion == "" {
		got, err = api.Create(ctx, l, metav1.CreateOptions{})
	} else {
		got, err = api.Update(ctx, l, metav1.UpdateOptions{})
	}
	if err != nil {
		e.c.Log.Warn("l2owner: renewing heartbeat", "err", err)
		return nil, false, false // read it again next time
	}
	e.mu.Lock()
	if e.candGen == gen {
		e.renewedAt = start
	}
	e.mu.Unlock()
	e.kick()
	return got, false, true
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
