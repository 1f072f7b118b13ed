package v1alpha1

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// repoRoot is the module root, from this package.
const repoRoot = "../.."

// TestGeneratedFilesUpToDate runs the controller-gen that `make generate`
// runs (same version, read from the Makefile) into a temporary directory
// and compares its output with the committed deepcopy code, CRDs and the
// controller's RBAC, file by file both ways: a marker changed without
// `make generate` fails here.
// The first run on a machine fetches and builds controller-gen through the
// Go module proxy (about a minute); -short skips it.
func TestGeneratedFilesUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds controller-gen")
	}
	version := controllerGenVersion(t)
	goTool, err := exec.LookPath("go")
	if err != nil {
		if root := os.Getenv("GOROOT"); root != "" {
			goTool = filepath.Join(root, "bin", "go")
		} else {
			t.Fatalf("no go command to run controller-gen with: %v", err)
		}
	}
	out := t.TempDir()
	objDir, crdDir := filepath.Join(out, "object"), filepath.Join(out, "crd")
	cmd := exec.CommandContext(t.Context(), goTool, "run", "sigs.k8s.io/controller-tools/cmd/controller-gen@"+version,
		"object", "crd", "paths=./api/...",
		"output:object:dir="+objDir, "output:crd:dir="+crdDir)
	cmd.Dir = repoRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("controller-gen %s: %v\n%s", version, err, b)
	}
	for _, role := range []string{"controller", "speaker"} {
		dir := filepath.Join(out, "rbac", role)
		cmd = exec.CommandContext(t.Context(), goTool, "run", "sigs.k8s.io/controller-tools/cmd/controller-gen@"+version,
			"rbac:roleName=bgplb-"+role, "paths=./"+role+"/...", "output:rbac:dir="+dir)
		cmd.Dir = repoRoot
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("controller-gen %s rbac for %s: %v\n%s", version, role, err, b)
		}
		sameFiles(t, dir, filepath.Join(repoRoot, "config", "rbac", role), "*.yaml")
	}
	sameFiles(t, objDir, ".", "zz_generated.deepcopy.go")
	sameFiles(t, crdDir, filepath.Join(repoRoot, "config", "crd", "bases"), "*.yaml")
}

// controllerGenVersion reads CONTROLLER_GEN_VERSION from the Makefile, so
// that the test and `make generate` cannot drift apart.
func controllerGenVersion(t *testing.T) string {
	t.Helper()
	mk, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^CONTROLLER_GEN_VERSION\s*:?=\s*(v\S+)\s*$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("no CONTROLLER_GEN_VERSION in the Makefile")
	}
	return string(m[1])
}

// sameFiles fails unless dirs want (fresh output) and got (committed) hold
// the same files matching pattern with the same contents.
func sameFiles(t *testing.T, want, got, pattern string) {
	t.Helper()
	wantFiles, _ := filepath.Glob(filepath.Join(want, pattern))
	gotFiles, _ := filepath.Glob(filepath.Join(got, pattern))
	if len(wantFiles) == 0 {
		t.Fatalf("controller-gen wrote no %s", pattern)
	}
	seen := map[string]bool{}
	for _, w := range wantFiles {
		name := filepath.Base(w)
		seen[name] = true
		fresh, err := os.ReadFile(w)
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(filepath.Join(got, name))
		if err != nil {
			t.Errorf("%s is missing: run make generate (%v)", name, err)
			continue
		}
		if !bytes.Equal(fresh, committed) {
			t.Errorf("%s is stale: run make generate", filepath.Join(got, name))
		}
	}
	for _, g := range gotFiles {
		if !seen[filepath.Base(g)] {
			t.Errorf("%s is not generated any more: delete it", g)
		}
	}
}
