package controller

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

func withSelector(kv ...string) func(*corev1.Service) {
	return func(s *corev1.Service) {
		s.Spec.Selector = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			s.Spec.Selector[kv[i]] = kv[i+1]
		}
	}
}

// TestSharedIPLocal: two Services with externalTrafficPolicy Local share
// an address only when they select the same pods; the later one is
// refused with an event and a condition naming both, and the earlier keeps
// the address.
func TestSharedIPLocal(t *testing.T) {
	k := startKube(t)
	ns := k.env.Namespace(t)
	k.pool(t, "share-local", []string{"198.51.100.32/29"})
	k.runController(t, RunOptions{Options: Options{HandleUnclassed: true}})
	shared := allOf(withAnnotations(lbmodel.AnnotationSharedIP, "dns"), withLocalTraffic, withIP("198.51.100.32"))

	k.service(t, ns, "dns-udp", shared, withPorts(udpPort(53)), withSelector("app", "pihole"))
	k.waitService(t, ns, "dns-udp", "the address", allocatedIPs("198.51.100.32"))
	// The same pods: shared.
	k.service(t, ns, "dns-tcp", shared, withPorts(tcpPort(53)), withSelector("app", "pihole"))
	k.waitService(t, ns, "dns-tcp", "the shared address", allocatedIPs("198.51.100.32"))

	// Other pods: refused, both Services named.
	k.service(t, ns, "dot", shared, withPorts(tcpPort(853)), withSelector("app", "unbound"))
	s := k.waitService(t, ns, "dot", "InUse", failedWith("InUse"))
	msg := condition(s).Message
	for _, want := range []string{"Service " + ns + "/dot: selector app=unbound", "Service " + ns + "/dns-", "selector app=pihole", "select different pods"} {
		if !strings.Contains(msg, want) {
			t.Errorf("condition %q does not say %q", msg, want)
		}
	}
	if len(s.Status.LoadBalancer.Ingress) != 0 {
		t.Errorf("the refused Service has ingress %v", ingressIPs(s))
	}
	k.waitWarning(t, ns, "dot", EventFailed, "Service "+ns+"/dot: selector app=unbound")

	// No selector (endpoints by hand): refused too.
	k.service(t, ns, "manual", shared, withPorts(tcpPort(8053)), func(s *corev1.Service) { s.Spec.Selector = nil })
	k.waitService(t, ns, "manual", "InUse", func(s *corev1.Service) bool {
		return failedWith("InUse")(s) && strings.Contains(condition(s).Message, "Service "+ns+"/manual: no selector")
	})

	// Fixing the selector lets it share; the others never moved.
	k.updateService(t, ns, "dot", func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "pihole"} })
	k.waitService(t, ns, "dot", "the shared address once it selects the same pods", allocatedIPs("198.51.100.32"))
	k.waitService(t, ns, "dns-udp", "unmoved", allocatedIPs("198.51.100.32"))
	k.waitService(t, ns, "dns-tcp", "unmoved", allocatedIPs("198.51.100.32"))
	k.settled(t, ns)
}
