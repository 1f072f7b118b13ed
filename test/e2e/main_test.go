// Package e2e runs the user's story end to end: the bgplb binary in network
// namespaces, real BGP daemons from Debian on the other side, and the real
// kernel routing table checked with iproute2.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// bgplbBin is the binary under test, built once by TestMain.
var bgplbBin string

func TestMain(m *testing.M) {
	// The in-process controller logs through its own slog logger;
	// controller-runtime's global one would only complain it was never set.
	ctrllog.SetLogger(logr.Discard())
	dir, err := os.MkdirTemp("", "bgplb-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bgplbBin = filepath.Join(dir, "bgplb")
	build := exec.Command("go", "build", "-o", bgplbBin, "github.com/bgplb/bgplb/cmd/bgplb")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building bgplb:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
