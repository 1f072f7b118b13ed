package controller

// The harness for the integration tests: one real kube-apiserver + etcd per
// test binary (internal/kubetest) with the CRDs installed, and helpers to
// run the controller and wait on what it writes. Tests on it run one at a
// time (pools are cluster-wide); each removes its pools and namespace.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/kubetest"
)

var shared = kubetest.NewShared()

func TestMain(m *testing.M) {
	// controller-runtime's packages log through a global logger until a
	// manager's is set; the tests read the controller's own slog output.
	ctrllog.SetLogger(logr.Discard())
	os.Exit(shared.Main(m))
}

var crdOnce sync.Once
var crdErr error

// kube is a control plane with the CRDs installed, and a
// controller-runtime client on it.
type kube struct {
	env *kubetest.Env
	c   client.Client
}

// startKube is the shared control plane.
func startKube(t testing.TB) *kube {
	t.Helper()
	env := shared.Env(t)
	crdOnce.Do(func() { crdErr = installCRDs(env) })
	if crdErr != nil {
		t.Fatal(crdErr)
	}
	return kubeOn(t, env)
}

// startOwnKube is a control plane of the caller's own, for a benchmark
// whose objects would take longer to delete than to abandon.
func startOwnKube(t testing.TB) *kube {
	t.Helper()
	env := kubetest.Start(t)
	if err := installCRDs(env); err != nil {
		t.Fatal(err)
	}
	return kubeOn(t, env)
}

func installCRDs(env *kubetest.Env) error {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "config", "crd", "bases")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return env.InstallCRDs(ctx, dir)
}

func kubeOn(t testing.TB, env *kubetest.Env) *kube {
	t.Helper()
	scheme := kruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
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

	once    sync.Once
	stopErr error
}

// stop stops the controller and waits for it to end; later calls (and the
// test's cleanup) return at once.
func (x *running) stop(t testing.TB) {
	t.Helper()
	x.once.Do(func() {
		x.cancel()
		select {
		case x.stopErr = <-x.done:
		case <-time.After(30 * time.Second):
			x.stopErr = errors.New("controller did not stop within 30s")
		}
		if x.stopErr != nil {
			t.Errorf("controller: %v", x.stopErr)
		}
	})
}

// runController starts a controller on the shared API server; it stops
// when the test ends if the test did not stop it first.
func (k *kube) runController(t testing.TB, o RunOptions) *running {
	t.Helper()
	return k.runControllerAs(t, k.env.Config, o)
}

// runControllerAs is runController with the client configuration cfg (for
// another identity).
func (k *kube) runControllerAs(t testing.TB, cfg *rest.Config, o RunOptions) *running {
	t.Helper()
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan *Reconciler, 1)
	o.Started = func(r *Reconciler) { got <- r }
	x := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { x.done <- Run(ctx, cfg, o) }()
	select {
	case x.r = <-got:
	case err := <-x.done:
		cancel()
		t.Fatalf("controller did not start: %v", err)
	}
	t.Cleanup(func() { x.stop(t) })
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

// pool creates a LoadBalancerPool removed when the test ends.
func (k *kube) pool(t testing.TB, name string, addrs []string, mod ...func(*v1alpha1.LoadBalancerPool)) *v1alpha1.LoadBalancerPool {
	t.Helper()
	p := &v1alpha1.LoadBalancerPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.LoadBalancerPoolSpec{Addresses: addrs}}
	for _, f := range mod {
		f(p)
	}
	ctx := context.Background()
	if err := k.c.Create(ctx, p); err != nil {
		t.Fatalf("creating LoadBalancerPool %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := k.c.Delete(context.Background(), p); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting LoadBalancerPool %s: %v", name, err)
		}
	})
	return p
}

// service creates a LoadBalancer Service (UDP and TCP 53, like the seed's
// Pi-hole) in ns, changed by mod.
func (k *kube) service(t testing.TB, ns, name string, mod ...func(*corev1.Service)) *corev1.Service {
	t.Helper()
	s := newService(ns, name, mod...)
	if err := k.c.Create(context.Background(), s); err != nil {
		t.Fatalf("creating Service %s/%s: %v", ns, name, err)
	}
	return s
}

// newService is the Service that service creates, not yet created.
func newService(ns, name string, mod ...func(*corev1.Service)) *corev1.Service {
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
	c := meta.FindStatusCondition(s.Status.Conditions, ConditionAllocated)
	return len(s.Status.LoadBalancer.Ingress) > 0 && c != nil && c.Status == metav1.ConditionTrue
}

// failedWith is a waitService predicate: condition False with reason.
func failedWith(reason string) func(*corev1.Service) bool {
	return func(s *corev1.Service) bool {
		c := meta.FindStatusCondition(s.Status.Conditions, ConditionAllocated)
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
	var out []string
	for _, e := range k.eventList(t, ns, name) {
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

// eventList lists the events recorded for a Service.
func (k *kube) eventList(t testing.TB, ns, name string) []corev1.Event {
	t.Helper()
	list, err := k.env.Client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.name=" + name,
	})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// bgplbEvents are the events bgplb's controller recorded on an object.
// The API server's own controllers may speak of a Service too (its
// ClusterIP repair loop does, when it races an allocation).
func (k *kube) bgplbEvents(t testing.TB, ns, name string) []string {
	t.Helper()
	var out []string
	for _, e := range k.eventList(t, ns, name) {
		if e.ReportingController == "bgplb-controller" || e.Source.Component == "bgplb-controller" {
			out = append(out, e.Reason+": "+e.Message)
		}
	}
	return out
}

// waitWarning waits until a Service has a Warning event with reason whose
// message contains substr, and returns its message.
func (k *kube) waitWarning(t testing.TB, ns, name, reason, substr string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		evs := k.eventList(t, ns, name)
		for _, e := range evs {
			if e.Type == corev1.EventTypeWarning && e.Reason == reason && strings.Contains(e.Message, substr) {
				return e.Message
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Service %s/%s: no Warning %s event containing %q; events: %q", ns, name, reason, substr, k.events(t, ns, name))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// countEvents counts a Service's events with reason.
func (k *kube) countEvents(t testing.TB, ns, name, reason string) int {
	t.Helper()
	n := 0
	for _, e := range k.eventList(t, ns, name) {
		if e.Reason == reason {
			n++
		}
	}
	return n
}

// getService reads a Service.
func (k *kube) getService(t testing.TB, ns, name string) *corev1.Service {
	t.Helper()
	var s corev1.Service
	if err := k.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
		t.Fatalf("getting Service %s/%s: %v", ns, name, err)
	}
	return &s
}

// updateService changes a Service's spec or metadata, retrying on conflict.
func (k *kube) updateService(t testing.TB, ns, name string, mod func(*corev1.Service)) {
	t.Helper()
	for i := 0; ; i++ {
		s := k.getService(t, ns, name)
		mod(s)
		err := k.c.Update(context.Background(), s)
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) || i == 20 {
			t.Fatalf("updating Service %s/%s: %v", ns, name, err)
		}
	}
}

// deleteService deletes a Service and waits until it is gone.
func (k *kube) deleteService(t testing.TB, ns, name string) {
	t.Helper()
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := k.c.Delete(context.Background(), s); err != nil {
		t.Fatalf("deleting Service %s/%s: %v", ns, name, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := k.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, s)
		if apierrors.IsNotFound(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Service %s/%s not gone after 30s (err %v)", ns, name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// untouched checks for d that a Service shows nothing bgplb writes beyond
// the ingress it had: no condition of ours, the ingress unchanged, and no
// event.
func (k *kube) untouched(t testing.TB, ns, name string, d time.Duration, ingress ...string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		s := k.getService(t, ns, name)
		if c := meta.FindStatusCondition(s.Status.Conditions, ConditionAllocated); c != nil {
			t.Fatalf("Service %s/%s should be left alone, has condition %s=%s/%s %q", ns, name, c.Type, c.Status, c.Reason, c.Message)
		}
		if got := strings.Join(ingressIPs(s), ","); got != strings.Join(ingress, ",") {
			t.Fatalf("Service %s/%s should be left alone, ingress %v, want %v", ns, name, ingressIPs(s), ingress)
		}
		if evs := k.bgplbEvents(t, ns, name); len(evs) > 0 {
			t.Fatalf("Service %s/%s should be left alone, has events %q", ns, name, evs)
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// condition is a Service's ConditionAllocated, or nil.
func condition(s *corev1.Service) *metav1.Condition {
	return meta.FindStatusCondition(s.Status.Conditions, ConditionAllocated)
}

// allocatedIPs is a waitService predicate: exactly these ingress addresses
// and the condition True.
func allocatedIPs(ips ...string) func(*corev1.Service) bool {
	has := hasIPs(ips...)
	return func(s *corev1.Service) bool { return has(s) && allocated(s) }
}

// getPool reads a LoadBalancerPool.
func (k *kube) getPool(t testing.TB, name string) *v1alpha1.LoadBalancerPool {
	t.Helper()
	var p v1alpha1.LoadBalancerPool
	if err := k.c.Get(context.Background(), client.ObjectKey{Name: name}, &p); err != nil {
		t.Fatalf("getting LoadBalancerPool %s: %v", name, err)
	}
	return &p
}

// updatePool changes a LoadBalancerPool's spec, retrying on conflict.
func (k *kube) updatePool(t testing.TB, name string, mod func(*v1alpha1.LoadBalancerPool)) {
	t.Helper()
	for i := 0; ; i++ {
		p := k.getPool(t, name)
		mod(p)
		err := k.c.Update(context.Background(), p)
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) || i == 20 {
			t.Fatalf("updating LoadBalancerPool %s: %v", name, err)
		}
	}
}

// waitPool polls a LoadBalancerPool until ok holds.
func (k *kube) waitPool(t testing.TB, name, what string, ok func(*v1alpha1.LoadBalancerPool) bool) *v1alpha1.LoadBalancerPool {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last v1alpha1.LoadBalancerPool
	for {
		err := k.c.Get(context.Background(), client.ObjectKey{Name: name}, &last)
		if err == nil && ok(&last) {
			return &last
		}
		if time.Now().After(deadline) {
			t.Fatalf("LoadBalancerPool %s: waited 30s for %s; last status %+v (err %v)", name, what, last.Status, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// poolCounts is a waitPool predicate: these assigned and available counts,
// IPv4 then IPv6.
func poolCounts(assigned4, available4, assigned6, available6 int64) func(*v1alpha1.LoadBalancerPool) bool {
	return func(p *v1alpha1.LoadBalancerPool) bool {
		s := p.Status
		return s.AssignedIPv4 == assigned4 && s.AvailableIPv4 == available4 &&
			s.AssignedIPv6 == assigned6 && s.AvailableIPv6 == available6
	}
}

// poolReady is a waitPool predicate: the Ready condition with this status
// and reason, for the pool's current generation.
func poolReady(status metav1.ConditionStatus, reason string) func(*v1alpha1.LoadBalancerPool) bool {
	return func(p *v1alpha1.LoadBalancerPool) bool {
		c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.LoadBalancerPoolConditionReady)
		return c != nil && c.Status == status && c.Reason == reason && c.ObservedGeneration == p.Generation
	}
}

// metric reads one sample of the controller's metrics, labels matching
// exactly; ok is false when there is no such sample.
func metric(t testing.TB, r *Reconciler, name string, labels map[string]string) (v float64, ok bool) {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := r.Register(reg); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; !ok || want != l.GetValue() {
					continue next
				}
			}
			switch {
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			}
		}
	}
	return 0, false
}

// waitMetric polls a metric until it has value want.
func waitMetric(t testing.TB, r *Reconciler, name string, labels map[string]string, want float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, ok := metric(t, r, name, labels)
		if ok && v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metric %s%v: waited 30s for %v; last %v (present %v)", name, labels, want, v, ok)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freeAddr returns a loopback address with a port that was free a moment
// ago, for servers that need a fixed port.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// httpGet polls url until it answers 200 and returns the body.
func httpGet(t testing.TB, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for {
		resp, err := c.Get(url)
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				return string(body)
			}
			last = fmt.Sprintf("status %d: %s (read err %v)", resp.StatusCode, body, rerr)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: no 200 within 30s; last %s", url, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
