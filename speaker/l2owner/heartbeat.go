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
// it is a candidate, and deletes it while it is not. It runs apart from
// the deciding loop so that a hanging API call never delays the fence.
func (e *Elector) heartbeat(ctx context.Context) {
	t := time.NewTicker(e.c.RenewInterval)
	defer t.Stop()
	var cur *coordinationv1.Lease
	absent := false // known not to exist
	for {
		cur, absent = e.beat(ctx, cur, absent)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.beatc:
		}
	}
}

// beat is one renewal (or deletion); it returns the lease as written.
func (e *Elector) beat(ctx context.Context, cur *coordinationv1.Lease, absent bool) (*coordinationv1.Lease, bool) {
	e.mu.Lock()
	cand, gen, policies := e.candidate(), e.candGen, joinList(e.policies)
	e.mu.Unlock()
	if !cand {
		if absent {
			return nil, true
		}
		return nil, e.deleteHeartbeat(ctx) == nil
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, e.c.RenewInterval)
	defer cancel()
	api := e.client.CoordinationV1().Leases(e.c.Namespace)
	if cur == nil && !absent {
		got, err := api.Get(ctx, NodeLeaseName(e.c.Node), metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			e.c.Log.Warn("l2owner: reading heartbeat", "err", err)
			return nil, false
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
		return nil, false // read it again next time
	}
	e.mu.Lock()
	if e.candGen == gen {
		e.renewedAt = start
	}
	e.mu.Unlock()
	e.kick()
	return got, false
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
	err := e.client.CoordinationV1().Leases(e.c.Namespace).Delete(ctx, NodeLeaseName(e.c.Node), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		e.c.Log.Warn("l2owner: deleting heartbeat", "err", err)
		return err
	}
	e.mu.Lock()
	e.renewedAt = time.Time{}
	e.mu.Unlock()
	return nil
}
