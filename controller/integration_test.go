package controller

// Integration tests of the controller against the shared real API server (see
// harness_test.go). Each test has its own namespace(s) and LoadBalancerPools
// named after it, with addresses of its own in 203.0.113.0/24,
// 198.51.100.0/24 and 2001:db8::/32, so that nothing one test leaves behind
// can satisfy another's expectations.

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/lbmodel"
)

// Service modifiers.

func withIP(ip string) func(*corev1.Service) {
	return func(s *corev1.Service) { s.Spec.LoadBalancerIP = ip }
}

func withAnnotations(kv ...string) func(*corev1.Service) {
	return func(s *corev1.Service) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			s.Annotations[kv[i]] = kv[i+1]
		}
	}
}

func withPorts(ports ...corev1.ServicePort) func(*corev1.Service) {
	return func(s *corev1.Service) { s.Spec.Ports = ports }
}

func tcpPort(port int32) corev1.ServicePort {
	return corev1.ServicePort{Name: fmt.Sprintf("tcp-%d", port), Protocol: corev1.ProtocolTCP, Port: port}
}

func udpPort(port int32) corev1.ServicePort {
	return corev1.ServicePort{Name: fmt.Sprintf("udp-%d", port), Protocol: corev1.ProtocolUDP, Port: port}
}

func withClass(class string) func(*corev1.Service) {
	return func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr(class) }
}

func withFamilies(policy corev1.IPFamilyPolicy, fams ...corev1.IPFamily) func(*corev1.Service) {
	return func(s *corev1.Service) {
		s.Spec.IPFamilyPolicy = ptr(policy)
		s.Spec.IPFamilies = fams
	}
}

func withLocalTraffic(s *corev1.Service) {
	s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
}

func allOf(mods ...func(*corev1.Service)) func(*corev1.Service) {
	return func(s *corev1.Service) {
		for _, m := range mods {
			m(s)
		}
	}
}

func noChange(*corev1.Service) {}

// Pool modifiers.

func noAutoAssign(p *v1alpha1.LoadBalancerPool) { p.Spec.AutoAssign = ptr(false) }

const (
	ipv4 = corev1.IPv4Protocol
	ipv6 = corev1.IPv6Protocol
)

// checkVIP fails unless every ingress entry has ipMode VIP.
func checkVIP(t *testing.T, s *corev1.Service) {
	t.Helper()
	if len(s.Status.LoadBalancer.Ingress) == 0 {
		t.Fatalf("Service %s/%s has no ingress", s.Namespace, s.Name)
	}
	for _, in := range s.Status.LoadBalancer.Ingress {
		if in.IPMode == nil || *in.IPMode != corev1.LoadBalancerIPModeVIP {
			t.Errorf("Service %s/%s: ingress %s has ipMode %v, want VIP", s.Namespace, s.Name, in.IP, in.IPMode)
		}
		if in.Hostname != "" || len(in.Ports) > 0 {
			t.Errorf("Service %s/%s: ingress %+v has more than an address", s.Namespace, s.Name, in)
		}
	}
}

// settled fails if any Service in ns is still being written a second after
// the test saw it done: the controller must not loop on status writes.
func (k *kube) settled(t *testing.T, ns string) {
	t.Helper()
	versions := func() map[string]string {
		var list corev1.ServiceList
		if err := k.c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, s := range list.Items {
			out[s.Name] = s.ResourceVersion
		}
		return out
	}
	before := versions()
	time.Sleep(time.Second)
	for name, v := range versions() {
		if before[name] != v {
			t.Errorf("Service %s/%s still changes (resourceVersion %s, then %s): %s", ns, name, before[name], v, showStatus(k.getService(t, ns, name)))
		}
	}
}

// TestRequestedAddresses: each way of asking for an address or a pool,
// bgplb's and MetalLB's spellings, gives exactly what was asked for, with
// ipMode VIP, condition True and an IPAllocated event.
func TestRequestedAddresses(t *testing.T) {
	k := startKube(t)
	ns := k.env.Namespace(t)
	k.pool(t, "req-main", []string{"203.0.113.16/28"})
	k.pool(t, "req-named", []string{"198.51.100.16/29"}, noAutoAssign)
	k.pool(t, "req-pihole", []string{"203.0.113.48/29"}, noAutoAssign)
	k.runController(t, RunOptions{Options: Options{HandleUnclassed: true}})

	tests := []struct {
		name       string
		mod        func(*corev1.Service)
		want, pool string
	}{
		{"spec-lbip", withIP("203.0.113.20"), "203.0.113.20", "req-main"},
		{"bgplb-ips", withAnnotations(lbmodel.AnnotationIPs, "203.0.113.21"), "203.0.113.21", "req-main"},
		{"bgplb-ips-over-spec", allOf(withAnnotations(lbmodel.AnnotationIPs, "203.0.113.22"), withIP("203.0.113.23")), "203.0.113.22", "req-main"},
		{"metallb-io-ips", withAnnotations("metallb.io/loadBalancerIPs", "203.0.113.24"), "203.0.113.24", "req-main"},
		{"metallb-universe-ips", withAnnotations("metallb.universe.tf/loadBalancerIPs", "203.0.113.25"), "203.0.113.25", "req-main"},
		// req-named has autoAssign off: only Services naming it get its addresses.
		{"bgplb-pool", withAnnotations(lbmodel.AnnotationPool, "req-named"), "198.51.100.16", "req-named"},
		{"metallb-universe-pool", withAnnotations("metallb.universe.tf/address-pool", "req-named"), "198.51.100.17", "req-named"},
		{"metallb-io-pool", withAnnotations("metallb.io/address-pool", "req-named"), "198.51.100.18", "req-named"},
		{"pool-and-ip", withAnnotations(lbmodel.AnnotationPool, "req-named", lbmodel.AnnotationIPs, "198.51.100.22"), "198.51.100.22", "req-named"},
		{"spec-lbip-in-named-pool", withIP("198.51.100.23"), "198.51.100.23", "req-named"},
		{"automatic", noChange, "203.0.113.16", "req-main"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k.service(t, ns, tc.name, tc.mod)
			s := k.waitService(t, ns, tc.name, tc.want, allocatedIPs(tc.want))
			checkVIP(t, s)
			if c := condition(s); c.Reason != ReasonAllocated || !strings.Contains(c.Message, tc.want+" from pool "+tc.pool) {
				t.Errorf("condition %s %q, want %s naming %s from pool %s", c.Reason, c.Message, ReasonAllocated, tc.want, tc.pool)
			}
			k.waitEvent(t, ns, tc.name, EventAllocated, tc.want+" from pool "+tc.pool)
		})
	}

	// The seed's Pi-hole, written for MetalLB: DNS over TCP and UDP in two
	// Services on one requested address, shared by MetalLB's annotation,
	// and the web UI on the next address.
	t.Run("pihole", func(t *testing.T) {
		metallb := withAnnotations(
			"metallb.universe.tf/address-pool", "req-pihole",
			"metallb.universe.tf/allow-shared-ip", "pihole-svc")
		k.service(t, ns, "pihole-dns-tcp", metallb, withIP("203.0.113.53"), withPorts(tcpPort(53)))
		k.service(t, ns, "pihole-dns-udp", metallb, withIP("203.0.113.53"), withPorts(udpPort(53), udpPort(67)))
		k.service(t, ns, "pihole-web", withAnnotations("metallb.io/address-pool", "req-pihole", "metallb.io/loadBalancerIPs", "203.0.113.54"),
			withPorts(tcpPort(80), tcpPort(443)))
		for _, name := range []string{"pihole-dns-tcp", "pihole-dns-udp"} {
			checkVIP(t, k.waitService(t, ns, name, "203.0.113.53", allocatedIPs("203.0.113.53")))
			k.waitEvent(t, ns, name, EventAllocated, "203.0.113.53 from pool req-pihole")
		}
		checkVIP(t, k.waitService(t, ns, "pihole-web", "203.0.113.54", allocatedIPs("203.0.113.54")))
		// A shared address counts once.
		k.waitPool(t, "req-pihole", "2 assigned", poolCounts(2, 6, 0, 0))
	})
	k.waitPool(t, "req-named", "5 assigned", poolCounts(5, 3, 0, 0))
	k.waitPool(t, "req-main", "6 assigned", poolCounts(6, 10, 0, 0))
	k.settled(t, ns)
}

// TestLoadBalancerClass: bgplb serves its class, and unclassed Services
// only when told to; everything else it leaves exactly as it is.
func TestLoadBalancerClass(t *testing.T) {
	k := startKube(t)
	ns := k.env.Namespace(t)
	k.pool(t, "class-pool", []string{"203.0.113.64/29"})
	first := k.runController(t, RunOptions{Options: Options{HandleUnclassed: false}})

	k.service(t, ns, "unclassed")
	k.service(t, ns, "other", withClass("example.com/other-lb"))
	// Another load balancer answers for its class: bgplb must keep off.
	other := k.getService(t, ns, "other")
	other.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "198.51.100.250"}}
	if err := k.c.Status().Update(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	k.service(t, ns, "ours", withClass(Class))

	checkVIP(t, k.waitService(t, ns, "ours", "an address", allocatedIPs("203.0.113.64")))
	// The filter untouched applies sees bgplb's own events.
	k.waitEvent(t, ns, "ours", "IPAllocated", "203.0.113.64")
	if evs := k.bgplbEvents(t, ns, "ours"); len(evs) == 0 {
		t.Fatalf("no event on Service ours counts as bgplb's: %q", k.events(t, ns, "ours"))
	}
	k.untouched(t, ns, "unclassed", time.Second)
	k.untouched(t, ns, "other", 0, "198.51.100.250")
	if _, ok := first.r.Assignment(ns, "unclassed"); ok {
		t.Errorf("unclassed Service holds an address with HandleUnclassed false")
	}
	first.stop(t)

	// The default load balancer of the cluster takes the unclassed one.
	k.runController(t, RunOptions{Options: Options{HandleUnclassed: true}})
	checkVIP(t, k.waitService(t, ns, "unclassed", "an address", allocatedIPs("203.0.113.65")))
	k.waitEvent(t, ns, "unclassed", EventAllocated, "203.0.113.65")
	k.waitService(t, ns, "ours", "its address kept", allocatedIPs("203.0.113.64"))
	k.untouched(t, ns, "other", time.Second, "198.51.100.250")
	k.waitPool(t, "class-pool", "2 assigned", poolCounts(2, 6, 0, 0))
}

// TestDualStack: families and policies, from a pool with both families
// and from an IPv4-only one.
func TestDualStack(t *testing.T) {
	k := startKube(t)
	ns := k.env.Namespace(t)
	k.pool(t, "ds-pool", []string{"203.0.113.80/29", "2001:db8:80::/125"})
	k.pool(t, "ds-v4only", []string{"198.51.100.80/29"}, noAutoAssign)
	k.runController(t, RunOptions{Options: Options{HandleUnclassed: true}})

	tests := []struct {
		name   string
		mod    func(*corev1.Service)
		want   []string // ingress in order
		reason string   // failure reason instead
	}{
		{"require-ipv4-ipv6", withFamilies(corev1.IPFamilyPolicyRequireDualStack, ipv4, ipv6),
			[]string{"203.0.113.80", "2001:db8:80::"}, ""},
		{"require-ipv6-ipv4", withFamilies(corev1.IPFamilyPolicyRequireDualStack, ipv6, ipv4),
			[]string{"2001:db8:80::1", "203.0.113.81"}, ""},
		{"single-ipv6", withFamilies(corev1.IPFamilyPolicySingleStack, ipv6),
			[]string{"2001:db8:80::2"}, ""},
		{"prefer-dual", withFamilies(corev1.IPFamilyPolicyPreferDualStack, ipv4, ipv6),
			[]string{"203.0.113.82", "2001:db8:80::3"}, ""},
		{"requested-pair", allOf(withFamilies(corev1.IPFamilyPolicyRequireDualStack, ipv4, ipv6),
			withAnnotations(lbmodel.AnnotationIPs, "2001:db8:80::6, 203.0.113.86")),
			[]string{"203.0.113.86", "2001:db8:80::6"}, ""},
		{"prefer-dual-from-ipv4-pool", allOf(withFamilies(corev1.IPFamilyPolicyPreferDualStack, ipv4, ipv6),
			withAnnotations(lbmodel.AnnotationPool, "ds-v4only")),
			[]string{"198.51.100.80"}, ""},
		{"require-dual-from-ipv4-pool", allOf(withFamilies(corev1.IPFamilyPolicyRequireDualStack, ipv4, ipv6),
			withAnnotations(lbmodel.AnnotationPool, "ds-v4only")),
			nil, "FamilyUnavailable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k.service(t, ns, tc.name, tc.mod)
			if tc.reason != "" {
				s := k.waitService(t, ns, tc.name, tc.reason, failedWith(tc.reason))
				if len(s.Status.LoadBalancer.Ingress) != 0 {
					t.Errorf("ingress %v, want none", ingressIPs(s))
				}
				k.waitWarning(t, ns, tc.name, EventFailed, "both IPv4 and IPv6")
				return
			}
			s := k.waitService(t, ns, tc.name, strings.Join(tc.want, ","), allocatedIPs(tc.want...))
			checkVIP(t, s)
		})
	}
	k.waitPool(t, "ds-pool", "counts", poolCounts(4, 4, 5, 3))
	k.waitPool(t, "ds-v4only", "counts", poolCounts(1, 7, 0, 0))
}

// TestSharedIP: Services with one sharing key and no port in common share
// an address; a port in common or a different externalTrafficPolicy keeps
// them apart, and asking for the address by name then is InUse.
func TestSharedIP(t *testing.T) {
	k := startKube(t)
	ns := k.env.Namespace(t)
	k.pool(t, "share-pool", []string{"203.0.113.96/29"})
	x := k.runController(t, RunOptions{Options: Options{HandleUnclassed: true}})
	dns := withAnnotations(lbmodel.AnnotationSharedIP, "dns")

	tests := []struct {
		name   string
		mod    func(*corev1.Service)
		want   string
		reason string // failure reason instead
		msg    string // in the failure
	}{
		{"dns-udp", allOf(dns, withPorts(udpPort(53))), "203.0.113.96", "", ""},
		{"dns-tcp", allOf(dns, withPorts(tcpPort(53))), "203.0.113.96", "", ""},
		{"dns-tcp-again", allOf(dns, withPorts(tcpPort(53))), "203.0.113.97", "", ""},
		{"dns-local", allOf(dns, withPorts(udpPort(5353)), withLocalTraffic), "203.0.113.98", "", ""},
		{"other-key", allOf(withAnnotations(lbmodel.AnnotationSharedIP, "web"), withPorts(tcpPort(80))), "203.0.113.99", "", ""},
		{"no-key", withPorts(tcpPort(8080)), "203.0.113.100", "", ""},
		{"ask-clashing-port", allOf(dns, withIP("203.0.113.96"), withPorts(udpPort(53))), "", "InUse", "both use port 53/UDP"},
		{"ask-other-policy", allOf(dns, withIP("203.0.113.96"), withPorts(tcpPort(853)), withLocalTraffic), "", "InUse", "externalTrafficPolicy differs"},
		{"ask-other-key", allOf(withAnnotations(lbmodel.AnnotationSharedIP, "web"), withIP("203.0.113.96"), withPorts(tcpPort(853))), "", "InUse", "sharing keys differ"},
		{"ask-no-key", allOf(withIP("203.0.113.96"), withPorts(tcpPort(853))), "", "InUse", "allow-shared-ip"},
		{"ask-compatible", allOf(dns, withIP("203.0.113.96"), withPorts(tcpPort(853))), "203.0.113.96", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k.service(t, ns, tc.name, tc.mod)
			if tc.reason != "" {
				s := k.waitService(t, ns, tc.name, tc.reason, failedWith(tc.reason))
				if len(s.Status.LoadBalancer.Ingress) != 0 {
					t.Errorf("ingress %v, want none", ingressIPs(s))
				}
				if c := condition(s); !strings.Contains(c.Message, tc.msg) {
					t.Errorf("condition message %q does not say %q", c.Message, tc.msg)
				}
				k.waitWarning(t, ns, tc.name, EventFailed, tc.msg)
				return
			}
			checkVIP(t, k.waitService(t, ns, tc.name, tc.want, allocatedIPs(tc.want)))
		})
	}
	// Five distinct addresses in use; .96 by three Services.
	k.waitPool(t, "share-pool", "5 assigned", poolCounts(5, 3, 0, 0))
	if a, _ := x.r.Assignment(ns, "dns-udp"); len(a.Addresses) != 1 || a.SharingKey != "dns" {
		t.Errorf("dns-udp holds %+v", a)
	}

	// The address stays with the other sharers when one goes.
	k.deleteService(t, ns, "dns-udp")
	k.waitService(t, ns, "dns-tcp", "address kept", allocatedIPs("203.0.113.96"))
	k.waitService(t, ns, "ask-compatible", "address kept", allocatedIPs("203.0.113.96"))
	// With dns-udp gone, UDP 53 on .96 is free again: the Service that
	// clashed with it is woken and gets the address it asked for.
	k.waitService(t, ns, "ask-clashing-port", "the address once UDP 53 is free", allocatedIPs("203.0.113.96"))
	k.waitService(t, ns, "ask-other-policy", "still InUse", failedWith("InUse"))
	k.waitPool(t, "share-pool", "still 5 assigned", poolCounts(5, 3, 0, 0))
}

// TestBadRequests: each way a request can fail gives a Warning event and
// condition False with the allocator's reason, no address, and disturbs
// nobody else; a Service holding an address keeps it when its request
// goes bad.
func TestBadRequests(t *testing.T) {
	k := startKube(t)
	ns := k.env.Namespace(t)
	k.pool(t, "bad-pool", []string{"203.0.113.112/29"})
	k.pool(t, "bad-tiny", []string{"198.51.100.112"}, noAutoAssign)
	k.pool(t, "bad-closed", []string{"198.51.100.120/30"}, func(p *v1alpha1.LoadBalancerPool) {
		p.Spec.ServiceAllocation = &v1alpha1.ServiceAllocation{Namespaces: []string{"no-such-namespace"}}
	})
	x := k.runController(t, RunOptions{Options: Options{HandleUnclassed: true}})

	// Bystanders: nothing below may move them.
	k.service(t, ns, "holder")
	k.service(t, ns, "tiny-holder", withAnnotations(lbmodel.AnnotationPool, "bad-tiny"))
	k.waitService(t, ns, "holder", "an address", allocatedIPs("203.0.113.112"))
	k.waitService(t, ns, "tiny-holder", "an address", allocatedIPs("198.51.100.112"))

	tests := []struct {
		name, reason, msg string
		mod               func(*corev1.Service)
	}{
		{"not-in-pool", "NotInPool", "198.51.100.200", withIP("198.51.100.200")},
		{"in-use", "InUse", "held by Service " + ns + "/holder", withAnnotations(lbmodel.AnnotationIPs, "203.0.113.112")},
		{"wrong-family", "WrongFamily", "2001:db8::112", withAnnotations(lbmodel.AnnotationIPs, "2001:db8::112")},
		{"dual-stack-one-address", "WrongFamily", "RequireDualStack",
			allOf(withFamilies(corev1.IPFamilyPolicyRequireDualStack, ipv4, ipv6), withAnnotations(lbmodel.AnnotationIPs, "203.0.113.115"))},
		{"unknown-pool", "PoolNotFound", "bad-no-such-pool", withAnnotations(lbmodel.AnnotationPool, "bad-no-such-pool")},
		{"malformed-ip", "InvalidRequest", `"203.0.113.300" is not an IP address`, withAnnotations(lbmodel.AnnotationIPs, "203.0.113.300")},
		// The error names the annotation the Service carries, not bgplb's own.
		{"malformed-metallb-ip", "InvalidRequest", `annotation metallb.universe.tf/loadBalancerIPs: "pihole" is not an IP address`,
			withAnnotations("metallb.universe.tf/loadBalancerIPs", "pihole")},
		{"two-ipv4", "InvalidRequest", "at most one per family", withAnnotations(lbmodel.AnnotationIPs, "203.0.113.113,203.0.113.114")},
		{"pool-exhausted", "PoolExhausted", "bad-tiny", withAnnotations(lbmodel.AnnotationPool, "bad-tiny")},
		{"pool-not-allowed", "PoolNotAllowed", "bad-closed", withIP("198.51.100.121")},
		{"ip-outside-named-pool", "NotInPool", "outside pool bad-tiny", withAnnotations(lbmodel.AnnotationPool, "bad-tiny", lbmodel.AnnotationIPs, "203.0.113.116")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k.service(t, ns, tc.name, tc.mod)
			s := k.waitService(t, ns, tc.name, tc.reason, failedWith(tc.reason))
			if len(s.Status.LoadBalancer.Ingress) != 0 {
				t.Errorf("ingress %v, want none", ingressIPs(s))
			}
			if c := condition(s); !strings.Contains(c.Message, tc.msg) || c.ObservedGeneration != s.Generation {
				t.Errorf("condition %+v: want a message with %q for generation %d", c, tc.msg, s.Generation)
			}
			k.waitWarning(t, ns, tc.name, EventFailed, tc.msg)
			if n := k.countEvents(t, ns, tc.name, EventAllocated); n != 0 {
				t.Errorf("%d %s events for a Service that got nothing", n, EventAllocated)
			}
		})
	}

	// Nobody else was disturbed.
	k.waitService(t, ns, "holder", "its address", allocatedIPs("203.0.113.112"))
	k.waitService(t, ns, "tiny-holder", "its address", allocatedIPs("198.51.100.112"))
	for _, name := range []string{"holder", "tiny-holder"} {
		evs := k.events(t, ns, name)
		if len(evs) != 1 || !strings.HasPrefix(evs[0], EventAllocated+": ") {
			t.Errorf("bystander %s has events %q, want one %s", name, evs, EventAllocated)
		}
	}
	k.waitPool(t, "bad-pool", "1 assigned", poolCounts(1, 7, 0, 0))
	k.waitPool(t, "bad-tiny", "1 assigned", poolCounts(1, 0, 0, 0))
	k.waitPool(t, "bad-closed", "none assigned", poolCounts(0, 4, 0, 0))
	k.settled(t, ns)
	for _, reason := range []string{"NotInPool", "InUse", "WrongFamily", "PoolNotFound", "InvalidRequest", "PoolExhausted", "PoolNotAllowed"} {
		if v, ok := metric(t, x.r, "bgplb_controller_allocation_errors_total", map[string]string{"reason": reason}); !ok || v < 1 {
			t.Errorf("allocation_errors_total{reason=%q} = %v (present %v), want at least 1", reason, v, ok)
		}
	}

	t.Run("exhausted-then-freed", func(t *testing.T) {
		// The Service waiting for bad-tiny's only address gets it as soon
		// as its holder goes (no hold-down here).
		k.deleteService(t, ns, "tiny-holder")
		k.waitService(t, ns, "pool-exhausted", "the freed address", allocatedIPs("198.51.100.112"))
		k.waitEvent(t, ns, "pool-exhausted", EventAllocated, "198.51.100.112 from pool bad-tiny")
	})

	t.Run("fixed-request", func(t *testing.T) {
		k.updateService(t, ns, "malformed-ip", withAnnotations(lbmodel.AnnotationIPs, "203.0.113.117"))
		k.waitService(t, ns, "malformed-ip", "the fixed request met", allocatedIPs("203.0.113.117"))
		k.waitEvent(t, ns, "malformed-ip", EventAllocated, "203.0.113.117")
	})

	t.Run("keeps-old-address", func(t *testing.T) {
		k.service(t, ns, "mover")
		s := k.waitService(t, ns, "mover", "an address", allocated)
		old := ingressIPs(s)
		k.updateService(t, ns, "mover", withAnnotations(lbmodel.AnnotationIPs, "203.0.113.112"))
		s = k.waitService(t, ns, "mover", "InUse", failedWith("InUse"))
		if got := ingressIPs(s); !slices.Equal(got, old) {
			t.Errorf("ingress %v after a bad edit, want the old %v", got, old)
		}
		checkVIP(t, s)
		if c := condition(s); !strings.Contains(c.Message, "keeping "+old[0]) || c.ObservedGeneration != s.Generation {
			t.Errorf("condition %+v: want it to say keeping %s, for generation %d", c, old[0], s.Generation)
		}
		k.waitWarning(t, ns, "mover", EventFailed, "keeping "+old[0])
		if a, ok := x.r.Assignment(ns, "mover"); !ok || len(a.Addresses) != 1 || a.Addresses[0].Addr.String() != old[0] {
			t.Errorf("the allocator has mover holding %+v, want %s", a, old[0])
		}
		k.waitService(t, ns, "holder", "its address", allocatedIPs("203.0.113.112"))
		// Dropping the bad request: back to True, same address.
		k.updateService(t, ns, "mover", func(s *corev1.Service) { delete(s.Annotations, lbmodel.AnnotationIPs) })
		k.waitService(t, ns, "mover", "allocated again", allocatedIPs(old...))
		if n := k.countEvents(t, ns, "mover", EventAllocated); n != 1 {
			t.Errorf("%d %s events, want 1: the address never moved", n, EventAllocated)
		}
	})
}

// TestRacingForOneAddress: two Services created at once asking for one
// address: one gets it, the other is told InUse, and gets it as soon as the
// winner goes, hold-down notwithstanding.
func TestRacingForOneAddress(t *testing.T) {
	k := startKube(t)
	ns := k.env.Namespace(t)
	k.pool(t, "race-pool", []string{"203.0.113.128/29"})
	k.runController(t, RunOptions{Options: Options{HandleUnclassed: true, HoldDown: time.Minute}})

	for i, ip := range []string{"203.0.113.130", "203.0.113.131", "203.0.113.132"} {
		names := []string{fmt.Sprintf("racer-%d-a", i), fmt.Sprintf("racer-%d-b", i)}
		var wg sync.WaitGroup
		errs := make([]error, len(names))
		start := make(chan struct{})
		for j, name := range names {
			wg.Go(func() {
				<-start
				errs[j] = k.c.Create(context.Background(), newService(ns, name, withIP(ip)))
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		decided := func(s *corev1.Service) bool { return condition(s) != nil }
		a := k.waitService(t, ns, names[0], "a decision", decided)
		b := k.waitService(t, ns, names[1], "a decision", decided)
		winner, loser := a, b
		if !allocated(a) {
			winner, loser = b, a
		}
		if !allocatedIPs(ip)(winner) {
			t.Fatalf("round %d: neither Service got %s: %s / %s", i, ip, showStatus(a), showStatus(b))
		}
		if !failedWith("InUse")(loser) || len(loser.Status.LoadBalancer.Ingress) != 0 {
			t.Fatalf("round %d: %s got %s, and %s shows %s; want InUse and no address", i, winner.Name, ip, loser.Name, showStatus(loser))
		}
		k.waitWarning(t, ns, loser.Name, EventFailed, ip+" is held by Service "+ns+"/"+winner.Name)

		k.deleteService(t, ns, winner.Name)
		k.waitService(t, ns, loser.Name, ip+" after the winner went", allocatedIPs(ip))
		k.waitEvent(t, ns, loser.Name, EventAllocated, ip)
	}
	// Each address went straight from winner to loser: none is held down.
	k.waitPool(t, "race-pool", "3 assigned", poolCounts(3, 5, 0, 0))
}

// TestReleaseAndHoldDown: a Service that stops being a LoadBalancer, or is
// deleted, gives its address up; with hold-down others do not get it until
// the hold-down ends, and the pool counts it meanwhile.
func TestReleaseAndHoldDown(t *testing.T) {
	const holdDown = 3 * time.Second
	k := startKube(t)
	ns := k.env.Namespace(t)
	k.pool(t, "hold-pool", []string{"203.0.113.160-203.0.113.163"})
	k.pool(t, "hold-one", []string{"198.51.100.160"}, noAutoAssign)
	x := k.runController(t, RunOptions{Options: Options{HandleUnclassed: true, HoldDown: holdDown}})
	holdMetric := map[string]string{"pool": "hold-pool", "family": "ipv4", "state": "hold_down"}

	k.service(t, ns, "first")
	k.waitService(t, ns, "first", "an address", allocatedIPs("203.0.113.160"))
	k.waitPool(t, "hold-pool", "1 assigned", poolCounts(1, 3, 0, 0))

	// LoadBalancer -> ClusterIP: released, status cleared.
	k.updateService(t, ns, "first", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP })
	released := time.Now()
	k.waitService(t, ns, "first", "status cleared", func(s *corev1.Service) bool {
		return len(s.Status.LoadBalancer.Ingress) == 0 && condition(s) == nil
	})
	k.waitEvent(t, ns, "first", EventReleased, "203.0.113.160")
	if _, ok := x.r.Assignment(ns, "first"); ok {
		t.Errorf("a ClusterIP Service still holds an address")
	}

	// During hold-down a newcomer gets the next address; the pool shows one
	// assigned and one held down.
	k.service(t, ns, "second")
	s := k.waitService(t, ns, "second", "an address", allocated)
	if time.Since(released) >= holdDown {
		t.Fatalf("too slow: the hold-down was over before it could be checked")
	}
	if got := ingressIPs(s); !slices.Equal(got, []string{"203.0.113.161"}) {
		t.Fatalf("a newcomer during hold-down got %v, want the next address 203.0.113.161", got)
	}
	if v, _ := metric(t, x.r, "bgplb_controller_pool_addresses", holdMetric); v != 1 {
		t.Errorf("hold_down gauge %v, want 1", v)
	}
	k.waitPool(t, "hold-pool", "1 assigned, 1 held down", poolCounts(1, 2, 0, 0))
	// Then it comes free by the clock, and the pool says so.
	k.waitPool(t, "hold-pool", "hold-down over", poolCounts(1, 3, 0, 0))
	waitMetric(t, x.r, "bgplb_controller_pool_addresses", holdMetric, 0)
	k.service(t, ns, "third")
	k.waitService(t, ns, "third", "the released address", allocatedIPs("203.0.113.160"))

	// Deleting a Service releases its address too.
	k.deleteService(t, ns, "second")
	k.waitPool(t, "hold-pool", "second's address held down", poolCounts(1, 2, 0, 0))
	if _, ok := x.r.Assignment(ns, "second"); ok {
		t.Errorf("a deleted Service still holds an address")
	}
	k.waitPool(t, "hold-pool", "hold-down over", poolCounts(1, 3, 0, 0))

	// The first Service switched back gets an address again.
	k.updateService(t, ns, "first", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeLoadBalancer })
	k.waitService(t, ns, "first", "an address again", allocatedIPs("203.0.113.161"))

	// A full pool whose only address is held down: the Service waits, says
	// why, and gets the address when the hold-down ends, with no other
	// event to wake it.
	k.service(t, ns, "solo", withAnnotations(lbmodel.AnnotationPool, "hold-one"))
	k.waitService(t, ns, "solo", "the only address", allocatedIPs("198.51.100.160"))
	k.deleteService(t, ns, "solo")
	k.service(t, ns, "next", withAnnotations(lbmodel.AnnotationPool, "hold-one"))
	k.waitService(t, ns, "next", "PoolExhausted, held down", func(s *corev1.Service) bool {
		return failedWith("PoolExhausted")(s) && strings.Contains(condition(s).Message, "held down")
	})
	k.waitService(t, ns, "next", "the address after hold-down", allocatedIPs("198.51.100.160"))
}

// TestRestartKeepsAddresses: a new controller rebuilds the assignments from
// Service status before it assigns anything: nobody moves and nothing is
// handed out twice.
func TestRestartKeepsAddresses(t *testing.T) {
	const n, more, down = 100, 5, 2
	k := startKube(t)
	ns := k.env.Namespace(t)
	k.pool(t, "restart-pool", []string{"198.51.100.0/25"})
	first := k.runController(t, RunOptions{Options: Options{HandleUnclassed: true}})

	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("svc-%03d", i)
	}
	k.createServices(t, ns, names)
	before := k.waitAllAllocated(t, ns, names)
	if got := len(distinct(before)); got != n {
		t.Fatalf("%d Services got %d distinct addresses", n, got)
	}
	first.stop(t)

	// Some arrive while no controller runs, some right after the new one
	// starts: either way they must not get an address already held.
	var newNames []string
	for i := range down + more {
		newNames = append(newNames, fmt.Sprintf("new-%d", i))
	}
	k.createServices(t, ns, newNames[:down])
	second := k.runController(t, RunOptions{Options: Options{HandleUnclassed: true}})
	k.createServices(t, ns, newNames[down:])
	after := k.waitAllAllocated(t, ns, append(slices.Clone(names), newNames...))

	for _, name := range names {
		if before[name] != after[name] {
			t.Errorf("%s moved from %s to %s across the restart", name, before[name], after[name])
		}
		a, ok := second.r.Assignment(ns, name)
		if !ok || len(a.Addresses) != 1 || a.Addresses[0].Addr.String() != before[name] {
			t.Errorf("the new controller has %s holding %+v, want %s", name, a, before[name])
		}
	}
	if got := len(distinct(after)); got != n+down+more {
		t.Errorf("%d Services hold %d distinct addresses: %v", n+down+more, got, duplicates(after))
	}
	k.waitPool(t, "restart-pool", "all counted", poolCounts(n+down+more, 128-(n+down+more), 0, 0))
	// The 100 were not told anything new (the first controller may have
	// stopped before sending every event: at most one).
	for _, name := range names[:10] {
		if c := k.countEvents(t, ns, name, EventAllocated); c > 1 {
			t.Errorf("%s has %d %s events, want 1: %q", name, c, EventAllocated, k.events(t, ns, name))
		}
	}
}

// TestChangedWhileDown: what happened while no controller ran is sorted
// out by the next one: a Service deleted meanwhile frees its address, one
// switched to ClusterIP has bgplb's status removed, and of two Services
// whose status claims one address the older keeps it and the newer is told
// and given another.
func TestChangedWhileDown(t *testing.T) {
	k := startKube(t)
	ns := k.env.Namespace(t)
	k.pool(t, "down-pool", []string{"203.0.113.240/29"})
	first := k.runController(t, RunOptions{Options: Options{HandleUnclassed: true}})

	// The older Service's name sorts last, and the others are created in a
	// later second (creation times have one-second resolution): only age
	// can decide for it.
	older := k.service(t, ns, "z-older")
	k.waitService(t, ns, "z-older", "an address", allocatedIPs("203.0.113.240"))
	time.Sleep(time.Until(older.CreationTimestamp.Add(1100 * time.Millisecond)))
	for i, name := range []string{"gone", "switched", "a-newer"} {
		k.service(t, ns, name)
		k.waitService(t, ns, name, "an address", allocatedIPs(fmt.Sprintf("203.0.113.%d", 241+i)))
	}
	first.stop(t)

	k.deleteService(t, ns, "gone")
	k.updateService(t, ns, "switched", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP })
	newer := k.getService(t, ns, "a-newer")
	newer.Status.LoadBalancer.Ingress = Ingress([]netip.Addr{netip.MustParseAddr("203.0.113.240")})
	if err := k.c.Status().Update(context.Background(), newer); err != nil {
		t.Fatal(err)
	}

	second := k.runController(t, RunOptions{Options: Options{HandleUnclassed: true}})
	// The API server cleared the ingress when the type changed; bgplb's
	// condition must go too, and the address is free again (newcomer below).
	k.waitService(t, ns, "switched", "status cleared", func(s *corev1.Service) bool {
		return len(s.Status.LoadBalancer.Ingress) == 0 && condition(s) == nil
	})
	k.waitWarning(t, ns, "a-newer", EventRestoreConflict, "203.0.113.240 is held by Service "+ns+"/z-older")
	// The lowest free address: gone's.
	k.waitService(t, ns, "a-newer", "another address", allocatedIPs("203.0.113.241"))
	k.waitService(t, ns, "z-older", "its address kept", allocatedIPs("203.0.113.240"))
	if n := k.countEvents(t, ns, "z-older", EventRestoreConflict); n != 0 {
		t.Errorf("the older Service was told of a conflict")
	}
	k.service(t, ns, "newcomer")
	k.waitService(t, ns, "newcomer", "the next free address", allocatedIPs("203.0.113.242"))
	if _, ok := second.r.Assignment(ns, "switched"); ok {
		t.Errorf("a ClusterIP Service holds an address")
	}
	k.waitPool(t, "down-pool", "3 assigned", poolCounts(3, 5, 0, 0))
}

// createServices creates plain LoadBalancer Services concurrently.
func (k *kube) createServices(t *testing.T, ns string, names []string) {
	t.Helper()
	work := make(chan string)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for name := range work {
				if err := k.c.Create(context.Background(), newService(ns, name)); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, name := range names {
		work <- name
	}
	close(work)
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
}

// waitAllAllocated waits until every named Service in ns is allocated one
// address, and returns the addresses by name.
func (k *kube) waitAllAllocated(t *testing.T, ns string, names []string) map[string]string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var list corev1.ServiceList
		if err := k.c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		var missing []string
		for _, s := range list.Items {
			if allocated(&s) && len(s.Status.LoadBalancer.Ingress) == 1 {
				got[s.Name] = s.Status.LoadBalancer.Ingress[0].IP
			}
		}
		for _, name := range names {
			if _, ok := got[name]; !ok {
				missing = append(missing, name)
			}
		}
		if len(missing) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d Services not allocated after 60s: %v", len(missing), missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func distinct(m map[string]string) map[string]bool {
	out := map[string]bool{}
	for _, v := range m {
		out[v] = true
	}
	return out
}

func duplicates(m map[string]string) map[string][]string {
	by := map[string][]string{}
	for k, v := range m {
		by[v] = append(by[v], k)
	}
	for v, ks := range by {
		if len(ks) < 2 {
			delete(by, v)
		}
	}
	return by
}

// TestPoolShrinks: a pool that no longer covers a Service's address does
// not move the Service: it keeps the address and is told, and nobody else
// gets the address.
func TestPoolShrinks(t *testing.T) {
	k := startKube(t)
	ns := k.env.Namespace(t)
	k.pool(t, "shrink-pool", []string{"203.0.113.144-203.0.113.151"})
	x := k.runController(t, RunOptions{Options: Options{HandleUnclassed: true}})

	k.service(t, ns, "a")
	k.waitService(t, ns, "a", "an address", allocatedIPs("203.0.113.144"))
	k.service(t, ns, "b")
	k.waitService(t, ns, "b", "an address", allocatedIPs("203.0.113.145"))

	k.updatePool(t, "shrink-pool", func(p *v1alpha1.LoadBalancerPool) { p.Spec.Addresses = []string{"203.0.113.146-203.0.113.151"} })
	for _, c := range []struct{ name, ip string }{{"a", "203.0.113.144"}, {"b", "203.0.113.145"}} {
		s := k.waitService(t, ns, c.name, "OutsidePools", func(s *corev1.Service) bool {
			cond := condition(s)
			return hasIPs(c.ip)(s) && cond != nil && cond.Status == metav1.ConditionTrue && cond.Reason == ReasonOutsidePools
		})
		checkVIP(t, s)
		if msg := condition(s).Message; !strings.Contains(msg, c.ip+" is outside every pool") {
			t.Errorf("condition message %q does not name %s", msg, c.ip)
		}
		k.waitWarning(t, ns, c.name, EventOutsidePools, c.ip)
		if a, ok := x.r.Assignment(ns, c.name); !ok || a.Addresses[0].Addr.String() != c.ip {
			t.Errorf("the allocator has %s holding %+v, want %s", c.name, a, c.ip)
		}
	}
	waitMetric(t, x.r, "bgplb_controller_orphaned_addresses", nil, 2)
	k.waitPool(t, "shrink-pool", "orphans not counted", poolCounts(0, 6, 0, 0))

	// A newcomer gets an address of the pool, not an orphan.
	k.service(t, ns, "c")
	k.waitService(t, ns, "c", "an address in the pool", allocatedIPs("203.0.113.146"))
	// Asking for an orphan by name is refused: it is outside every pool
	// (and held).
	k.service(t, ns, "d", withIP("203.0.113.144"))
	k.waitService(t, ns, "d", "NotInPool", failedWith("NotInPool"))

	// Still where they were, and told once.
	for _, c := range []struct{ name, ip string }{{"a", "203.0.113.144"}, {"b", "203.0.113.145"}} {
		k.waitService(t, ns, c.name, "kept", hasIPs(c.ip))
		if n := k.countEvents(t, ns, c.name, EventAllocated); n != 1 {
			t.Errorf("%s has %d %s events, want 1: it must not move", c.name, n, EventAllocated)
		}
	}

	// The pool grows back: the condition returns to Allocated.
	k.updatePool(t, "shrink-pool", func(p *v1alpha1.LoadBalancerPool) { p.Spec.Addresses = []string{"203.0.113.144-203.0.113.151"} })
	k.waitService(t, ns, "a", "Allocated again", func(s *corev1.Service) bool {
		return allocatedIPs("203.0.113.144")(s) && condition(s).Reason == ReasonAllocated
	})
	waitMetric(t, x.r, "bgplb_controller_orphaned_addresses", nil, 0)
	k.waitPool(t, "shrink-pool", "all counted", poolCounts(3, 5, 0, 0))
}

// TestLoadBalancerPoolStatus: counts per family, the Ready condition for an
// accepted and an overlapping pool, and the API server refusing an invalid
// pool.
func TestLoadBalancerPoolStatus(t *testing.T) {
	k := startKube(t)
	ns := k.env.Namespace(t)
	old := k.pool(t, "status-z-old", []string{"203.0.113.192-203.0.113.201", "2001:db8:c0::/124"})
	k.pool(t, "status-big6", []string{"2001:db8:c100::/56"}, noAutoAssign)
	x := k.runController(t, RunOptions{Options: Options{HandleUnclassed: true}})

	k.waitPool(t, "status-z-old", "empty counts", poolCounts(0, 10, 0, 16))
	k.waitPool(t, "status-z-old", "Ready", poolReady(metav1.ConditionTrue, v1alpha1.LoadBalancerPoolReasonAccepted))
	// More than 2^63 addresses: the count saturates.
	k.waitPool(t, "status-big6", "saturated count", poolCounts(0, 0, 0, 1<<63-1))

	k.service(t, ns, "ipv4-a")
	k.service(t, ns, "ipv4-b")
	k.service(t, ns, "ipv6", withFamilies(corev1.IPFamilyPolicySingleStack, ipv6))
	k.service(t, ns, "dual", withFamilies(corev1.IPFamilyPolicyRequireDualStack, ipv4, ipv6))
	k.service(t, ns, "big6", withFamilies(corev1.IPFamilyPolicySingleStack, ipv6), withAnnotations(lbmodel.AnnotationPool, "status-big6"))
	for _, name := range []string{"ipv4-a", "ipv4-b", "ipv6", "dual", "big6"} {
		k.waitService(t, ns, name, "an address", allocated)
	}
	k.waitPool(t, "status-z-old", "3+2 assigned", poolCounts(3, 7, 2, 14))
	k.waitPool(t, "status-big6", "1 assigned", poolCounts(0, 0, 1, 1<<63-1))
	for _, m := range []struct {
		family, state string
		want          float64
	}{{"ipv4", "assigned", 3}, {"ipv4", "available", 7}, {"ipv6", "assigned", 2}, {"ipv6", "available", 14}, {"ipv4", "hold_down", 0}} {
		waitMetric(t, x.r, "bgplb_controller_pool_addresses",
			map[string]string{"pool": "status-z-old", "family": m.family, "state": m.state}, m.want)
	}

	// A newer pool overlapping the old one is refused; the old one is
	// untouched. The newer one's name sorts first, and it is created in a
	// later second (creation times have one-second resolution), so that
	// only its age can tell them apart.
	time.Sleep(time.Until(old.CreationTimestamp.Add(1100 * time.Millisecond)))
	k.pool(t, "status-a-new", []string{"203.0.113.200-203.0.113.203"})
	p := k.waitPool(t, "status-a-new", "Overlap", poolReady(metav1.ConditionFalse, v1alpha1.LoadBalancerPoolReasonOverlap))
	if c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.LoadBalancerPoolConditionReady); !strings.Contains(c.Message, "status-z-old") {
		t.Errorf("Overlap message %q does not name the older pool", c.Message)
	}
	if p.Status.AssignedIPv4 != 0 || p.Status.AvailableIPv4 != 0 {
		t.Errorf("a refused pool counts %+v", p.Status)
	}
	k.waitPool(t, "status-z-old", "still Ready", poolReady(metav1.ConditionTrue, v1alpha1.LoadBalancerPoolReasonAccepted))
	k.waitPool(t, "status-z-old", "counts unchanged", poolCounts(3, 7, 2, 14))
	// Nothing comes from the refused pool's own addresses either.
	k.service(t, ns, "into-refused", withAnnotations(lbmodel.AnnotationPool, "status-a-new"))
	s := k.waitService(t, ns, "into-refused", "PoolNotFound", failedWith("PoolNotFound"))
	if c := condition(s); !strings.Contains(c.Message, "refused") {
		t.Errorf("condition message %q does not say the pool is refused", c.Message)
	}
	k.service(t, ns, "ask-202", withIP("203.0.113.202"))
	k.waitService(t, ns, "ask-202", "NotInPool", failedWith("NotInPool"))

	// The API server itself refuses malformed pools.
	for _, tc := range []struct{ name, addr string }{
		{"status-bad-order", "203.0.113.210-203.0.113.205"},
		{"status-bad-hostbits", "203.0.113.1/24"},
		{"status-bad-families", "203.0.113.210-2001:db8::1"},
		{"status-bad-text", "pihole"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := &v1alpha1.LoadBalancerPool{ObjectMeta: metav1.ObjectMeta{Name: tc.name}, Spec: v1alpha1.LoadBalancerPoolSpec{Addresses: []string{tc.addr}}}
			err := k.c.Create(context.Background(), bad)
			if err == nil {
				_ = k.c.Delete(context.Background(), bad)
				t.Fatalf("LoadBalancerPool with %q was accepted", tc.addr)
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.addresses") {
				t.Errorf("creating a LoadBalancerPool with %q: %v; want Invalid naming spec.addresses", tc.addr, err)
			}
		})
	}
}

// TestNamespaceSelector: a pool for labelled namespaces only; labelling a
// namespace later serves the Service that was waiting there.
func TestNamespaceSelector(t *testing.T) {
	const label = "test.bgplb.io/lb"
	k := startKube(t)
	nsIn := k.env.Namespace(t)
	nsOut := k.env.Namespace(t)
	setLabel := func(ns, value string) {
		t.Helper()
		var n corev1.Namespace
		if err := k.c.Get(context.Background(), client.ObjectKey{Name: ns}, &n); err != nil {
			t.Fatal(err)
		}
		patch := client.MergeFrom(n.DeepCopy())
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		if value == "" {
			delete(n.Labels, label)
		} else {
			n.Labels[label] = value
		}
		if err := k.c.Patch(context.Background(), &n, patch); err != nil {
			t.Fatal(err)
		}
	}
	setLabel(nsIn, "yes")
	k.pool(t, "nssel-pool", []string{"203.0.113.176/29"}, func(p *v1alpha1.LoadBalancerPool) {
		p.Spec.ServiceAllocation = &v1alpha1.ServiceAllocation{
			NamespaceSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{label: "yes"}}},
		}
	})
	k.runController(t, RunOptions{Options: Options{HandleUnclassed: true}})

	k.service(t, nsIn, "in")
	k.waitService(t, nsIn, "in", "an address", allocatedIPs("203.0.113.176"))
	k.service(t, nsOut, "out")
	s := k.waitService(t, nsOut, "out", "NoPool", failedWith("NoPool"))
	if len(s.Status.LoadBalancer.Ingress) != 0 {
		t.Errorf("ingress %v, want none", ingressIPs(s))
	}
	k.waitWarning(t, nsOut, "out", EventFailed, "no pool")
	// A label that does not match changes nothing.
	setLabel(nsOut, "no")
	k.service(t, nsOut, "out-2", withIP("203.0.113.180"))
	k.waitService(t, nsOut, "out-2", "PoolNotAllowed", failedWith("PoolNotAllowed"))
	k.waitService(t, nsOut, "out", "still NoPool", failedWith("NoPool"))

	setLabel(nsOut, "yes")
	k.waitService(t, nsOut, "out", "an address once the namespace matches", allocatedIPs("203.0.113.177"))
	k.waitService(t, nsOut, "out-2", "its address once the namespace matches", allocatedIPs("203.0.113.180"))
	k.waitEvent(t, nsOut, "out", EventAllocated, "203.0.113.177")

	// Taking the label away does not take addresses away.
	setLabel(nsOut, "")
	k.service(t, nsOut, "probe")
	k.waitService(t, nsOut, "probe", "NoPool after the label went", failedWith("NoPool"))
	k.waitService(t, nsOut, "out", "its address kept", allocatedIPs("203.0.113.177"))
	k.waitService(t, nsIn, "in", "its address kept", allocatedIPs("203.0.113.176"))
}

// TestLeaderElection: of two controllers only the leader allocates; when
// it stops the other takes over, keeps what was assigned and serves new
// Services. Both serve health and metrics.
func TestLeaderElection(t *testing.T) {
	k := startKube(t)
	ns := k.env.Namespace(t)
	k.pool(t, "le-pool", []string{"203.0.113.224/29"})
	id := "bgplb-test-" + ns
	type ctl struct {
		x              *running
		health, metric string
	}
	start := func() ctl {
		c := ctl{health: freeAddr(t), metric: freeAddr(t)}
		c.x = k.runController(t, RunOptions{
			Options:                 Options{HandleUnclassed: true},
			LeaderElection:          true,
			LeaderElectionNamespace: ns,
			LeaderElectionID:        id,
			LeaseDuration:           2 * time.Second,
			RenewDeadline:           1500 * time.Millisecond,
			RetryPeriod:             200 * time.Millisecond,
			HealthAddr:              c.health,
			MetricsAddr:             c.metric,
		})
		return c
	}
	ctls := []ctl{start(), start()}
	for _, c := range ctls {
		httpGet(t, "http://"+c.health+"/healthz")
		httpGet(t, "http://"+c.health+"/readyz")
		httpGet(t, "http://"+c.metric+"/metrics")
	}

	k.service(t, ns, "one")
	k.waitService(t, ns, "one", "an address", allocatedIPs("203.0.113.224"))
	k.service(t, ns, "bad", withIP("198.51.100.224"))
	k.waitService(t, ns, "bad", "NotInPool", failedWith("NotInPool"))

	// The leader is the one that rebuilt its state and holds the Service.
	var leader, standby ctl
	switch a0, a1 := ctls[0].x.r.Restored(), ctls[1].x.r.Restored(); {
	case a0 && !a1:
		leader, standby = ctls[0], ctls[1]
	case a1 && !a0:
		leader, standby = ctls[1], ctls[0]
	default:
		t.Fatalf("restored: %v and %v; want exactly one leader", a0, a1)
	}
	if _, ok := standby.x.r.Assignment(ns, "one"); ok {
		t.Errorf("the standby allocated")
	}
	holder := waitLease(t, k, ns, id, "")
	body := httpGet(t, "http://"+leader.metric+"/metrics")
	for _, want := range []string{
		`bgplb_controller_pool_addresses{family="ipv4",pool="le-pool",state="assigned"} 1`,
		`bgplb_controller_allocation_errors_total{reason="NotInPool"} `,
		"\ngo_goroutines ", // from controller-runtime's registry
		"\ncontroller_runtime_reconcile_total{controller=\"service\"", // likewise
	} {
		if !strings.Contains(body, want) {
			t.Errorf("leader's /metrics lacks %s", want)
		}
	}
	httpGet(t, "http://"+leader.health+"/readyz")
	httpGet(t, "http://"+standby.health+"/readyz")

	leader.x.stop(t)
	// The standby takes over: a new holder, then it rebuilds and serves.
	waitLease(t, k, ns, id, holder)
	k.service(t, ns, "two")
	k.waitService(t, ns, "two", "an address from the new leader", allocatedIPs("203.0.113.225"))
	k.waitService(t, ns, "one", "its address kept", allocatedIPs("203.0.113.224"))
	if !standby.x.r.Restored() {
		t.Errorf("the new leader did not rebuild its state")
	}
	if a, ok := standby.x.r.Assignment(ns, "one"); !ok || a.Addresses[0].Addr != netip.MustParseAddr("203.0.113.224") {
		t.Errorf("the new leader has one holding %+v", a)
	}
	httpGet(t, "http://"+standby.health+"/healthz")
	httpGet(t, "http://"+standby.health+"/readyz")
	body = httpGet(t, "http://"+standby.metric+"/metrics")
	for _, want := range []string{
		`bgplb_controller_pool_addresses{family="ipv4",pool="le-pool",state="assigned"} 2`,
		`bgplb_controller_allocation_errors_total{reason="NotInPool"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("new leader's /metrics lacks %s", want)
		}
	}
}

// waitLease waits until the Lease has a holder other than not, and returns
// it.
func waitLease(t *testing.T, k *kube, ns, name, not string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last *coordinationv1.Lease
	for {
		l, err := k.env.Client.CoordinationV1().Leases(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil {
			last = l
			if h := l.Spec.HolderIdentity; h != nil && *h != "" && *h != not {
				return *h
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Lease %s/%s: no holder other than %q after 30s; last %+v (err %v)", ns, name, not, last, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
