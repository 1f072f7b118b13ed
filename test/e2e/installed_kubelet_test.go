package e2e

// What a kubelet (with containerd and runc under it) makes of a pod
// template's one container: the OCI bundle's process, security, network
// namespace, volumes and ServiceAccount token, and the container run with
// runc, so that the installed test runs each role from the image as a
// cluster would.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/bgplb/bgplb/internal/image"
	"github.com/bgplb/bgplb/internal/podspec"
	"github.com/bgplb/bgplb/lab"
)

// saMountPath is where the kubelet projects a pod's ServiceAccount token,
// and where client-go's in-cluster config reads it.
const saMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"

// podSite is where a kubelet runs a pod, and what it gives it.
type podSite struct {
	node      string
	netns     string         // the pod's network namespace path (the node's for hostNetwork)
	apiServer netip.AddrPort // the `kubernetes` Service as the pod reaches it
	namespace string         // the workload's
	token     []byte         // from the TokenRequest API, for the pod's ServiceAccount
	ca        []byte         // what the API server's serving certificate chains to
}

// runtimeDefaultCaps are containerd's default capabilities: what a
// container holds before its securityContext adds or drops any.
var runtimeDefaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// podBundleOptions turns the pod's one container into runc's terms, with
// its volumes and ServiceAccount files under dir.
func podBundleOptions(pod corev1.PodSpec, site podSite, dir string) (image.BundleOptions, error) {
	c := pod.Containers[0]
	argv, environ, err := podspec.CommandLine(c, podspec.Fields(map[string]string{
		"spec.nodeName": site.node, "metadata.namespace": site.namespace,
		"spec.serviceAccountName": pod.ServiceAccountName,
		// No Pod object stands behind the container: a name of none.
		"metadata.name": pod.ServiceAccountName + "-" + site.node,
	}))
	if err != nil {
		return image.BundleOptions{}, err
	}
	hostname := pod.ServiceAccountName + "-pod"
	if pod.HostNetwork {
		hostname = site.node
	}
	o := image.BundleOptions{
		NetworkNamespace: site.netns,
		HostNetwork:      pod.HostNetwork,
		Hostname:         hostname,
		// The kubelet's service links for `kubernetes` come first; the
		// container's own env may override them.
		Env: append([]string{
			"HOSTNAME=" + hostname,
			"KUBERNETES_SERVICE_HOST=" + site.apiServer.Addr().String(),
			"KUBERNETES_SERVICE_PORT=" + strconv.Itoa(int(site.apiServer.Port())),
		}, environ...),
	}
	if len(c.Command) > 0 {
		o.Command = argv
	} else {
		o.Args = argv
	}
	if o.User, err = podUser(pod, c); err != nil {
		return o, err
	}
	o.Capabilities, o.NewPrivileges, o.WritableRoot = containerSecurity(c.SecurityContext)
	if m := c.Resources.Limits.Memory(); !m.IsZero() {
		o.MemoryLimit = m.Value()
	}
	if o.Mounts, err = podMounts(pod, c, site, dir); err != nil {
		return o, err
	}
	return o, nil
}

// podUser is runAsUser:runAsGroup, the container's over the pod's; with no
// runAsGroup the group is 0, as containerd picks for a uid the image's
// (absent) /etc/passwd does not list. runAsNonRoot refuses root, as the
// kubelet does.
func podUser(pod corev1.PodSpec, c corev1.Container) (string, error) {
	var uid, gid *int64
	var nonRoot *bool
	for _, sc := range []*corev1.SecurityContext{podSecurity(pod.SecurityContext), c.SecurityContext} {
		if sc == nil {
			continue
		}
		uid, gid, nonRoot = cmpOr(sc.RunAsUser, uid), cmpOr(sc.RunAsGroup, gid), cmpOr(sc.RunAsNonRoot, nonRoot)
	}
	if uid == nil {
		// The image's user: numeric, which runAsNonRoot needs to check it.
		if gid != nil {
			return "", errors.New("runAsGroup without runAsUser is not emulated")
		}
		return "", nil
	}
	if nonRoot != nil && *nonRoot && *uid == 0 {
		return "", errors.New("runAsNonRoot with runAsUser 0: the kubelet refuses to start the container")
	}
	g := int64(0)
	if gid != nil {
		g = *gid
	}
	return fmt.Sprintf("%d:%d", *uid, g), nil
}

func podSecurity(p *corev1.PodSecurityContext) *corev1.SecurityContext {
	if p == nil {
		return nil
	}
	return &corev1.SecurityContext{RunAsUser: p.RunAsUser, RunAsGroup: p.RunAsGroup, RunAsNonRoot: p.RunAsNonRoot}
}

// cmpOr is the first non-nil pointer.
func cmpOr[T any](a, b *T) *T {
	if a != nil {
		return a
	}
	return b
}

// containerSecurity is the runtime's capability set after drop and add,
// whether privileges may rise (allowPrivilegeEscalation defaults to true),
// and whether the root is writable.
func containerSecurity(sc *corev1.SecurityContext) (caps []string, newPrivs, writableRoot bool) {
	caps = slices.Clone(runtimeDefaultCaps)
	newPrivs, writableRoot = true, true
	if sc == nil {
		return caps, newPrivs, writableRoot
	}
	if c := sc.Capabilities; c != nil {
		for _, d := range c.Drop {
			if d == "ALL" {
				caps = nil
			}
			caps = slices.DeleteFunc(caps, func(s string) bool { return s == "CAP_"+string(d) })
		}
		for _, a := range c.Add {
			caps = append(caps, "CAP_"+string(a))
		}
	}
	if sc.AllowPrivilegeEscalation != nil {
		newPrivs = *sc.AllowPrivilegeEscalation
	}
	if sc.ReadOnlyRootFilesystem != nil {
		writableRoot = !*sc.ReadOnlyRootFilesystem
	}
	return caps, newPrivs, writableRoot
}

// podMounts are the container's volumeMounts (emptyDir only: bgplb's pods
// have no other kind) and the ServiceAccount's projected token.
func podMounts(pod corev1.PodSpec, c corev1.Container, site podSite, dir string) ([]image.Mount, error) {
	var ms []image.Mount
	for _, vm := range c.VolumeMounts {
		i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name })
		if i < 0 {
			return nil, fmt.Errorf("volumeMount %s: no such volume", vm.Name)
		}
		ed := pod.Volumes[i].EmptyDir
		if ed == nil {
			return nil, fmt.Errorf("volume %s: only emptyDir is emulated", vm.Name)
		}
		ro := map[bool]string{true: "ro", false: "rw"}[vm.ReadOnly]
		if ed.Medium == corev1.StorageMediumMemory {
			opts := []string{"nosuid", "nodev", "mode=1777", ro}
			if ed.SizeLimit != nil {
				opts = append(opts, "size="+strconv.FormatInt(ed.SizeLimit.Value(), 10))
			}
			ms = append(ms, image.Mount{Destination: vm.MountPath, Type: "tmpfs", Source: "tmpfs", Options: opts})
			continue
		}
		src := filepath.Join(dir, "volumes", vm.Name)
		if err := os.MkdirAll(src, 0o777); err != nil {
			return nil, err
		}
		ms = append(ms, image.Mount{Destination: vm.MountPath, Type: "bind", Source: src, Options: []string{"rbind", ro}})
	}
	if pod.AutomountServiceAccountToken != nil && !*pod.AutomountServiceAccountToken {
		return ms, nil
	}
	sa := filepath.Join(dir, "serviceaccount")
	if err := os.MkdirAll(sa, 0o755); err != nil {
		return nil, err
	}
	// Mode 0644 as the projected volume's defaultMode: the controller reads
	// them as 65532.
	for name, b := range map[string][]byte{"token": site.token, "ca.crt": site.ca, "namespace": []byte(site.namespace)} {
		if err := os.WriteFile(filepath.Join(sa, name), b, 0o644); err != nil {
			return nil, err
		}
	}
	return append(ms, image.Mount{Destination: saMountPath, Type: "bind", Source: sa,
		Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}}), nil
}

// container is one role running from the image under runc.
type container struct {
	id, rt, state string
	cmd           *exec.Cmd
	exited        chan error
	log           string
	c             corev1.Container
}

// runPod unpacks img into a bundle for the pod on site and runs it with
// runc, its state in a directory of its own; the container is killed and
// deleted, and the bundle removed, when the test ends.
func runPod(t *testing.T, rt string, img v1.Image, pod corev1.PodSpec, site podSite, id string) *container {
	t.Helper()
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle")
	o, err := podBundleOptions(pod, site, dir)
	if err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	if err := image.Bundle(img, bundle, o); err != nil {
		t.Fatal(err)
	}
	k := &container{id: id, rt: rt, state: filepath.Join(dir, "runc"), exited: make(chan error, 1),
		log: filepath.Join(dir, "container.log"), c: pod.Containers[0]}
	logf, err := os.Create(k.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	// In the foreground runc waits for the container and then deletes it;
	// the container's stdio is runc's, the log file.
	k.cmd = exec.Command(rt, "--root", k.state, "run", "--bundle", bundle, id)
	k.cmd.Stdout, k.cmd.Stderr = logf, logf
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := k.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { k.exited <- k.cmd.Wait() }()
	t.Cleanup(func() { k.stop(t) })
	return k
}

// stop is the kubelet's: SIGTERM, SIGKILL after a grace period, then the
// container deleted whatever state it is in.
func (k *container) stop(t *testing.T) {
	runc := func(args ...string) {
		_ = exec.Command(k.rt, append([]string{"--root", k.state}, args...)...).Run()
	}
	runc("kill", k.id, "TERM")
	select {
	case <-k.exited:
	case <-time.After(15 * time.Second):
		runc("kill", k.id, "KILL")
		select {
		case <-k.exited:
		case <-time.After(10 * time.Second):
			_ = k.cmd.Process.Kill()
		}
	}
	runc("delete", "--force", k.id)
	logs := k.logs()
	if strings.Contains(logs, "forbidden") {
		t.Errorf("%s was refused something its role should allow:\n%s", k.id, logs)
	} else if t.Failed() {
		t.Logf("=== %s (runc) log ===\n%s", k.id, logs)
	}
}

func (k *container) logs() string {
	b, _ := os.ReadFile(k.log)
	return string(b)
}

// dialer dials TCP from some network namespace.
type dialer = func(ctx context.Context, network, addr string) (net.Conn, error)

// waitReady polls the container's readiness probe as the kubelet does: an
// HTTP GET to host (the probe's, else the pod's address), dialled by dial
// (nil: from the test's namespace). It fails the test at once if the
// container exits.
func (k *container) waitReady(t *testing.T, ctx context.Context, dial dialer, podIP string) {
	t.Helper()
	probe := k.c.ReadinessProbe
	if probe == nil || probe.HTTPGet == nil {
		t.Fatalf("%s: no HTTP readiness probe", k.id)
	}
	hg := probe.HTTPGet
	host := hg.Host
	if host == "" {
		host = podIP
	}
	port, err := probePort(k.c, hg.Port)
	if err != nil {
		t.Fatalf("%s: %v", k.id, err)
	}
	url := fmt.Sprintf("http://%s%s", net.JoinHostPort(host, strconv.Itoa(port)), hg.Path)
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil, DialContext: dial}}
	var last string
	err = lab.Poll(ctx, 100*time.Millisecond, func() (bool, error) {
		select {
		case err := <-k.exited:
			k.exited <- err
			return false, lab.Permanent(fmt.Errorf("exited: %v", err))
		default:
		}
		resp, err := hc.Get(url)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		resp.Body.Close()
		last = resp.Status
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("%s: readiness probe %s: %v (last: %s)\n%s", k.id, url, err, last, k.logs())
	}
}

// probePort resolves a probe's port, by number or by the container's port
// name.
func probePort(c corev1.Container, p intstr.IntOrString) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("probe port %q: no such container port", p.StrVal)
}

// procStatus is what the kernel says of a container's process: the
// security context as applied, not as written.
type procStatus struct {
	uid, gid     string // real ones
	capEff       uint64
	capBnd       uint64
	noNewPrivs   bool
	readOnlyRoot bool
	netns        uint64 // the inode of its network namespace
}

// status reads the container's init process from /proc.
func (k *container) status(t *testing.T) procStatus {
	t.Helper()
	out, err := exec.Command(k.rt, "--root", k.state, "state", k.id).Output()
	if err != nil {
		t.Fatalf("runc state %s: %v", k.id, err)
	}
	var st struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal(out, &st); err != nil || st.Pid == 0 {
		t.Fatalf("runc state %s: %s (%v)", k.id, out, err)
	}
	dir := fmt.Sprintf("/proc/%d", st.Pid)
	b, err := os.ReadFile(dir + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var s procStatus
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		switch {
		case len(f) == 0:
		case k == "Uid":
			s.uid = f[0]
		case k == "Gid":
			s.gid = f[0]
		case k == "CapEff":
			s.capEff, err = strconv.ParseUint(f[0], 16, 64)
		case k == "CapBnd":
			s.capBnd, err = strconv.ParseUint(f[0], 16, 64)
		case k == "NoNewPrivs":
			s.noNewPrivs = f[0] == "1"
		}
		if err != nil {
			t.Fatalf("%s/status: %s: %v", dir, line, err)
		}
	}
	if b, err = os.ReadFile(dir + "/mountinfo"); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS ...
		if f := strings.Fields(line); len(f) > 5 && f[4] == "/" {
			s.readOnlyRoot = slices.Contains(strings.Split(f[5], ","), "ro")
		}
	}
	s.netns = inode(t, dir+"/ns/net")
	return s
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}
