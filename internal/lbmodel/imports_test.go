package lbmodel

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoCrossImports holds the house together: the controller and the
// speaker agree through this package, never by importing each other
// (directly or through anything else, test code included), and this package
// imports neither. Were they to, the controller's explanation of a Service
// could again follow one reading of the objects and the speakers another.
func TestNoCrossImports(t *testing.T) {
	const mod = "github.com/bgplb/bgplb/"
	forbidden := map[string][]string{
		mod + "controller/...":       {mod + "speaker"},
		mod + "speaker/...":          {mod + "controller"},
		mod + "internal/lbmodel/...": {mod + "controller", mod + "speaker"},
	}
	for pattern, bad := range forbidden {
		// -test: the packages' tests and their dependencies count too.
		out, err := exec.Command("go", "list", "-test", "-deps", pattern).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -test -deps %s: %v\n%s", pattern, err, out)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 10 {
			t.Fatalf("go list -deps %s listed only %v: the test would check nothing", pattern, deps)
		}
		for _, d := range deps {
			d = strings.Trim(d, "[]")
			for _, b := range bad {
				if d == b || strings.HasPrefix(d, b+"/") || strings.HasPrefix(d, b+" ") || strings.HasPrefix(d, b+".") {
					t.Errorf("%s depends on %s", pattern, d)
				}
			}
		}
	}
}
