package home

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
