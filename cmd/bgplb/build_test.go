package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestRouterBuildLinksNoKubernetes: the router's build (make build-router)
// must not link the Kubernetes client, whose package initialisation alone
// would cost the router about 19 MB of resident memory. Test harnesses are
// TestBinaryLinksNoTestCode's.
func TestRouterBuildLinksNoKubernetes(t *testing.T) {
	for _, pkg := range linkedPackages(t, "routeronly") {
		if strings.HasPrefix(pkg, "k8s.io/") || strings.HasPrefix(pkg, "sigs.k8s.io/") {
			t.Errorf("the router build links %s", pkg)
		}
	}
}

// TestInstallRouter stages `make install-router` and checks what lands
// where: the router build as bin/bgplb, the unit pointing at it, the
// example config, and an existing config kept.
func TestInstallRouter(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("make is missing")
		}
		t.Skip("needs make")
	}
	dest := t.TempDir()
	install := func() string {
		cmd := exec.Command("make", "-C", "../..", "install-router", "DESTDIR="+dest, "PREFIX=/opt/bgplb")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make install-router: %v: %s", err, out)
		}
		return string(out)
	}
	install()
	bin := filepath.Join(dest, "opt/bgplb/bin/bgplb")
	out, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --help: %v: %s", bin, err, out)
	}
	if !regexp.MustCompile(`(?m)^\s+router\s`).Match(out) || regexp.MustCompile(`(?m)^\s+(speaker|controller|lab)\s`).Match(out) {
		t.Errorf("installed binary is not the router build:\n%s", out)
	}
	unit, err := os.ReadFile(filepath.Join(dest, "etc/systemd/system/bgplb-router.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "ExecStart=/opt/bgplb/bin/bgplb router --config /etc/bgplb/router.yaml") {
		t.Errorf("unit does not start the installed binary:\n%s", unit)
	}
	cfg := filepath.Join(dest, "etc/bgplb/router.yaml")
	want, _ := os.ReadFile("../../deploy/router/router.yaml")
	if got, err := os.ReadFile(cfg); err != nil || string(got) != string(want) {
		t.Fatalf("config = %q, %v; want deploy/router/router.yaml", got, err)
	}
	if err := os.WriteFile(cfg, []byte("# mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := install(); !strings.Contains(out, "keeping") {
		t.Errorf("second install did not say it kept the config:\n%s", out)
	}
	if got, _ := os.ReadFile(cfg); string(got) != "# mine\n" {
		t.Errorf("second install overwrote the operator's config: %q", got)
	}
}
