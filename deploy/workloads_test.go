package deploy

import (
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/bgplb/bgplb/internal/podspec"
)

func workloads(t *testing.T) map[string]podspec.Workload {
	t.Helper()
	w, err := podspec.Workloads(bundleObjects(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roles {
		if _, ok := w[r]; !ok {
			t.Fatalf("no workload runs %s", r)
		}
	}
	return w
}

// commandLine is the container's command line and env as the kubelet
// would start them on node-a.
func commandLine(t *testing.T, c corev1.Container) ([]string, []string) {
	t.Helper()
	argv, env, err := podspec.CommandLine(c, fieldValue)
	if err != nil {
		t.Fatal(err)
	}
	return argv, env
}

var fieldValue = podspec.Fields(map[string]string{"spec.nodeName": "node-a", "metadata.namespace": namespace, "metadata.name": "bgplb-speaker-x1"})

// TestContainerArgs runs each container's exact arguments through the real
// bgplb's flag parsing (--help appended: cobra parses every flag first).
func TestContainerArgs(t *testing.T) {
	bin := bgplbBinary(t)
	for role, w := range workloads(t) {
		c := w.Pod.Spec.Containers[0]
		if !strings.HasPrefix(c.Image, "bgplb:") {
			t.Errorf("%s: image %q, want bgplb:TAG (no registry: kustomize's images: sets it)", role, c.Image)
		}
		argv, environ := commandLine(t, c)
		if len(argv) == 0 || argv[0] != "/bgplb" {
			t.Fatalf("%s: command %v, want /bgplb", role, argv)
		}
		cmd := exec.Command(bin, append(argv[1:], "--help")...)
		cmd.Env = append(os.Environ(), environ...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: bgplb %v: %v\n%s", role, argv[1:], err, out)
		}
	}
}

func TestControllerPod(t *testing.T) {
	p := workloads(t)["controller"].Pod.Spec
	c := p.Containers[0]
	if p.ServiceAccountName != "bgplb-controller" {
		t.Errorf("serviceAccountName %q", p.ServiceAccountName)
	}
	if ps := p.SecurityContext; ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot ||
		ps.RunAsUser == nil || *ps.RunAsUser != 65532 ||
		ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v: want non-root 65532, seccomp RuntimeDefault", ps)
	}
	checkLocked(t, "controller", c, nil)
	if !slices.Contains(c.Args, "--leader-elect=true") {
		t.Errorf("args %v: no --leader-elect=true", c.Args)
	}
	_, health, err := net.SplitHostPort(flagValue(c.Args, "--health-addr"))
	if err != nil {
		t.Fatalf("--health-addr: %v", err)
	}
	for _, pr := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
		if pr == nil || pr.HTTPGet == nil {
			t.Fatalf("probes %+v %+v: want HTTP on the health address", c.LivenessProbe, c.ReadinessProbe)
		}
		port := pr.HTTPGet.Port.String()
		for _, cp := range c.Ports {
			if cp.Name == port {
				port = strconv.Itoa(int(cp.ContainerPort))
			}
		}
		if port != health {
			t.Errorf("probe %s on port %s, --health-addr's is %s", pr.HTTPGet.Path, port, health)
		}
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v: want requests and a memory limit", c.Resources)
	}
}

func TestSpeakerPod(t *testing.T) {
	p := workloads(t)["speaker"].Pod.Spec
	c := p.Containers[0]
	if p.ServiceAccountName != "bgplb-speaker" || !p.HostNetwork || p.PriorityClassName == "" {
		t.Errorf("serviceAccountName %q, hostNetwork %v, priorityClassName %q", p.ServiceAccountName, p.HostNetwork, p.PriorityClassName)
	}
	if !slices.ContainsFunc(p.Tolerations, func(tl corev1.Toleration) bool {
		return tl.Key == "node-role.kubernetes.io/control-plane" && tl.Operator == corev1.TolerationOpExists
	}) {
		t.Errorf("tolerations %v: none for control-plane nodes", p.Tolerations)
	}
	checkLocked(t, "speaker", c, []corev1.Capability{"NET_BIND_SERVICE", "NET_RAW"})
	argv, _ := commandLine(t, c)
	if flagValue(argv, "--node-name") != "node-a" {
		t.Errorf("args %v: --node-name not from the downward API's spec.nodeName", c.Args)
	}
	if m := flagValue(argv, "--metrics-addr"); !strings.HasPrefix(m, "127.0.0.1:") {
		t.Errorf("--metrics-addr %q: on the host network, keep it on loopback", m)
	}
	for _, o := range bundleObjects(t) {
		if o.GetKind() == "DaemonSet" {
			ds := fromUnstructured[appsv1.DaemonSet](t, o)
			u := ds.Spec.UpdateStrategy
			if u.Type != appsv1.RollingUpdateDaemonSetStrategyType || u.RollingUpdate == nil ||
				u.RollingUpdate.MaxUnavailable == nil || u.RollingUpdate.MaxUnavailable.IntValue() != 1 {
				t.Errorf("updateStrategy %+v: want RollingUpdate, maxUnavailable 1", u)
			}
		}
	}
}

// checkLocked checks a container's own securityContext: no escalation, a
// read-only root, every capability dropped but add.
func checkLocked(t *testing.T, role string, c corev1.Container, add []corev1.Capability) {
	t.Helper()
	s := c.SecurityContext
	if s == nil || s.AllowPrivilegeEscalation == nil || *s.AllowPrivilegeEscalation ||
		s.ReadOnlyRootFilesystem == nil || !*s.ReadOnlyRootFilesystem || s.Privileged != nil && *s.Privileged ||
		s.Capabilities == nil || !slices.Equal(s.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		!slices.Equal(s.Capabilities.Add, add) {
		t.Errorf("%s: securityContext %+v: want no escalation, read-only root, drop ALL, add %v", role, s, add)
	}
}

// flagValue returns the value of --name=value in args.
func flagValue(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}
