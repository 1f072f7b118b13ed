package deploy

import (
	"bytes"
	"context"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
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
)

var controlPlane = kubetest.NewShared()

func TestMain(m *testing.M) {
	code := controlPlane.Main(m)
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestApply installs bgplb.yaml on the real API server as `kubectl apply
// --server-side` would (each object dry-run first, then for real), then
// runs the controller with exactly its container's command, arguments and
// environment under its ServiceAccount's identity, and sees it allocate.
func TestApply(t *testing.T) {
	env := controlPlane.Env(t)
	ctx := testContext(t)
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(env.Client.Discovery()))
	objs := bundleObjects(t)
	for _, o := range objs {
		api := resourceFor(t, dyn, mapper, o)
		opts := metav1.ApplyOptions{FieldManager: "bgplb-deploy-test", DryRun: []string{metav1.DryRunAll}}
		if _, err := api.Apply(ctx, o.GetName(), o, opts); err != nil {
			t.Fatalf("%s: dry-run: %v", key(o), err)
		}
		opts.DryRun = nil
		if _, err := api.Apply(ctx, o.GetName(), o, opts); err != nil {
			t.Fatalf("%s: %v", key(o), err)
		}
	}
	t.Cleanup(func() { deleteAll(t, dyn, mapper, objs) })
	// Established and in discovery, as the controller's client needs.
	if err := env.InstallCRDs(ctx, filepath.Join(manifestsDir, "crds")); err != nil {
		t.Fatal(err)
	}
	runController(t, ctx, env)
	checkAllocates(t, ctx, env, dyn)
}

func resourceFor(t *testing.T, dyn dynamic.Interface, m meta.RESTMapper, o *unstructured.Unstructured) dynamic.ResourceInterface {
	t.Helper()
	gvk := o.GroupVersionKind()
	mapping, err := m.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		t.Fatalf("%s: %v", key(o), err)
	}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		return dyn.Resource(mapping.Resource).Namespace(o.GetNamespace())
	}
	return dyn.Resource(mapping.Resource)
}

// deleteAll removes what TestApply installed, last first; the namespace's
// contents go with their objects since no namespace controller runs here.
func deleteAll(t *testing.T, dyn dynamic.Interface, m meta.RESTMapper, objs []*unstructured.Unstructured) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := len(objs) - 1; i >= 0; i-- {
		o := objs[i]
		if o.GetKind() == "Namespace" {
			continue // finalized by nobody here; the control plane goes with the test binary
		}
		err := resourceFor(t, dyn, m, o).Delete(ctx, o.GetName(), metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete %s: %v", key(o), err)
		}
	}
}

// runController starts the controller as its Deployment would: the
// container's command line and env, its ServiceAccount's token from the
// TokenRequest API, and waits for its readiness probe.
func runController(t *testing.T, ctx context.Context, env *kubetest.Env) {
	c := workloads(t)["controller"].Pod.Spec.Containers[0]
	argv, environ := commandLine(t, c)
	kubeconfig, err := env.ServiceAccountKubeconfig(ctx, t.TempDir(), namespace, workloads(t)["controller"].Pod.Spec.ServiceAccountName)
	if err != nil {
		t.Fatal(err)
	}
	// The manifest's fixed port: a stale listener would answer the probe.
	health := flagPort(t, c.Args, "--health-addr")
	kubetest.LockPort(t, health)
	cmd := exec.Command(bgplbBinary(t), argv[1:]...)
	// Killed with the test binary, even by a timeout.
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
			t.Logf("controller log:\n%s", logs.String())
		}
	})
	probe := c.ReadinessProbe.HTTPGet
	url := "http://127.0.0.1:" + health + probe.Path
	// Ready within a minute or never: without its rights it retries forever.
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		select {
		case err := <-exited:
			t.Fatalf("controller exited: %v\n%s", err, logs.String())
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
		t.Fatalf("controller never ready at %s: %v", url, err)
	}
}

func flagPort(t *testing.T, args []string, name string) string {
	t.Helper()
	v := flagValue(args, name)
	for i := len(v) - 1; i >= 0; i-- {
		if v[i] == ':' {
			return v[i+1:]
		}
	}
	t.Fatalf("%s=%q: no port", name, v)
	return ""
}

var poolResource = schema.GroupVersionResource{Group: "bgplb.io", Version: "v1alpha1", Resource: "loadbalancerpools"}

// checkAllocates gives the controller a pool and a Service, and waits for
// the Service's address from the pool.
func checkAllocates(t *testing.T, ctx context.Context, env *kubetest.Env, dyn dynamic.Interface) {
	pool := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "bgplb.io/v1alpha1",
		"kind":       "LoadBalancerPool",
		"metadata":   map[string]any{"name": "deploy-test"},
		"spec":       map[string]any{"addresses": []any{"198.51.100.240/28"}},
	}}
	if _, err := dyn.Resource(poolResource).Create(ctx, pool, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = dyn.Resource(poolResource).Delete(context.Background(), "deploy-test", metav1.DeleteOptions{})
	})
	ns := env.Namespace(t)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
		},
	}
	if _, err := env.Client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var got []corev1.LoadBalancerIngress
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		s, err := env.Client.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		got = s.Status.LoadBalancer.Ingress
		return len(got) > 0, nil
	})
	if err != nil {
		t.Fatalf("no address allocated: %v", err)
	}
	if len(got) != 1 || !netip.MustParsePrefix("198.51.100.240/28").Contains(netip.MustParseAddr(got[0].IP)) {
		t.Errorf("ingress %+v, want one address of 198.51.100.240/28", got)
	}
}
