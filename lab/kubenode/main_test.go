package kubenode

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/bgplb/bgplb/internal/image"
)

// testDir holds what the package's tests share (the pause image); TestMain
// removes it.
var testDir string

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "kubenode-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testDir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

// pauseRef is the tests' pause image; pods run the same binary with
// `serve ADDR`.
const pauseRef = "bgplb-kubenode-pause:test"

var pause struct {
	once    sync.Once
	archive string
	err     error
}

// pauseArchive builds testdata/pause into a one-binary image, written as an
// oci-archive, once per test binary.
func pauseArchive(t testing.TB) (archive, name string) {
	t.Helper()
	pause.once.Do(func() {
		bin := filepath.Join(testDir, "pause")
		cmd := exec.Command(image.GoCommand(), "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./testdata/pause")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			pause.err = fmt.Errorf("build pause: %w\n%s", err, out)
			return
		}
		meta := image.Meta{Version: "test", Created: time.Unix(0, 0).UTC()}
		idx, err := image.Index([]string{runtime.GOARCH}, map[string]string{runtime.GOARCH: bin}, meta)
		if err != nil {
			pause.err = err
			return
		}
		layoutDir := filepath.Join(testDir, "pause-layout")
		if err := image.WriteLayout(layoutDir, idx, pauseRef); err != nil {
			pause.err = err
			return
		}
		pause.archive = filepath.Join(testDir, "pause.tar")
		pause.err = image.WriteOCIArchive(layoutDir, pause.archive, meta.Created)
	})
	if pause.err != nil {
		t.Fatal(pause.err)
	}
	return pause.archive, image.NormalizedName(pauseRef)
}

// ctx returns a context for a test that ends before its deadline.
func testContext(t *testing.T, limit time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancel)
	return ctx
}
