package speaker

// The health check against the real API server: a speaker in this process
// probes a health check server on loopback, on the port the API server
// allocated to the Service, answering as kube-proxy does (hctest).

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/lbmodel"
	"github.com/bgplb/bgplb/speaker/healthcheck"
	"github.com/bgplb/bgplb/speaker/healthcheck/hctest"
)

// A failing probe withdraws the route and leaves a ServiceAnnouncement
// with no peers and the reason; passing again brings the route back and
// takes the reason away.
func TestHealthCheckReports(t *testing.T) {
	k := startKube(t)
	k.config(t, "198.18.6.0/24")
	n1 := k.prefix + "-n1"
	r1 := newReceiver(t, lo)
	k.node(t, n1, "127.0.0.1")
	k.peer(t, n1, r1, nil)
	k.speakerWith(t, n1, nil, "", func(o *Options) {
		o.HealthCheck = healthcheck.Config{Interval: 100 * time.Millisecond, Timeout: 500 * time.Millisecond,
			Thresholds: healthcheck.Thresholds{Rise: 2, Fall: 2}}
	})
	kp := k.localService(t, "dns", "198.18.6.53")
	kp.Endpoints.Store(0)
	mine := netip.MustParsePrefix("198.18.6.0/24")

	// kube-proxy has not caught up: the new endpoint waits for a 200.
	k.slice(t, "dns", "dns-1", discoveryv1.AddressTypeIPv4, endpoint{"a", n1, "10.6.0.1", "ready"})
	why := fmt.Sprintf("kube-proxy health check on %s says 0 local endpoints (503)", kp.Addr)
	ann := func() (v1alpha1.ServiceAnnouncement, error) {
		var a v1alpha1.ServiceAnnouncement
		err := k.c.Get(k.ctx, types.NamespacedName{Namespace: k.ns, Name: "dns." + n1}, &a)
		return a, err
	}
	withheld := func() bool {
		a, err := ann()
		return err == nil && len(a.Status.Peers) == 0 && a.Annotations[lbmodel.AnnotationHealthCheck] == why && a.Status.Endpoints == 1
	}
	waitFor(t, "a ServiceAnnouncement with no peers and the reason", withheld)
	r1.has(t, mine, map[string]float32{})

	kp.Endpoints.Store(1)
	r1.has(t, mine, map[string]float32{"198.18.6.53/32": 1})
	waitFor(t, "the announcement with its peer and no reason", func() bool {
		a, err := ann()
		_, noted := a.Annotations[lbmodel.AnnotationHealthCheck]
		return err == nil && len(a.Status.Peers) == 1 && !noted
	})

	kp.Endpoints.Store(0)
	r1.has(t, mine, map[string]float32{})
	waitFor(t, "withheld again", withheld)

	// A single replica's rolling update: the old pod terminates (still
	// serving), the new one elsewhere is not ready. kube-proxy forwards to
	// the old one but its health check counts no ready endpoint; the route
	// stays.
	kp.Endpoints.Store(1)
	r1.has(t, mine, map[string]float32{"198.18.6.53/32": 1})
	k.slice(t, "dns", "dns-1", discoveryv1.AddressTypeIPv4, endpoint{"a", n1, "10.6.0.1", "terminating"},
		endpoint{"b", k.prefix + "-elsewhere", "10.6.0.2", "notready"})
	kp.Endpoints.Store(0)
	seen := kp.Requests.Load()
	waitFor(t, "five probes answered 0 local endpoints", func() bool { return kp.Requests.Load() >= seen+5 })
	r1.has(t, mine, map[string]float32{"198.18.6.53/32": 1})
	if a, err := ann(); err != nil || a.Annotations[lbmodel.AnnotationHealthCheck] != "" {
		t.Errorf("under the terminating fallback: %v, annotations %v", err, a.Annotations)
	}
}

// A speaker that starts where an earlier run withheld a Service (its
// ServiceAnnouncement says why) keeps it withheld until Rise passes,
// while the Services it did announce are announced from the first plan.
func TestHealthCheckRestart(t *testing.T) {
	k := startKube(t)
	k.config(t, "198.18.7.0/24")
	n1 := k.prefix + "-n1"
	r1 := newReceiver(t, lo)
	k.node(t, n1, "127.0.0.1")
	k.peer(t, n1, r1, nil)
	kp := k.localService(t, "dns", "198.18.7.53")
	k.service(t, "marker", corev1.ServiceExternalTrafficPolicyCluster, "198.18.7.99")
	k.slice(t, "dns", "dns-1", discoveryv1.AddressTypeIPv4, endpoint{"a", n1, "10.7.0.1", "ready"})
	k.slice(t, "marker", "marker-1", discoveryv1.AddressTypeIPv4, endpoint{"m", n1, "10.7.0.9", "ready"})
	// What an earlier run left: dns withheld for its health check.
	left := &v1alpha1.ServiceAnnouncement{
		ObjectMeta: metav1.ObjectMeta{Namespace: k.ns, Name: "dns." + n1,
			Labels:      map[string]string{v1alpha1.LabelNode: n1, v1alpha1.LabelService: "dns"},
			Annotations: map[string]string{lbmodel.AnnotationHealthCheck: "kube-proxy health check on 127.0.0.1:1 says 0 local endpoints (503)"}},
		Spec: v1alpha1.ServiceAnnouncementSpec{Service: "dns", Node: n1},
	}
	k.create(t, left)
	// Slow probes: the first comes within an interval of the start, the
	// Rise-th one an interval later.
	const interval = 3 * time.Second
	start := time.Now()
	k.speakerWith(t, n1, nil, "", func(o *Options) {
		o.HealthCheck = healthcheck.Config{Interval: interval, Timeout: 500 * time.Millisecond,
			Thresholds: healthcheck.Thresholds{Rise: 2, Fall: 2}}
	})
	mine := netip.MustParsePrefix("198.18.7.0/24")
	r1.wait(t, 10*time.Second, "the marker", func(rib map[netip.Prefix]float32) bool {
		_, ok := rib[netip.MustParsePrefix("198.18.7.99/32")]
		return ok
	})
	if time.Since(start) < interval {
		r1.mu.Lock()
		_, early := r1.rib[netip.MustParsePrefix("198.18.7.53/32")]
		r1.mu.Unlock()
		if early {
			t.Fatalf("the withheld Service announced %v after the start, before Rise passes", time.Since(start))
		}
	}
	r1.wait(t, 4*interval, "dns after Rise passes", func(rib map[netip.Prefix]float32) bool {
		_, ok := rib[netip.MustParsePrefix("198.18.7.53/32")]
		return ok
	})
	if d, n := time.Since(start), kp.Requests.Load(); n < 2 {
		t.Errorf("dns announced after %v and %d probes, want Rise (2)", d, n)
	}
	r1.has(t, mine, map[string]float32{"198.18.7.53/32": 1, "198.18.7.99/32": 1})
}

// localService creates an externalTrafficPolicy Local Service whose
// healthCheckNodePort is a port free on loopback, and serves its health
// check there as kube-proxy would: the listener is opened first, so that
// no other test's socket can take the port the API server would allocate.
func (k *kube) localService(t *testing.T, name, ip string) *hctest.Server {
	t.Helper()
	for range 20 {
		port := 30000 + rand.IntN(2768) // the default NodePort range
		ln, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		err = k.serviceWith(t, name, corev1.ServiceExternalTrafficPolicyLocal, func(s *corev1.Service) {
			s.Spec.HealthCheckNodePort = int32(port)
		}, ip)
		if err == nil {
			return hctest.Start(t, ln)
		}
		ln.Close()
		if !apierrors.IsInvalid(err) { // invalid: the port is another Service's
			t.Fatalf("creating Service %s: %v", name, err)
		}
	}
	t.Fatal("no free healthCheckNodePort found")
	return nil
}
