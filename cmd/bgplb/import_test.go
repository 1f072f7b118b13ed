//go:build !routeronly

package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func runImport(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append([]string{"import", "metallb"}, args...))
	err = root.Execute()
	return out.String(), errb.String(), err
}

func TestImportMetalLBFileDirStdin(t *testing.T) {
	const seed = "../../internal/metallb/testdata/seed-configmap.yaml"
	out, errs, err := runImport(t, "", seed)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: LoadBalancerPool", "name: bgptest", "kind: BGPRouter", "peerAddress: 198.51.100.1",
		"kind: BGPAnnouncementPolicy", "# Every field was carried."} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if errs != "" {
		t.Errorf("stderr: %q", errs)
	}
	b, err := os.ReadFile(seed)
	if err != nil {
		t.Fatal(err)
	}
	if out2, _, err := runImport(t, string(b), "-"); err != nil || out2 != out {
		t.Errorf("stdin gave %v:\n%s", err, out2)
	}
	out, errs, err = runImport(t, "", "../../internal/metallb/testdata/crds")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "name: prod-routes") || !strings.Contains(errs, "bgplb import: BGPPeer metallb-system/spine: spec.vrf: not carried") {
		t.Errorf("directory: stdout\n%s\nstderr\n%s", out, errs)
	}
	if _, _, err := runImport(t, "", "no/such/file"); err == nil {
		t.Error("a missing file was accepted")
	}
}
