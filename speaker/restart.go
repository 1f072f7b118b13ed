package speaker

import (
	"cmp"
	"context"
	"encoding/json"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/internal/lbmodel"
	"github.com/bgplb/bgplb/speaker/announce"
)

// DefaultRestartTime is the graceful restart time a speaker announces
// (RFC 4724): how long a router keeps this node's routes after the
// speaker left without a word, until the new process is back. A DaemonSet
// rolling update pulls and starts the new image within it on a sound
// node; a speaker that does not come back loses the routes after it.
const DefaultRestartTime = 120 * time.Second

// AnnotationRestartingUntil on a BGPSessionStatus is the restart marker:
// a speaker that left the session for a graceful restart writes until
// when the router keeps its routes (RFC 3339). The next process on the
// node reads it at start: a session whose marker has not expired is a
// restart, and its first OPEN carries the R bit (RFC 4724 §3). An API
// object rather than a file on the node: it needs no volume, the
// operator sees it (kubectl get bgpsess -o yaml), and it survives the pod
// being replaced, which an emptyDir does not.
const AnnotationRestartingUntil = "bgplb.io/graceful-restart-until"

// gracefulRestart is the session setting for a peer: the capability when
// the BGPRouter asks for it, the F bit always (kube-proxy, the data plane,
// keeps forwarding while the speaker restarts), the R bit for a peer whose
// restart marker was found at start.
func gracefulRestart(p *lbmodel.Peer, restartTime time.Duration, restarting bool) *session.GracefulRestart {
	if !p.Spec.GracefulRestart {
		return nil
	}
	return &session.GracefulRestart{Time: restartTime, Forwarding: true, Restarting: restarting}
}

// restartingPeers are the peers whose restart marker at now says this
// process is the restart the router waits for.
func restartingPeers(items []v1alpha1.BGPSessionStatus, node string, now time.Time) map[string]bool {
	out := map[string]bool{}
	for _, s := range items {
		if s.Spec.Node != node {
			continue
		}
		until, err := time.Parse(time.RFC3339, s.Annotations[AnnotationRestartingUntil])
		if err == nil && now.Before(until) {
			out[s.Spec.Peer] = true
		}
	}
	return out
}

// noteRestarting takes the peers whose routers kept this node's routes
// (the markers the previous process left, restartingPeers).
func (s *Speaker) noteRestarting(peers map[string]bool) {
	s.restarting = peers
	if len(s.restarting) > 0 {
		s.log.Info("graceful restart: the routers kept this node's routes", "peers", len(s.restarting))
	}
}

// markRestart writes the restart marker on the session reports of the
// peers that keep our routes.
func (s *Speaker) markRestart(ctx context.Context, kept []string) {
	until := time.Now().Add(s.o.RestartTime).UTC().Format(time.RFC3339)
	p, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{AnnotationRestartingUntil: until}}})
	if err != nil {
		return
	}
	for _, peer := range kept {
		obj := &v1alpha1.BGPSessionStatus{ObjectMeta: metav1.ObjectMeta{Name: objectName(s.o.NodeName, peer)}}
		err := s.c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, p))
		if apierrors.IsNotFound(err) {
			// Stopped before its first report was written: the marker
			// makes the report.
			obj.Labels = map[string]string{v1alpha1.LabelNode: labelValue(s.o.NodeName)}
			obj.Annotations = map[string]string{AnnotationRestartingUntil: until}
			obj.Spec = v1alpha1.BGPSessionStatusSpec{Node: s.o.NodeName, Peer: peer}
			if s.owner != nil {
				obj.OwnerReferences = []metav1.OwnerReference{*s.owner}
			}
			err = s.c.Create(ctx, obj)
		}
		if err != nil {
			s.log.Warn("writing the restart marker", "peer", peer, "err", err)
		}
	}
}

// clearRestarting drops the R bit of the peers whose first session after
// the restart is up (the session package already cleared it on the wire;
// this keeps a later session, after a settings change, from carrying it),
// and counts them. The run goroutine's.
func (s *Speaker) clearRestarting(st []announce.PeerStatus) {
	for _, p := range st {
		if s.restarting[p.Name] && p.State == session.Established {
			delete(s.restarting, p.Name)
			s.restarted.Add(1)
			s.log.Info("graceful restart: session up again", "peer", p.Name, "graceful_restart", p.GracefulRestart)
		}
	}
}

// readPodFacts reads what a stopping speaker needs of its own pod and
// DaemonSet (through the pod's owner), uncached: the speaker watches
// neither. Without --pod-name nothing is known.
func (s *Speaker) readPodFacts(ctx context.Context, node *corev1.Node) podFacts {
	if s.o.PodName == "" || node == nil {
		return podFacts{}
	}
	var pod corev1.Pod
	if err := s.api.Get(ctx, types.NamespacedName{Namespace: s.o.Namespace, Name: s.o.PodName}, &pod); err != nil {
		s.log.Warn("reading this speaker's pod", "err", err)
		return podFacts{}
	}
	var disrupted string
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue {
			disrupted = cmp.Or(c.Reason, "unknown reason")
		}
	}
	owner := metav1.GetControllerOf(&pod)
	if owner == nil || owner.Kind != "DaemonSet" {
		return podFacts{disrupted: disrupted}
	}
	var ds appsv1.DaemonSet
	err := s.api.Get(ctx, types.NamespacedName{Namespace: pod.Namespace, Name: owner.Name}, &ds)
	switch {
	case apierrors.IsNotFound(err):
		return podFacts{disrupted: disrupted, known: true, gone: true}
	case err != nil:
		s.log.Warn("reading this speaker's DaemonSet", "err", err)
		return podFacts{disrupted: disrupted}
	case ds.UID != owner.UID:
		// Deleted and created again under the same name: this pod's
		// DaemonSet is gone, a new one replaces its pods.
		return podFacts{disrupted: disrupted, known: true, selects: templateSelects(&ds.Spec.Template.Spec, node)}
	}
	return podFacts{disrupted: disrupted, known: true, deleting: ds.DeletionTimestamp != nil,
		selects: templateSelects(&ds.Spec.Template.Spec, node)}
}

// nodeNow reads this speaker's Node from the API server, for the SIGTERM
// decision: the cache may lag a cordon of a moment ago. nil: deleted;
// on any other error, the cached one.
func (s *Speaker) nodeNow(ctx context.Context, cached *corev1.Node) *corev1.Node {
	var n corev1.Node
	err := s.api.Get(ctx, types.NamespacedName{Name: s.o.NodeName}, &n)
	switch {
	case err == nil:
		return &n
	case apierrors.IsNotFound(err):
		return nil
	}
	s.log.Warn("reading this node at shutdown: deciding on the cached one", "err", err)
	return cached
}
