package podspec

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCommandLine(t *testing.T) {
	fields := Fields(map[string]string{"spec.nodeName": "node-a"})
	node := corev1.EnvVar{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}
	for _, tc := range []struct {
		name      string
		c         corev1.Container
		argv, env []string
		err       string
	}{
		{name: "plain", c: corev1.Container{Command: []string{"/bgplb"}, Args: []string{"controller", "--x=1"}},
			argv: []string{"/bgplb", "controller", "--x=1"}},
		{name: "downward", c: corev1.Container{Command: []string{"/bgplb"}, Args: []string{"speaker", "--node-name=$(NODE_NAME)"},
			Env: []corev1.EnvVar{node, {Name: "A", Value: "b"}}},
			argv: []string{"/bgplb", "speaker", "--node-name=node-a"}, env: []string{"NODE_NAME=node-a", "A=b"}},
		{name: "unknown var", c: corev1.Container{Args: []string{"--n=$(NOPE)"}}, err: "$(NOPE)"},
		{name: "unknown field", c: corev1.Container{Env: []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}}}}, err: "status.podIP"},
		{name: "secret env", c: corev1.Container{Env: []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{Key: "k"}}}}}, err: "downward API"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			argv, env, err := CommandLine(tc.c, fields)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one naming %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(argv, tc.argv) || !slices.Equal(env, tc.env) {
				t.Errorf("argv %q env %q, want %q %q", argv, env, tc.argv, tc.env)
			}
		})
	}
}

func TestWorkloads(t *testing.T) {
	objs, err := Decode([]byte(`# only a comment
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: a}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: c}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers: [{name: c, image: i, args: [controller]}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: s}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers: [{name: s, image: i, args: [speaker]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 3 {
		t.Fatalf("%d objects, want 3", len(objs))
	}
	w, err := Workloads(objs)
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 2 || w["controller"].Object.GetName() != "c" || w["speaker"].Pod.Spec.Containers[0].Name != "s" {
		t.Errorf("workloads %v", w)
	}
	if _, err := Workloads(append(objs, objs[1])); err == nil || !strings.Contains(err.Error(), "two workloads") {
		t.Errorf("a duplicate role: err %v", err)
	}
}
