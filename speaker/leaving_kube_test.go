package speaker

import (
	"log/slog"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestDaemonSetFacts reads a speaker's own Pod and DaemonSet from the real
// API server as a SIGTERM does: present and selecting the node, no longer
// selecting it, being deleted (a finalizer holds it), gone; and nothing
// known for a pod that does not exist.
func TestDaemonSetFacts(t *testing.T) {
	k := startKube(t)
	node := k.node(t, k.prefix+"-n1")
	labels := map[string]string{"app": "speaker"}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: k.ns, Name: "speaker"},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "speaker", Image: "bgplb"}}}}}}
	k.create(t, ds)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: k.ns, Name: "speaker-x1", Labels: labels,
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ds, appsv1.SchemeGroupVersion.WithKind("DaemonSet"))}},
		Spec: corev1.PodSpec{NodeName: node.Name, Containers: []corev1.Container{{Name: "speaker", Image: "bgplb"}}}}
	k.create(t, pod)
	s := &Speaker{o: Options{NodeName: node.Name, Namespace: k.ns, PodName: pod.Name}, api: k.c, log: slog.New(slog.DiscardHandler)}
	check := func(what string, want podFacts) {
		t.Helper()
		if got := s.readPodFacts(k.ctx, node); got != want {
			t.Errorf("%s: %+v, want %+v", what, got, want)
		}
	}
	check("running", podFacts{known: true, selects: true})

	// The kubelet ending the pod for a node shutdown marks it first.
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
		Reason: corev1.PodReasonTerminationByKubelet, Message: "Pod was terminated in response to imminent node shutdown."}}
	if err := k.c.Status().Update(k.ctx, pod); err != nil {
		t.Fatal(err)
	}
	check("node shutting down", podFacts{known: true, selects: true, disrupted: corev1.PodReasonTerminationByKubelet})
	pod.Status.Conditions = nil
	if err := k.c.Status().Update(k.ctx, pod); err != nil {
		t.Fatal(err)
	}

	ds.Spec.Template.Spec.NodeSelector = map[string]string{"kubernetes.io/hostname": "elsewhere"}
	if err := k.c.Update(k.ctx, ds); err != nil {
		t.Fatal(err)
	}
	check("no longer here", podFacts{known: true})

	ds.Finalizers = []string{"bgplb.io/test"}
	if err := k.c.Update(k.ctx, ds); err != nil {
		t.Fatal(err)
	}
	if err := k.c.Delete(k.ctx, ds); err != nil {
		t.Fatal(err)
	}
	check("being deleted", podFacts{known: true, deleting: true})

	if err := k.c.Get(k.ctx, client.ObjectKeyFromObject(ds), ds); err != nil {
		t.Fatal(err)
	}
	ds.Finalizers = nil
	if err := k.c.Update(k.ctx, ds); err != nil {
		t.Fatal(err)
	}
	check("deleted", podFacts{known: true, gone: true})

	s.o.PodName = "not-a-pod"
	check("unknown pod", podFacts{})

	if err := k.c.Delete(k.ctx, node); err != nil {
		t.Fatal(err)
	}
	if n := s.nodeNow(k.ctx, node); n != nil {
		t.Errorf("deleted Node read as %s", n.Name)
	}
}
