package kubetest_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/bgplb/bgplb/internal/controlplane"
	"github.com/bgplb/bgplb/internal/kubetest"
)

// One control plane for the tests that need no options of their own.
var controlPlane = kubetest.NewShared()

func TestMain(m *testing.M) { os.Exit(controlPlane.Main(m)) }

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestLoadBalancerService(t *testing.T) {
	env := controlPlane.Env(t)
	ctx := testContext(t)
	ns := env.Namespace(t)
	svcs := env.Client.CoreV1().Services(ns)

	dual := corev1.IPFamilyPolicyRequireDualStack
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Type:           corev1.ServiceTypeLoadBalancer,
			IPFamilyPolicy: &dual,
			Selector:       map[string]string{"app": "web"},
			Ports:          []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
		},
	}
	created, err := svcs.Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Dual-stack ClusterIPs from both default ranges: the server was
	// configured as the controller's dual-stack tests need.
	if len(created.Spec.ClusterIPs) != 2 {
		t.Fatalf("ClusterIPs %v, want one per family", created.Spec.ClusterIPs)
	}
	for i, ip := range created.Spec.ClusterIPs {
		if a := netip.MustParseAddr(ip); !controlplane.DefaultServiceCIDRs()[i].Contains(a) {
			t.Errorf("ClusterIP %s outside %s", a, controlplane.DefaultServiceCIDRs()[i])
		}
	}
	if created.Spec.Ports[0].NodePort == 0 {
		t.Error("no NodePort allocated for a LoadBalancer Service")
	}

	// The controller's one write: status.loadBalancer, through /status.
	vip := corev1.LoadBalancerIPModeVIP
	created.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.10", IPMode: &vip}}
	if _, err := svcs.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := svcs.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ing := got.Status.LoadBalancer.Ingress; len(ing) != 1 || ing[0].IP != "203.0.113.10" {
		t.Errorf("status ingress %+v", ing)
	}

	if err := svcs.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svcs.Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after delete: %v, want NotFound", err)
	}
}

// TestNamespaceLifecycle checks that DeleteNamespace does the namespace
// controller's job: the namespace and what was in it are gone, including
// a Pod bound to a node (graceful deletion waits for a kubelet) and an
// object held by a finalizer.
func TestNamespaceLifecycle(t *testing.T) {
	env := controlPlane.Env(t)
	ctx := testContext(t)
	ns, err := env.CreateNamespace(ctx, "Lifecycle/Test")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ns, "lifecycle-test-") {
		t.Errorf("namespace %q", ns)
	}
	got, err := env.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil || got.Status.Phase != corev1.NamespaceActive {
		t.Fatalf("get namespace: %v, phase %v", err, got.Status.Phase)
	}
	cms := env.Client.CoreV1().ConfigMaps(ns)
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{"kubetest.bgplb.io/hold"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: corev1.PodSpec{
			NodeName:   "node-a",
			Containers: []corev1.Container{{Name: "c", Image: "example.invalid/none"}},
		},
	}
	if _, err := env.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	if err := env.DeleteNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace after delete: %v, want NotFound", err)
	}
	// Objects of a finalized namespace would still show in cluster-wide
	// lists; there must be none.
	sel := metav1.ListOptions{FieldSelector: "metadata.namespace=" + ns}
	if l, err := env.Client.CoreV1().ConfigMaps("").List(ctx, sel); err != nil || len(l.Items) != 0 {
		t.Errorf("ConfigMaps left: %v %v", l, err)
	}
	if l, err := env.Client.CoreV1().Pods("").List(ctx, sel); err != nil || len(l.Items) != 0 {
		t.Errorf("Pods left: %v %v", l, err)
	}
	// Deleting again is not an error: cleanups may race a test's own.
	if err := env.DeleteNamespace(ctx, ns); err != nil {
		t.Errorf("second delete: %v", err)
	}
}

// TestKubeconfig loads the file the way kubectl does (through $KUBECONFIG)
// and checks the server is the version hack/k8sbin pins.
func TestKubeconfig(t *testing.T) {
	env := controlPlane.Env(t)
	t.Setenv("KUBECONFIG", env.Kubeconfig)
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{})
	cfg, err := loader.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if ns, _, err := loader.Namespace(); err != nil || ns != "default" {
		t.Errorf("kubeconfig namespace %q, %v", ns, err)
	}
	if cfg.Host != env.Config.Host {
		t.Errorf("kubeconfig host %s, env %s", cfg.Host, env.Config.Host)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v, err := client.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != controlplane.KubernetesVersion {
		t.Errorf("server says %s, want %s (the -X linker flags of hack/k8sbin.sh)", v.GitVersion, controlplane.KubernetesVersion)
	}
	if _, err := client.CoreV1().Namespaces().Get(testContext(t), "kube-system", metav1.GetOptions{}); err != nil {
		t.Error(err)
	}
}

// TestUserConfigRBAC checks that authorization is real: a user is refused
// until a binding lets it in.
func TestUserConfigRBAC(t *testing.T) {
	env := controlPlane.Env(t)
	ctx := testContext(t)
	ns := env.Namespace(t)
	user := "kubetest-user-" + ns
	cfg, err := env.UserConfig(user, "bgplb:testers")
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("list before any binding: %v, want Forbidden", err)
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "svc-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"list"}}},
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "svc-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "svc-reader"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: "bgplb:testers"}},
	}
	if _, err := env.Client.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The authorizer reads bindings through an informer: allow it a moment.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err = client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("list after binding the group: %v", err)
	}
	if _, err := client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("configmaps not in the role: %v, want Forbidden", err)
	}
}

func TestInstallCRDs(t *testing.T) {
	env := controlPlane.Env(t)
	ctx := testContext(t)
	if err := env.InstallCRDs(ctx, "testdata/crds"); err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	crds := dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	t.Cleanup(func() {
		_ = crds.Delete(context.Background(), "widgets.kubetest.bgplb.io", metav1.DeleteOptions{})
	})
	// Installing again updates in place.
	if err := env.InstallCRDs(ctx, "testdata/crds"); err != nil {
		t.Fatalf("second install: %v", err)
	}

	// Usable at once, and both the schema and the CEL rule are enforced.
	ns := env.Namespace(t)
	widgets := dyn.Resource(schema.GroupVersionResource{Group: "kubetest.bgplb.io", Version: "v1", Resource: "widgets"}).Namespace(ns)
	widget := func(name string, spec map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "kubetest.bgplb.io/v1", "kind": "Widget",
			"metadata": map[string]any{"name": name}, "spec": spec,
		}}
	}
	began := time.Now()
	if _, err := widgets.Create(ctx, widget("ok", map[string]any{"min": 1, "max": 2, "color": "red"}), metav1.CreateOptions{}); err != nil {
		t.Fatalf("valid widget: %v", err)
	}
	// The server holds a new kind's first write for 2 s; InstallCRDs
	// should have paid that already.
	if d := time.Since(began); d > 1500*time.Millisecond {
		t.Errorf("first create took %v after InstallCRDs", d)
	}
	for name, tc := range map[string]struct {
		spec map[string]any
		want string
	}{
		"cel":     {map[string]any{"min": 3, "max": 2}, "min must not exceed max"},
		"pattern": {map[string]any{"min": 1, "max": 2, "color": "Red!"}, "spec.color"},
	} {
		_, err := widgets.Create(ctx, widget(name, tc.spec), metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want Invalid saying %q", name, err, tc.want)
		}
	}

	if err := env.InstallCRDs(ctx, t.TempDir()); err == nil || !strings.Contains(err.Error(), "no CustomResourceDefinition") {
		t.Errorf("empty directory: %v, want an error", err)
	}
}

// TestInstallProjectCRDs installs config/crd/bases, when it exists, and
// checks each definition there is served.
func TestInstallProjectCRDs(t *testing.T) {
	const dir = "../../config/crd/bases"
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		t.Skipf("%s does not exist yet", dir)
	}
	env := controlPlane.Env(t)
	ctx := testContext(t)
	if err := env.InstallCRDs(ctx, dir); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	lists, err := env.Client.Discovery().ServerPreferredResources()
	if err != nil {
		t.Fatal(err)
	}
	var served []string
	for _, l := range lists {
		for _, r := range l.APIResources {
			served = append(served, r.Name+"."+strings.Split(l.GroupVersion, "/")[0])
		}
	}
	for _, e := range entries {
		// controller-gen names files <group>_<plural>.yaml.
		group, plural, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".yaml"), "_")
		if !ok {
			continue
		}
		if !slices.Contains(served, plural+"."+group) {
			t.Errorf("%s: %s.%s not in discovery", e.Name(), plural, group)
		}
	}
}

// TestBindAddress starts control planes of their own on 127.0.0.2 (any
// 127/8 address works on Linux without setup) and on ::1, checks each
// serves there and only there, and that Stop leaves nothing behind.
func TestBindAddress(t *testing.T) {
	for _, addr := range []string{"127.0.0.2", "::1"} {
		t.Run(addr, func(t *testing.T) { testBindAddress(t, netip.MustParseAddr(addr)) })
	}
}

func testBindAddress(t *testing.T, bind netip.Addr) {
	began := time.Now()
	env := kubetest.Start(t, kubetest.WithBindAddress(bind), kubetest.WithLogger(slog.New(slog.NewTextHandler(testWriter{t}, nil))))
	t.Logf("control plane ready in %v", time.Since(began))
	if env.Addr.Addr() != bind || env.Config.Host != "https://"+env.Addr.String() {
		t.Fatalf("Addr %v, host %s", env.Addr, env.Config.Host)
	}
	ctx := testContext(t)
	// TLS verification covers the bind address in the serving certificate.
	if _, err := env.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	other := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), env.Addr.Port())
	if c, err := net.DialTimeout("tcp", other.String(), time.Second); err == nil {
		c.Close()
		t.Errorf("%s accepts connections; the server should listen on %s only", other, env.Addr)
	}

	if err := env.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(env.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after Stop: %v", env.Dir, err)
	}
	if c, err := net.DialTimeout("tcp", env.Addr.String(), time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Stop", env.Addr)
	}
	if pids := processesMentioning(t, env.Dir); len(pids) > 0 {
		t.Errorf("processes still running with %s in their arguments: %v", env.Dir, pids)
	}
	if err := env.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// processesMentioning lists the pids whose command line contains s.
func processesMentioning(t *testing.T, s string) []string {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, e := range entries {
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(string(b), s) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// testWriter sends a logger's lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
