package speaker

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

// When is a node going away, rather than its speaker restarting? The
// speaker cannot ask the operator; it reads the signs Kubernetes and its
// tools leave on the Node and on the speaker's DaemonSet. Going away
// drains the node (RFC 8326: routes re-announced with GRACEFUL_SHUTDOWN,
// withdrawn after --drain-time), and a SIGTERM then withdraws and closes
// with Cease; otherwise a SIGTERM is a restart (a rolling update, a pod
// deleted and recreated), and the sessions that negotiated graceful
// restart are left without a word so the routers keep the routes.

// maintenanceTaints are the taints (NoSchedule or NoExecute) that tools
// put on a node they are about to take away: `kubectl cordon/drain`,
// the out-of-service taint of a shut-down node, the cluster autoscaler and
// Karpenter removing a node. Failure taints (not-ready, unreachable) are
// not here: a failed node is the routers' hold timer's and BFD's business,
// and its Ready condition already stops its Cluster Services.
var maintenanceTaints = []string{
	corev1.TaintNodeUnschedulable,
	corev1.TaintNodeOutOfService,
	"node.cloudprovider.kubernetes.io/shutdown",
	"ToBeDeletedByClusterAutoscaler",
	"karpenter.sh/disrupted",
	"karpenter.sh/disruption",
}

// leaving says why node n is going away for good, or "" when it is not.
// A missing Node (nil) is not leaving here: while running, it may just
// not be registered yet; shutdownMode treats a deleted Node apart.
func leaving(n *corev1.Node) string {
	switch {
	case n == nil:
		return ""
	case n.DeletionTimestamp != nil:
		return "Node being deleted"
	case n.Spec.Unschedulable:
		return "cordoned"
	}
	for _, t := range n.Spec.Taints {
		if (t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute) && slices.Contains(maintenanceTaints, t.Key) {
			return fmt.Sprintf("tainted %s:%s", t.Key, t.Effect)
		}
	}
	if _, ok := n.Labels[lbmodel.ExcludeLabel]; ok {
		return "label " + lbmodel.ExcludeLabel
	}
	return ""
}

// podFacts are what a stopping speaker learned of its own pod and
// DaemonSet.
type podFacts struct {
	// disrupted is the reason of the pod's DisruptionTarget condition:
	// the kubelet ends it for a node shutdown or node pressure
	// (TerminationByKubelet), the taint manager or the pod GC for a node
	// going away, an eviction; a rolling update sets none.
	disrupted string
	// known: the pod's DaemonSet was read (or found gone); false when the
	// pod is unknown (no --pod-name) or the API server did not answer.
	known bool
	// gone: the DaemonSet no longer exists; deleting: it is being deleted.
	gone, deleting bool
	// selects: its pod template still fits this node.
	selects bool
}

// shutdownMode decides what a SIGTERM means: leave (drain, withdraw,
// Cease) or restart (keep the routes at the routers that help a graceful
// restart). node is the Node as read at the SIGTERM (nil: deleted). Not
// knowing the DaemonSet counts as a restart: it is by far the common
// SIGTERM, and a wrong guess costs the routes staying at the routers that
// help a graceful restart for up to its restart time, unless BFD tells
// them sooner that the node is gone.
func shutdownMode(node *corev1.Node, pod podFacts) (leave bool, why string) {
	if node == nil {
		return true, "Node deleted"
	}
	if why := leaving(node); why != "" {
		return true, why
	}
	switch {
	case pod.disrupted != "":
		return true, "pod disrupted (" + pod.disrupted + ")"
	case !pod.known:
		return false, "restart"
	case pod.gone:
		return true, "speaker DaemonSet deleted"
	case pod.deleting:
		return true, "speaker DaemonSet being deleted"
	case !pod.selects:
		return true, "speaker DaemonSet no longer selects this node"
	}
	return false, "restart"
}

// templateSelects reports whether a pod template's nodeSelector and
// required node affinity fit node, as the DaemonSet controller decides
// where pods run (tolerations aside: an untolerated NoExecute taint evicts
// the pod, and the maintenance ones are leaving's already).
func templateSelects(spec *corev1.PodSpec, node *corev1.Node) bool {
	nl := labels.Set(node.Labels)
	if !labels.SelectorFromSet(spec.NodeSelector).Matches(nl) {
		return false
	}
	a := spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return true
	}
	// Terms are ORed, the requirements of a term ANDed; no term at all
	// matches nothing (as the scheduler has it).
	for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		if termMatches(term, node) {
			return true
		}
	}
	return false
}

func termMatches(term corev1.NodeSelectorTerm, node *corev1.Node) bool {
	if len(term.MatchExpressions) == 0 && len(term.MatchFields) == 0 {
		return false
	}
	nl := labels.Set(node.Labels)
	for _, r := range term.MatchExpressions {
		if !requirementMatches(r, nl) {
			return false
		}
	}
	fields := labels.Set{"metadata.name": node.Name}
	for _, r := range term.MatchFields {
		if !requirementMatches(r, fields) {
			return false
		}
	}
	return true
}

// selectorOp maps a node selector operator to the label one.
func selectorOp(op corev1.NodeSelectorOperator) (selection.Operator, bool) {
	switch op {
	case corev1.NodeSelectorOpIn:
		return selection.In, true
	case corev1.NodeSelectorOpNotIn:
		return selection.NotIn, true
	case corev1.NodeSelectorOpExists:
		return selection.Exists, true
	case corev1.NodeSelectorOpDoesNotExist:
		return selection.DoesNotExist, true
	case corev1.NodeSelectorOpGt:
		return selection.GreaterThan, true
	case corev1.NodeSelectorOpLt:
		return selection.LessThan, true
	}
	return "", false
}

// requirementMatches applies one node selector requirement; one that does
// not parse matches nothing, as the scheduler treats it.
func requirementMatches(r corev1.NodeSelectorRequirement, set labels.Set) bool {
	op, ok := selectorOp(r.Operator)
	if !ok {
		return false
	}
	req, err := labels.NewRequirement(r.Key, op, r.Values)
	if err != nil {
		return false
	}
	return req.Matches(set)
}
