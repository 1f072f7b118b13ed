package home_test

import (
	"os"
	"testing"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// TestMain gives controller-runtime a logger, as `bgplb lab` does: the
// lab's API client logs nothing, and without one a test longer than 30 s
// gets a warning with a stack trace.
func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	os.Exit(m.Run())
}
