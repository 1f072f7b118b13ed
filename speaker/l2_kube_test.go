package speaker

// L2 mode's election and reports against the real API server: speakers
// in this process, each told it has one interface, bgplbtest0, which
// exists nowhere: the responder fails to open it (so nothing reaches a
// wire from the test's namespace) and says so; l2/ and the lab test the
// answers themselves.

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/l2"
	"github.com/bgplb/bgplb/view"
)

// l2Config creates a pool of cidrs and an L2AnnouncementPolicy of it on
// the test interface.
func (k *kube) l2Config(t testing.TB, cidrs ...string) {
	t.Helper()
	pool := k.prefix + "-l2pool"
	k.create(t, &v1alpha1.LoadBalancerPool{ObjectMeta: metav1.ObjectMeta{Name: pool}, Spec: v1alpha1.LoadBalancerPoolSpec{Addresses: cidrs}})
	k.create(t, &v1alpha1.L2AnnouncementPolicy{ObjectMeta: metav1.ObjectMeta{Name: k.prefix + "-l2"},
		Spec: v1alpha1.L2AnnouncementPolicySpec{IPPools: []string{pool}, Interfaces: []string{"bgplbtest*"}}})
}

// testInterfaces is what the test's speakers are told their node has.
func testInterfaces() ([]l2.Interface, error) {
	return []l2.Interface{{Name: "bgplbtest0", Index: 1 << 20, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Up: true,
		Prefixes: []netip.Prefix{netip.MustParsePrefix("198.18.2.2/24"), netip.MustParsePrefix("198.18.3.2/24")}}}, nil
}

// stoppableSpeaker runs a speaker whose stop the test calls (and the
// cleanup, if the test did not).
func (k *kube) stoppableSpeaker(t testing.TB, node string) (stop func()) {
	t.Helper()
	return k.stoppableSpeakerWith(t, node, testInterfaces)
}

func (k *kube) stoppableSpeakerWith(t testing.TB, node string, ifaces func() ([]l2.Interface, error)) (stop func()) {
	t.Helper()
	cfg := rest.CopyConfig(k.env.Config)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs strings.Builder
	var mu sync.Mutex
	o := Options{NodeName: node, Namespace: k.ns, HandleUnclassed: true, ShutdownTimeout: 5 * time.Second, DrainTime: -1,
		APISocket:    k.apiSocket(t, node),
		L2:           L2Timing{LeaseDuration: 1500 * time.Millisecond, RenewInterval: 500 * time.Millisecond},
		l2Interfaces: ifaces,
		Log:          slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	go func() { done <- Run(ctx, cfg, o) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("speaker %s: %v", node, err)
		}
	}
	t.Cleanup(func() {
		stop()
		mu.Lock()
		defer mu.Unlock()
		if t.Failed() {
			t.Logf("speaker %s log:\n%s", node, logs.String())
		}
	})
	return stop
}

// apiSocket is where the test's speaker on node serves `bgplb l2`: one
// directory per test, so sockets of tests that overlap never meet.
func (k *kube) apiSocket(t testing.TB, node string) string {
	k.sockMu.Lock()
	defer k.sockMu.Unlock()
	if k.sockDir == "" {
		k.sockDir = t.TempDir()
	}
	return filepath.Join(k.sockDir, node+".sock")
}

// l2View is what `bgplb l2` shows on node's speaker for addr.
func (k *kube) l2View(t testing.TB, node, addr string) (view.L2Address, bool) {
	t.Helper()
	as, err := view.NewClient(k.apiSocket(t, node)).L2(k.ctx)
	if err != nil {
		return view.L2Address{}, false
	}
	for _, a := range as {
		if a.Address.String() == addr {
			return a, true
		}
	}
	return view.L2Address{}, false
}

// l2Owners are the nodes whose ServiceAnnouncement of svc reports addr in
// status.l2, with the entry.
func (k *kube) l2Owners(t testing.TB, svc, addr string) map[string]v1alpha1.L2Answer {
	t.Helper()
	var l v1alpha1.ServiceAnnouncementList
	if err := k.c.List(k.ctx, &l, client.InNamespace(k.ns), client.MatchingLabels{v1alpha1.LabelService: svc}); err != nil {
		t.Fatal(err)
	}
	out := map[string]v1alpha1.L2Answer{}
	for _, a := range l.Items {
		for _, e := range a.Status.L2 {
			if e.Address == addr {
				out[a.Spec.Node] = e
			}
		}
	}
	return out
}

func (k *kube) waitL2Owner(t testing.TB, svc, addr string, among ...string) string {
	t.Helper()
	var owner string
	waitFor(t, fmt.Sprintf("one L2 owner of %s among %v", addr, among), func() bool {
		o := k.l2Owners(t, svc, addr)
		if len(o) != 1 {
			return false
		}
		for n, e := range o {
			owner = n
			// The interface exists nowhere: answered on it, failing to open it.
			return slices.Contains(among, n) && strings.Contains(e.LastError, "bgplbtest0") && e.Since != nil
		}
		return false
	})
	return owner
}

// waitL2Event waits for an L2Owner event on svc whose note starts with note
// (a start-up may hand an address from a node that saw no other yet to its
// rightful owner: "(was ...)" follows then).
func (k *kube) waitL2Event(t testing.TB, svc, note string) {
	t.Helper()
	waitFor(t, "event "+note, func() bool {
		var l eventsv1.EventList
		if err := k.c.List(k.ctx, &l, client.InNamespace(k.ns)); err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(l.Items, func(e eventsv1.Event) bool {
			return e.Reason == EventL2Owner && e.Regarding.Name == svc && strings.HasPrefix(e.Note, note)
		})
	})
}

// One owner per address; the owner's stop hands it to the other node at
// once; a Local Service's address goes only to a node with its endpoint.
func TestL2Owner(t *testing.T) {
	k := startKube(t)
	k.l2Config(t, "198.18.2.0/24")
	n1, n2 := k.prefix+"-n1", k.prefix+"-n2"
	stops := map[string]func(){}
	for _, n := range []string{n1, n2} {
		k.node(t, n, "127.0.0.1")
		stops[n] = k.stoppableSpeaker(t, n)
	}
	k.service(t, "web", corev1.ServiceExternalTrafficPolicyCluster, "198.18.2.10")
	k.slice(t, "web", "web-1", discoveryv1.AddressTypeIPv4, endpoint{"a", n1, "10.1.0.1", "ready"})
	k.service(t, "local", corev1.ServiceExternalTrafficPolicyLocal, "198.18.2.11")
	k.slice(t, "local", "local-1", discoveryv1.AddressTypeIPv4, endpoint{"b", n2, "10.1.0.2", "ready"})

	owner := k.waitL2Owner(t, "web", "198.18.2.10", n1, n2)
	k.waitL2Event(t, "web", owner+" answers ARP/NDP for 198.18.2.10")
	// `bgplb l2` on both speakers: the same owner, marked here on its own.
	waitFor(t, "bgplb l2 on both speakers", func() bool {
		a1, ok1 := k.l2View(t, n1, "198.18.2.10")
		a2, ok2 := k.l2View(t, n2, "198.18.2.10")
		return ok1 && ok2 && a1.Owner == owner && a2.Owner == owner && a1.Here == (owner == n1) && a2.Here == (owner == n2) &&
			len(a1.Candidates) == 2 && slices.Contains(a1.Services, k.ns+"/web")
	})
	if got := k.waitL2Owner(t, "local", "198.18.2.11", n2); got != n2 {
		t.Fatalf("Local Service owned by %s, want %s (the node of its endpoint)", got, n2)
	}

	// The Local Service's pod moves: so does its address.
	k.slice(t, "local", "local-1", discoveryv1.AddressTypeIPv4, endpoint{"b", n1, "10.1.0.3", "ready"})
	k.waitL2Owner(t, "local", "198.18.2.11", n1)
	k.waitL2Event(t, "local", n1+" answers ARP/NDP for 198.18.2.11 (was "+n2+")")

	// The owner of web stops: handed over, not left to expire.
	owner = k.waitL2Owner(t, "web", "198.18.2.10", n1, n2)
	other := n1
	if owner == n1 {
		other = n2
	}
	start := time.Now()
	stops[owner]()
	k.waitL2Owner(t, "web", "198.18.2.10", other)
	t.Logf("handed over %v after the stop began", time.Since(start).Round(time.Millisecond))

	// No endpoint anywhere: nobody answers.
	k.slice(t, "web", "web-1", discoveryv1.AddressTypeIPv4, endpoint{"a", n1, "10.1.0.1", "notready"})
	waitFor(t, "no owner of a Service without endpoints", func() bool { return len(k.l2Owners(t, "web", "198.18.2.10")) == 0 })
}

// BGP and L2 at once: a BGP-only pool, an L2-only pool and a pool in
// both, served by the same speakers.
func TestL2AndBGP(t *testing.T) {
	k := startKube(t)
	mk := func(name string, cidr string) {
		k.create(t, &v1alpha1.LoadBalancerPool{ObjectMeta: metav1.ObjectMeta{Name: k.prefix + "-" + name},
			Spec: v1alpha1.LoadBalancerPoolSpec{Addresses: []string{cidr}}})
	}
	mk("bgp", "198.18.3.0/28")
	mk("l2", "198.18.3.16/28")
	mk("both", "198.18.3.32/28")
	k.create(t, &v1alpha1.BGPAnnouncementPolicy{ObjectMeta: metav1.ObjectMeta{Name: k.prefix + "-bgp"},
		Spec: v1alpha1.BGPAnnouncementPolicySpec{IPPools: []string{k.prefix + "-bgp", k.prefix + "-both"}}})
	k.create(t, &v1alpha1.L2AnnouncementPolicy{ObjectMeta: metav1.ObjectMeta{Name: k.prefix + "-l2"},
		Spec: v1alpha1.L2AnnouncementPolicySpec{IPPools: []string{k.prefix + "-l2", k.prefix + "-both"}, Interfaces: []string{"bgplbtest*"}}})
	n1, n2 := k.prefix+"-n1", k.prefix+"-n2"
	r1, r2 := newReceiver(t, lo), newReceiver(t, lo)
	for n, r := range map[string]*receiver{n1: r1, n2: r2} {
		k.node(t, n, "127.0.0.1")
		k.peer(t, n, r, nil)
		k.speakerWith(t, n, nil, "", func(o *Options) { o.l2Interfaces = testInterfaces })
	}
	for name, ip := range map[string]string{"bgp": "198.18.3.1", "l2": "198.18.3.17", "both": "198.18.3.33"} {
		k.service(t, name, corev1.ServiceExternalTrafficPolicyCluster, ip)
		k.slice(t, name, name+"-1", discoveryv1.AddressTypeIPv4, endpoint{"a", n1, "10.1.0.1", "ready"})
	}
	all := netip.MustParsePrefix("198.18.3.0/24")
	want := map[string]float32{"198.18.3.1/32": 1, "198.18.3.33/32": 1}
	r1.has(t, all, want)
	r2.has(t, all, want)
	k.waitL2Owner(t, "l2", "198.18.3.17", n1, n2)
	k.waitL2Owner(t, "both", "198.18.3.33", n1, n2)
	waitFor(t, "no L2 owner of the BGP-only address", func() bool { return len(k.l2Owners(t, "bgp", "198.18.3.1")) == 0 })
	// The BGP side of the pool in both modes reports its peers beside L2.
	waitFor(t, "both reported on one Service", func() bool {
		var l v1alpha1.ServiceAnnouncementList
		if err := k.c.List(k.ctx, &l, client.InNamespace(k.ns), client.MatchingLabels{v1alpha1.LabelService: "both"}); err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(l.Items, func(a v1alpha1.ServiceAnnouncement) bool {
			return len(a.Status.Peers) > 0 && len(a.Status.L2) == 1
		})
	})
}

// A node with no interface the policy can answer on is no candidate: every
// address goes to the node that can answer, whatever the ranking says.
func TestL2OwnerNeedsAnInterface(t *testing.T) {
	k := startKube(t)
	k.l2Config(t, "198.18.2.0/24")
	n1, n2 := k.prefix+"-n1", k.prefix+"-n2"
	k.node(t, n1, "127.0.0.1")
	k.node(t, n2, "127.0.0.1")
	k.stoppableSpeakerWith(t, n1, func() ([]l2.Interface, error) {
		ifs, err := testInterfaces()
		ifs[0].Name = "eth0" // up, on the subnet, but not matching bgplbtest*
		return ifs, err
	})
	k.stoppableSpeaker(t, n2)
	var ips []string
	for i := range 6 {
		ip := fmt.Sprintf("198.18.2.%d", 20+i)
		ips = append(ips, ip)
		name := fmt.Sprintf("web%d", i)
		k.service(t, name, corev1.ServiceExternalTrafficPolicyCluster, ip)
		k.slice(t, name, name+"-1", discoveryv1.AddressTypeIPv4, endpoint{"a", n1, "10.1.0.1", "ready"})
	}
	for i, ip := range ips {
		if got := k.waitL2Owner(t, fmt.Sprintf("web%d", i), ip, n2); got != n2 {
			t.Fatalf("%s owned by %s", ip, got)
		}
	}
}
