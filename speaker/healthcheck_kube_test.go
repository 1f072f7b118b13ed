package speaker

// The health check against the real API server: a speaker in this process
// probes a health check server on loopback, on the port the API server
// allocated to the Service, answering as kube-proxy does (hctest).

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
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
	k.service(t, "dns", corev1.ServiceExternalTrafficPolicyLocal, "198.18.6.53")
	var svc corev1.Service
	if err := k.c.Get(k.ctx, types.NamespacedName{Namespace: k.ns, Name: "dns"}, &svc); err != nil {
		t.Fatal(err)
	}
	kp := hctest.Listen(t, fmt.Sprintf("127.0.0.1:%d", svc.Spec.HealthCheckNodePort))
	kp.Endpoints.Store(0)
	mine := netip.MustParsePrefix("198.18.6.0/24")

	// kube-proxy has not caught up: the new endpoint waits for a 200.
	k.slice(t, "dns", "dns-1", discoveryv1.AddressTypeIPv4, endpoint{"a", n1, "10.6.0.1", "ready"})
	why := fmt.Sprintf("kube-proxy health check on 127.0.0.1:%d says 0 local endpoints (503)", svc.Spec.HealthCheckNodePort)
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
}
