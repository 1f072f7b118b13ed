package helm

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/bgplb/bgplb/internal/podspec"
)

var roles = []string{"controller", "speaker"}

// copies maps each file the chart carries from outside its directory to
// its source.
func copies(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	for dst, glob := range map[string]string{"crds": "../../config/crd/bases/*.yaml", "examples": "../examples/*.yaml"} {
		srcs, err := filepath.Glob(glob)
		if err != nil || len(srcs) == 0 {
			t.Fatalf("nothing in %s: %v", glob, err)
		}
		for _, src := range srcs {
			m[filepath.Join(chartDir, dst, filepath.Base(src))] = src
		}
	}
	for _, r := range roles {
		m[filepath.Join(chartDir, "rbac", r+"-role.yaml")] = filepath.Join("../../config/rbac", r, "role.yaml")
	}
	return m
}

// TestCopies fails when the chart's crds/, rbac/ or examples/ differ from
// config/ and deploy/examples byte for byte, or hold a file that has no
// source any more; with -update (go generate ./deploy/helm) it rewrites them.
func TestCopies(t *testing.T) {
	cp := copies(t)
	for _, dir := range []string{"crds", "rbac", "examples"} {
		have, _ := filepath.Glob(filepath.Join(chartDir, dir, "*"))
		for _, f := range have {
			if _, ok := cp[f]; ok {
				continue
			}
			if *update {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
			} else {
				t.Errorf("deploy/helm/%s has no source: run go generate ./deploy/helm", f)
			}
		}
	}
	for dst, src := range cp {
		want, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if *update {
			if err := os.WriteFile(dst, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, want) {
			t.Errorf("deploy/helm/%s differs from %s: run go generate ./deploy/helm", dst, strings.TrimPrefix(src, "../../"))
		}
	}
}

func decodeFile(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := podspec.Decode(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return objs
}

// TestDefaultsMatchManifests renders the chart with its defaults and
// compares each object with deploy/bgplb.yaml's. Allowed differences: the
// labels Helm's conventions add (the manifests' own must all be there),
// the image's tag (the chart's appVersion for the manifests' placeholder),
// and what the chart leaves to Helm: the CRDs (crds/, TestCopies) and the
// Namespace (helm install --create-namespace).
func TestDefaultsMatchManifests(t *testing.T) {
	got := render(t, defaultNS, nil).byKey()
	appVersion := chartMetadata(t).AppVersion
	for _, w := range decodeFile(t, "../bgplb.yaml") {
		switch w.GetKind() {
		case "Namespace", "CustomResourceDefinition":
			continue
		}
		k := podspec.Key(w)
		g := got[k]
		delete(got, k)
		if g == nil {
			t.Errorf("%s: in deploy/bgplb.yaml, not rendered", k)
			continue
		}
		g, w = g.DeepCopy(), w.DeepCopy()
		for lk, lv := range w.GetLabels() {
			if g.GetLabels()[lk] != lv {
				t.Errorf("%s: label %s=%s missing", k, lk, lv)
			}
		}
		g.SetLabels(nil)
		w.SetLabels(nil)
		if !normalizeImages(t, g, "bgplb:"+appVersion) || !normalizeImages(t, w, "bgplb:VERSION") {
			continue
		}
		if !reflect.DeepEqual(g.Object, w.Object) {
			gy, _ := yaml.Marshal(g.Object)
			wy, _ := yaml.Marshal(w.Object)
			t.Errorf("%s: the chart renders\n%s\ndeploy/bgplb.yaml has\n%s", k, gy, wy)
		}
	}
	for k := range got {
		t.Errorf("%s: rendered by default, not in deploy/bgplb.yaml", k)
	}
}

// normalizeImages blanks a workload's container images after checking
// they are want.
func normalizeImages(t *testing.T, o *unstructured.Unstructured, want string) bool {
	t.Helper()
	cs, found, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
	if !found {
		return true
	}
	for _, c := range cs {
		m := c.(map[string]any)
		if m["image"] != want {
			t.Errorf("%s: image %v, want %s", podspec.Key(o), m["image"], want)
			return false
		}
		m["image"] = ""
	}
	return unstructured.SetNestedSlice(o.Object, cs, "spec", "template", "spec", "containers") == nil
}

// TestRBAC checks the rendered roles against config/rbac, with the default
// names and others, and that each binds its role's ServiceAccount only.
func TestRBAC(t *testing.T) {
	for _, tc := range []struct {
		ns, prefix string
		vals       map[string]any
	}{
		{defaultNS, "bgplb", nil},
		{"lb-test", "lb", otherValues("lb-test")},
	} {
		objs := render(t, tc.ns, tc.vals).byKey()
		w := render(t, tc.ns, tc.vals).workloads
		for _, r := range roles {
			name := tc.prefix + "-" + r
			sa := w[r].Pod.Spec.ServiceAccountName
			for _, want := range decodeFile(t, filepath.Join("../../config/rbac", r, "role.yaml")) {
				kind, ns := want.GetKind(), ""
				if kind == "Role" {
					ns = tc.ns
				}
				got := objs[kind+"/"+ns+"/"+name]
				if got == nil || !reflect.DeepEqual(got.Object["rules"], want.Object["rules"]) {
					t.Errorf("%s %s/%s: rules differ from config/rbac/%s/role.yaml's (or missing)", kind, ns, name, r)
				}
				b := objs[kind+"Binding/"+ns+"/"+name]
				if b == nil {
					t.Errorf("no %sBinding %s/%s", kind, ns, name)
					continue
				}
				ref, _, _ := unstructured.NestedStringMap(b.Object, "roleRef")
				subs, _, _ := unstructured.NestedSlice(b.Object, "subjects")
				wantSub := map[string]any{"kind": "ServiceAccount", "name": sa, "namespace": tc.ns}
				if ref["kind"] != kind || ref["name"] != name || len(subs) != 1 || !reflect.DeepEqual(subs[0], wantSub) {
					t.Errorf("%s: roleRef %v subjects %v, want %s %s for %v", podspec.Key(b), ref, subs, kind, name, wantSub)
				}
			}
		}
	}
	for _, o := range render(t, defaultNS, map[string]any{"rbac": map[string]any{"create": false}}).objs {
		if strings.HasPrefix(o.GetKind(), "ClusterRole") || strings.HasPrefix(o.GetKind(), "Role") {
			t.Errorf("%s with rbac.create=false", podspec.Key(o))
		}
	}
}

// TestExamples checks that examples.enabled renders every object of
// deploy/examples, unchanged but for the password Secret's namespace.
func TestExamples(t *testing.T) {
	const ns = "lb-test"
	got := render(t, ns, map[string]any{"examples": map[string]any{"enabled": true}}).byKey()
	files, _ := filepath.Glob("../examples/*.yaml")
	n := 0
	for _, f := range files {
		for _, w := range decodeFile(t, f) {
			n++
			if w.GetKind() == "Secret" {
				w.SetNamespace(ns)
			}
			if g := got[podspec.Key(w)]; g == nil || !reflect.DeepEqual(g.Object, w.Object) {
				t.Errorf("%s (%s): rendered %v", podspec.Key(w), f, g)
			}
		}
	}
	if n == 0 {
		t.Fatal("no examples")
	}
	for _, o := range render(t, ns, nil).objs {
		if o.GetKind() == "LoadBalancerPool" {
			t.Errorf("%s rendered without examples.enabled", podspec.Key(o))
		}
	}
}
