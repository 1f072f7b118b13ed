package e2e

// bgplb installed as a user installs it: deploy/bgplb.yaml applied to the
// lab's API server, and each role run from the container image with runc
// exactly as its workload's pod spec says, under its own ServiceAccount's
// token, on a lab node.

import (
	"context"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bgplb/bgplb/internal/image"
	"github.com/bgplb/bgplb/internal/podspec"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/labtest"
	"github.com/bgplb/bgplb/lab/seed"
)

// TestInstalledFromImage: the image built for this machine, the install
// bundle applied server-side, the controller in a pod network namespace of
// its own on the API link and a speaker on each node's host network, both
// from the image under runc with the pod spec's command line, security
// context, volumes and ServiceAccount token. The controller allocates the
// Pi-hole's address, the speakers announce it, the router's kernel routes
// it via the node with the endpoint.
func TestInstalledFromImage(t *testing.T) {
	rt := ociRuntime(t)
	began := time.Now()
	// Building the image (a link and a layer) overlaps the lab's start; a
	// failed start waits for it, so that it never outlives the test.
	img, work, built := make(chan v1.Image, 1), t.TempDir(), make(chan struct{})
	go func() { defer close(built); img <- hostImage(t, work) }()
	t.Cleanup(func() { <-built })
	// The lab's limit covers the image's build: on a cold build cache (CI)
	// that alone compiles every package.
	l := bareSeedLab(t, 6*time.Minute, true, "")
	objs := l.install(t)
	w, err := podspec.Workloads(objs)
	if err != nil {
		t.Fatal(err)
	}
	im := <-img
	if im == nil {
		t.FailNow()
	}
	t.Logf("lab, image and install bundle ready after %v", time.Since(began).Round(time.Millisecond))

	ctl := w["controller"].Pod.Spec
	podIP, podNS := l.podNetns(t, "ctl-pod")
	c := runPod(t, rt, im, ctl, l.site(t, w["controller"], seed.Node1, podNS.Path()), "bgplb-"+l.s.ID+"-controller")
	var speakers []*container
	spk := w["speaker"].Pod.Spec
	if !spk.HostNetwork {
		t.Fatal("the speaker's pod is not on the host network")
	}
	for _, n := range l.s.Nodes() {
		site := l.site(t, w["speaker"], n, l.s.Host(n).Path())
		speakers = append(speakers, runPod(t, rt, im, spk, site, "bgplb-"+l.s.ID+"-speaker-"+n))
	}
	c.waitReady(t, l.ctx, nil, podIP.String())
	for i, n := range l.s.Nodes() {
		// The kubelet's probe runs on the node's host network, where
		// 127.0.0.1 is the speaker's: dial as a client on the node does.
		onNode, err := l.s.RESTConfigFrom(n, &rest.Config{})
		if err != nil {
			t.Fatal(err)
		}
		speakers[i].waitReady(t, l.ctx, onNode.Dial, "")
	}
	t.Logf("controller and speakers ready after %v", time.Since(began).Round(time.Millisecond))
	// The security contexts as the kernel applied them, in the namespaces
	// meant: the speaker root with only CAP_NET_BIND_SERVICE (passive
	// BGPRouters) and CAP_NET_RAW (L2 mode's ARP and NDP) on its node's
	// network, the controller unprivileged on its pod's.
	const speakerCaps = 1<<10 | 1<<13
	checkProcess(t, "controller", c.status(t), procStatus{uid: "65532", gid: "65532",
		noNewPrivs: true, readOnlyRoot: true, netns: inode(t, podNS.Path())})
	for i, n := range l.s.Nodes() {
		checkProcess(t, "speaker on "+n, speakers[i].status(t), procStatus{uid: "0", gid: "0",
			capEff: speakerCaps, capBnd: speakerCaps, noNewPrivs: true, readOnlyRoot: true,
			netns: inode(t, l.s.Host(n).Path())})
	}

	// The password Secret where the speaker's Role lets it read Secrets.
	l.configureFor(t, w["speaker"].Object.GetNamespace())
	vip := netip.MustParseAddr("203.0.113.53")
	n1, n2 := l.s.NodeAddr(seed.Node1), l.s.NodeAddr(seed.Node2)
	l.rp.waitEstablished(t, l.ctx, n1, n2)
	l.endpoints(t, "pihole", seed.Node1)
	l.create(t, pihole(corev1.ServiceExternalTrafficPolicyLocal))
	l.waitService(t, "pihole", func(s *corev1.Service) bool {
		return len(s.Status.LoadBalancer.Ingress) == 1 && s.Status.LoadBalancer.Ingress[0].IP == vip.String()
	})
	l.rp.waitKernel(t, l.ctx, want{netip.PrefixFrom(vip, 32): {n1}})
	l.waitAnnouncers(t, "pihole", seed.Node1)
	l.waitAnnounced(t, "pihole", "announced by node1 (1 endpoint) to router")
	t.Logf("routed via %s after %v", n1, time.Since(began).Round(time.Millisecond))
}

func checkProcess(t *testing.T, what string, got, want procStatus) {
	t.Helper()
	if got != want {
		t.Errorf("%s: process %+v, want %+v", what, got, want)
	}
}

// ociRuntime is runc or crun; the test skips without one, but fails in CI
// (CI set), where hack/install-deps.sh installs runc.
func ociRuntime(t *testing.T) string {
	t.Helper()
	rt, err := image.OCIRuntime()
	if err != nil {
		labtest.Missing(t, "%v (hack/install-deps.sh installs runc)", err)
	}
	return rt
}

// hostImage builds the image for this machine's architecture in dir, as
// `make image` does (static, trimmed), or returns nil after t.Errorf.
func hostImage(t *testing.T, dir string) v1.Image {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	meta := image.Meta{Version: "v0.0.0-e2e", Revision: "e2e", Source: "https://github.com/bgplb/bgplb", Created: time.Unix(1700000000, 0).UTC()}
	idx, err := image.Build(ctx, "../..", dir, []string{runtime.GOARCH}, meta)
	if err != nil {
		t.Errorf("building the image: %v", err)
		return nil
	}
	img, err := image.ArchImage(idx, runtime.GOARCH)
	if err != nil {
		t.Errorf("%v", err)
		return nil
	}
	return img
}

// install applies deploy/bgplb.yaml as `kubectl apply --server-side`
// would, and waits until its CRDs serve.
func (l *seedLab) install(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	objs := installObjects(t)
	dyn, err := dynamic.NewForConfig(l.env.Config)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(l.env.Client.Discovery()))
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s: %v", podspec.Key(o), err)
		}
		var api dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if o.GetNamespace() != "" {
			api = dyn.Resource(m.Resource).Namespace(o.GetNamespace())
		}
		if _, err := api.Apply(l.ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: "kubectl"}); err != nil {
			t.Fatalf("apply %s: %v", podspec.Key(o), err)
		}
	}
	// Established and in discovery before the roles' informers ask.
	if err := l.env.InstallCRDs(l.ctx, "../../deploy/manifests/crds"); err != nil {
		t.Fatal(err)
	}
	return objs
}

// installObjects are deploy/bgplb.yaml's objects.
func installObjects(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile("../../deploy/bgplb.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := podspec.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// podNetns plugs a pod's network namespace into the API link, on a free
// address of its subnet (the root end and the nodes take the first three):
// the pod network of a cluster whose pods reach the API server directly.
func (l *seedLab) podNetns(t *testing.T, name string) (netip.Addr, *lab.Netns) {
	t.Helper()
	p := l.s.APIPrefix()
	ip := p.Addr().Next().Next().Next().Next()
	err := l.s.Lab.Connect(l.ctx, seed.APILAN, lab.HostSpec{Name: name, Ifname: "eth0", Addrs: []netip.Prefix{netip.PrefixFrom(ip, p.Bits())}})
	if err != nil {
		t.Fatal(err)
	}
	return ip, l.s.Host(name)
}

// site is what the kubelet of node gives the workload's pod: netns, the
// API server's address, and a token for its ServiceAccount from the
// TokenRequest API, as a projected volume holds.
func (l *seedLab) site(t *testing.T, w podspec.Workload, node, netns string) podSite {
	t.Helper()
	ns, sa := w.Object.GetNamespace(), w.Pod.Spec.ServiceAccountName
	tok, err := l.env.ServiceAccountToken(l.ctx, ns, sa)
	if err != nil {
		t.Fatal(err)
	}
	return podSite{node: node, netns: netns, apiServer: l.env.Addr, namespace: ns,
		token: []byte(tok), ca: l.env.Config.CAData}
}
