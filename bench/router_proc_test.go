package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bgplb/bgplb/lab"
)

// routerProc is a `bgplb router` running in a namespace, its metrics
// forwarded to this process's loopback.
type routerProc struct {
	proc    *lab.Proc
	fwd     *lab.Forwarder
	socket  string // the API socket
	metrics string // http://.../metrics
}

// routerMetricsAddr is where every benchmark router serves metrics, on the
// loopback of its own namespace.
const routerMetricsAddr = "127.0.0.1:9473"

// startRouter writes config (SOCKET in it is replaced by the API socket's
// path) into dir and starts the router in ns with the environment the
// shipped systemd unit sets, plus $BGPLB_BENCH_ENV.
func startRouter(ctx context.Context, bin string, ns *lab.Netns, dir, config, logLevel string) (*routerProc, error) {
	r := &routerProc{socket: filepath.Join(dir, "router.sock")}
	cfgPath := filepath.Join(dir, "router.yaml")
	cfg := strings.ReplaceAll(config, "SOCKET", r.socket)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	env, err := shippedEnv()
	if err != nil {
		return nil, err
	}
	env = append(env, strings.Fields(os.Getenv("BGPLB_BENCH_ENV"))...)
	r.proc, err = ns.StartWith(ctx, lab.StartOptions{Label: "bgplb-router", Env: env, StopTimeout: 20 * time.Second},
		bin, "router", "--config", cfgPath, "--log-level", logLevel)
	if err != nil {
		return nil, err
	}
	r.fwd, err = lab.Forward(nil, "127.0.0.1:0", ns, routerMetricsAddr)
	if err != nil {
		r.kill()
		return nil, err
	}
	r.metrics = "http://" + r.fwd.Addr().String() + "/metrics"
	return r, nil
}

// kill ends the router at once (SIGKILL): the benchmarks do not measure
// shutdown, and routes are left in the kernel as after a crash.
func (r *routerProc) kill() {
	if r.fwd != nil {
		r.fwd.Close()
	}
	_ = r.proc.Signal(syscall.SIGKILL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = r.proc.Wait(ctx)
}

// shippedEnv returns the Environment= lines of the shipped systemd unit
// (commented ones excluded), so that the benchmarks measure the settings
// operators run with.
func shippedEnv() ([]string, error) {
	data, err := os.ReadFile("../deploy/router/bgplb-router.service")
	if err != nil {
		return nil, fmt.Errorf("bench: the shipped unit: %w", err)
	}
	return unitEnv(string(data)), nil
}

// unitEnv extracts VAR=value pairs from a systemd unit's Environment=
// lines; quotes around a pair are dropped (values with spaces are not
// supported, and the unit has none).
func unitEnv(unit string) []string {
	var env []string
	for line := range strings.SplitSeq(unit, "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "Environment=")
		if !ok {
			continue
		}
		for _, f := range strings.Fields(v) {
			env = append(env, strings.Trim(f, `"'`))
		}
	}
	return env
}

// scrape reads every unlabelled sample and every sample of the named
// labelled series from the router's metrics.
func (r *routerProc) scrape() (map[string]float64, error) {
	resp, err := http.Get(r.metrics)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return parseMetrics(resp.Body)
}

// parseMetrics reads Prometheus text format into name{labels} -> value.
func parseMetrics(rd io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("bench: metrics line %q: %w", line, err)
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// gc makes the router collect garbage (the heap profile endpoint's gc=1),
// so that an idle figure is not a matter of when the last GC ran.
func (r *routerProc) gc() error {
	resp, err := http.Get(strings.TrimSuffix(r.metrics, "/metrics") + "/debug/pprof/heap?gc=1")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// waitMetric polls the router's metrics until cond holds for them.
func (r *routerProc) waitMetric(ctx context.Context, cond func(map[string]float64) bool) error {
	return lab.Poll(ctx, 20*time.Millisecond, func() (bool, error) {
		if exited, err := r.proc.Exited(); exited {
			return false, lab.Permanent(fmt.Errorf("%w: router: %v; log:\n%s", errStopped, err, tail(r.proc.Logs(), 40)))
		}
		m, err := r.scrape()
		return err == nil && cond(m), nil
	})
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// saveProfiles writes the router's heap profile and goroutine dump into dir.
func (r *routerProc) saveProfiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	base := strings.TrimSuffix(r.metrics, "/metrics") + "/debug/pprof/"
	for file, path := range map[string]string{"heap.pb.gz": "heap", "goroutines.txt": "goroutine?debug=1"} {
		resp, err := http.Get(base + path)
		if err != nil {
			return err
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
