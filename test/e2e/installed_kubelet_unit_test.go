package e2e

import (
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/bgplb/bgplb/internal/image"
	"github.com/bgplb/bgplb/internal/podspec"
)

func installWorkloads(t *testing.T) map[string]podspec.Workload {
	t.Helper()
	w, err := podspec.Workloads(installObjects(t))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestPodBundleOptions: what the kubelet emulation makes of
// deploy/bgplb.yaml's two pods, without running them.
func TestPodBundleOptions(t *testing.T) {
	w := installWorkloads(t)
	site := podSite{node: "node1", netns: "/run/netns/x", apiServer: netip.MustParseAddrPort("198.51.100.65:6443"),
		namespace: "bgplb-system", token: []byte("tok"), ca: []byte("ca")}
	dir := t.TempDir()
	spk, err := podBundleOptions(w["speaker"].Pod.Spec, site, dir)
	if err != nil {
		t.Fatal(err)
	}
	if spk.User != "0:0" || !slices.Equal(spk.Capabilities, []string{"CAP_NET_BIND_SERVICE", "CAP_NET_RAW"}) ||
		spk.NewPrivileges || spk.WritableRoot || !spk.HostNetwork || spk.Hostname != "node1" || spk.MemoryLimit != 256<<20 {
		t.Errorf("speaker: %+v", spk)
	}
	if !slices.Contains(spk.Command, "--node-name=node1") ||
		!slices.Contains(spk.Env, "KUBERNETES_SERVICE_HOST=198.51.100.65") || !slices.Contains(spk.Env, "NODE_NAME=node1") {
		t.Errorf("speaker: command %q env %q", spk.Command, spk.Env)
	}
	checkMount(t, spk.Mounts, "/run/bgplb", "tmpfs", "size=1048576")
	checkMount(t, spk.Mounts, saMountPath, "bind", "ro")
	for name, want := range map[string]string{"token": "tok", "ca.crt": "ca", "namespace": "bgplb-system"} {
		if b, err := os.ReadFile(dir + "/serviceaccount/" + name); err != nil || string(b) != want {
			t.Errorf("serviceaccount/%s: %q, %v", name, b, err)
		}
	}

	ctl, err := podBundleOptions(w["controller"].Pod.Spec, site, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if ctl.User != "65532:65532" || len(ctl.Capabilities) != 0 || ctl.NewPrivileges || ctl.WritableRoot || ctl.HostNetwork {
		t.Errorf("controller: %+v", ctl)
	}
}

func checkMount(t *testing.T, ms []image.Mount, dest, typ, opt string) {
	t.Helper()
	i := slices.IndexFunc(ms, func(m image.Mount) bool { return m.Destination == dest })
	if i < 0 || ms[i].Type != typ || !slices.Contains(ms[i].Options, opt) {
		t.Errorf("mount %s: want %s with %s; mounts %+v", dest, typ, opt, ms)
	}
}

// TestPodSecurityRules: Kubernetes' defaults and refusals, as emulated.
func TestPodSecurityRules(t *testing.T) {
	root, yes := int64(0), true
	_, err := podUser(corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: &yes}},
		corev1.Container{SecurityContext: &corev1.SecurityContext{RunAsUser: &root}})
	if err == nil || !strings.Contains(err.Error(), "runAsNonRoot") {
		t.Errorf("runAsNonRoot with uid 0: %v, want a refusal", err)
	}
	if u, err := podUser(corev1.PodSpec{}, corev1.Container{}); u != "" || err != nil {
		t.Errorf("no runAsUser: %q, %v; want the image's user", u, err)
	}
	caps, newPrivs, writable := containerSecurity(nil)
	if !slices.Equal(caps, runtimeDefaultCaps) || !newPrivs || !writable {
		t.Errorf("no securityContext: %v %v %v; want the runtime's defaults", caps, newPrivs, writable)
	}
	caps, _, _ = containerSecurity(&corev1.SecurityContext{Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"NET_RAW"}}})
	if slices.Contains(caps, "CAP_NET_RAW") || len(caps) != len(runtimeDefaultCaps)-1 {
		t.Errorf("drop NET_RAW: %v", caps)
	}
}
