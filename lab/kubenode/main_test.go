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
	"syscall"
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
	if os.Getenv(crashEnv) == "" {
		if _, err := Start(ctx, o); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
	n, err := newNode(o)
	if err == nil {
		err = n.startRuntime(ctx)
	}
	if err == nil {
		err = n.runContainer(ctx, "crash")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintln(os.Stderr, "runtime and a container run; crashing")
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	return 1
}

// crashEnv makes the starter start only the runtime and a container with
// ctr, then die by SIGKILL: no deferred cleanup, no orderly exit.
const crashEnv = "KUBENODE_TEST_CRASH"

// runContainer runs the pause image as a container with ctr (no kubelet):
// a shim, a container in its own namespaces and an overlay mount, in the
// node's cgroup tree.
func (n *Node) runContainer(ctx context.Context, id string) error {
	_, err := n.ctr(ctx, nil, "run", "-d", "--snapshotter", "overlayfs",
		"--cgroup", n.st.CgroupRoot+"/ctr-"+id, n.opts.SandboxImage, id)
	return err
}

// startInOtherProcess starts the node in a process that exits once it
// runs.
func startInOtherProcess(t *testing.T, o Options, env ...string) {
	t.Helper()
	o.Logger = nil
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), startEnv+"="+string(b)), env...)
	out, err := cmd.CombinedOutput()
	t.Logf("starter:\n%s", out)
	if len(env) == 0 && err != nil {
		t.Fatalf("starter: %v", err)
	}
}
