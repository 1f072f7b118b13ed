package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// linkedPackages lists the packages the bgplb binary built with tags links.
func linkedPackages(t *testing.T, tags string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-tags", tags, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps -tags %q: %v: %s", tags, err, out)
	}
	return strings.Fields(string(out))
}

// Test code that the binary may not link, by the standard library's name
// or by a name this or any module gives a test package.
var (
	stdTestPackages = []string{"testing", "net/http/httptest", "internal/testenv"}
	testModules     = []string{"github.com/stretchr/testify", "github.com/onsi/ginkgo", "github.com/onsi/gomega", "go.uber.org/goleak"}
	// testElements are path elements that make a package test code
	// wherever they appear, besides any ending in "test" or "testing".
	testElements = []string{"fake", "fakes", "envtest", "testutil", "testutils"}
	// notTestElements end in "test" without being about tests.
	notTestElements = []string{"latest"}
	// linkedByClientGo are test helpers that client-go's gentype, under
	// every typed clientset, imports to serve fake clientsets; nothing of
	// bgplb calls them, and no Kubernetes client goes without them.
	linkedByClientGo = []string{"k8s.io/client-go/testing", "k8s.io/apimachinery/pkg/api/meta/testrestmapper"}
)

// isTestCode says whether pkg is test code:
//   - the standard library's testing, testing/..., net/http/httptest and
//     internal/testenv (not internal/testlog or internal/synctest, which os
//     and runtime link into every program);
//   - a package with a path element named test, testing, fake, fakes,
//     envtest or testutil(s), or ending in "test" or "testing": our
//     internal/kubetest, lab/labtest, lab/seed/seedtest and test/e2e,
//     client-go's kubernetes/fake, controller-runtime's envtest;
//   - testify, ginkgo, gomega and goleak;
//
// except linkedByClientGo.
func isTestCode(pkg string) bool {
	if slices.Contains(linkedByClientGo, pkg) {
		return false
	}
	if slices.Contains(stdTestPackages, pkg) || strings.HasPrefix(pkg, "testing/") {
		return true
	}
	for _, m := range testModules {
		if pkg == m || strings.HasPrefix(pkg, m+"/") {
			return true
		}
	}
	if !strings.Contains(strings.Split(pkg, "/")[0], ".") {
		return false // the rest of the standard library
	}
	for _, e := range strings.Split(pkg, "/") {
		if slices.Contains(notTestElements, e) {
			continue
		}
		if slices.Contains(testElements, e) || strings.HasSuffix(e, "test") || strings.HasSuffix(e, "testing") {
			return true
		}
	}
	return false
}

// TestBinaryLinksNoTestCode: test harnesses stay out of the product, in
// both builds. `bgplb lab` runs its control plane with package
// controlplane and its processes with package proc; what only tests need
// lives in kubetest, labtest and seedtest.
func TestBinaryLinksNoTestCode(t *testing.T) {
	for _, tags := range []string{"", "routeronly"} {
		for _, pkg := range linkedPackages(t, tags) {
			if isTestCode(pkg) {
				t.Errorf("the build with tags %q links test code: %s", tags, pkg)
			}
		}
	}
}

func TestIsTestCode(t *testing.T) {
	for pkg, want := range map[string]bool{
		"testing":           true,
		"testing/fstest":    true,
		"net/http/httptest": true,
		"github.com/bgplb/bgplb/internal/kubetest":   true,
		"github.com/bgplb/bgplb/lab/labtest":         true,
		"github.com/bgplb/bgplb/lab/seed/seedtest":   true,
		"github.com/bgplb/bgplb/test/e2e":            true,
		"k8s.io/client-go/kubernetes/fake":           true,
		"k8s.io/client-go/tools/cache/testing":       true,
		"sigs.k8s.io/controller-runtime/pkg/envtest": true,
		"github.com/stretchr/testify/require":        true,

		"internal/testlog":                                  false,
		"internal/synctest":                                 false,
		"github.com/bgplb/bgplb/internal/controlplane":      false,
		"github.com/bgplb/bgplb/internal/proc":              false,
		"github.com/bgplb/bgplb/lab/seed":                   false,
		"k8s.io/client-go/tools/clientcmd/api/latest":       false,
		"k8s.io/client-go/testing":                          false,
		"k8s.io/apimachinery/pkg/api/meta/testrestmapper":   false,
		"sigs.k8s.io/controller-runtime/pkg/client/apiutil": false,
	} {
		if got := isTestCode(pkg); got != want {
			t.Errorf("isTestCode(%q) = %v, want %v", pkg, got, want)
		}
	}
}
