package helm

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/loader"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/bgplb/bgplb/internal/podspec"
)

// otherValues is a non-default install: another namespace, image and
// names, flags of both roles, scheduling, the ServiceMonitor and the
// examples. The controller's Lease is put in ns explicitly: run outside a
// pod (as the tests run it) it cannot read its namespace from the
// ServiceAccount's mount, and would fall back to bgplb-system.
func otherValues(ns string) map[string]any {
	return map[string]any{
		"fullnameOverride": "lb",
		"image":            map[string]any{"repository": "registry.example/bgplb", "tag": "v9.9.9", "pullPolicy": "Always"},
		"imagePullSecrets": []any{map[string]any{"name": "regcred"}},
		"controller": map[string]any{
			"replicas":             1,
			"leaderElectNamespace": ns,
			"leaderElectId":        "lb-lease",
			"healthAddr":           ":17473",
			"metricsAddr":          ":17472",
			"logLevel":             "debug",
			"holdDown":             "1m",
			"workers":              2,
			"serviceAccount":       map[string]any{"name": "lb-allocator"},
			"nodeSelector":         map[string]any{"node-role.example/infra": "true"},
			"tolerations":          []any{map[string]any{"key": "infra", "operator": "Exists", "effect": "NoSchedule"}},
			"podAnnotations":       map[string]any{"example.com/team": "network"},
			"podDisruptionBudget":  map[string]any{"enabled": false},
		},
		"speaker": map[string]any{
			"metricsAddr":    "$(NODE_IP):17474",
			"listen":         []any{"0.0.0.0:179", "[::]:179"},
			"onControlPlane": false,
			"tolerations":    []any{map[string]any{"key": "edge", "operator": "Exists"}},
			"nodeSelector":   map[string]any{"bgplb.io/speaker": "true"},
			"serviceAccount": map[string]any{"name": "lb-announcer"},
			"extraArgs":      []any{"--kube-api-burst=80"},
		},
		"metrics":  map[string]any{"serviceMonitor": map[string]any{"enabled": true, "labels": map[string]any{"release": "prometheus"}}},
		"examples": map[string]any{"enabled": true},
	}
}

// TestLint is `helm lint --strict` with the default values and the other
// set: no errors, no warnings.
func TestLint(t *testing.T) {
	for name, vals := range map[string]map[string]any{"default": nil, "other": otherValues("lb-test")} {
		l := action.NewLint()
		l.Strict = true
		l.Namespace = defaultNS
		res := l.Run([]string{chartDir}, vals)
		for _, m := range res.Messages {
			if m.Severity >= support.WarningSev {
				t.Errorf("%s: %v", name, m)
			} else {
				t.Logf("%s: %v", name, m)
			}
		}
		for _, err := range res.Errors {
			t.Errorf("%s: %v", name, err)
		}
		if res.TotalChartsLinted != 1 {
			t.Errorf("%s: %d charts linted", name, res.TotalChartsLinted)
		}
	}
}

// TestRenderOther checks that each non-default value lands where it should.
func TestRenderOther(t *testing.T) {
	const ns = "lb-test"
	r := render(t, ns, otherValues(ns))
	for _, o := range r.objs {
		// The examples' Pi-hole Services (BGP and L2) keep the seed's namespace.
		pihole := o.GetKind() == "Service" && o.GetNamespace() == "default" && strings.HasPrefix(o.GetName(), "pihole")
		if o.GetNamespace() != "" && o.GetNamespace() != ns && !pihole {
			t.Errorf("%s: not in the release's namespace %s", podspec.Key(o), ns)
		}
	}
	objs := r.byKey()
	for _, k := range []string{"ServiceAccount/lb-test/lb-allocator", "ServiceAccount/lb-test/lb-announcer",
		"ClusterRole//lb-controller", "RoleBinding/lb-test/lb-speaker", "Secret/lb-test/bgp-password",
		"LoadBalancerPool//lan", "Service/default/pihole", "Service/lb-test/lb-controller-metrics",
		"ServiceMonitor/lb-test/lb-controller-metrics", "ServiceMonitor/lb-test/lb-speaker-metrics"} {
		if objs[k] == nil {
			t.Errorf("no %s among %v", k, slices.Sorted(maps.Keys(objs)))
		}
	}
	if objs["PodDisruptionBudget/lb-test/lb-controller"] != nil {
		t.Error("a PodDisruptionBudget, disabled")
	}
	ctl := r.workloads["controller"].Pod.Spec
	spk := r.workloads["speaker"].Pod.Spec
	for _, p := range []corev1.PodSpec{ctl, spk} {
		c := p.Containers[0]
		if c.Image != "registry.example/bgplb:v9.9.9" || c.ImagePullPolicy != corev1.PullAlways ||
			len(p.ImagePullSecrets) != 1 || p.ImagePullSecrets[0].Name != "regcred" {
			t.Errorf("%s: image %s %s, pull secrets %v", c.Name, c.Image, c.ImagePullPolicy, p.ImagePullSecrets)
		}
	}
	if ctl.ServiceAccountName != "lb-allocator" || ctl.NodeSelector["node-role.example/infra"] != "true" ||
		len(ctl.Tolerations) != 1 || ctl.Tolerations[0].Key != "infra" {
		t.Errorf("controller: serviceAccountName %q nodeSelector %v tolerations %v", ctl.ServiceAccountName, ctl.NodeSelector, ctl.Tolerations)
	}
	if a := r.workloads["controller"].Pod.Annotations; a["example.com/team"] != "network" {
		t.Errorf("controller pod annotations %v", a)
	}
	wantArgs(t, ctl.Containers[0].Args, "--leader-elect-namespace=lb-test", "--leader-elect-id=lb-lease",
		"--health-addr=:17473", "--hold-down=1m", "--workers=2", "--log-level=debug")
	if p := ctl.Containers[0].ReadinessProbe; p == nil || p.HTTPGet.Port.String() != "health" || ctl.Containers[0].Ports[0].ContainerPort != 17473 {
		t.Errorf("controller: readiness %+v on ports %+v, want the health port 17473", p, ctl.Containers[0].Ports)
	}
	// Off the control plane: only the toleration given.
	if spk.ServiceAccountName != "lb-announcer" || spk.NodeSelector["bgplb.io/speaker"] != "true" ||
		len(spk.Tolerations) != 1 || spk.Tolerations[0].Key != "edge" {
		t.Errorf("speaker: serviceAccountName %q nodeSelector %v tolerations %v", spk.ServiceAccountName, spk.NodeSelector, spk.Tolerations)
	}
	fields := podspec.Fields(map[string]string{"spec.nodeName": "node-a", "status.hostIP": "192.0.2.7", "metadata.name": "bgplb-speaker-x1"})
	argv, _, err := podspec.CommandLine(spk.Containers[0], fields)
	if err != nil {
		t.Fatal(err)
	}
	wantArgs(t, argv, "--metrics-addr=192.0.2.7:17474", "--listen=0.0.0.0:179,[::]:179", "--kube-api-burst=80")
	if p := spk.Containers[0].LivenessProbe.HTTPGet; p.Host != "" || p.Port.IntValue() != 17474 {
		t.Errorf("speaker: liveness probe %+v: want the pod's (node's) address, port 17474", p)
	}
	checkServiceMonitor(t, objs["ServiceMonitor/lb-test/lb-speaker-metrics"], objs["Service/lb-test/lb-speaker-metrics"], ns)
}

func checkServiceMonitor(t *testing.T, sm, svc *unstructured.Unstructured, ns string) {
	t.Helper()
	if sm == nil || svc == nil {
		t.Fatal("no ServiceMonitor or Service")
	}
	if sm.GetAPIVersion() != "monitoring.coreos.com/v1" || sm.GetLabels()["release"] != "prometheus" {
		t.Errorf("ServiceMonitor %s labels %v", sm.GetAPIVersion(), sm.GetLabels())
	}
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	for k, v := range sel {
		if svc.GetLabels()[k] != v {
			t.Errorf("ServiceMonitor selects %s=%s, the Service has %v", k, v, svc.GetLabels())
		}
	}
	nss, _, _ := unstructured.NestedStringSlice(sm.Object, "spec", "namespaceSelector", "matchNames")
	if !slices.Equal(nss, []string{ns}) {
		t.Errorf("ServiceMonitor namespaces %v", nss)
	}
	eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	if len(eps) != 1 || len(ports) != 1 || eps[0].(map[string]any)["port"] != ports[0].(map[string]any)["name"] {
		t.Errorf("ServiceMonitor endpoints %v, Service ports %v: want the one named port", eps, ports)
	}
}

// TestServiceMonitorOff: by default none, and none for a speaker whose
// metrics stay on loopback.
func TestServiceMonitorOff(t *testing.T) {
	for _, o := range render(t, defaultNS, nil).objs {
		if o.GetKind() == "ServiceMonitor" {
			t.Errorf("%s rendered by default", podspec.Key(o))
		}
	}
	r := render(t, defaultNS, map[string]any{"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true}}})
	objs := r.byKey()
	if objs["ServiceMonitor/bgplb-system/bgplb-controller-metrics"] == nil || objs["ServiceMonitor/bgplb-system/bgplb-speaker-metrics"] != nil {
		t.Errorf("ServiceMonitors %v: want the controller's only (the speaker's metrics are on 127.0.0.1)", slices.Sorted(maps.Keys(objs)))
	}
}

func wantArgs(t *testing.T, args []string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(args, w) {
			t.Errorf("args %q: no %s", args, w)
		}
	}
}

// notFlags are the values of a role that are not one of its flags.
var notFlags = []string{"enabled", "replicas", "serviceAccount", "extraArgs", "extraEnv", "resources",
	"podSecurityContext", "securityContext", "nodeSelector", "tolerations", "affinity", "priorityClassName",
	"podAnnotations", "podLabels", "podDisruptionBudget", "onControlPlane", "terminationGracePeriodSeconds",
	"updateStrategy"}

// fixedFlags are flags with no value of their own: the node and pod names
// come from the downward API, a kubeconfig would be mounted (extraArgs).
var fixedFlags = []string{"help", "kubeconfig", "node-name", "pod-name"}

var helpFlag = regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z0-9-]+)(?: (\w+))?`)

// TestEveryFlag checks that each flag of `bgplb ROLE --help` has a value of
// the same name in camelCase, that setting it puts the flag on the
// container's command line, and that bgplb parses that command line.
func TestEveryFlag(t *testing.T) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	defaults := ch.(*chartv2.Chart).Values
	bin := bgplbBinary(t)
	for _, role := range []string{"controller", "speaker"} {
		help, err := exec.Command(bin, role, "--help").Output()
		if err != nil {
			t.Fatal(err)
		}
		have, _ := defaults[role].(map[string]any)
		vals := map[string]any{}
		var want []string
		for _, m := range helpFlag.FindAllStringSubmatch(string(help), -1) {
			flag, typ := m[1], m[2]
			if slices.Contains(fixedFlags, flag) {
				continue
			}
			key := camel(flag)
			if _, ok := have[key]; !ok {
				t.Errorf("%s: --%s has no value %s.%s", role, flag, role, key)
				continue
			}
			delete(have, key)
			v, arg := sample(flag, typ)
			vals[key] = v
			want = append(want, "--"+flag+"="+arg)
		}
		for k := range have {
			if !slices.Contains(notFlags, k) {
				t.Errorf("%s.%s: no flag --%s in bgplb %s --help", role, k, kebab(k), role)
			}
		}
		c := render(t, defaultNS, map[string]any{role: vals}).workloads[role].Pod.Spec.Containers[0]
		wantArgs(t, c.Args, want...)
		argv, env, err := podspec.CommandLine(c, podspec.Fields(map[string]string{"spec.nodeName": "node-a", "metadata.name": "bgplb-speaker-x1"}))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, append(argv[1:], "--help")...)
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: bgplb %q: %v\n%s", role, argv[1:], err, out)
		}
	}
}

// sample is a value of a flag's type, and how it reads on the command line.
func sample(flag, typ string) (any, string) {
	if flag == "log-level" {
		return "warn", "warn" // the schema knows the levels
	}
	switch typ {
	case "":
		return false, "false" // every boolean flag of bgplb defaults to true
	case "duration":
		return "7s", "7s"
	case "int", "float32":
		return 7, "7"
	case "strings":
		return []any{"192.0.2.1:179", "[2001:db8::1]:179"}, "192.0.2.1:179,[2001:db8::1]:179"
	default:
		return "192.0.2.1:1790", "192.0.2.1:1790"
	}
}

func camel(flag string) string {
	parts := strings.Split(flag, "-")
	for i := 1; i < len(parts); i++ {
		parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
	}
	return strings.Join(parts, "")
}

func kebab(key string) string {
	var b strings.Builder
	for _, r := range key {
		if r >= 'A' && r <= 'Z' {
			fmt.Fprintf(&b, "-%c", r-'A'+'a')
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// TestPackage packages the chart as hack/chart does and renders the
// archive: .helmignore keeps what the templates read (rbac/, examples/).
func TestPackage(t *testing.T) {
	p := action.NewPackage()
	p.Destination = t.TempDir()
	tgz, err := p.Run(chartDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	vals := otherValues("lb-test")
	want := render(t, "lb-test", vals).byKey()
	got := renderChart(t, tgz, "lb-test", vals).byKey()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the packaged chart renders %v, the directory %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
}

// TestSchema: values.schema.json refuses what the chart does not know, so
// that a misspelt value fails the install instead of being ignored.
func TestSchema(t *testing.T) {
	for _, vals := range []map[string]any{
		{"controller": map[string]any{"worker": 3}},
		{"speaker": map[string]any{"logLevel": "verbose"}},
		{"servicemonitor": map[string]any{"enabled": true}},
	} {
		if _, err := renderErr(chartDir, defaultNS, vals); err == nil || !strings.Contains(err.Error(), "schema") {
			t.Errorf("%v: err %v, want the schema's", vals, err)
		}
	}
}
