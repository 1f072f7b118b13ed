package kubenode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/bgplb/bgplb/internal/controlplane"
	"github.com/bgplb/bgplb/internal/proc"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/labtest"
)

// testServiceCIDRs are the lab's ClusterIP ranges (IPv4 of 198.18.0.0/15).
var testServiceCIDRs = []netip.Prefix{netip.MustParsePrefix("198.19.0.0/16"), netip.MustParsePrefix("2001:db8:ffff:96::/108")}

// kubeBinDir finds the control plane and node binaries, or ends the test.
func kubeBinDir(t *testing.T) string {
	t.Helper()
	labtest.Require(t)
	labtest.RequireBinaries(t, runtimeBins...)
	dir, err := controlplane.BinDir()
	if err != nil {
		labtest.Missing(t, "%v", err)
	}
	for _, b := range []string{"kubelet", "kube-proxy", "kube-controller-manager", "kube-scheduler"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			labtest.Missing(t, "%s not in %s (make k8sbin)", b, dir)
		}
	}
	return dir
}

// controlPlane runs an API server with controllers, ClusterIPs from the
// lab's range. The controller manager's flexvolume prober, like the
// kubelet's, creates its directory at start, by default
// /usr/libexec/kubernetes/... on the machine, which checkClean forbids.
func controlPlane(ctx context.Context, t *testing.T, bin string) *controlplane.Server {
	t.Helper()
	s, err := controlplane.Run(ctx, controlplane.Options{
		BinDir: bin, Controllers: true, ServiceCIDRs: testServiceCIDRs,
		ControllerManagerFlags: []string{"--flex-volume-plugin-dir=" + filepath.Join(t.TempDir(), "volume-plugins")},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

// nodeCredentials writes, below dir, kubeconfigs of system:node:NAME (for
// the kubelet) and system:kube-proxy for the API server as reached from
// the node's namespace (a forwarder there), and returns them with the
// cluster CA's file. The control plane authorizes them as a kubeadm
// cluster does: the Node authorizer, NodeRestriction, system:node-proxier.
func nodeCredentials(t *testing.T, s *controlplane.Server, ns *lab.Netns, name, dir string) (kubelet, proxy, ca string) {
	t.Helper()
	fwd, err := lab.Forward(ns, "127.0.0.1:0", nil, s.Addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fwd.Close() })
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	kubelet, err = s.NodeKubeconfig(name)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err = s.ProxyKubeconfig()
	if err != nil {
		t.Fatal(err)
	}
	server := "https://" + fwd.Addr().String()
	return viaServer(t, kubelet, server, dir), viaServer(t, proxy, server, dir), s.CACertFile()
}

// viaServer copies a kubeconfig into dir with its server replaced.
func viaServer(t *testing.T, path, server, dir string) string {
	t.Helper()
	kc, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range kc.Clusters {
		c.Server = server
	}
	out := filepath.Join(dir, filepath.Base(path))
	if err := clientcmd.WriteToFile(*kc, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// dumpLogsOnFailure prints the end of the node's logs if the test failed;
// registered after the node's removal, it runs before it.
func dumpLogsOnFailure(t *testing.T, dir string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, r := range daemonRoles {
			p := layout{dir}.logFile(r)
			t.Logf("=== %s ===\n%s", p, proc.Tail(p, 40))
		}
	})
}

// A node started by a process that then exits: it registers and goes
// Ready; a Deployment's pod runs on the CNI bridge and answers on its pod
// IP from the node's namespace; a hostNetwork pod runs; a ClusterIP
// Service answers through kube-proxy, from the node and from a pod; the
// machine's global sysctls keep their values; all of it dual-stack; Remove, from the directory only, leaves nothing, and a
// second Remove is a no-op.
func TestNode(t *testing.T) {
	bin := kubeBinDir(t)
	ctx := testContext(t, 5*time.Minute)
	sysBefore := readSysctls(t)
	nodeIP := netip.MustParseAddr("198.51.100.10")
	nodeIP6 := netip.MustParseAddr("2001:db8:100::10")
	l, _ := labtest.LAN(t, lab.HostSpec{Name: "node1", Addrs: []netip.Prefix{netip.PrefixFrom(nodeIP, 24), netip.PrefixFrom(nodeIP6, 64)}}, gateway)
	ns := l.Host("node1")
	addDefaultRoute(ctx, t, ns)
	if err := ns.IP(ctx, "-6", "route", "add", "default", "via", gateway.Addrs[1].Addr().String()); err != nil {
		t.Fatal(err)
	}
	s := controlPlane(ctx, t, bin)
	o := testOptions(t, ns)
	o.BinDir, o.NodeIPs = bin, []netip.Addr{nodeIP, nodeIP6}
	o.PodCIDRs = append(o.PodCIDRs, netip.MustParsePrefix("2001:db8:18:1::/64"))
	o.ClusterCIDRs = append(o.ClusterCIDRs, netip.MustParsePrefix("2001:db8:18::/56"))
	o.Labels = map[string]string{"bgplb.io/lab-node": "node1"}
	o.Kubeconfig, o.ProxyKubeconfig, o.CACert = nodeCredentials(t, s, ns, o.Name, filepath.Join(filepath.Dir(o.Dir), "creds"))
	before := takeSnapshot(t, ns)
	t.Cleanup(func() { _ = Remove(context.Background(), o.Dir) })
	dumpLogsOnFailure(t, o.Dir)

	began := time.Now()
	startInOtherProcess(t, o)
	started := time.Since(began)
	if err := WaitReady(ctx, s.Client, o.Name); err != nil {
		t.Fatal(err)
	}
	t.Logf("figures: node started in %v, Ready %v after the start began", started.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))

	if ds, err := Daemons(o.Dir); err != nil || len(ds) != len(daemonRoles) {
		t.Errorf("Daemons: %v (%v), want all %v", ds, err, daemonRoles)
	} else {
		for _, d := range ds {
			if !d.Ref.Alive() {
				t.Errorf("%s (%+v) is not alive", d.Role, d.Ref)
			}
		}
	}
	c := s.Client
	if node, err := c.CoreV1().Nodes().Get(ctx, o.Name, metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	} else if node.Labels["bgplb.io/lab-node"] != "node1" {
		t.Errorf("node labels %v lack Options.Labels", node.Labels)
	}
	checkKubeletAuth(ctx, t, s, ns)
	kns := createNamespace(ctx, t, c)
	podIPs := runDeployment(ctx, t, c, kns, "web", o.SandboxImage)
	if len(podIPs) != len(o.PodCIDRs) {
		t.Errorf("pod IPs %v, want one of each of %v", podIPs, o.PodCIDRs)
	}
	for i, ip := range podIPs {
		if i < len(o.PodCIDRs) && !o.PodCIDRs[i].Contains(ip) {
			t.Errorf("pod IP %s not in the node's pod CIDR %s", ip, o.PodCIDRs[i])
		}
		waitHTTP(ctx, t, ns, netip.AddrPortFrom(ip, 8080), "web-")
	}

	hostPod(ctx, t, c, kns, o.SandboxImage, nodeIP)
	waitHTTP(ctx, t, ns, netip.AddrPortFrom(nodeIP, 8081), "")

	clusterIPs := createService(ctx, t, c, kns, "web", corev1.IPFamilyPolicyRequireDualStack)
	began = time.Now()
	for _, ip := range clusterIPs {
		waitHTTP(ctx, t, ns, netip.AddrPortFrom(ip, 80), "web-")
		t.Logf("figures: ClusterIP %s answered through kube-proxy %v after the Service was created", ip, time.Since(began).Round(time.Millisecond))
		clientPod(ctx, t, c, kns, o.SandboxImage, "http://"+netip.AddrPortFrom(ip, 80).String()+"/")
	}
	checkSysctls(t, sysBefore, "while the node runs")
	// The kubelet did write: into the node's private copy.
	if b, err := os.ReadFile(sysctlFile(layout{o.Dir}.sysctlDir(), "kernel/panic")); err != nil || strings.TrimSpace(string(b)) != "10" {
		t.Errorf("the node's kernel.panic is %q (%v), want the kubelet's 10", b, err)
	}

	// The flexvolume prober made its directory in the node's /var (Dir/var).
	if _, err := os.Stat(filepath.Join(o.Dir, kubeletVolumePluginDir)); err != nil {
		t.Errorf("the kubelet's volume plugin directory is not the node's: %v", err)
	}
	st := pinnedState(t, o.Dir)
	began = time.Now()
	if err := Remove(ctx, o.Dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("figures: Remove took %v", time.Since(began).Round(time.Millisecond))
	checkClean(t, ns, before, st, o.Dir)
	if err := Remove(ctx, o.Dir); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	checkSysctls(t, sysBefore, "after Remove")
}

// checkKubeletAuth calls the kubelet's API (/pods on port 10250) from
// inside the node's namespace: the admin is allowed, a user of the
// cluster's CA without rights is forbidden (the API server decides), a
// client without a certificate is not authenticated.
func checkKubeletAuth(ctx context.Context, t *testing.T, s *controlplane.Server, ns *lab.Netns) {
	t.Helper()
	nobody, err := s.UserConfig("bgplb-nobody")
	if err != nil {
		t.Fatal(err)
	}
	anonymous := rest.CopyConfig(s.Config)
	anonymous.CertData, anonymous.KeyData = nil, nil
	for _, tc := range []struct {
		who  string
		conf *rest.Config
		want int
	}{
		{"admin", s.Config, http.StatusOK},
		{"bgplb-nobody", nobody, http.StatusForbidden},
		{"anonymous", anonymous, http.StatusUnauthorized},
	} {
		tls, err := rest.TLSConfigFor(tc.conf)
		if err != nil {
			t.Fatal(err)
		}
		tls.InsecureSkipVerify, tls.RootCAs = true, nil // the kubelet's own self-signed serving certificate
		tr := &http.Transport{TLSClientConfig: tls, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := ns.Do(func() error {
				var err error
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		}}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://127.0.0.1:10250/pods", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("kubelet API as %s: %v", tc.who, err)
		}
		resp.Body.Close()
		tr.CloseIdleConnections()
		if resp.StatusCode != tc.want {
			t.Errorf("kubelet API as %s: %s, want %d", tc.who, resp.Status, tc.want)
		}
	}
}

// gateway is a LAN's router, the nodes' default gateway. A node needs a
// route to the ClusterIPs, as on a real LAN, or its own connections to
// them fail before kube-proxy's DNAT: "network is unreachable".
var gateway = lab.HostSpec{Name: "gw", Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/24"), netip.MustParsePrefix("2001:db8:100::1/64")}}

func addDefaultRoute(ctx context.Context, t *testing.T, ns *lab.Netns) {
	t.Helper()
	if err := ns.IP(ctx, "route", "add", "default", "via", gateway.Addrs[0].Addr().String()); err != nil {
		t.Fatal(err)
	}
}

func createNamespace(ctx context.Context, t *testing.T, c kubernetes.Interface) string {
	t.Helper()
	ns, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "kn-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// servePod is a pod template running the test image's HTTP server.
func servePod(labels map[string]string, image, addr string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "serve", Image: image, ImagePullPolicy: corev1.PullNever, Args: []string{"serve", addr},
		}}},
	}
}

// runDeployment runs one pod of the HTTP server and returns its IPs once
// it runs, logging how long that took.
func runDeployment(ctx context.Context, t *testing.T, c kubernetes.Interface, ns, name, image string) []netip.Addr {
	t.Helper()
	labels := map[string]string{"app": name}
	one := int32(1)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: servePod(labels, image, ":8080"),
		},
	}
	began := time.Now()
	if _, err := c.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := waitPod(ctx, t, c, ns, "app="+name)
	t.Logf("figures: Deployment's pod %s running %v after the Deployment was created", pod.Name, time.Since(began).Round(time.Millisecond))
	var ips []netip.Addr
	for _, ip := range pod.Status.PodIPs {
		ips = append(ips, netip.MustParseAddr(ip.IP))
	}
	return ips
}

func hostPod(ctx context.Context, t *testing.T, c kubernetes.Interface, ns, image string, nodeIP netip.Addr) {
	t.Helper()
	tmpl := servePod(map[string]string{"app": "host"}, image, ":8081")
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "host", Labels: tmpl.Labels}, Spec: tmpl.Spec}
	pod.Spec.HostNetwork = true
	if _, err := c.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := waitPod(ctx, t, c, ns, "app=host")
	if got.Status.PodIP != nodeIP.String() {
		t.Errorf("hostNetwork pod's IP %s, want the node's %s", got.Status.PodIP, nodeIP)
	}
}

// clientPod runs a pod that fetches url, and waits until it has succeeded:
// pod to ClusterIP to a pod on the same bridge (the answer returns through
// the bridge, which must pass it to iptables to undo the DNAT).
func clientPod(ctx context.Context, t *testing.T, c kubernetes.Interface, ns, image, url string) {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "client-"},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "get", Image: image, ImagePullPolicy: corev1.PullNever, Args: []string{"get", url},
			}},
		},
	}
	pod, err := c.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = lab.Poll(ctx, 100*time.Millisecond, func() (bool, error) {
		p, err := c.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		switch {
		case err != nil:
			return false, err
		case p.Status.Phase == corev1.PodSucceeded:
			return true, nil
		case p.Status.Phase == corev1.PodFailed:
			return false, lab.Permanent(fmt.Errorf("failed: %s", podState(p)))
		}
		return false, errors.New(podState(p))
	})
	if err != nil {
		t.Fatalf("client pod fetching %s: %v", url, err)
	}
}

// waitPod waits for the one pod matching selector to run.
func waitPod(ctx context.Context, t *testing.T, c kubernetes.Interface, ns, selector string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	err := lab.Poll(ctx, 100*time.Millisecond, func() (bool, error) {
		l, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		switch {
		case err != nil:
			return false, err
		case len(l.Items) != 1:
			return false, fmt.Errorf("%d pods", len(l.Items))
		case l.Items[0].Status.Phase == corev1.PodRunning && l.Items[0].Status.PodIP != "":
			pod = &l.Items[0]
			return true, nil
		}
		return false, errors.New(podState(&l.Items[0]))
	})
	if err != nil {
		t.Fatalf("pod %s in %s not running: %v", selector, ns, err)
	}
	return pod
}

func podState(p *corev1.Pod) string {
	s := fmt.Sprintf("phase %s", p.Status.Phase)
	for _, c := range p.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			s += fmt.Sprintf("; %s: %s %s", c.Type, c.Reason, c.Message)
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			s += fmt.Sprintf("; %s waiting: %s %s", cs.Name, w.Reason, w.Message)
		}
	}
	return s
}

func createService(ctx context.Context, t *testing.T, c kubernetes.Interface, ns, app string, policy corev1.IPFamilyPolicy) []netip.Addr {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: app},
		Spec: corev1.ServiceSpec{
			Selector:       map[string]string{"app": app},
			IPFamilyPolicy: &policy,
			Ports:          []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	got, err := c.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ips []netip.Addr
	for _, s := range got.Spec.ClusterIPs {
		ip := netip.MustParseAddr(s)
		if !slices.ContainsFunc(testServiceCIDRs, func(p netip.Prefix) bool { return p.Contains(ip) }) {
			t.Errorf("ClusterIP %s not in %v", ip, testServiceCIDRs)
		}
		ips = append(ips, ip)
	}
	return ips
}

// waitHTTP waits until a GET of addr from inside ns answers with a body
// starting with prefix.
func waitHTTP(ctx context.Context, t *testing.T, ns *lab.Netns, addr netip.AddrPort, prefix string) {
	t.Helper()
	err := lab.Poll(ctx, 100*time.Millisecond, func() (bool, error) {
		body, err := getIn(ctx, ns, addr)
		if err != nil {
			return false, err
		}
		if !strings.HasPrefix(body, prefix) {
			return false, fmt.Errorf("answer %q", body)
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("http://%s from %s: %v", addr, ns.Name, err)
	}
}

// getIn makes an HTTP request from a socket in ns.
func getIn(ctx context.Context, ns *lab.Netns, addr netip.AddrPort) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var conn net.Conn
	err := ns.Do(func() error {
		var err error
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr.String())
		return err
	})
	if err != nil {
		return "", err
	}
	tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
		if conn == nil {
			return nil, errors.New("one connection only")
		}
		c := conn
		conn = nil
		return c, nil
	}}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr.String()+"/", nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
