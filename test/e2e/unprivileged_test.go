package e2e

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/labtest"
	"github.com/bgplb/bgplb/view"
)

// unitCaps reads the capabilities the shipped systemd unit gives the
// router (AmbientCapabilities) and checks its bounding set is the same.
func unitCaps(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../deploy/router/bgplb-router.service")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && !strings.HasPrefix(k, "#") {
			keys[k] = v
		}
	}
	if keys["User"] == "" || keys["User"] == "root" {
		t.Errorf("the unit runs the router as %q, want a user of its own", keys["User"])
	}
	if keys["AmbientCapabilities"] != keys["CapabilityBoundingSet"] {
		t.Errorf("ambient %q and bounding set %q differ", keys["AmbientCapabilities"], keys["CapabilityBoundingSet"])
	}
	var caps []string
	for _, c := range strings.Fields(keys["AmbientCapabilities"]) {
		caps = append(caps, "+"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
	}
	return caps
}

// TestRouterUnprivileged runs the router as the shipped unit does: a user
// that is not root, with exactly the unit's capabilities and no new
// privileges. It still listens on port 179, takes a node's routes into the
// kernel, and keeps its state and API socket.
func TestRouterUnprivileged(t *testing.T) {
	labtest.RequireBinaries(t, "setpriv")
	caps := strings.Join(unitCaps(t), ",")
	// A directory and binary the unprivileged user can reach.
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	run := filepath.Join(dir, "run")
	if err := os.Mkdir(run, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(run, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bgplb")
	copyFile(t, bgplbBin, bin)

	l := routerLab{ctx: labtest.Context(t, 90*time.Second), n1: newNode("node1", 11), n2: newNode("node2", 12)}
	l.r = topology(t, &l.n1, &l.n2)
	rp := &routerProc{ns: l.r.ns, socket: filepath.Join(run, "router.sock"), config: filepath.Join(dir, "router.yaml")}
	if err := os.WriteFile(rp.config, []byte(strings.ReplaceAll(truthConf("20"), "SOCKET", rp.socket)), 0o644); err != nil {
		t.Fatal(err)
	}
	var err error
	rp.proc, err = l.r.ns.StartWith(l.ctx, lab.StartOptions{Label: "bgplb-router"}, "setpriv",
		"--reuid=65534", "--regid=65534", "--clear-groups", "--no-new-privs",
		"--inh-caps=-all,"+caps, "--ambient-caps=-all,"+caps, "--bounding-set=-all,"+caps,
		bin, "router", "--config", rp.config, "--log-level", "debug")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = rp.proc.Stop()
		if t.Failed() {
			t.Logf("bgplb router log:\n%s", rp.proc.Logs())
		}
	})
	in := inject(t, l.ctx, l.n1, l.r.v4)
	p := prefix("203.0.113.7/32")
	in.announceVia(t, l.ctx, l.n1.v4, p)
	rp.waitKernel(t, l.ctx, want{p: {l.n1.v4}})
	var c view.FIBCheck
	rp.cli(t, l.ctx, &c, "fib", "--check")
	if len(c.Differences) != 0 || c.Routes != 1 {
		t.Fatalf("bgplb fib --check: %+v, want the one route and no difference", c)
	}
	if _, err := os.Stat(filepath.Join(run, "router.fib-state")); err != nil {
		t.Errorf("the FIB's state file: %v", err)
	}
	if strings.Contains(rp.proc.Logs(), "level=ERROR") || strings.Contains(rp.proc.Logs(), "permission denied") {
		t.Errorf("the router complained:\n%s", rp.proc.Logs())
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
