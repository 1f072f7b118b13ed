// Package podspec reads bgplb's workloads out of rendered manifests (the
// kustomize bundle, a Helm chart's output) and turns a container into the
// command line and environment a kubelet would start, so that tests run
// each role exactly as a cluster would.
package podspec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Decode splits a multi-document YAML stream into objects; empty
// documents (comments only) are skipped.
func Decode(b []byte) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	for {
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
}

// Key names an object as kind/namespace/name.
func Key(o *unstructured.Unstructured) string {
	return fmt.Sprintf("%s/%s/%s", o.GetKind(), o.GetNamespace(), o.GetName())
}

// Workload is one role's pod template: the Deployment or DaemonSet whose
// single container runs `bgplb ROLE`.
type Workload struct {
	Role   string
	Object *unstructured.Unstructured
	Pod    corev1.PodTemplateSpec
}

// Workloads finds the pod templates among objs, keyed by the role their
// container's first argument names.
func Workloads(objs []*unstructured.Unstructured) (map[string]Workload, error) {
	w := map[string]Workload{}
	for _, o := range objs {
		var pod corev1.PodTemplateSpec
		switch o.GetKind() {
		case "Deployment":
			var d appsv1.Deployment
			if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, &d, true); err != nil {
				return nil, fmt.Errorf("%s: %w", Key(o), err)
			}
			pod = d.Spec.Template
		case "DaemonSet":
			var d appsv1.DaemonSet
			if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, &d, true); err != nil {
				return nil, fmt.Errorf("%s: %w", Key(o), err)
			}
			pod = d.Spec.Template
		default:
			continue
		}
		if n := len(pod.Spec.Containers); n != 1 {
			return nil, fmt.Errorf("%s: %d containers, want 1", Key(o), n)
		}
		c := pod.Spec.Containers[0]
		if len(c.Args) == 0 {
			return nil, fmt.Errorf("%s: no arguments", Key(o))
		}
		role := c.Args[0]
		if _, dup := w[role]; dup {
			return nil, fmt.Errorf("two workloads run %s", role)
		}
		w[role] = Workload{Role: role, Object: o, Pod: pod}
	}
	return w, nil
}

var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// CommandLine returns the container's command and arguments as the kubelet
// runs them, $(VAR) expanded from the container's env, and that env as
// NAME=value. field answers the downward API's fieldRef paths
// (spec.nodeName, metadata.namespace, ...).
func CommandLine(c corev1.Container, field func(path string) (string, error)) (argv, environ []string, err error) {
	env := map[string]string{}
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil {
			if e.ValueFrom.FieldRef == nil {
				return nil, nil, fmt.Errorf("%s: env %s from other than the downward API", c.Name, e.Name)
			}
			if v, err = field(e.ValueFrom.FieldRef.FieldPath); err != nil {
				return nil, nil, fmt.Errorf("%s: env %s: %w", c.Name, e.Name, err)
			}
		}
		env[e.Name] = v
		environ = append(environ, e.Name+"="+v)
	}
	for _, a := range append(slices.Clone(c.Command), c.Args...) {
		var missing []string
		argv = append(argv, envRef.ReplaceAllStringFunc(a, func(m string) string {
			name := envRef.FindStringSubmatch(m)[1]
			v, ok := env[name]
			if !ok {
				missing = append(missing, name)
			}
			return v
		}))
		if missing != nil {
			return nil, nil, fmt.Errorf("%s: %s names $(%s), not in its env", c.Name, a, missing[0])
		}
	}
	return argv, environ, nil
}

// Fields answers downward API paths from a fixed map.
func Fields(m map[string]string) func(string) (string, error) {
	return func(path string) (string, error) {
		v, ok := m[path]
		if !ok {
			return "", fmt.Errorf("downward API field %s not provided", path)
		}
		return v, nil
	}
}
