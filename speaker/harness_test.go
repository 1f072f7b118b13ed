package speaker

// A harness for the speaker against the real API server: speakers run in
// this process (speaker.Run) for nodes registered by the test, each
// peering with a receiver of its own, a real passive BGP session on a
// loopback address that keeps what it is sent. Cluster-wide objects
// (pools, peers, advertisements, Nodes) are named after the test and
// removed with it.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/bgp/wire"
	"github.com/bgplb/bgplb/internal/kubetest"
)

var shared = kubetest.NewShared()

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	os.Exit(shared.Main(m))
}

var (
	crdOnce sync.Once
	crdErr  error
)

// kube is the shared control plane with the CRDs, an admin client, and
// the test's namespace and name prefix.
type kube struct {
	env    *kubetest.Env
	c      client.Client
	ns     string
	prefix string // for cluster-wide names
	ctx    context.Context
	// sockDir holds the test's speakers' API sockets (apiSocket).
	sockMu  sync.Mutex
	sockDir string
}

func startKube(t testing.TB) *kube {
	t.Helper()
	env := shared.Env(t)
	crdOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		crdErr = env.InstallCRDs(ctx, filepath.Join(filepath.Dir(file), "..", "config", "crd", "bases"))
	})
	if crdErr != nil {
		t.Fatal(crdErr)
	}
	c, err := client.New(env.Config, client.Options{Scheme: testScheme(t)})
	if err != nil {
		t.Fatal(err)
	}
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return &kube{env: env, c: c, ns: ns, prefix: ns, ctx: ctx}
}

func testScheme(t testing.TB) *kruntime.Scheme {
	s := kruntime.NewScheme()
	for _, add := range []func(*kruntime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// create creates o; a cluster-wide o is deleted when the test ends (the
// namespace takes the rest).
func (k *kube) create(t testing.TB, o client.Object) {
	t.Helper()
	if err := k.c.Create(k.ctx, o); err != nil {
		t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
	}
	if o.GetNamespace() == "" {
		t.Cleanup(func() {
			if err := k.c.Delete(context.Background(), o); client.IgnoreNotFound(err) != nil {
				t.Errorf("deleting %T %s: %v", o, o.GetName(), err)
			}
		})
	}
}

// node registers a Ready Node with the given addresses.
func (k *kube) node(t testing.TB, name string, addrs ...string) *corev1.Node {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}}}
	k.create(t, n)
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
		LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(), Reason: "KubeletReady"}}
	for _, a := range addrs {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: a})
	}
	if err := k.c.Status().Update(k.ctx, n); err != nil {
		t.Fatal(err)
	}
	return n
}

// config creates a pool of cidrs, and an advertisement of it to every
// peer of the test.
func (k *kube) config(t testing.TB, cidrs ...string) {
	t.Helper()
	pool := k.prefix + "-pool"
	k.create(t, &v1alpha1.LoadBalancerPool{ObjectMeta: metav1.ObjectMeta{Name: pool}, Spec: v1alpha1.LoadBalancerPoolSpec{Addresses: cidrs}})
	k.create(t, &v1alpha1.BGPAnnouncementPolicy{ObjectMeta: metav1.ObjectMeta{Name: k.prefix + "-all"},
		Spec: v1alpha1.BGPAnnouncementPolicySpec{IPPools: []string{pool}}})
}

// peer creates the BGPRouter of one node with its receiver.
func (k *kube) peer(t testing.TB, node string, r *receiver, edit func(*v1alpha1.BGPRouterSpec)) {
	t.Helper()
	spec := v1alpha1.BGPRouterSpec{MyASN: 64512, PeerASN: 64512, PeerAddress: r.addr().Addr().String(), PeerPort: int32(r.addr().Port()),
		HoldTime: &metav1.Duration{Duration: 9 * time.Second}, ConnectTime: &metav1.Duration{Duration: time.Second},
		NodeSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"kubernetes.io/hostname": node}}}}
	if edit != nil {
		edit(&spec)
	}
	k.create(t, &v1alpha1.BGPRouter{ObjectMeta: metav1.ObjectMeta{Name: node}, Spec: spec})
}

// service creates a LoadBalancer Service with its addresses assigned, as
// the controller would have.
func (k *kube) service(t testing.TB, name string, etp corev1.ServiceExternalTrafficPolicy, ips ...string) {
	t.Helper()
	if err := k.serviceWith(t, name, etp, nil, ips...); err != nil {
		t.Fatalf("creating Service %s: %v", name, err)
	}
}

// serviceWith is service with the Service edited before it is created; it
// returns the creation's error.
func (k *kube) serviceWith(t testing.TB, name string, etp corev1.ServiceExternalTrafficPolicy, edit func(*corev1.Service), ips ...string) error {
	t.Helper()
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: k.ns, Name: name},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: etp,
			Ports: []corev1.ServicePort{{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53}}}}
	if len(ips) > 1 {
		pol := corev1.IPFamilyPolicyPreferDualStack
		s.Spec.IPFamilyPolicy = &pol
	}
	if edit != nil {
		edit(s)
	}
	if err := k.c.Create(k.ctx, s); err != nil {
		return err
	}
	for _, ip := range ips {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
	if err := k.c.Status().Update(k.ctx, s); err != nil {
		t.Fatal(err)
	}
	return nil
}

// endpoint is one pod's endpoint: its node, address, and state ("ready",
// "terminating" (still serving), "notready").
type endpoint struct{ pod, node, addr, state string }

// slice creates or replaces an EndpointSlice of the Service svc.
func (k *kube) slice(t testing.TB, svc, name string, fam discoveryv1.AddressType, eps ...endpoint) {
	t.Helper()
	yes, no := true, false
	s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: k.ns, Name: name,
		Labels: map[string]string{discoveryv1.LabelServiceName: svc}}, AddressType: fam}
	for _, e := range eps {
		c := discoveryv1.EndpointConditions{Ready: &yes, Serving: &yes, Terminating: &no}
		switch e.state {
		case "terminating":
			c = discoveryv1.EndpointConditions{Ready: &no, Serving: &yes, Terminating: &yes}
		case "notready":
			c = discoveryv1.EndpointConditions{Ready: &no, Serving: &no, Terminating: &no}
		}
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{e.addr}, NodeName: &e.node, Conditions: c,
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: k.ns, Name: e.pod}})
	}
	var cur discoveryv1.EndpointSlice
	if err := k.c.Get(k.ctx, client.ObjectKeyFromObject(s), &cur); err == nil {
		cur.Endpoints = s.Endpoints
		if err := k.c.Update(k.ctx, &cur); err != nil {
			t.Fatal(err)
		}
		return
	} else if !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	k.create(t, s)
}

// speaker runs a speaker for node with cfg (nil: the admin's).
func (k *kube) speaker(t testing.TB, node string, cfg *rest.Config, namespace string) {
	t.Helper()
	k.speakerWith(t, node, cfg, namespace, nil)
}

// speakerWith is speaker with the Options edited first.
func (k *kube) speakerWith(t testing.TB, node string, cfg *rest.Config, namespace string, edit func(*Options)) {
	t.Helper()
	if cfg == nil {
		cfg = rest.CopyConfig(k.env.Config)
		cfg.QPS, cfg.Burst = 20, 40 // the speaker's defaults
	}
	if namespace == "" {
		namespace = k.ns
	}
	var logs strings.Builder
	var mu sync.Mutex
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	o := Options{NodeName: node, Namespace: namespace, HandleUnclassed: true, ShutdownTimeout: 5 * time.Second,
		Log: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if edit != nil {
		edit(&o)
	}
	go func() { done <- Run(ctx, cfg, o) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("speaker %s: %v", node, err)
		}
		mu.Lock()
		defer mu.Unlock()
		if t.Failed() {
			t.Logf("speaker %s log:\n%s", node, logs.String())
		}
	})
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// receiver is a router reduced to its receive path: a passive BGP session
// on a loopback address keeping the link bandwidth of every prefix it has.
type receiver struct {
	l    *session.Listener
	peer *session.Peer

	mu     sync.Mutex
	rib    map[netip.Prefix]float32
	gshut  map[netip.Prefix]bool      // routes carrying GRACEFUL_SHUTDOWN
	seen   map[netip.Prefix]time.Time // when each prefix first came
	peerID netip.Addr
	up     bool
	cond   chan struct{} // closed and replaced on every change
}

func newReceiver(t testing.TB, listen netip.Addr) *receiver {
	t.Helper()
	r := &receiver{rib: map[netip.Prefix]float32{}, gshut: map[netip.Prefix]bool{}, seen: map[netip.Prefix]time.Time{}, cond: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	var err error
	r.l, err = session.Listen([]netip.AddrPort{netip.AddrPortFrom(listen, 0)},
		func(netip.AddrPort, netip.AddrPort) (*session.Peer, bool) { return r.peer, true }, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.peer = session.New(session.Config{LocalAS: 64512, RouterID: netip.MustParseAddr("192.0.2.254"), PeerAddr: listen,
		Passive: true, HoldTime: 9 * time.Second}, r, slog.New(slog.DiscardHandler))
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.l.Run(ctx) })
	wg.Go(func() { _ = r.peer.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return r
}

func (r *receiver) addr() netip.AddrPort { return r.l.Addrs()[0] }

func (r *receiver) changed() {
	close(r.cond)
	r.cond = make(chan struct{})
}

func (r *receiver) Established(_ *session.Peer, n session.Negotiated) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.up, r.peerID = true, n.PeerID
	r.changed()
}

func (r *receiver) Down(*session.Peer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.up = false
	clear(r.rib)
	clear(r.gshut)
	r.changed()
}

func (r *receiver) EndOfRIB(*session.Peer, wire.Family) {}

func (r *receiver) Update(_ *session.Peer, u *wire.Update, _ wire.Action) error {
	var bw float32
	for _, e := range u.Attrs.ExtCommunities {
		if _, b, ok := e.LinkBandwidth(); ok {
			bw = b
		}
	}
	shut := slices.Contains(u.Attrs.Communities, wire.CommunityGracefulShutdown)
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	add := func(p netip.Prefix) {
		r.rib[p] = bw
		r.gshut[p] = shut
		if _, ok := r.seen[p]; !ok {
			r.seen[p] = now
		}
	}
	for n := range u.Withdrawn.All() {
		delete(r.rib, n.Prefix)
		delete(r.gshut, n.Prefix)
	}
	for n := range u.Attrs.MPUnreach.Withdrawn.All() {
		delete(r.rib, n.Prefix)
		delete(r.gshut, n.Prefix)
	}
	for n := range u.NLRI.All() {
		add(n.Prefix)
	}
	if u.Attrs.Has(wire.AttrMPReach) {
		for n := range u.Attrs.MPReach.NLRI.All() {
			add(n.Prefix)
		}
	}
	r.changed()
	return nil
}

// wait waits until cond holds of the receiver's routes (under its lock),
// or fails after limit.
func (r *receiver) wait(t testing.TB, limit time.Duration, what string, cond func(rib map[netip.Prefix]float32) bool) {
	t.Helper()
	deadline := time.After(limit)
	for {
		r.mu.Lock()
		ok, ch := cond(r.rib), r.cond
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("waiting %v for %s: the receiver has %d routes (up %v): %v", limit, what, len(r.rib), r.up, abbrev(r.rib))
		}
	}
}

// has waits for exactly the given prefix → bandwidth routes among those
// in within (the test's addresses).
func (r *receiver) has(t testing.TB, within netip.Prefix, want map[string]float32) {
	t.Helper()
	r.wait(t, 10*time.Second, fmt.Sprintf("routes %v", want), func(rib map[netip.Prefix]float32) bool {
		got := map[string]float32{}
		for p, bw := range rib {
			if within.Overlaps(p) {
				got[p.String()] = bw
			}
		}
		return maps.Equal(got, want)
	})
}

// marked waits until the receiver holds prefix p with GRACEFUL_SHUTDOWN
// (shut) or without it.
func (r *receiver) marked(t testing.TB, p string, shut bool) {
	t.Helper()
	prefix := netip.MustParsePrefix(p)
	r.wait(t, 10*time.Second, fmt.Sprintf("%s with GRACEFUL_SHUTDOWN %v", p, shut), func(rib map[netip.Prefix]float32) bool {
		_, ok := rib[prefix]
		return ok && r.gshut[prefix] == shut
	})
}

func abbrev(rib map[netip.Prefix]float32) string {
	var parts []string
	for p, bw := range rib {
		if len(parts) == 10 {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, fmt.Sprintf("%s bw=%g", p, bw))
	}
	return strings.Join(parts, " ")
}
