package e2e

// The seed's story with every bgplb part: a real kube-apiserver, `bgplb
// controller`, `bgplb speaker` on two nodes, `bgplb router` on the router,
// and a client on the LAN asking the Pi-hole for a name through the router.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controller"
	"github.com/bgplb/bgplb/internal/controlplane"
	"github.com/bgplb/bgplb/internal/kubetest"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/daemons"
	"github.com/bgplb/bgplb/lab/labtest"
	"github.com/bgplb/bgplb/lab/seed"
	"github.com/bgplb/bgplb/lab/seed/seedtest"
	"github.com/bgplb/bgplb/view"
)

// seedLab is the seed lab with its control plane, router, controller and
// speakers running.
type seedLab struct {
	ctx      context.Context
	s        *seed.Seed
	env      *kubetest.Env
	c        client.Client
	rp       *routerProc
	speakers map[string]*lab.Proc
	dir      string
	// speakerKubeconfig holds only the speaker's RBAC.
	speakerKubeconfig string
}

const seedRouterConfig = `asn: 64512
routerID: 198.51.100.1
listen: ["0.0.0.0:179"]
dynamicNeighbors:
  - {prefix: 198.51.100.0/24, peerASN: 64512, holdTime: 9s, password: "seed-secret"}
import:
  prefixes: ["203.0.113.0/24", "2001:db8:100::/48"]
fib: {graceTime: 5s}
api: {socket: SOCKET}
`

// newSeedLab builds the lab with `bgplb router` on the router.
func newSeedLab(t *testing.T, limit time.Duration) *seedLab {
	t.Helper()
	return buildSeedLab(t, limit, true)
}

// buildSeedLab is newSeedLab, the router optional, the speakers started
// with speakerFlags besides the usual ones.
func buildSeedLab(t *testing.T, limit time.Duration, withRouter bool, speakerFlags ...string) *seedLab {
	t.Helper()
	crds, err := seed.FindCRDDir()
	if err != nil {
		t.Fatal(err)
	}
	l := bareSeedLab(t, limit, withRouter, crds)
	l.startController(t)
	l.speakerKubeconfig = l.speakerIdentity(t)
	for _, n := range l.s.Nodes() {
		l.startSpeaker(t, n, speakerFlags...)
	}
	return l
}

// bareSeedLab builds the lab, its control plane (with the CRDs of crdDir,
// none if empty) and its Nodes, and `bgplb router` if asked, but runs
// neither the controller nor the speakers.
func bareSeedLab(t *testing.T, limit time.Duration, withRouter bool, crdDir string) *seedLab {
	t.Helper()
	s := seedtest.New(t, seed.Options{Prefix: "e2e", CRDDir: crdDir})
	env := seedtest.ControlPlane(t, s)
	l := &seedLab{ctx: labtest.Context(t, limit), s: s, env: env, speakers: map[string]*lab.Proc{}, dir: t.TempDir()}
	var err error
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	if l.c, err = client.New(env.Config, client.Options{Scheme: scheme}); err != nil {
		t.Fatal(err)
	}
	if withRouter {
		l.rp = startRouter(t, l.ctx, node{name: "router", ns: s.Host("router"), v4: s.RouterAddr(1)}, seedRouterConfig)
	}
	for _, n := range s.Nodes() {
		l.createNode(t, n)
	}
	return l
}

// speakerIdentity gives a user of its own the generated speaker roles
// (config/rbac/speaker: the ClusterRole, and the Role for Secrets in the
// namespace the speakers run in) and returns a kubeconfig for it: the
// speakers run with exactly the permissions a cluster gives them.
func (l *seedLab) speakerIdentity(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../config/rbac/speaker/role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const user = "bgplb-speaker"
	if err := controlplane.Grant(context.Background(), l.c, b, user, speakerNamespace); err != nil {
		t.Fatal(err)
	}
	path, err := l.env.UserKubeconfig(user)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// speakerNamespace is where the speakers run and find their password
// Secret.
const speakerNamespace = "default"

// createNode is what a kubelet would register: the Node, Ready, with its
// LAN addresses.
func (l *seedLab) createNode(t *testing.T, name string) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}}}
	l.create(t, n)
	n.Status = corev1.NodeStatus{
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
			LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(), Reason: "KubeletReady"}},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: l.s.NodeAddr(name).String()},
			{Type: corev1.NodeInternalIP, Address: l.s.NodeAddr6(name).String()},
		},
	}
	if err := l.c.Status().Update(l.ctx, n); err != nil {
		t.Fatal(err)
	}
}

func (l *seedLab) create(t *testing.T, o client.Object) {
	t.Helper()
	if err := l.c.Create(l.ctx, o); err != nil {
		t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
	}
}

// startController runs `bgplb controller` in this process, on the root
// namespace's side of the API link.
func (l *seedLab) startController(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logf, err := os.Create(filepath.Join(l.dir, "controller.log"))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		done <- controller.Run(ctx, l.env.Config, controller.RunOptions{Options: controller.Options{
			HandleUnclassed: true, Log: slog.New(slog.NewTextHandler(logf, nil))}})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("controller log:\n%s", b)
		}
	})
}

// startSpeaker runs `bgplb speaker` in a node's namespace, with more
// flags if given.
func (l *seedLab) startSpeaker(t *testing.T, name string, flags ...string) {
	t.Helper()
	p, err := l.s.Host(name).StartWith(l.ctx, lab.StartOptions{Label: "bgplb-speaker"}, bgplbBin, append([]string{"speaker",
		"--node-name", name, "--kubeconfig", l.speakerKubeconfig, "--namespace", speakerNamespace,
		"--socket", filepath.Join(l.dir, name+".sock"), "--metrics-addr", "", "--log-level", "debug",
		"--listen", netip.AddrPortFrom(l.s.NodeAddr(name), 179).String()}, flags...)...)
	if err != nil {
		t.Fatal(err)
	}
	l.speakers[name] = p
	t.Cleanup(func() {
		_ = p.Stop()
		if strings.Contains(p.Logs(), "forbidden") {
			t.Errorf("speaker %s was refused something its role should allow", name)
		}
		if t.Failed() {
			t.Logf("speaker %s log:\n%s", name, p.Logs())
		}
	})
}

// configure applies the seed's MetalLB configuration, translated: one pool,
// the router as a peer, one advertisement.
func (l *seedLab) configure(t *testing.T) {
	t.Helper()
	l.configureFor(t, speakerNamespace)
}

// configureFor is configure with the password Secret in the namespace the
// speakers run in.
func (l *seedLab) configureFor(t *testing.T, speakerNS string) {
	t.Helper()
	l.create(t, &v1alpha1.LoadBalancerPool{ObjectMeta: metav1.ObjectMeta{Name: "lan"},
		Spec: v1alpha1.LoadBalancerPoolSpec{Addresses: []string{"203.0.113.0/24", "2001:db8:100::/120"}}})
	peer := &v1alpha1.BGPRouter{ObjectMeta: metav1.ObjectMeta{Name: "router"},
		Spec: v1alpha1.BGPRouterSpec{MyASN: 64512, PeerASN: 64512, PeerAddress: l.s.RouterAddr(1).String(),
			HoldTime: &metav1.Duration{Duration: 9 * time.Second}, ConnectTime: &metav1.Duration{Duration: time.Second}}}
	if l.rp != nil {
		// bgplb router wants TCP-MD5 from the nodes: the speakers read the
		// password from a Secret.
		l.create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: speakerNS, Name: "bgp-password"},
			StringData: map[string]string{"password": "seed-secret"}})
		peer.Spec.PasswordSecret = &v1alpha1.SecretKeyReference{Name: "bgp-password"}
	}
	l.create(t, peer)
	l.create(t, &v1alpha1.BGPAnnouncementPolicy{ObjectMeta: metav1.ObjectMeta{Name: "all"}})
}

// endpoints sets the Service's one IPv4 EndpointSlice to ready endpoints on
// the given nodes (a node repeated holds several pods).
func (l *seedLab) endpoints(t *testing.T, svc string, nodes ...string) {
	t.Helper()
	l.endpointsOf(t, svc, discoveryv1.AddressTypeIPv4, nodes...)
}

// endpointsOf sets the Service's EndpointSlice of one family; the pods are
// named alike in both families, so a dual-stack pod counts once.
func (l *seedLab) endpointsOf(t *testing.T, svc string, family discoveryv1.AddressType, nodes ...string) {
	t.Helper()
	name, addr := svc+"-1", "10.244.%d.%d"
	if family == discoveryv1.AddressTypeIPv6 {
		name, addr = svc+"-v6", "fd00:244:%d::%d"
	}
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: family,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("dns-udp"), Protocol: ptr(corev1.ProtocolUDP), Port: ptr(int32(53))}},
	}
	for i, n := range nodes {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses: []string{fmt.Sprintf(addr, slices.Index(l.s.Nodes(), n)+1, i+10)},
			NodeName:  ptr(n), Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: fmt.Sprintf("%s-%d", svc, i)},
		})
	}
	var cur discoveryv1.EndpointSlice
	if err := l.c.Get(l.ctx, client.ObjectKeyFromObject(es), &cur); err == nil {
		cur.Endpoints = es.Endpoints
		if err := l.c.Update(l.ctx, &cur); err != nil {
			t.Fatal(err)
		}
		return
	}
	l.create(t, es)
}

func ptr[T any](v T) *T { return &v }

// pihole is the seed's Service, as written for MetalLB.
func pihole(etp corev1.ServiceExternalTrafficPolicy) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "pihole", Annotations: map[string]string{
			"metallb.universe.tf/address-pool":    "lan",
			"metallb.universe.tf/loadBalancerIPs": "203.0.113.53",
		}},
		Spec: corev1.ServiceSpec{
			Type:                  corev1.ServiceTypeLoadBalancer,
			ExternalTrafficPolicy: etp,
			Selector:              map[string]string{"app": "pihole"},
			Ports: []corev1.ServicePort{
				{Name: "dns-udp", Protocol: corev1.ProtocolUDP, Port: 53},
				{Name: "dns-tcp", Protocol: corev1.ProtocolTCP, Port: 53},
			},
		},
	}
}

// pod plays the Pi-hole pod on a node: what kube-proxy does (the VIP on a
// local interface) and a DNS server answering on it.
func (l *seedLab) pod(t *testing.T, node string, vip netip.Addr) *seed.DNSServer {
	t.Helper()
	if err := l.s.AddVIP(l.ctx, node, vip); err != nil {
		t.Fatal(err)
	}
	d, err := l.s.StartDNS(l.ctx, node, vip)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// dig asks the Pi-hole from the client, over UDP and TCP, until the answer
// comes from the wanted node.
func (l *seedLab) dig(t *testing.T, vip netip.Addr, fromNode string) {
	t.Helper()
	for _, tcp := range []bool{false, true} {
		var last string
		var lastErr error
		err := lab.Poll(l.ctx, 100*time.Millisecond, func() (bool, error) {
			last, lastErr = l.s.Dig(l.ctx, "client", vip, "pihole.lab.", tcp)
			return lastErr == nil && strings.HasSuffix(last, "from "+fromNode), nil
		})
		if err != nil {
			t.Fatalf("dig @%s (tcp %v): want an answer from %s, last %q, %v", vip, tcp, fromNode, last, lastErr)
		}
	}
}

// TestSeedStory is the seed's write-up end to end: the Pi-hole gets its
// fixed address, the node running the pod announces it, the router installs
// it, the client's DNS query is answered through the router, and when the
// pod moves the route moves.
func TestSeedStory(t *testing.T) {
	l := newSeedLab(t, 3*time.Minute)
	l.configure(t)
	vip := netip.MustParseAddr("203.0.113.53")
	host := netip.PrefixFrom(vip, 32)
	n1, n2 := l.s.NodeAddr(seed.Node1), l.s.NodeAddr(seed.Node2)

	l.rp.waitEstablished(t, l.ctx, n1, n2)
	l.pod(t, seed.Node1, vip)
	l.endpoints(t, "pihole", seed.Node1)
	l.create(t, pihole(corev1.ServiceExternalTrafficPolicyLocal))

	// 1. Allocated; only the endpoint's node announces; the client is answered.
	l.waitService(t, "pihole", func(s *corev1.Service) bool {
		return len(s.Status.LoadBalancer.Ingress) == 1 && s.Status.LoadBalancer.Ingress[0].IP == vip.String()
	})
	rs := l.rp.waitKernel(t, l.ctx, want{host: {n1}})
	if i := slices.IndexFunc(rs, func(r lab.Route) bool { return r.Dst == host }); i < 0 || rs[i].Proto != "bgp" {
		t.Fatalf("route %v not proto bgp", rs)
	}
	l.rp.waitEstablished(t, l.ctx, n1, n2)
	l.dig(t, vip, seed.Node1)
	l.waitAnnouncers(t, "pihole", seed.Node1)
	l.waitAnnounced(t, "pihole", "announced by node1 (1 endpoint) to router")
	l.speakerNeighbors(t, seed.Node1)

	// 2. The pod moves: the route follows, measured from the EndpointSlice
	// change to the router's kernel.
	l.pod(t, seed.Node2, vip)
	if err := l.s.DelVIP(l.ctx, seed.Node1, vip); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	l.endpoints(t, "pihole", seed.Node2)
	l.rp.waitKernel(t, l.ctx, want{host: {n2}})
	l.waitAnnouncers(t, "pihole", seed.Node2)
	l.waitAnnounced(t, "pihole", "announced by node2 (1 endpoint) to router")
	t.Logf("the route followed the pod %v after the EndpointSlice changed", time.Since(start).Round(time.Millisecond))
	l.dig(t, vip, seed.Node2)

	// 3. Cluster: both nodes announce; weights follow the endpoint counts.
	var svc corev1.Service
	if err := l.c.Get(l.ctx, client.ObjectKey{Namespace: "default", Name: "pihole"}, &svc); err != nil {
		t.Fatal(err)
	}
	svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	if err := l.c.Update(l.ctx, &svc); err != nil {
		t.Fatal(err)
	}
	l.endpoints(t, "pihole", seed.Node1, seed.Node2, seed.Node2, seed.Node2)
	l.waitWeights(t, host, map[netip.Addr]int{n1: 1, n2: 3})

	// A dual-stack Service: its IPv6 address goes over the same IPv4
	// sessions with each node's IPv6 address as next hop.
	web := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{
			Type:           corev1.ServiceTypeLoadBalancer,
			IPFamilyPolicy: ptr(corev1.IPFamilyPolicyRequireDualStack),
			IPFamilies:     []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol},
			Ports:          []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}},
		},
	}
	// A Cluster Service with no ready endpoint is withdrawn: give it a pod
	// on each node, in both families.
	l.endpointsOf(t, "web", discoveryv1.AddressTypeIPv4, seed.Node1, seed.Node2)
	l.endpointsOf(t, "web", discoveryv1.AddressTypeIPv6, seed.Node1, seed.Node2)
	l.create(t, web)
	var v4, v6 netip.Addr
	l.waitService(t, "web", func(s *corev1.Service) bool {
		if len(s.Status.LoadBalancer.Ingress) != 2 {
			return false
		}
		v4, v6 = netip.MustParseAddr(s.Status.LoadBalancer.Ingress[0].IP), netip.MustParseAddr(s.Status.LoadBalancer.Ingress[1].IP)
		return true
	})
	l.rp.waitKernel(t, l.ctx, want{
		netip.PrefixFrom(v4, 32):  {n1, n2},
		netip.PrefixFrom(v6, 128): {l.s.NodeAddr6(seed.Node1), l.s.NodeAddr6(seed.Node2)},
	})

	// 5. SIGTERM on node2's speaker: the router hears the RFC 8203 message
	// and drops node2's path.
	if err := l.speakers[seed.Node2].Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	l.rp.waitKernel(t, l.ctx, want{host: {n1}})
	if err := l.speakers[seed.Node2].Wait(l.ctx); err != nil {
		t.Errorf("speaker exit: %v", err)
	}
	if logs := l.rp.proc.Logs(); !strings.Contains(logs, "node node2 shutting down") {
		t.Errorf("the router did not log the shutdown message; router log:\n%s", logs)
	}

	// 4. The Service changes type: withdrawn everywhere.
	if err := l.c.Get(l.ctx, client.ObjectKeyFromObject(&svc), &svc); err != nil {
		t.Fatal(err)
	}
	svc.Spec.Type = corev1.ServiceTypeClusterIP
	svc.Spec.ExternalTrafficPolicy = ""
	if err := l.c.Update(l.ctx, &svc); err != nil {
		t.Fatal(err)
	}
	l.rp.waitKernel(t, l.ctx, want{host: nil})
}

func (l *seedLab) waitService(t *testing.T, name string, ok func(*corev1.Service) bool) {
	t.Helper()
	var s corev1.Service
	err := lab.Poll(l.ctx, 100*time.Millisecond, func() (bool, error) {
		if err := l.c.Get(l.ctx, client.ObjectKey{Namespace: "default", Name: name}, &s); err != nil {
			return false, nil
		}
		return ok(&s), nil
	})
	if err != nil {
		t.Fatalf("Service %s: %v; status %+v", name, err, s.Status)
	}
}

func (l *seedLab) waitWeights(t *testing.T, dst netip.Prefix, want map[netip.Addr]int) {
	t.Helper()
	var last []lab.Route
	_, err := l.rp.ns.WaitRoutes(l.ctx, lab.RouteQuery{Proto: "bgp"}, func(rs []lab.Route) bool {
		last = rs
		i := slices.IndexFunc(rs, func(r lab.Route) bool { return r.Dst == dst })
		if i < 0 || len(rs[i].NextHops) != len(want) {
			return false
		}
		for _, h := range rs[i].NextHops {
			if w, ok := want[h.Gateway]; !ok || h.Weight != w {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatalf("weights %v: %v\n%s", want, err, lab.FormatRoutes(last))
	}
}

// waitAnnouncers waits until exactly the given nodes report, in
// ServiceAnnouncements, that they announce the Service to the router.
func (l *seedLab) waitAnnouncers(t *testing.T, svc string, nodes ...string) {
	t.Helper()
	var got []string
	err := lab.Poll(l.ctx, 100*time.Millisecond, func() (bool, error) {
		var list v1alpha1.ServiceAnnouncementList
		if err := l.c.List(l.ctx, &list, client.InNamespace("default"), client.MatchingLabels{v1alpha1.LabelService: svc}); err != nil {
			return false, err
		}
		got = got[:0]
		for _, a := range list.Items {
			if slices.Contains(a.Status.Peers, "router") && slices.Contains(a.Status.Prefixes, "203.0.113.53/32") {
				got = append(got, a.Spec.Node)
			}
		}
		slices.Sort(got)
		return slices.Equal(got, nodes), nil
	})
	if err != nil {
		t.Fatalf("ServiceAnnouncements for %s: want %v, have %v: %v", svc, nodes, got, err)
	}
}

// TestSpeakerInterop: the same speakers announce to the seed's router
// daemon (gobgpd), BIRD 2 and FRR bgpd in turn, each started in the router
// namespace with both nodes as passive neighbours; each daemon's own CLI
// shows the Service's /32 from both nodes (externalTrafficPolicy Cluster).
func TestSpeakerInterop(t *testing.T) {
	l := buildSeedLab(t, 3*time.Minute, false)
	l.configure(t)
	vip := netip.MustParsePrefix("203.0.113.53/32")
	n1, n2 := l.s.NodeAddr(seed.Node1), l.s.NodeAddr(seed.Node2)
	l.endpoints(t, "pihole", seed.Node1, seed.Node2)
	l.create(t, pihole(corev1.ServiceExternalTrafficPolicyCluster))
	cfg := daemons.Config{ASN: 64512, RouterID: l.s.RouterAddr(1), Local4: l.s.RouterAddr(1), Local6: l.s.RouterAddr6(1),
		Neighbors: []daemons.Neighbor{{Address: n1, ASN: 64512, Passive: true}, {Address: n2, ASN: 64512, Passive: true}}}
	ns := l.s.Host("router")
	// The last case turns the BGPRouter passive: the speakers listen and
	// gobgpd dials them, as a router with static neighbours does.
	dialing := cfg
	dialing.Neighbors = []daemons.Neighbor{{Address: n1, ASN: 64512}, {Address: n2, ASN: 64512}}
	for _, tc := range []struct {
		name    string
		passive bool
		start   func() (daemons.Daemon, error)
	}{
		{"gobgpd", false, func() (daemons.Daemon, error) { return daemons.StartGoBGP(l.ctx, ns, cfg) }},
		{"bird", false, func() (daemons.Daemon, error) { return daemons.StartBIRD(l.ctx, ns, cfg) }},
		{"frr", false, func() (daemons.Daemon, error) { return daemons.StartFRR(l.ctx, ns, cfg) }},
		{"gobgpd dials passive speakers", true, func() (daemons.Daemon, error) { return daemons.StartGoBGP(l.ctx, ns, dialing) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.passive {
				var p v1alpha1.BGPRouter
				if err := l.c.Get(l.ctx, client.ObjectKey{Name: "router"}, &p); err != nil {
					t.Fatal(err)
				}
				p.Spec.Passive = true
				if err := l.c.Update(l.ctx, &p); err != nil {
					t.Fatal(err)
				}
			}
			d, err := tc.start()
			labtest.SkipIfNotInstalled(t, err)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Stop()
			var last []daemons.Route
			err = lab.Poll(l.ctx, 200*time.Millisecond, func() (bool, error) {
				rs, err := d.Received(l.ctx)
				if err != nil {
					return false, nil
				}
				last = rs
				var from []netip.Addr
				for _, r := range rs {
					if r.Prefix == vip && r.NextHop == r.Peer {
						from = append(from, r.Peer)
					}
				}
				slices.SortFunc(from, netip.Addr.Compare)
				return slices.Equal(from, []netip.Addr{n1, n2}), nil
			})
			if err != nil {
				t.Fatalf("%s: want %s from %s and %s, next hop self; received %v", tc.name, vip, n1, n2, last)
			}
			if tc.passive {
				// The router dialled: node1's end of its session is port 179,
				// and node1 has no session it opened itself.
				var out []byte
				err := lab.Poll(l.ctx, 200*time.Millisecond, func() (bool, error) {
					var err error
					out, err = l.s.Host(seed.Node1).Run(l.ctx, "ss", "-Htn", "state", "established")
					if err != nil {
						return false, err
					}
					in := strings.Contains(string(out), n1.String()+":179 ")
					outgoing := strings.Contains(string(out), l.s.RouterAddr(1).String()+":179")
					return in && !outgoing, nil
				})
				if err != nil {
					t.Errorf("node1's sessions, want only one the router opened to port 179: %v\n%s", err, out)
				}
			}
		})
	}
}

// TestSpeakerOutlivesAPIServer: when the API server goes away, the speakers
// keep announcing the last plan; the route stays in the router's kernel and
// the client is still answered.
func TestSpeakerOutlivesAPIServer(t *testing.T) {
	l := newSeedLab(t, 2*time.Minute)
	l.configure(t)
	vip := netip.MustParseAddr("203.0.113.53")
	host := netip.PrefixFrom(vip, 32)
	n1, n2 := l.s.NodeAddr(seed.Node1), l.s.NodeAddr(seed.Node2)
	l.pod(t, seed.Node1, vip)
	l.endpoints(t, "pihole", seed.Node1)
	l.create(t, pihole(corev1.ServiceExternalTrafficPolicyLocal))
	l.rp.waitKernel(t, l.ctx, want{host: {n1}})
	// Both speakers must have the plan before the API server goes: on a
	// loaded machine node2's may still be filling its caches.
	l.rp.waitEstablished(t, l.ctx, n1, n2)
	l.waitAnnouncers(t, "pihole", seed.Node1)

	if err := l.env.Stop(); err != nil {
		t.Fatal(err)
	}
	// Long enough for the speakers' watches to fail and retry a few times.
	time.Sleep(5 * time.Second)
	l.rp.waitEstablished(t, l.ctx, n1, n2)
	l.rp.waitKernel(t, l.ctx, want{host: {n1}})
	l.dig(t, vip, seed.Node1)
	for name, p := range l.speakers {
		if exited, err := p.Exited(); exited {
			t.Errorf("speaker %s exited without the API server: %v", name, err)
		}
	}
}

// waitAnnounced waits until the Service's bgplb.io/Announced condition is
// True with the message the operator reads in `kubectl describe svc`.
func (l *seedLab) waitAnnounced(t *testing.T, svc, msg string) {
	t.Helper()
	l.waitCondition(t, svc, metav1.ConditionTrue, "Announced", msg)
}

// speakerNeighbors checks `bgplb neighbor` against a speaker's socket: the
// router, Established, with the prefixes it was sent.
func (l *seedLab) speakerNeighbors(t *testing.T, node string) {
	t.Helper()
	out, err := exec.CommandContext(l.ctx, bgplbBin, "neighbor", "--socket", filepath.Join(l.dir, node+".sock"), "-o", "json").Output()
	if err != nil {
		t.Fatalf("bgplb neighbor on %s: %v", node, err)
	}
	var ns []view.Neighbor
	if err := json.Unmarshal(out, &ns); err != nil {
		t.Fatal(err)
	}
	if len(ns) != 1 || ns[0].Address != l.s.RouterAddr(1) || ns[0].State != "Established" || ns[0].Advertised != 1 {
		t.Errorf("bgplb neighbor on %s: %+v, want the router Established with 1 prefix advertised", node, ns)
	}
}
