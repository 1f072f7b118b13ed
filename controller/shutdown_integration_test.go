package controller

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/bgplb/bgplb/internal/kubetest"
)

// exitBound is how long `bgplb controller` may take to exit once it has a
// reason to: its --shutdown-timeout and some slack. Losing the Lease takes
// controller-runtime's renew deadline (10 s) on top.
const exitBound = 20 * time.Second

// TestExitWithoutAPIServer runs `bgplb controller` as the manifest does
// and takes its API server away: SIGTERM must still end it at once, a
// leader that cannot renew its Lease must stop allocating and exit (the
// kubelet restarts it), and a controller that never reached its API server
// must say so and exit rather than hang.
func TestExitWithoutAPIServer(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "bgplb")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/bgplb/bgplb/cmd/bgplb").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name        string
		leaderElect bool
		gone        string // "after ready" or "before start"
		sigterm     bool
		wantErr     string // in the log when it exits by itself
		bound       time.Duration
	}{
		{name: "SIGTERM, leader", leaderElect: true, gone: "after ready", sigterm: true},
		{name: "SIGTERM, no election", gone: "after ready", sigterm: true},
		{name: "Lease lost", leaderElect: true, gone: "after ready", wantErr: "leader election lost", bound: time.Minute},
		{name: "never reached", leaderElect: true, gone: "before start", wantErr: "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := kubetest.Start(t)
			if err := installCRDs(env); err != nil {
				t.Fatal(err)
			}
			kubeconfig, err := env.UserKubeconfig("bgplb-test-admin", "system:masters")
			if err != nil {
				t.Fatal(err)
			}
			if tc.gone == "before start" {
				// Stop removes the control plane's directory and the kubeconfig in it.
				b, err := os.ReadFile(kubeconfig)
				if err != nil {
					t.Fatal(err)
				}
				kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
				if err := os.WriteFile(kubeconfig, b, 0o600); err != nil {
					t.Fatal(err)
				}
				if err := env.Stop(); err != nil {
					t.Fatal(err)
				}
			}
			health := freeLocalPort(t)
			c := startController(t, bin, "--kubeconfig="+kubeconfig,
				"--leader-elect="+strconv.FormatBool(tc.leaderElect), "--leader-elect-namespace=default",
				"--health-addr=127.0.0.1:"+health, "--metrics-addr=127.0.0.1:0")
			if tc.gone == "after ready" {
				c.waitReady(t, "http://127.0.0.1:"+health+"/readyz")
				if err := env.Stop(); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			if tc.sigterm {
				if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
			}
			bound := max(tc.bound, exitBound)
			select {
			case <-c.exited:
			case <-time.After(bound):
				t.Fatalf("controller still running %v later", bound)
			}
			t.Logf("exited after %v: %v", time.Since(start).Round(time.Millisecond), c.err)
			if tc.wantErr == "" && c.err != nil {
				t.Errorf("exit: %v, want 0 after SIGTERM", c.err)
			}
			if tc.wantErr != "" && (c.err == nil || !strings.Contains(c.log(), tc.wantErr)) {
				t.Errorf("exit %v, want a failure saying %q", c.err, tc.wantErr)
			}
		})
	}
}

type controllerProc struct {
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	err     error
}

func (c *controllerProc) log() string {
	b, _ := os.ReadFile(c.logPath)
	return string(b)
}

// startController starts bin controller args, killed with the test binary
// and at the test's end.
func startController(t *testing.T, bin string, args ...string) *controllerProc {
	t.Helper()
	c := &controllerProc{cmd: exec.Command(bin, append([]string{"controller"}, args...)...),
		logPath: filepath.Join(t.TempDir(), "controller.log"), exited: make(chan struct{})}
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logs, err := os.Create(c.logPath)
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stdout, c.cmd.Stderr = logs, logs
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.err = c.cmd.Wait(); logs.Close(); close(c.exited) }()
	t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
		if t.Failed() {
			t.Logf("controller log (%s):\n%s", c.logPath, c.log())
		}
	})
	return c
}

func (c *controllerProc) waitReady(t *testing.T, url string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		select {
		case <-c.exited:
			t.Fatalf("controller exited: %v", c.err)
		default:
		}
		resp, err := http.Get(url)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("controller never ready at %s: %v", url, err)
	}
}

func freeLocalPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}
