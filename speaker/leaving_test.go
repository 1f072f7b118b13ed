package speaker

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

func TestLeaving(t *testing.T) {
	now := metav1.Now()
	node := func(edit func(n *corev1.Node)) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"kubernetes.io/os": "linux"}}}
		edit(n)
		return n
	}
	taint := func(key string, effect corev1.TaintEffect) func(n *corev1.Node) {
		return func(n *corev1.Node) { n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: key, Effect: effect}) }
	}
	for _, tc := range []struct {
		name string
		node *corev1.Node
		want string
	}{
		{"no Node (not registered yet)", nil, ""},
		{"plain", node(func(*corev1.Node) {}), ""},
		{"cordoned", node(func(n *corev1.Node) { n.Spec.Unschedulable = true }), "cordoned"},
		{"being deleted", node(func(n *corev1.Node) { n.DeletionTimestamp = &now; n.Spec.Unschedulable = true }), "Node being deleted"},
		{"cluster autoscaler", node(taint("ToBeDeletedByClusterAutoscaler", corev1.TaintEffectNoSchedule)),
			"tainted ToBeDeletedByClusterAutoscaler:NoSchedule"},
		{"out of service", node(taint(corev1.TaintNodeOutOfService, corev1.TaintEffectNoExecute)),
			"tainted node.kubernetes.io/out-of-service:NoExecute"},
		{"maintenance taint that only prefers", node(taint("ToBeDeletedByClusterAutoscaler", corev1.TaintEffectPreferNoSchedule)), ""},
		{"failure taint: not ours", node(taint(corev1.TaintNodeNotReady, corev1.TaintEffectNoExecute)), ""},
		{"some other NoSchedule taint", node(taint("dedicated", corev1.TaintEffectNoSchedule)), ""},
		{"excluded", node(func(n *corev1.Node) { n.Labels[lbmodel.ExcludeLabel] = "" }), "label " + lbmodel.ExcludeLabel},
	} {
		if got := leaving(tc.node); got != tc.want {
			t.Errorf("%s: leaving = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestShutdownMode(t *testing.T) {
	plain := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
	cordoned := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: corev1.NodeSpec{Unschedulable: true}}
	ok := podFacts{known: true, selects: true}
	for _, tc := range []struct {
		name  string
		node  *corev1.Node
		ds    podFacts
		leave bool
		why   string
	}{
		{"rolling update", plain, ok, false, "restart"},
		{"DaemonSet unknown", plain, podFacts{}, false, "restart"},
		{"cordoned", cordoned, ok, true, "cordoned"},
		{"cordoned, DaemonSet unknown", cordoned, podFacts{}, true, "cordoned"},
		{"Node deleted", nil, ok, true, "Node deleted"},
		{"DaemonSet deleted", plain, podFacts{known: true, gone: true}, true, "speaker DaemonSet deleted"},
		{"DaemonSet being deleted", plain, podFacts{known: true, deleting: true, selects: true}, true, "speaker DaemonSet being deleted"},
		{"DaemonSet no longer here", plain, podFacts{known: true}, true, "speaker DaemonSet no longer selects this node"},
		{"node shutting down (kubelet)", plain, podFacts{known: true, selects: true, disrupted: "TerminationByKubelet"}, true,
			"pod disrupted (TerminationByKubelet)"},
		{"disrupted, DaemonSet unknown", plain, podFacts{disrupted: "DeletionByTaintManager"}, true, "pod disrupted (DeletionByTaintManager)"},
	} {
		leave, why := shutdownMode(tc.node, tc.ds)
		if leave != tc.leave || why != tc.why {
			t.Errorf("%s: shutdownMode = %v %q, want %v %q", tc.name, leave, why, tc.leave, tc.why)
		}
	}
}

func TestTemplateSelects(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"kubernetes.io/os": "linux", "zone": "a"}}}
	req := func(terms ...corev1.NodeSelectorTerm) *corev1.Affinity {
		return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms}}}
	}
	expr := func(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorTerm {
		return corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: key, Operator: op, Values: values}}}
	}
	for _, tc := range []struct {
		name string
		spec corev1.PodSpec
		want bool
	}{
		{"nothing", corev1.PodSpec{}, true},
		{"nodeSelector fits", corev1.PodSpec{NodeSelector: map[string]string{"kubernetes.io/os": "linux"}}, true},
		{"nodeSelector does not", corev1.PodSpec{NodeSelector: map[string]string{"zone": "b"}}, false},
		{"affinity In", corev1.PodSpec{Affinity: req(expr("zone", corev1.NodeSelectorOpIn, "a", "c"))}, true},
		{"affinity NotIn", corev1.PodSpec{Affinity: req(expr("zone", corev1.NodeSelectorOpNotIn, "a"))}, false},
		{"affinity: one of two terms", corev1.PodSpec{Affinity: req(expr("zone", corev1.NodeSelectorOpIn, "b"),
			expr("kubernetes.io/os", corev1.NodeSelectorOpExists))}, true},
		{"affinity: no term", corev1.PodSpec{Affinity: req()}, false},
		{"affinity: bad operator", corev1.PodSpec{Affinity: req(expr("zone", "Near", "a"))}, false},
		{"matchFields name", corev1.PodSpec{Affinity: req(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{
			{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"n2"}}}})}, false},
	} {
		if got := templateSelects(&tc.spec, node); got != tc.want {
			t.Errorf("%s: templateSelects = %v, want %v", tc.name, got, tc.want)
		}
	}
}
