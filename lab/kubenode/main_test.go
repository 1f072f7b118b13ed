package kubenode

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
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
	if opts := os.Getenv(startEnv); opts != "" {
		os.Exit(startAndExit(opts))
	}
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

// startEnv makes the test binary a starter that starts the node described
// by the variable's JSON and exits, leaving it running: what `bgplb lab up`
// does, and afterwards the test holds nothing but the node's directory.
const startEnv = "KUBENODE_TEST_START"

func startAndExit(opts string) int {
	var o Options
	if err := json.Unmarshal([]byte(opts), &o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := Start(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// startInOtherProcess starts the node in a process that exits once it
// runs.
func startInOtherProcess(t *testing.T, o Options) {
	t.Helper()
	o.Logger = nil
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), startEnv+"="+string(b))
	out, err := cmd.CombinedOutput()
	t.Logf("starter:\n%s", out)
	if err != nil {
		t.Fatalf("starter: %v", err)
	}
}
