package home

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/bgplb/bgplb/deploy"
	"github.com/bgplb/bgplb/internal/podspec"
)

// The lab applies the manifests built into the binary; they must be the
// tree's own, byte for byte, or `bgplb lab up` would test stale objects.
func TestSourceDirBuiltIn(t *testing.T) {
	o := Options{StateDir: t.TempDir()}
	dir, err := sourceDir(o)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, pattern := range []string{"config/crd/bases/*.yaml", "config/rbac/*/role.yaml", "deploy/examples/*.yaml"} {
		want, err := filepath.Glob(filepath.Join(tree, pattern))
		if err != nil || len(want) == 0 {
			t.Fatalf("%s: %v %v", pattern, want, err)
		}
		for _, w := range want {
			rel, _ := filepath.Rel(tree, w)
			got, err := os.ReadFile(filepath.Join(dir, rel))
			if err != nil {
				t.Errorf("built-in %s: %v", rel, err)
				continue
			}
			b, _ := os.ReadFile(w)
			if string(got) != string(b) {
				t.Errorf("built-in %s differs from the tree's", rel)
			}
			n++
		}
	}
	if n < 10 {
		t.Errorf("only %d manifests compared", n)
	}
	// A second Up over the same state directory starts from a clean copy.
	if _, err := sourceDir(o); err != nil {
		t.Fatalf("second time: %v", err)
	}
}

func TestSourceDirFlag(t *testing.T) {
	if _, err := sourceDir(Options{SourceDir: t.TempDir(), StateDir: t.TempDir()}); err == nil ||
		!strings.Contains(err.Error(), "--source") || !strings.Contains(err.Error(), "pihole.yaml") {
		t.Fatalf("empty --source: %v; want an error naming the flag and the missing file", err)
	}
	tree, _ := filepath.Abs("../..")
	dir, err := sourceDir(Options{SourceDir: tree, StateDir: t.TempDir()})
	if err != nil || dir != tree {
		t.Fatalf("--source %s: %q, %v", tree, dir, err)
	}
}

func TestWithImage(t *testing.T) {
	got, err := withImage(deploy.Bundle, "docker.io/library/bgplb:v0-lab")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := podspec.Decode(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := podspec.Workloads(objs)
	if err != nil {
		t.Fatal(err)
	}
	var containers int
	for role, wl := range w {
		for _, c := range wl.Pod.Spec.Containers {
			containers++
			if c.Image != "docker.io/library/bgplb:v0-lab" || c.ImagePullPolicy != corev1.PullNever {
				t.Errorf("%s/%s: image %q pull %q", role, c.Name, c.Image, c.ImagePullPolicy)
			}
		}
	}
	if containers != 2 {
		t.Errorf("%d containers, want the controller's and the speaker's", containers)
	}
	if strings.Count(string(got), "imagePullPolicy") != containers {
		t.Errorf("imagePullPolicy lines beyond the containers'")
	}
	for _, bad := range []string{"image: other:1\n", "imagePullPolicy: Always\nimage: bgplb:VERSION\n", "kind: ConfigMap\n"} {
		if _, err := withImage([]byte(bad), "x"); err == nil {
			t.Errorf("withImage(%q) accepted", bad)
		}
	}
}
