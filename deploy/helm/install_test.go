package helm

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/bgplb/bgplb/internal/kubetest"
	"github.com/bgplb/bgplb/internal/podspec"
)

var controlPlane = kubetest.NewShared()

func TestMain(m *testing.M) {
	code := controlPlane.Main(m)
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// TestInstall installs the chart's objects as Helm would (crds/ first, then
// the rendered templates; each object server-side applied as a dry run,
// then for real), then runs the controller with exactly its rendered
// command, arguments and environment, under a token of its own
// ServiceAccount, and sees it allocate. The ServiceMonitors are left out:
// their CRD belongs to the Prometheus Operator.
func TestInstall(t *testing.T) {
	env := controlPlane.Env(t)
	t.Run("default", func(t *testing.T) {
		ctx := testContext(t)
		createNamespace(t, ctx, env, defaultNS)
		r := install(t, ctx, env, defaultNS, nil)
		runController(t, ctx, env, r, defaultNS)
		ns := env.Namespace(t)
		createPool(t, ctx, env, "helm-default", "198.51.100.240/28")
		createService(t, ctx, env, ns, "web", map[string]string{"metallb.universe.tf/address-pool": "helm-default"})
		checkAllocated(t, ctx, env, ns, "web", "198.51.100.240/28")
	})
	t.Run("other", func(t *testing.T) {
		ctx := testContext(t)
		ns := env.Namespace(t)
		r := install(t, ctx, env, ns, otherValues(ns))
		runController(t, ctx, env, r, ns)
		// The seed's Pi-hole Service, from the examples, gets the address
		// it asks for from the seed's pool.
		checkAllocated(t, ctx, env, "default", "pihole", "203.0.113.53/32")
	})
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// createNamespace is `helm install --create-namespace`.
func createNamespace(t *testing.T, ctx context.Context, env *kubetest.Env, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := env.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := env.DeleteNamespace(ctx, name); err != nil {
			t.Error(err)
		}
	})
}

// install applies crds/ and waits for them to be served, then the chart
// rendered for ns with vals, and deletes them all when the test ends.
func install(t *testing.T, ctx context.Context, env *kubetest.Env, ns string, vals map[string]any) rendered {
	t.Helper()
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(env.Client.Discovery()))
	var crds []*unstructured.Unstructured
	files, _ := filepath.Glob(filepath.Join(chartDir, "crds", "*.yaml"))
	for _, f := range files {
		crds = append(crds, decodeFile(t, f)...)
	}
	apply(t, ctx, dyn, mapper, crds)
	if err := env.InstallCRDs(ctx, filepath.Join(chartDir, "crds")); err != nil {
		t.Fatal(err)
	}
	mapper.Reset()
	r := render(t, ns, vals)
	var objs []*unstructured.Unstructured
	for _, o := range r.objs {
		if o.GetKind() != "ServiceMonitor" {
			objs = append(objs, o)
		}
	}
	apply(t, ctx, dyn, mapper, objs)
	t.Cleanup(func() { deleteAll(t, dyn, mapper, objs) })
	return r
}

func apply(t *testing.T, ctx context.Context, dyn dynamic.Interface, m meta.RESTMapper, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, o := range objs {
		api := resourceFor(t, dyn, m, o)
		opts := metav1.ApplyOptions{FieldManager: "helm", DryRun: []string{metav1.DryRunAll}}
		if _, err := api.Apply(ctx, o.GetName(), o, opts); err != nil {
			t.Fatalf("%s: dry-run: %v", podspec.Key(o), err)
		}
		opts.DryRun = nil
		if _, err := api.Apply(ctx, o.GetName(), o, opts); err != nil {
			t.Fatalf("%s: %v", podspec.Key(o), err)
		}
	}
}

func resourceFor(t *testing.T, dyn dynamic.Interface, m meta.RESTMapper, o *unstructured.Unstructured) dynamic.ResourceInterface {
	t.Helper()
	gvk := o.GroupVersionKind()
	mapping, err := m.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		t.Fatalf("%s: %v", podspec.Key(o), err)
	}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		return dyn.Resource(mapping.Resource).Namespace(o.GetNamespace())
	}
	return dyn.Resource(mapping.Resource)
}

// deleteAll is `helm uninstall`: the CRDs stay, as Helm leaves them.
func deleteAll(t *testing.T, dyn dynamic.Interface, m meta.RESTMapper, objs []*unstructured.Unstructured) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, o := range objs {
		err := resourceFor(t, dyn, m, o).Delete(ctx, o.GetName(), metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete %s: %v", podspec.Key(o), err)
		}
	}
}

func saKubeconfig(t *testing.T, ctx context.Context, env *kubetest.Env, ns, sa string) string {
	t.Helper()
	path, err := env.ServiceAccountKubeconfig(ctx, t.TempDir(), ns, sa)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// runController starts the controller as its Deployment would, and waits
// for its readiness probe.
func runController(t *testing.T, ctx context.Context, env *kubetest.Env, r rendered, ns string) {
	t.Helper()
	pod := r.workloads["controller"].Pod.Spec
	c := pod.Containers[0]
	argv, environ, err := podspec.CommandLine(c, podspec.Fields(map[string]string{"spec.nodeName": "node-a", "metadata.namespace": ns, "metadata.name": "bgplb-speaker-x1"}))
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := saKubeconfig(t, ctx, env, ns, pod.ServiceAccountName)
	probe := c.ReadinessProbe.HTTPGet
	port := probe.Port.String()
	for _, p := range c.Ports {
		if p.Name == port {
			port = fmt.Sprint(p.ContainerPort)
		}
	}
	kubetest.LockPort(t, port)
	cmd := exec.Command(bgplbBinary(t), argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Env = append(environ, "KUBECONFIG="+kubeconfig)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("controller %q log:\n%s", argv, logs.String())
		}
	})
	url := "http://127.0.0.1:" + port + probe.Path
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		select {
		case err := <-exited:
			return false, fmt.Errorf("exited: %v", err)
		default:
		}
		resp, err := http.Get(url)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("controller never ready at %s: %v\n%s", url, err, logs.String())
	}
}

var poolResource = schema.GroupVersionResource{Group: "bgplb.io", Version: "v1alpha1", Resource: "loadbalancerpools"}

func createPool(t *testing.T, ctx context.Context, env *kubetest.Env, name, prefix string) {
	t.Helper()
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	pool := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "bgplb.io/v1alpha1",
		"kind":       "LoadBalancerPool",
		"metadata":   map[string]any{"name": name},
		"spec":       map[string]any{"addresses": []any{prefix}},
	}}
	if _, err := dyn.Resource(poolResource).Create(ctx, pool, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = dyn.Resource(poolResource).Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

func createService(t *testing.T, ctx context.Context, env *kubetest.Env, ns, name string, annotations map[string]string) {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
		},
	}
	if _, err := env.Client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// checkAllocated waits for the Service's address and checks it is one
// address of prefix.
func checkAllocated(t *testing.T, ctx context.Context, env *kubetest.Env, ns, name, prefix string) {
	t.Helper()
	var got []corev1.LoadBalancerIngress
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		s, err := env.Client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		got = s.Status.LoadBalancer.Ingress
		return len(got) > 0, nil
	})
	if err != nil {
		t.Fatalf("%s/%s: no address allocated: %v", ns, name, err)
	}
	if len(got) != 1 || !netip.MustParsePrefix(prefix).Contains(netip.MustParseAddr(got[0].IP)) {
		t.Errorf("%s/%s: ingress %+v, want one address of %s", ns, name, got, prefix)
	}
}

var (
	buildOnce sync.Once
	binDir    string
	binErr    error
)

// bgplbBinary builds cmd/bgplb once per test binary.
func bgplbBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "bgplb-helm-test"); binErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", binDir, "../../cmd/bgplb").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return filepath.Join(binDir, "bgplb")
}
