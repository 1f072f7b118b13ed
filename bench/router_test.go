package bench

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/labtest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// bgplb builds the binary once per test process, or returns $BGPLB_BIN
// (make bench-compare builds bin/bgplb first).
func bgplb(b testing.TB) string {
	buildOnce.Do(func() {
		if p := os.Getenv("BGPLB_BIN"); p != "" {
			binPath, buildErr = filepath.Abs(p)
			return
		}
		dir, err := os.MkdirTemp("", "bgplb-bench-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "bgplb")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/bgplb/bgplb/cmd/bgplb").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	return binPath
}

// hostRoutes returns n distinct /32s. Beyond the 131k addresses of the
// benchmarking range 198.18.0.0/15 they come from 100.64.0.0/10; both exist
// only inside the benchmark's namespaces.
func hostRoutes(n int) []wire.NLRI {
	out := make([]wire.NLRI, n)
	for i := range out {
		var a [4]byte
		if i < 1<<17 {
			a = [4]byte{198, 18 + byte(i>>16), byte(i >> 8), byte(i)}
		} else {
			j := i - 1<<17
			a = [4]byte{100, 64 + byte(j>>16), byte(j >> 8), byte(j)}
		}
		out[i] = wire.NLRI{Prefix: netip.PrefixFrom(netip.AddrFrom4(a), 32)}
	}
	return out
}

const routerConfig = `asn: 64512
routerID: 198.51.100.1
neighbors:
  - {address: 198.51.100.11, peerASN: 64512, passive: true, holdTime: 90s}
import:
  prefixes: ["198.18.0.0/15", "100.64.0.0/10"]
  maxPrefixes: 2000000
metrics: {address: "127.0.0.1:9473"}
api: {socket: SOCKET}
`

// BenchmarkRouterInstall feeds N /32s over one iBGP session into `bgplb
// router` and measures, at the router's kernel, how long until all are
// installed and then withdrawn by explicit withdrawals (BenchmarkCompare
// drops the session instead), and the router's peak RSS.
func BenchmarkRouterInstall(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			// Each run builds its own namespaces: one is plenty (-benchtime 1x).
			for range b.N {
				installOnce(b, n)
			}
		})
	}
}

func installOnce(b *testing.B, n int) {
	labtest.Require(b)
	bin := bgplb(b)
	ctx := labtest.Context(b, 5*time.Minute)
	l, _ := labtest.LAN(b,
		lab.HostSpec{Name: "router", Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/24")}},
		lab.HostSpec{Name: "node", Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.11/24")}})
	rns, nns := l.Host("router"), l.Host("node")
	r, err := startRouter(ctx, bin, rns, b.TempDir(), routerConfig, "warn")
	if err != nil {
		b.Fatal(err)
	}
	defer r.kill()
	inj, err := dialInjector(ctx, nns, injectorConfig{Local: cmpNode, Remote: cmpRouter, LocalAS: 64512, PeerAS: 64512})
	if err != nil {
		b.Fatal(err)
	}
	defer inj.drop()
	nlri := hostRoutes(n)
	reach, err := inj.encodeReach(nlri)
	if err != nil {
		b.Fatal(err)
	}
	withdraw, err := inj.encodeWithdraw(nlri)
	if err != nil {
		b.Fatal(err)
	}
	fibRoutes := func(want int) func(map[string]float64) bool {
		return func(m map[string]float64) bool { return m["bgplb_router_fib_routes"] == float64(want) }
	}

	start := time.Now()
	if err := inj.send(ctx, reach); err != nil {
		b.Fatal(err)
	}
	if err := r.waitMetric(ctx, fibRoutes(n)); err != nil {
		b.Fatal(err)
	}
	installed := time.Since(start)
	m, err := r.scrape()
	if err != nil {
		b.Fatal(err)
	}
	if path := os.Getenv("BGPLB_BENCH_HEAP"); path != "" {
		// A heap profile of the router with every route installed.
		resp, err := http.Get(strings.TrimSuffix(r.metrics, "/metrics") + "/debug/pprof/heap?gc=1")
		if err == nil {
			prof, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			_ = os.WriteFile(path, prof, 0o644)
		}
	}
	start = time.Now()
	if err := inj.send(ctx, withdraw); err != nil {
		b.Fatal(err)
	}
	if err := r.waitMetric(ctx, fibRoutes(0)); err != nil {
		b.Fatal(err)
	}
	removed := time.Since(start)
	u, err := ReadUsage(r.proc.PID())
	if err != nil {
		b.Fatal(err)
	}

	b.ReportMetric(installed.Seconds(), "install-s")
	b.ReportMetric(float64(n)/installed.Seconds(), "routes/s")
	b.ReportMetric(removed.Seconds(), "withdraw-s")
	b.ReportMetric(float64(u.PeakRSS)/(1<<20), "peak-RSS-MB")
	b.ReportMetric(m["go_memstats_heap_inuse_bytes"]/(1<<20), "heap-inuse-MB")
}

// TestHostRoutesDistinct: the benchmark must really install n distinct routes.
func TestHostRoutesDistinct(t *testing.T) {
	rs := hostRoutes(200_000)
	seen := make(map[netip.Prefix]bool, len(rs))
	for _, r := range rs {
		if seen[r.Prefix] {
			t.Fatalf("%v twice", r.Prefix)
		}
		seen[r.Prefix] = true
	}
}

// TestMain removes the binary bgplb() built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" && os.Getenv("BGPLB_BIN") == "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}
