package kubenode

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/labtest"
)

// Two nodes on one LAN, each pod CIDR routed to its node (the lab's job):
// each node reaches the other's pod by its pod IP, and a ClusterIP whose
// only pod runs on node1 answers from node2 through kube-proxy. Both
// nodes are started and stopped in this process (Node.Stop).
func TestTwoNodes(t *testing.T) {
	bin := kubeBinDir(t)
	ctx := testContext(t, 5*time.Minute)
	type host struct {
		name string
		ip   netip.Addr
		pods netip.Prefix
	}
	hosts := []host{
		{"node1", netip.MustParseAddr("198.51.100.11"), netip.MustParsePrefix("198.18.1.0/24")},
		{"node2", netip.MustParseAddr("198.51.100.12"), netip.MustParsePrefix("198.18.2.0/24")},
	}
	var specs []lab.HostSpec
	for _, h := range hosts {
		specs = append(specs, lab.HostSpec{Name: h.name, Addrs: []netip.Prefix{netip.PrefixFrom(h.ip, 24)}})
	}
	l, _ := labtest.LAN(t, append(specs, gateway)...)
	for i, h := range hosts {
		addDefaultRoute(ctx, t, l.Host(h.name))
		other := hosts[1-i]
		if err := l.Host(h.name).AddRoute(ctx, other.pods, other.ip); err != nil {
			t.Fatal(err)
		}
	}
	s := controlPlane(ctx, t, bin)
	root := t.TempDir()
	nodes := make([]*Node, len(hosts))
	befores := make([]snapshot, len(hosts))
	for i, h := range hosts {
		ns := l.Host(h.name)
		befores[i] = takeSnapshot(t, ns)
		o := testOptions(t, ns)
		o.Name, o.Dir, o.BinDir = h.name, filepath.Join(root, h.name), bin
		o.NodeIPs, o.PodCIDRs = []netip.Addr{h.ip}, []netip.Prefix{h.pods}
		o.Kubeconfig, o.ProxyKubeconfig, o.CACert = nodeCredentials(t, s, ns, h.name, filepath.Join(root, "creds-"+h.name))
		began := time.Now()
		n, err := Start(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = n
		t.Cleanup(func() {
			if err := n.Stop(context.Background()); err != nil {
				t.Errorf("stop %s: %v", n.Name, err)
			}
		})
		dumpLogsOnFailure(t, o.Dir)
		if err := n.WaitReady(ctx, s.Client); err != nil {
			t.Fatal(err)
		}
		t.Logf("figures: %s Ready %v after its start began", h.name, time.Since(began).Round(time.Millisecond))
	}
	c := s.Client
	kns := createNamespace(ctx, t, c)
	image := nodes[0].opts.SandboxImage
	var podIPs []netip.Addr
	for i, h := range hosts {
		ip := pinnedPod(ctx, t, c, kns, fmt.Sprintf("web%d", i+1), h.name, image)
		if !h.pods.Contains(ip) {
			t.Errorf("pod on %s has IP %s, not in %s", h.name, ip, h.pods)
		}
		podIPs = append(podIPs, ip)
	}
	for i, h := range hosts {
		other := 1 - i
		waitHTTP(ctx, t, l.Host(h.name), netip.AddrPortFrom(podIPs[other], 8080), fmt.Sprintf("web%d", other+1))
	}
	clusterIP := createService(ctx, t, c, kns, "web1", corev1.IPFamilyPolicySingleStack)[0]
	waitHTTP(ctx, t, l.Host("node2"), netip.AddrPortFrom(clusterIP, 80), "web1")

	for i, n := range nodes {
		st := pinnedState(t, n.Dir)
		began := time.Now()
		if err := n.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("figures: %s stopped in %v", n.Name, time.Since(began).Round(time.Millisecond))
		checkClean(t, l.Host(n.Name), befores[i], st, n.Dir)
	}
}

// pinnedPod runs the HTTP server as a pod bound to node and returns its IP.
func pinnedPod(ctx context.Context, t *testing.T, c kubernetes.Interface, ns, name, node, image string) netip.Addr {
	t.Helper()
	tmpl := servePod(map[string]string{"app": name}, image, ":8080")
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: tmpl.Labels}, Spec: tmpl.Spec}
	pod.Spec.NodeName = node
	if _, err := c.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return netip.MustParseAddr(waitPod(ctx, t, c, ns, "app="+name).Status.PodIP)
}
