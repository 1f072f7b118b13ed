package speaker

// The issue 12 rules, against the real API server, with speakers peering
// over real BGP sessions.

import (
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

var lo = netip.MustParseAddr("127.0.0.1")

// twoNodes runs speakers on two nodes of the test, each with a receiver.
func twoNodes(t *testing.T, k *kube) (n1, n2 string, r1, r2 *receiver) {
	n1, n2 = k.prefix+"-n1", k.prefix+"-n2"
	r1, r2 = newReceiver(t, lo), newReceiver(t, lo)
	for _, n := range []struct {
		name string
		r    *receiver
	}{{n1, r1}, {n2, r2}} {
		k.node(t, n.name, "127.0.0.1", "::1")
		k.peer(t, n.name, n.r, nil)
		k.speaker(t, n.name, nil, "")
	}
	return
}

// Cluster with no ready endpoint anywhere: withdrawn by every node, and
// announced again when one is ready.
func TestClusterWithoutEndpoints(t *testing.T) {
	k := startKube(t)
	k.config(t, "198.18.1.0/24")
	n1, _, r1, r2 := twoNodes(t, k)
	mine := netip.MustParsePrefix("198.18.1.0/24")
	k.service(t, "web", corev1.ServiceExternalTrafficPolicyCluster, "198.18.1.10")
	// A Local Service next to it shows that the speakers have seen the
	// Service (routes from one informer's events, in order).
	k.service(t, "marker", corev1.ServiceExternalTrafficPolicyLocal, "198.18.1.99")
	k.slice(t, "marker", "marker-1", discoveryv1.AddressTypeIPv4, endpoint{"m", n1, "10.1.0.9", "ready"})
	r1.has(t, mine, map[string]float32{"198.18.1.99/32": 1})
	r2.has(t, mine, map[string]float32{})

	k.slice(t, "web", "web-1", discoveryv1.AddressTypeIPv4, endpoint{"a", n1, "10.1.0.1", "notready"})
	k.slice(t, "marker", "marker-1", discoveryv1.AddressTypeIPv4, endpoint{"m", n1, "10.1.0.9", "ready"}, endpoint{"m2", n1, "10.1.0.8", "ready"})
	r1.has(t, mine, map[string]float32{"198.18.1.99/32": 2})
	r2.has(t, mine, map[string]float32{})

	k.slice(t, "web", "web-1", discoveryv1.AddressTypeIPv4, endpoint{"a", n1, "10.1.0.1", "ready"})
	r1.has(t, mine, map[string]float32{"198.18.1.99/32": 2, "198.18.1.10/32": 1})
	r2.has(t, mine, map[string]float32{"198.18.1.10/32": 1})

	k.slice(t, "web", "web-1", discoveryv1.AddressTypeIPv4, endpoint{"a", n1, "10.1.0.1", "notready"})
	r1.has(t, mine, map[string]float32{"198.18.1.99/32": 2})
	r2.has(t, mine, map[string]float32{})
}

// A single-replica rolling update: the old pod terminating (still
// serving) on n1, the new one not ready yet on n2. The route stays on n1
// until the new pod is ready; then n2 announces it too and n1 keeps it,
// marked GRACEFUL_SHUTDOWN, until the old pod is gone (make before break).
func TestTerminatingEndpoints(t *testing.T) {
	k := startKube(t)
	k.config(t, "198.18.2.0/24")
	n1, n2, r1, r2 := twoNodes(t, k)
	mine := netip.MustParsePrefix("198.18.2.0/24")
	k.service(t, "pihole", corev1.ServiceExternalTrafficPolicyLocal, "198.18.2.53")
	k.slice(t, "pihole", "pihole-1", discoveryv1.AddressTypeIPv4, endpoint{"old", n1, "10.2.0.1", "ready"})
	r1.has(t, mine, map[string]float32{"198.18.2.53/32": 1})

	k.slice(t, "pihole", "pihole-1", discoveryv1.AddressTypeIPv4,
		endpoint{"old", n1, "10.2.0.1", "terminating"}, endpoint{"new", n2, "10.2.0.2", "notready"})
	// The marker's slice, written after, proves the speakers saw the
	// update (one informer, events in order).
	k.service(t, "marker", corev1.ServiceExternalTrafficPolicyLocal, "198.18.2.99")
	k.slice(t, "marker", "marker-1", discoveryv1.AddressTypeIPv4, endpoint{"m1", n1, "10.2.0.9", "ready"}, endpoint{"m2", n2, "10.2.0.8", "ready"})
	r1.has(t, mine, map[string]float32{"198.18.2.53/32": 1, "198.18.2.99/32": 1})
	r2.has(t, mine, map[string]float32{"198.18.2.99/32": 1})
	r1.marked(t, "198.18.2.53/32", true)

	k.slice(t, "pihole", "pihole-1", discoveryv1.AddressTypeIPv4,
		endpoint{"old", n1, "10.2.0.1", "terminating"}, endpoint{"new", n2, "10.2.0.2", "ready"})
	r2.has(t, mine, map[string]float32{"198.18.2.53/32": 1, "198.18.2.99/32": 1})
	r2.marked(t, "198.18.2.53/32", false)
	r1.has(t, mine, map[string]float32{"198.18.2.53/32": 1, "198.18.2.99/32": 1})
	r1.marked(t, "198.18.2.53/32", true)

	k.slice(t, "pihole", "pihole-1", discoveryv1.AddressTypeIPv4, endpoint{"new", n2, "10.2.0.2", "ready"})
	r1.has(t, mine, map[string]float32{"198.18.2.99/32": 1})
	r2.has(t, mine, map[string]float32{"198.18.2.53/32": 1, "198.18.2.99/32": 1})
}

// Dual stack: both families' slices list the same pods; each route's
// bandwidth counts its own family's, each pod once.
func TestDualStackEndpoints(t *testing.T) {
	k := startKube(t)
	k.config(t, "198.18.3.0/24", "2001:db8:3::/120")
	n1, n2, r1, r2 := twoNodes(t, k)
	k.service(t, "dns", corev1.ServiceExternalTrafficPolicyLocal, "198.18.3.53", "2001:db8:3::53")
	k.slice(t, "dns", "dns-v4", discoveryv1.AddressTypeIPv4,
		endpoint{"a", n1, "10.3.0.1", "ready"}, endpoint{"b", n1, "10.3.0.2", "ready"}, endpoint{"c", n2, "10.3.0.3", "ready"})
	k.slice(t, "dns", "dns-v6", discoveryv1.AddressTypeIPv6,
		endpoint{"a", n1, "fd00:3::1", "ready"}, endpoint{"b", n1, "fd00:3::2", "notready"}, endpoint{"c", n2, "fd00:3::3", "ready"})
	// A third slice repeating pod a (as while the EndpointSlice controller
	// moves it between slices) adds nothing.
	k.slice(t, "dns", "dns-v4-b", discoveryv1.AddressTypeIPv4, endpoint{"a", n1, "10.3.0.1", "ready"})
	v4, v6 := netip.MustParsePrefix("198.18.3.0/24"), netip.MustParsePrefix("2001:db8:3::/120")
	r1.has(t, v4, map[string]float32{"198.18.3.53/32": 2})
	r1.has(t, v6, map[string]float32{"2001:db8:3::53/128": 1})
	r2.has(t, v4, map[string]float32{"198.18.3.53/32": 1})
	r2.has(t, v6, map[string]float32{"2001:db8:3::53/128": 1})
}

// The report objects are owned by the Node, for the garbage collector.
func TestReportsOwnedByNode(t *testing.T) {
	k := startKube(t)
	k.config(t, "198.18.4.0/24")
	n1 := k.prefix + "-n1"
	r1 := newReceiver(t, lo)
	node := k.node(t, n1, "127.0.0.1")
	k.peer(t, n1, r1, nil)
	k.speaker(t, n1, nil, "")
	k.service(t, "web", corev1.ServiceExternalTrafficPolicyCluster, "198.18.4.10")
	k.slice(t, "web", "web-1", discoveryv1.AddressTypeIPv4, endpoint{"a", n1, "10.4.0.1", "ready"})
	r1.has(t, netip.MustParsePrefix("198.18.4.0/24"), map[string]float32{"198.18.4.10/32": 1})
	owned := func(refs []metav1.OwnerReference) bool {
		return len(refs) == 1 && refs[0].Kind == "Node" && refs[0].APIVersion == "v1" && refs[0].Name == n1 && refs[0].UID == node.UID
	}
	waitFor(t, "the ServiceAnnouncement, owned by the Node", func() bool {
		var a v1alpha1.ServiceAnnouncement
		err := k.c.Get(k.ctx, types.NamespacedName{Namespace: k.ns, Name: "web." + n1}, &a)
		return err == nil && owned(a.OwnerReferences) && slices.Equal(a.Status.Peers, []string{n1})
	})
	waitFor(t, "the BGPSessionStatus, owned by the Node", func() bool {
		var s v1alpha1.BGPSessionStatus
		err := k.c.Get(k.ctx, types.NamespacedName{Name: n1 + "." + n1}, &s)
		return err == nil && owned(s.OwnerReferences) && s.Status.State == "Established"
	})
}

// An IPv6-only node peers over IPv6 with a router ID derived from its
// name.
func TestIPv6OnlyNode(t *testing.T) {
	k := startKube(t)
	k.config(t, "2001:db8:5::/120")
	n := k.prefix + "-v6"
	r := newReceiver(t, netip.IPv6Loopback())
	k.node(t, n, "::1")
	k.peer(t, n, r, nil)
	k.speaker(t, n, nil, "")
	k.service(t, "web", corev1.ServiceExternalTrafficPolicyCluster, "2001:db8:5::10")
	k.slice(t, "web", "web-1", discoveryv1.AddressTypeIPv6, endpoint{"a", n, "fd00:5::1", "ready"})
	r.has(t, netip.MustParsePrefix("2001:db8:5::/120"), map[string]float32{"2001:db8:5::10/128": 1})
	r.mu.Lock()
	id := r.peerID
	r.mu.Unlock()
	if id != derivedRouterID(n) {
		t.Errorf("router ID %v, want %v", id, derivedRouterID(n))
	}
}

// The speaker's generated RBAC reads Secrets in bgplb's namespace only,
// and a passwordSecret elsewhere is refused with the reason on the
// session's report.
func TestSecretsOnlyInOwnNamespace(t *testing.T) {
	k := startKube(t)
	b, err := os.ReadFile("../config/rbac/speaker/role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cr rbacv1.ClusterRole
	var role rbacv1.Role
	for _, doc := range strings.Split(string(b), "\n---\n") {
		switch {
		case strings.Contains(doc, "kind: ClusterRole"):
			err = yaml.UnmarshalStrict([]byte(doc), &cr)
		case strings.Contains(doc, "kind: Role"):
			err = yaml.UnmarshalStrict([]byte(doc), &role)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// In its namespace the speaker reads Secrets, and its own Pod and
	// DaemonSet (at SIGTERM): one by one, nothing more; and it keeps the
	// L2 election's Leases there.
	secrets := false
	for _, r := range role.Rules {
		secrets = secrets || slices.Contains(r.Resources, "secrets")
		for _, res := range r.Resources {
			if res == "leases" && slices.Equal(r.APIGroups, []string{"coordination.k8s.io"}) {
				continue
			}
			if !slices.Contains([]string{"secrets", "pods", "daemonsets"}, res) || !slices.Equal(r.Verbs, []string{"get"}) {
				t.Fatalf("role rule %+v", r)
			}
		}
	}
	if role.Namespace != "bgplb-system" || !secrets {
		t.Fatalf("role %+v", role)
	}
	for _, r := range cr.Rules {
		if slices.Contains(r.Resources, "secrets") {
			t.Fatalf("the ClusterRole grants Secrets: %+v", r)
		}
	}
	// The Role, in the test's namespace (standing for bgplb's own), and the
	// ClusterRole, under the test's names.
	user := k.prefix + "-speaker"
	cr.ObjectMeta = metav1.ObjectMeta{Name: user}
	role.ObjectMeta = metav1.ObjectMeta{Name: user, Namespace: k.ns}
	k.create(t, &cr)
	k.create(t, &role)
	subj := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
	k.create(t, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user}, Subjects: subj,
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: user}})
	k.create(t, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user, Namespace: k.ns}, Subjects: subj,
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: user}})
	other := k.env.Namespace(t)
	for _, ns := range []string{k.ns, other} {
		k.create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bgp"}, StringData: map[string]string{"password": "x"}})
	}
	cfg, err := k.env.UserConfig(user)
	if err != nil {
		t.Fatal(err)
	}
	uc, err := client.New(cfg, client.Options{Scheme: testScheme(t)})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the Role to take effect", func() bool {
		return uc.Get(k.ctx, types.NamespacedName{Namespace: k.ns, Name: "bgp"}, &corev1.Secret{}) == nil
	})
	if err := uc.Get(k.ctx, types.NamespacedName{Namespace: other, Name: "bgp"}, &corev1.Secret{}); !apierrors.IsForbidden(err) {
		t.Errorf("a Secret in another namespace: %v, want forbidden", err)
	}
	if err := uc.List(k.ctx, &corev1.SecretList{}, client.InNamespace(k.ns)); !apierrors.IsForbidden(err) {
		t.Errorf("listing Secrets: %v, want forbidden", err)
	}

	// A speaker with exactly that identity: the peer naming the other
	// namespace is refused, and its report says why.
	n1 := k.prefix + "-n1"
	r1 := newReceiver(t, lo)
	k.node(t, n1, "127.0.0.1")
	k.peer(t, n1, r1, func(s *v1alpha1.BGPRouterSpec) {
		s.PasswordSecret = &v1alpha1.SecretKeyReference{Namespace: other, Name: "bgp"}
	})
	k.speaker(t, n1, cfg, k.ns)
	want := "Secret " + other + "/bgp is refused: the speaker reads Secrets only in its own namespace " + k.ns
	waitFor(t, "the refusal on the BGPSessionStatus", func() bool {
		var s v1alpha1.BGPSessionStatus
		err := k.c.Get(k.ctx, types.NamespacedName{Name: n1 + "." + n1}, &s)
		return err == nil && s.Status.State == "Idle" && strings.Contains(s.Status.LastError, want)
	})
}

// waitFor polls cond every 20 ms for up to 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
