package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/daemons"
)

// The side-by-side LAN: the daemon under test at .1, the injector at .11.
var (
	cmpRouter = netip.MustParseAddr("198.51.100.1")
	cmpNode   = netip.MustParseAddr("198.51.100.11")
)

const (
	cmpRouterAS = 64512
	cmpNodeAS   = 64513
)

const compareRouterConfig = `asn: 64512
routerID: 198.51.100.1
neighbors:
  - {address: 198.51.100.11, peerASN: 64513, passive: true}
import:
  prefixes: ["198.18.0.0/15", "100.64.0.0/10"]
  maxPrefixes: 2000000
metrics: {address: "127.0.0.1:9473"}
api: {socket: SOCKET}
`

// running is one daemon under test, started in the router namespace.
type running struct {
	pids  []int
	count func(ctx context.Context) (int, error) // routes it holds where it is measured
	alive func() error
	stop  func()
}

// subject is a daemon the comparison runs.
type subject struct {
	name string
	// kernel: count is the kernel's main table (else the daemon's RIB).
	kernel bool
	start  func(ctx context.Context, b *testing.B, ns *lab.Netns) (*running, error)
}

var subjects = []subject{
	{name: "bgplb", kernel: true, start: startBgplbSubject},
	{name: "bird", kernel: true, start: daemonSubject(func(ctx context.Context, ns *lab.Netns, c daemons.Config) (daemons.Daemon, error) {
		return daemons.StartBIRD(ctx, ns, c)
	})},
	{name: "frr", kernel: true, start: daemonSubject(func(ctx context.Context, ns *lab.Netns, c daemons.Config) (daemons.Daemon, error) {
		return daemons.StartFRR(ctx, ns, c)
	})},
	// gobgpd 3.10 cannot program the kernel without zebra, and cannot talk
	// to this FRR's zebra: its figures are its RIB's.
	{name: "gobgpd", start: daemonSubject(func(ctx context.Context, ns *lab.Netns, c daemons.Config) (daemons.Daemon, error) {
		c.FIB = false
		return daemons.StartGoBGP(ctx, ns, c)
	})},
}

// kernelCount counts the main table of pid's namespace.
func kernelCount(pid int) func(context.Context) (int, error) {
	return func(context.Context) (int, error) { return KernelRoutes(pid) }
}

func startBgplbSubject(ctx context.Context, b *testing.B, ns *lab.Netns) (*running, error) {
	r, err := startRouter(ctx, bgplb(b), ns, ns.Dir, compareRouterConfig, "warn")
	if err != nil {
		return nil, err
	}
	pid := r.proc.PID()
	return &running{pids: []int{pid}, count: kernelCount(pid), stop: r.kill, alive: func() error {
		if exited, err := r.proc.Exited(); exited {
			return fmt.Errorf("%w: bgplb router: %v; log:\n%s", errStopped, err, tail(r.proc.Logs(), 40))
		}
		return nil
	}}, nil
}

// daemonSubject wraps a lab/daemons launcher: one passive eBGP neighbour,
// the injector, and a kernel table when the daemon can write one.
func daemonSubject(launch func(context.Context, *lab.Netns, daemons.Config) (daemons.Daemon, error)) func(context.Context, *testing.B, *lab.Netns) (*running, error) {
	return func(ctx context.Context, _ *testing.B, ns *lab.Netns) (*running, error) {
		cfg := daemons.Config{ASN: cmpRouterAS, RouterID: cmpRouter, Local4: cmpRouter, FIB: true, HoldTime: 90 * time.Second,
			Neighbors: []daemons.Neighbor{{Address: cmpNode, ASN: cmpNodeAS, Passive: true, Families: []daemons.Family{daemons.IPv4}}}}
		d, err := launch(ctx, ns, cfg)
		if err != nil {
			return nil, err
		}
		r := &running{stop: func() { _ = d.Stop() }, alive: func() error { return daemonAlive(d) }}
		for _, p := range d.Procs() {
			r.pids = append(r.pids, p.PID())
		}
		switch g := d.(type) {
		case *daemons.GoBGP:
			r.count = func(ctx context.Context) (int, error) {
				out, err := g.CLI(ctx, "global", "rib", "summary", "-a", "ipv4")
				if err != nil {
					return 0, err
				}
				return parseGoBGPSummary(out)
			}
		default:
			r.count = kernelCount(r.pids[0])
		}
		return r, nil
	}
}

func daemonAlive(d daemons.Daemon) error {
	for _, p := range d.Procs() {
		if exited, err := p.Exited(); exited {
			return fmt.Errorf("%w: %s: %v; log:\n%s", errStopped, p.Label, err, tail(p.Logs(), 40))
		}
	}
	return nil
}

var goBGPDestinations = regexp.MustCompile(`Destination:\s*(\d+)`)

// parseGoBGPSummary reads the destination count from `gobgp global rib
// summary`.
func parseGoBGPSummary(out []byte) (int, error) {
	m := goBGPDestinations.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("bench: no destination count in gobgp's summary: %q", out)
	}
	return strconv.Atoi(string(m[1]))
}

// pairLAN is a lab of two hosts on one LAN: "router" (cmpRouter, the
// daemon under test) and "node" (cmpNode, the injector).
func pairLAN(ctx context.Context, prefix string) (*lab.Lab, error) {
	l, _, err := lab.NewLAN(ctx, prefix,
		lab.HostSpec{Name: "router", Addrs: []netip.Prefix{netip.PrefixFrom(cmpRouter, 24)}},
		lab.HostSpec{Name: "node", Addrs: []netip.Prefix{netip.PrefixFrom(cmpNode, 24)}})
	if err != nil && l != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, err
}

// compareOnce runs one daemon through one install and one session drop in
// a LAN of its own, torn down before it returns.
func compareOnce(ctx context.Context, b *testing.B, s subject, nlri []wire.NLRI) (res runResult, err error) {
	l, err := pairLAN(ctx, "bc")
	if err != nil {
		return res, err
	}
	defer l.Close()
	d, err := s.start(ctx, b, l.Host("router"))
	if err != nil {
		return res, err
	}
	defer d.stop()
	base, err := d.count(ctx)
	if err != nil {
		return res, err
	}
	inj, err := dialInjector(ctx, l.Host("node"), injectorConfig{Local: cmpNode, Remote: cmpRouter, LocalAS: cmpNodeAS, PeerAS: cmpRouterAS})
	if err != nil {
		return res, err
	}
	defer inj.drop()
	msgs, err := inj.encodeReach(nlri)
	if err != nil {
		return res, err
	}
	var smp *kernelSampler
	if s.kernel {
		if smp, err = newKernelSampler(l.Host("router"), nlri); err != nil {
			return res, err
		}
		defer smp.close()
	}
	u0, err := ReadUsage(d.pids...)
	if err != nil {
		return res, err
	}
	start := time.Now()
	if err := inj.send(ctx, msgs); err != nil {
		return res, err
	}
	if err := waitCount(ctx, d, base+len(nlri), smp.gate(true)); err != nil {
		return res, fmt.Errorf("%s: install: %w", s.name, err)
	}
	res.Install = time.Since(start)
	u1, err := ReadUsage(d.pids...)
	if err != nil {
		return res, err
	}
	start = time.Now()
	inj.drop()
	if err := waitCount(ctx, d, base, smp.gate(false)); err != nil {
		return res, fmt.Errorf("%s: after the session dropped: %w", s.name, err)
	}
	res.Gone = time.Since(start)
	u2, err := ReadUsage(d.pids...)
	if err != nil {
		return res, err
	}
	res.IngestCPU, res.CPU, res.PeakRSS = u1.CPU-u0.CPU, u2.CPU, u2.PeakRSS
	return res, nil
}

// waitCount polls the daemon's count until it is want; a daemon that
// dies ends the wait at once. A gate, when given, must hold before the
// count is taken: a cheap check that keeps an expensive count from
// competing with the daemon for the CPU.
func waitCount(ctx context.Context, d *running, want int, gate func(context.Context) (bool, error)) error {
	last := -1
	err := lab.Poll(ctx, 20*time.Millisecond, func() (bool, error) {
		if err := d.alive(); err != nil {
			return false, lab.Permanent(err)
		}
		if gate != nil {
			if ok, err := gate(ctx); err != nil || !ok {
				return false, err
			}
		}
		n, err := d.count(ctx)
		if err != nil {
			return false, nil
		}
		last = n
		return n == want, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %d routes (last counted %d): %w", want, last, err)
	}
	return nil
}

// compareRuns is how many times each daemon runs per size; the table shows
// medians. BGPLB_COMPARE_RUNS overrides the default of 3.
func compareRuns() int {
	if n, err := strconv.Atoi(os.Getenv("BGPLB_COMPARE_RUNS")); err == nil && n > 0 {
		return n
	}
	return 3
}

// compareSubjects is the daemons to run: all, or those named in
// BGPLB_COMPARE (comma-separated; bgplb is always first, the reference of
// the ratios).
func compareSubjects() []subject {
	want := os.Getenv("BGPLB_COMPARE")
	if want == "" {
		return subjects
	}
	names := strings.Split(want, ",")
	var out []subject
	for _, s := range subjects {
		if s.name == "bgplb" || slices.Contains(names, s.name) {
			out = append(out, s)
		}
	}
	return out
}

// BenchmarkCompare runs bgplb router, BIRD, FRR and gobgpd one after the
// other, each in fresh namespaces, fed the same N /32s by the same
// injector over one eBGP session; then the injector's connection is reset.
// Each size runs every daemon BGPLB_COMPARE_RUNS times, interleaved (so a
// change in the machine's load falls on all of them), and prints a table of
// medians with ratios against bgplb. Run it with -benchtime 1x:
//
//	make bench-compare
func BenchmarkCompare(b *testing.B) {
	for _, n := range compareSizes() {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			for range b.N {
				compareSize(b, n)
			}
		})
	}
}

// compareSizes: 100k and 1M, or BGPLB_COMPARE_SIZES (comma-separated).
func compareSizes() []int {
	var out []int
	for f := range strings.SplitSeq(os.Getenv("BGPLB_COMPARE_SIZES"), ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		out = []int{100_000, 1_000_000}
	}
	return out
}

func compareSize(b *testing.B, n int) {
	requireLab(b, "bird", "birdc", "zebra", "bgpd", "vtysh", "gobgpd", "gobgp")
	ss := compareSubjects()
	runs := compareRuns()
	nlri := hostRoutes(n)
	results := map[string][]runResult{}
	for rep := range runs {
		for i := range ss {
			// Rotate the order so no daemon always runs first.
			s := ss[(i+rep)%len(ss)]
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			res, err := compareOnce(ctx, b, s, nlri)
			cancel()
			if err != nil {
				b.Fatalf("%s, %d routes, run %d: %v", s.name, n, rep+1, err)
			}
			// Progress on stderr: a 1M comparison runs for many minutes.
			fmt.Fprintf(os.Stderr, "%s %d routes run %d: in kernel %.2fs, gone %.2fs, ingest CPU %.2fs, peak RSS %.0f MB\n",
				s.name, n, rep+1, res.Install.Seconds(), res.Gone.Seconds(), res.IngestCPU.Seconds(), float64(res.PeakRSS)/1e6)
			results[s.name] = append(results[s.name], res)
		}
	}
	rows := make([]compareRow, 0, len(ss))
	for _, s := range ss {
		rows = append(rows, medianRow(s.name, s.kernel, results[s.name]))
	}
	fmt.Printf("\n%d routes, one eBGP session, median of %d runs, load %s\n%s", n, runs, loadAvg(), formatCompare(rows))
	for _, r := range rows {
		b.ReportMetric(r.Install, r.Name+"-install-s")
		b.ReportMetric(r.Gone, r.Name+"-gone-s")
		b.ReportMetric(r.IngestCPU, r.Name+"-ingest-cpu-s")
		b.ReportMetric(r.PeakMB, r.Name+"-peak-MB")
	}
}

// requireLab skips (fails in CI) without root, iproute2 or the daemons.
func requireLab(b *testing.B, bins ...string) {
	b.Helper()
	if err := lab.Preflight(); err != nil {
		b.Skipf("skipping namespace benchmark: %v", err)
	}
	for _, bin := range bins {
		if _, err := lookDaemon(bin); err != nil {
			if os.Getenv("CI") != "" {
				b.Fatalf("%s missing in CI", bin)
			}
			b.Skipf("skipping: %s not installed (hack/install-deps.sh)", bin)
		}
	}
}

// lookDaemon finds a daemon binary also in the sbin and FRR directories
// root's PATH may lack.
func lookDaemon(name string) (string, error) {
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/usr/lib/frr"} {
		p := dir + "/" + name
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// loadAvg is the machine's 1, 5 and 15-minute load, for the record.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
