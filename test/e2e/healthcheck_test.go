package e2e

// externalTrafficPolicy Local and the data plane: the speakers probe the
// Service's healthCheckNodePort on their node, as cloud load balancers
// probe kube-proxy, and withdraw where it fails.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/internal/controlplane"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/labtest"
	"github.com/bgplb/bgplb/lab/seed"
	"github.com/bgplb/bgplb/speaker/healthcheck/hctest"
)

// serveHealth answers in the node's namespace, on the node's address and
// the Service's healthCheckNodePort, as kube-proxy's health check does.
func (l *seedLab) serveHealth(t *testing.T, node string, port int32) *hctest.Server {
	t.Helper()
	addr := netip.AddrPortFrom(l.s.NodeAddr(node), uint16(port))
	var ln net.Listener
	err := l.s.Host(node).Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", addr.String())
		return err
	})
	if err != nil {
		t.Fatalf("listening on %s in %s: %v", addr, node, err)
	}
	return hctest.Start(t, ln)
}

// waitCondition waits until the Service's Announced condition has the
// status, reason and message given.
func (l *seedLab) waitCondition(t *testing.T, svc string, status metav1.ConditionStatus, reason, msg string) {
	t.Helper()
	var last []metav1.Condition
	err := lab.Poll(l.ctx, 100*time.Millisecond, func() (bool, error) {
		var s corev1.Service
		if err := l.c.Get(l.ctx, client.ObjectKey{Namespace: "default", Name: svc}, &s); err != nil {
			return false, err
		}
		last = s.Status.Conditions
		i := slices.IndexFunc(last, func(c metav1.Condition) bool { return c.Type == "bgplb.io/Announced" })
		return i >= 0 && last[i].Status == status && last[i].Reason == reason && last[i].Message == msg, nil
	})
	if err != nil {
		t.Fatalf("Service %s: want Announced %s/%s %q; conditions %+v", svc, status, reason, msg, last)
	}
}

// TestHealthCheckWithdraws: a Local Service with a pod on each node; when
// one node's kube-proxy health check turns 503 the router drops that
// node's path and the Service's condition says why; when every node's
// does, the route goes; when they pass again, both paths come back.
func TestHealthCheckWithdraws(t *testing.T) {
	l := newSeedLab(t, 3*time.Minute)
	l.configure(t)
	host := netip.MustParsePrefix("203.0.113.53/32")
	n1, n2 := l.s.NodeAddr(seed.Node1), l.s.NodeAddr(seed.Node2)
	l.rp.waitEstablished(t, l.ctx, n1, n2)
	l.endpoints(t, "pihole", seed.Node1, seed.Node2)
	svc := pihole(corev1.ServiceExternalTrafficPolicyLocal)
	l.create(t, svc)
	port := svc.Spec.HealthCheckNodePort
	if port == 0 {
		t.Fatal("the API server allocated no healthCheckNodePort")
	}
	h1 := l.serveHealth(t, seed.Node1, port)
	h2 := l.serveHealth(t, seed.Node2, port)

	l.rp.waitKernel(t, l.ctx, want{host: {n1, n2}})
	both := "announced by node1 (1 endpoint), node2 (1 endpoint) to router"
	l.waitAnnounced(t, "pihole", both)

	// node2's data plane no longer serves: its path goes.
	why2 := fmt.Sprintf("kube-proxy health check on %s:%d says 0 local endpoints (503)", n2, port)
	start := time.Now()
	h2.Endpoints.Store(0)
	l.rp.waitKernel(t, l.ctx, want{host: {n1}})
	t.Logf("503 on node2 → its path gone from the router's kernel: %v (default interval 1s, fall 2)", time.Since(start).Round(time.Millisecond))
	l.waitCondition(t, "pihole", metav1.ConditionTrue, "Announced",
		"announced by node1 (1 endpoint) to router; withheld by node2: "+why2)

	// node1's too: no node announces, and the condition says why.
	why1 := fmt.Sprintf("kube-proxy health check on %s:%d says 0 local endpoints (503)", n1, port)
	h1.Endpoints.Store(0)
	l.rp.waitKernel(t, l.ctx, want{host: nil})
	l.waitCondition(t, "pihole", metav1.ConditionFalse, "HealthCheckFailing", "node1: "+why1+"; node2: "+why2)

	// Both serve again: both paths come back, the reasons go.
	start = time.Now()
	h1.Endpoints.Store(1)
	h2.Endpoints.Store(2)
	l.rp.waitKernel(t, l.ctx, want{host: {n1, n2}})
	t.Logf("200 again → both paths back in the router's kernel: %v (rise 2)", time.Since(start).Round(time.Millisecond))
	l.waitAnnounced(t, "pihole", both)
}

// startKubeProxy runs the real kube-proxy (iptables mode, as the lab's
// cluster nodes run it) in a node's namespace, as the Node named hostname:
// health and metrics on the namespace's loopback, every conntrack setting
// left to the kernel (they are global).
func (l *seedLab) startKubeProxy(t *testing.T, node, hostname string) *lab.Proc {
	t.Helper()
	dir, err := controlplane.BinDir()
	if errors.Is(err, controlplane.ErrNoBinaries) {
		labtest.Missing(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"iptables", "iptables-restore", "ip6tables"} {
		if _, err := exec.LookPath(tool); err != nil {
			labtest.Missing(t, "kube-proxy needs %s: %v", tool, err)
		}
	}
	kubeconfig, err := l.env.ProxyKubeconfig()
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(l.dir, "kube-proxy-"+node+".yaml")
	err = os.WriteFile(conf, []byte(fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
hostnameOverride: %s
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clientConnection: {kubeconfig: %s}
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s, udpTimeout: 0s, udpStreamTimeout: 0s}
`, hostname, kubeconfig)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.s.Host(node).StartWith(l.ctx, lab.StartOptions{Label: "kube-proxy"}, filepath.Join(dir, "kube-proxy"), "--config", conf, "--v=2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.Stop()
		if t.Failed() {
			t.Logf("kube-proxy on %s:\n%s", node, p.Logs())
		}
	})
	return p
}

// askKubeProxy is what the speaker asks: kube-proxy's health check for the
// Service on the node's address, from the node's namespace. The connection
// is made in the namespace (Do holds this goroutine's thread there; the
// HTTP transport would dial from another), the request sent over it.
func (l *seedLab) askKubeProxy(node string, port int32) (int, string, error) {
	var conn net.Conn
	addr := netip.AddrPortFrom(l.s.NodeAddr(node), uint16(port)).String()
	err := l.s.Host(node).Do(func() error {
		var err error
		conn, err = net.DialTimeout("tcp", addr, time.Second)
		return err
	})
	if err != nil {
		return 0, "", err
	}
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		DialContext: func(context.Context, string, string) (net.Conn, error) { return conn, nil }}}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		conn.Close()
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// TestHealthCheckRealKubeProxy: the same with the real kube-proxy on both
// nodes. A pod moving to node2 is announced there once node2's kube-proxy
// says 200. Then node2's kube-proxy is restarted under another node name
// (a --hostname-override that does not match the kubelet's): it sees no
// local endpoint, answers 503, and node2 withdraws, with the reason on the
// Service, although the EndpointSlice still puts the pod on node2.
func TestHealthCheckRealKubeProxy(t *testing.T) {
	l := newSeedLab(t, 3*time.Minute)
	l.configure(t)
	host := netip.MustParsePrefix("203.0.113.53/32")
	n1, n2 := l.s.NodeAddr(seed.Node1), l.s.NodeAddr(seed.Node2)
	l.startKubeProxy(t, seed.Node1, seed.Node1)
	kp2 := l.startKubeProxy(t, seed.Node2, seed.Node2)
	l.rp.waitEstablished(t, l.ctx, n1, n2)
	l.endpoints(t, "pihole", seed.Node1)
	svc := pihole(corev1.ServiceExternalTrafficPolicyLocal)
	l.create(t, svc)
	port := svc.Spec.HealthCheckNodePort
	l.rp.waitKernel(t, l.ctx, want{host: {n1}})
	l.waitAnnounced(t, "pihole", "announced by node1 (1 endpoint) to router")

	// kube-proxy itself says so, on the address the speaker probes.
	var status int
	var body string
	err := lab.Poll(l.ctx, 100*time.Millisecond, func() (bool, error) {
		var err error
		status, body, err = l.askKubeProxy(seed.Node1, port)
		return err == nil && status == http.StatusOK, nil
	})
	if err != nil || !strings.Contains(body, `"localEndpoints": 1`) {
		t.Fatalf("kube-proxy on node1: %d %s: %v", status, body, err)
	}

	// The pod moves: node2 announces once its kube-proxy has the endpoint.
	start := time.Now()
	l.endpoints(t, "pihole", seed.Node2)
	l.rp.waitKernel(t, l.ctx, want{host: {n2}})
	t.Logf("the route followed the pod to node2 %v after the EndpointSlice changed (node2's kube-proxy probed first)",
		time.Since(start).Round(time.Millisecond))
	if logs := l.speakers[seed.Node2].Logs(); !strings.Contains(logs, fmt.Sprintf(`addr=%s:%d state=up detail="passes (200)"`, n2, port)) {
		t.Errorf("node2's speaker did not log its probe of kube-proxy going up:\n%s", logs)
	}

	// node2's kube-proxy under another name: no local endpoint for it.
	// The Node it names has node2's address, as kube-proxy wants one.
	alias := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node2-proxy"}}
	l.create(t, alias)
	alias.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n2.String()}}
	if err := l.c.Status().Update(l.ctx, alias); err != nil {
		t.Fatal(err)
	}
	if err := kp2.Stop(); err != nil {
		t.Logf("stopping node2's kube-proxy: %v", err)
	}
	l.startKubeProxy(t, seed.Node2, "node2-proxy")
	start = time.Now()
	l.rp.waitKernel(t, l.ctx, want{host: nil})
	t.Logf("node2's kube-proxy restarted as another node → node2 withdrew %v later", time.Since(start).Round(time.Millisecond))
	why := fmt.Sprintf("node2: kube-proxy health check on %s:%d says 0 local endpoints (503)", n2, port)
	l.waitCondition(t, "pihole", metav1.ConditionFalse, "HealthCheckFailing", why)
}
