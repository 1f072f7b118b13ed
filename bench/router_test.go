package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"log/slog"

	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/bgp/wire"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/labtest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// bgplb builds the binary once per test process.
func bgplb(b *testing.B) string {
	buildOnce.Do(func() {
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

// feeder is our own session package playing the node that announces.
type feeder struct {
	up chan session.Negotiated
}

func (f *feeder) Established(_ *session.Peer, n session.Negotiated)     { f.up <- n }
func (f *feeder) Update(*session.Peer, *wire.Update, wire.Action) error { return nil }
func (f *feeder) EndOfRIB(*session.Peer, wire.Family)                   {}
func (f *feeder) Down(*session.Peer, error)                             {}

// BenchmarkRouterInstall feeds N /32s over one iBGP session into `bgplb
// router` and measures, at the router's kernel, how long until all are
// installed and then withdrawn, and the router's peak RSS.
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
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l, _ := labtest.LAN(b,
		lab.HostSpec{Name: "router", Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/24")}},
		lab.HostSpec{Name: "node", Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.11/24")}})
	rns, nns := l.Host("router"), l.Host("node")

	dir := b.TempDir()
	cfgPath := filepath.Join(dir, "router.yaml")
	cfg := strings.ReplaceAll(routerConfig, "SOCKET", filepath.Join(dir, "router.sock"))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	proc, err := rns.StartWith(ctx, lab.StartOptions{Label: "bgplb-router", Env: strings.Fields(os.Getenv("BGPLB_BENCH_ENV"))}, bin, "router", "--config", cfgPath, "--log-level", "warn")
	if err != nil {
		b.Fatal(err)
	}
	defer proc.Stop()
	fwd, err := lab.Forward(nil, "127.0.0.1:0", rns, "127.0.0.1:9473")
	if err != nil {
		b.Fatal(err)
	}
	defer fwd.Close()
	metrics := "http://" + fwd.Addr().String() + "/metrics"

	// The node dials from inside its namespace; the session runs on that
	// connection from any thread.
	var conn net.Conn
	err = lab.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		derr := nns.Do(func() error {
			var err error
			conn, err = net.DialTimeout("tcp", "198.51.100.1:179", time.Second)
			return err
		})
		return derr == nil, nil
	})
	if err != nil {
		b.Fatal("router never listened:", err)
	}
	f := &feeder{up: make(chan session.Negotiated, 1)}
	peer := session.New(session.Config{LocalAS: 64512, PeerAS: 64512, RouterID: netip.MustParseAddr("198.51.100.11"),
		PeerAddr: netip.MustParseAddr("198.51.100.1"), Passive: true, ExtendedMessage: true}, f, slog.New(slog.DiscardHandler))
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	go peer.Run(pctx)
	peer.Accept(conn)
	var neg session.Negotiated
	select {
	case neg = <-f.up:
	case <-ctx.Done():
		b.Fatal("session never came up")
	}

	nlri := hostRoutes(n)
	enc := wire.Encoder{Options: neg.Tx}
	var attrs wire.Attrs
	attrs.Origin, attrs.LocalPref = wire.OriginIGP, 100
	attrs.ASPath = wire.ASPath{}
	for _, t := range []uint8{wire.AttrOrigin, wire.AttrASPath, wire.AttrLocalPref} {
		attrs.Set(t)
	}
	reach, _, err := enc.AppendReach(nil, wire.IPv4Unicast, netip.MustParseAddr("198.51.100.11"), netip.Addr{}, &attrs, nlri)
	if err != nil {
		b.Fatal(err)
	}
	withdraw, _, err := enc.AppendWithdraw(nil, wire.IPv4Unicast, nlri)
	if err != nil {
		b.Fatal(err)
	}

	start := time.Now()
	send(b, ctx, peer, reach)
	waitRoutes(b, ctx, metrics, n)
	installed := time.Since(start)
	heap := metric(b, metrics, "go_memstats_heap_inuse_bytes")
	if path := os.Getenv("BGPLB_BENCH_HEAP"); path != "" {
		// A heap profile of the router with every route installed.
		resp, err := http.Get(strings.TrimSuffix(metrics, "/metrics") + "/debug/pprof/heap?gc=1")
		if err == nil {
			prof, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			_ = os.WriteFile(path, prof, 0o644)
		}
	}
	start = time.Now()
	send(b, ctx, peer, withdraw)
	waitRoutes(b, ctx, metrics, 0)
	removed := time.Since(start)

	b.ReportMetric(installed.Seconds(), "install-s")
	b.ReportMetric(float64(n)/installed.Seconds(), "routes/s")
	b.ReportMetric(removed.Seconds(), "withdraw-s")
	b.ReportMetric(float64(peakRSS(b, proc.PID()))/(1<<20), "peak-RSS-MB")
	b.ReportMetric(heap/(1<<20), "heap-inuse-MB")
}

// send queues whole UPDATE messages in chunks of about 64 KiB.
func send(b *testing.B, ctx context.Context, p *session.Peer, msgs []byte) {
	for len(msgs) > 0 {
		n := 0
		for n < len(msgs) && n < 64<<10 {
			n += int(msgs[n+16])<<8 | int(msgs[n+17])
		}
		if err := p.Send(ctx, msgs[:n]); err != nil {
			b.Fatal(err)
		}
		msgs = msgs[n:]
	}
}

// metric reads one value from the router's metrics.
func metric(b *testing.B, url, name string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatal(err)
			}
			return f
		}
	}
	b.Fatalf("no %s in the metrics", name)
	return 0
}

// waitRoutes polls the router's metrics until it reports want kernel routes.
func waitRoutes(b *testing.B, ctx context.Context, url string, want int) {
	err := lab.Poll(ctx, 20*time.Millisecond, func() (bool, error) {
		resp, err := http.Get(url)
		if err != nil {
			return false, nil
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "bgplb_router_fib_routes "); ok {
				f, err := strconv.ParseFloat(v, 64)
				return err == nil && int(f) == want, nil
			}
		}
		return false, nil
	})
	if err != nil {
		b.Fatalf("router never reported %d kernel routes: %v", want, err)
	}
}

// peakRSS reads a process's high-water resident set, in bytes.
func peakRSS(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	b.Fatal("no VmHWM")
	return 0
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
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}
