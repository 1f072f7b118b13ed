package controller

// The harness for the integration tests: one real kube-apiserver + etcd per
// test binary (internal/kubetest) with the CRDs installed, and helpers to
// run the controller and wait on what it writes. Tests on it run one at a
// time (pools are cluster-wide); each removes its pools and namespace.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/kubetest"
)

var shared = kubetest.NewShared()

func TestMain(m *testing.M) { os.Exit(shared.Main(m)) }

var crdOnce sync.Once
var crdErr error

// kube is the shared control plane with the CRDs installed, and a
// controller-runtime client on it.
type kube struct {
	env *kubetest.Env
	c   client.Client
}

func startKube(t testing.TB) *kube {
	t.Helper()
	env := shared.Env(t)
	crdOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		dir := filepath.Join(filepath.Dir(file), "..", "config", "crd", "bases")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		crdErr = env.InstallCRDs(ctx, dir)
	})
	if crdErr != nil {
		t.Fatal(crdErr)
	}
	scheme := kruntime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return &kube{env: env, c: c}
}

// running is a controller started by a test.
type running struct {
	r      *Reconciler
	cancel context.CancelFunc
	done   chan error
}

// stop stops the controller and waits for it to end.
func (x *running) stop(t testing.TB) {
	t.Helper()
	x.cancel()
	select {
	case err := <-x.done:
		if err != nil {
			t.Errorf("controller: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("controller did not stop")
	}
}

// runController starts a controller on the shared API server; it stops
// when the test ends if the test did not stop it first.
func (k *kube) runController(t testing.TB, o RunOptions) *running {
	t.Helper()
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan *Reconciler, 1)
	o.Started = func(r *Reconciler) { got <- r }
	x := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { x.done <- Run(ctx, k.env.Config, o) }()
	select {
	case x.r = <-got:
	case err := <-x.done:
		cancel()
		t.Fatalf("controller did not start: %v", err)
	}
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			cancel()
			select {
			case <-x.done:
			case <-time.After(30 * time.Second):
				t.Errorf("controller did not stop")
			}
		})
	})
	return x
}

// testWriter sends log lines to the test's log, and drops them after the
// test ends (a controller may still be stopping).
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// pool creates an IPPool removed when the test ends.
func (k *kube) pool(t testing.TB, name string, addrs []string, mod ...func(*v1alpha1.IPPool)) *v1alpha1.IPPool {
	t.Helper()
	p := &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.IPPoolSpec{Addresses: addrs}}
	for _, f := range mod {
		f(p)
	}
	ctx := context.Background()
	if err := k.c.Create(ctx, p); err != nil {
		t.Fatalf("creating IPPool %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := k.c.Delete(context.Background(), p); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting IPPool %s: %v", name, err)
		}
	})
	return p
}

// service creates a LoadBalancer Service (UDP and TCP 53, like the seed's
// Pi-hole) in ns, changed by mod.
func (k *kube) service(t testing.TB, ns, name string, mod ...func(*corev1.Service)) *corev1.Service {
	t.Helper()
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{
				{Name: "dns-udp", Protocol: corev1.ProtocolUDP, Port: 53},
				{Name: "dns-tcp", Protocol: corev1.ProtocolTCP, Port: 53},
			},
		},
	}
	for _, f := range mod {
		f(s)
	}
	if err := k.c.Create(context.Background(), s); err != nil {
		t.Fatalf("creating Service %s/%s: %v", ns, name, err)
	}
	return s
}

// waitService polls a Service until ok holds, failing with the last state
// seen after timeout.
func (k *kube) waitService(t testing.TB, ns, name string, what string, ok func(*corev1.Service) bool) *corev1.Service {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last corev1.Service
	for {
		err := k.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &last)
		if err == nil && ok(&last) {
			return &last
		}
		if time.Now().After(deadline) {
			t.Fatalf("Service %s/%s: waited 30s for %s; last status %s (err %v)", ns, name, what, showStatus(&last), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ingressIPs are a Service's status addresses.
func ingressIPs(s *corev1.Service) []string {
	var out []string
	for _, in := range s.Status.LoadBalancer.Ingress {
		out = append(out, in.IP)
	}
	return out
}

// hasIPs is a waitService predicate: exactly these ingress addresses.
func hasIPs(ips ...string) func(*corev1.Service) bool {
	return func(s *corev1.Service) bool {
		return strings.Join(ingressIPs(s), ",") == strings.Join(ips, ",")
	}
}

// allocated is a waitService predicate: some address, condition True.
func allocated(s *corev1.Service) bool {
	c := findCondition(s.Status.Conditions, ConditionAllocated)
	return len(s.Status.LoadBalancer.Ingress) > 0 && c != nil && c.Status == metav1.ConditionTrue
}

// failedWith is a waitService predicate: condition False with reason.
func failedWith(reason string) func(*corev1.Service) bool {
	return func(s *corev1.Service) bool {
		c := findCondition(s.Status.Conditions, ConditionAllocated)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == reason
	}
}

func showStatus(s *corev1.Service) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ingress=%v", ingressIPs(s))
	for _, c := range s.Status.Conditions {
		fmt.Fprintf(&b, " %s=%s/%s %q", c.Type, c.Status, c.Reason, c.Message)
	}
	return b.String()
}

// events lists the events recorded for a Service, as "Reason: note".
func (k *kube) events(t testing.TB, ns, name string) []string {
	t.Helper()
	list, err := k.env.Client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.name=" + name,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		out = append(out, e.Reason+": "+e.Message)
	}
	return out
}

// waitEvent waits until a Service has an event with reason whose message
// contains substr, and returns it.
func (k *kube) waitEvent(t testing.TB, ns, name, reason, substr string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		evs := k.events(t, ns, name)
		for _, e := range evs {
			if strings.HasPrefix(e, reason+": ") && strings.Contains(e, substr) {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Service %s/%s: no %s event containing %q; events: %q", ns, name, reason, substr, evs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
