package controlplane

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/bgplb/bgplb/lab/labtest"
)

// With Controllers on, the control plane behaves like a cluster without
// nodes: namespaces finalize, a Deployment gets a ReplicaSet and Pods that
// the scheduler finds no node for, a Service gets an EndpointSlice, and
// deleting the Deployment takes its ReplicaSet and Pods with it.
func TestControllers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := Run(ctx, Options{Controllers: true})
	if errors.Is(err, ErrNoBinaries) {
		labtest.Missing(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	c := s.Client

	t.Run("namespace finalizes", func(t *testing.T) { testNamespaceFinalizes(ctx, t, s) })
	t.Run("node identities", func(t *testing.T) { testNodeIdentities(ctx, t, s) })

	ns := createNamespace(ctx, t, c)
	labels := map[string]string{"app": "ctl"}
	replicas := int32(2)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "ctl"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					// Never pulled: no node ever runs it.
					Name: "c", Image: "bgplb.invalid/none", ImagePullPolicy: corev1.PullNever,
				}}},
			},
		},
	}
	dep, err = c.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "ctl"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 53}}},
	}
	if _, err := c.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// ServiceAccount admission projects the token kube-api-access-*.
	wait(ctx, t, s, "Pods with their ServiceAccount's token projected", func(ctx context.Context) error {
		l, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if len(l.Items) == 0 {
			return errors.New("no Pods yet")
		}
		for _, p := range l.Items {
			if p.Spec.ServiceAccountName != "default" || !slices.ContainsFunc(p.Spec.Volumes, func(v corev1.Volume) bool {
				return strings.HasPrefix(v.Name, "kube-api-access-") && v.Projected != nil
			}) {
				return fmt.Errorf("pod %s: ServiceAccount %q, volumes %v", p.Name, p.Spec.ServiceAccountName, p.Spec.Volumes)
			}
		}
		return nil
	})
	wait(ctx, t, s, "a ReplicaSet owned by the Deployment", func(ctx context.Context) error {
		return ownedCount(ctx, c, ns, dep.UID, 1)
	})
	wait(ctx, t, s, "two Pods the scheduler calls Unschedulable", func(ctx context.Context) error {
		return unschedulablePods(ctx, c, ns, int(replicas))
	})
	wait(ctx, t, s, "an EndpointSlice for the Service", func(ctx context.Context) error {
		l, err := c.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=ctl"})
		if err != nil {
			return err
		}
		if len(l.Items) == 0 {
			return errors.New("none yet")
		}
		return nil
	})

	bg := metav1.DeletePropagationBackground
	if err := c.AppsV1().Deployments(ns).Delete(ctx, dep.Name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
		t.Fatal(err)
	}
	wait(ctx, t, s, "the garbage collector to remove the ReplicaSet and Pods", func(ctx context.Context) error {
		rs, err := c.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if n := len(rs.Items) + len(pods.Items); n > 0 {
			return fmt.Errorf("%d ReplicaSets and %d Pods left", len(rs.Items), len(pods.Items))
		}
		return nil
	})
}

// testNodeIdentities checks what kubelets and kube-proxy will meet: a
// kubelet registers its own Node, the Node authorizer and NodeRestriction
// keep it off another's, and kube-proxy's identity reads Services.
func testNodeIdentities(ctx context.Context, t *testing.T, s *Server) {
	kubelet := func(name string) kubernetes.Interface {
		path, err := s.NodeKubeconfig(name)
		if err != nil {
			t.Fatal(err)
		}
		return clientFrom(t, path)
	}
	a, b := kubelet("ida"), kubelet("idb")
	for name, c := range map[string]kubernetes.Interface{"ida": a, "idb": b} {
		if _, err := c.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("kubelet %s registering its Node: %v", name, err)
		}
		t.Cleanup(func() { _ = s.Client.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	}
	patch := []byte(`{"metadata":{"labels":{"x":"y"}}}`)
	if _, err := a.CoreV1().Nodes().Patch(ctx, "ida", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Errorf("kubelet ida labelling its own Node: %v", err)
	}
	if _, err := a.CoreV1().Nodes().Patch(ctx, "idb", types.MergePatchType, patch, metav1.PatchOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("kubelet ida labelling idb's Node: got %v, want Forbidden", err)
	}
	path, err := s.ProxyKubeconfig()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := clientFrom(t, path).DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("kube-proxy listing EndpointSlices: %v", err)
	}
	if st, err := os.Stat(s.CACertFile()); err != nil || st.Size() == 0 {
		t.Errorf("CA certificate %s: %v", s.CACertFile(), err)
	}
}

func clientFrom(t *testing.T, kubeconfig string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testNamespaceFinalizes deletes a namespace holding a ConfigMap: only the
// namespace controller empties it and removes the kubernetes finalizer.
func testNamespaceFinalizes(ctx context.Context, t *testing.T, s *Server) {
	c := s.Client
	ns := createNamespace(ctx, t, c)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Data: map[string]string{"k": "v"}}
	if _, err := c.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wait(ctx, t, s, "namespace "+ns+" to be gone", func(ctx context.Context) error {
		_, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err == nil {
			return errors.New("still there")
		}
		return err
	})
}

func createNamespace(ctx context.Context, t *testing.T, c kubernetes.Interface) string {
	t.Helper()
	ns, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "ctl-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func wait(ctx context.Context, t *testing.T, s *Server, what string, check func(context.Context) error) {
	t.Helper()
	if err := s.Poll(ctx, what, check); err != nil {
		t.Fatal(err)
	}
}

// ownedCount checks that exactly want ReplicaSets in ns name owner as
// their controller.
func ownedCount(ctx context.Context, c kubernetes.Interface, ns string, owner types.UID, want int) error {
	l, err := c.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	n := 0
	for _, rs := range l.Items {
		if ref := metav1.GetControllerOf(&rs); ref != nil && ref.UID == owner {
			n++
		}
	}
	if n != want {
		return fmt.Errorf("%d ReplicaSets, want %d", n, want)
	}
	return nil
}

// unschedulablePods checks that want Pods in ns belong to a ReplicaSet and
// carry PodScheduled=False with reason Unschedulable: the scheduler saw
// them and found no node.
func unschedulablePods(ctx context.Context, c kubernetes.Interface, ns string, want int) error {
	l, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	n := 0
	for _, p := range l.Items {
		ref := metav1.GetControllerOf(&p)
		if ref == nil || ref.Kind != "ReplicaSet" {
			continue
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse && cond.Reason == corev1.PodReasonUnschedulable {
				n++
			}
		}
	}
	if n != want {
		return fmt.Errorf("%d of %d Pods unschedulable, want %d", n, len(l.Items), want)
	}
	return nil
}
