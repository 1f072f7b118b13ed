package bench

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

const trieStat = `Basic info: size of leaf: 48 bytes, size of tnode: 40 bytes.
Main:
	Aver depth:     2.42
	Max depth:      3
	Leaves:         7
	Prefixes:       1000009
	Internal nodes: 5
	  1: 1  2: 3  3: 1
	Pointers: 22
Null ptrs: 11
Total size: 2  kB
Local:
	Aver depth:     2.42
	Leaves:         7
	Prefixes:       7
`

func TestParseTrieStat(t *testing.T) {
	n, err := parseTrieStat([]byte(trieStat))
	if err != nil || n != 1000009 {
		t.Fatalf("got %d, %v; want the Main table's 1000009", n, err)
	}
	// Only Local: the Main count is missing, not Local's.
	if _, err := parseTrieStat([]byte(trieStat[strings.Index(trieStat, "Local:"):])); err == nil {
		t.Fatal("no error without a Main table")
	}
}

// TestKernelRoutesHere reads this process's own namespace: a real file
// whose count must at least hold the loopback's local routes.
func TestKernelRoutesHere(t *testing.T) {
	n, err := KernelRoutes(os.Getpid())
	if err != nil {
		// A kernel without /proc/net/fib_triestat has no IPv4 FIB; in CI
		// the benchmarks' route counter must work.
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	if n < 1 {
		t.Fatalf("%d prefixes in the main table", n)
	}
}

func TestParseStatus(t *testing.T) {
	hwm, rss, err := parseStatus([]byte("Name:\tbird\nVmPeak:\t  9999 kB\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n"))
	if err != nil || hwm != 2048<<10 || rss != 1024<<10 {
		t.Fatalf("got %d %d %v", hwm, rss, err)
	}
	if _, _, err := parseStatus([]byte("Name:\tkthreadd\nState:\tS\n")); err == nil {
		t.Fatal("no error for a process without memory figures")
	}
}

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and parentheses: fields count from the last ')'.
	stat := "123 (we (ird) x) S 1 2 3 4 5 6 7 8 9 10 250 130 0 0 20 0 1 0"
	d, err := parseStatCPU([]byte(stat))
	if err != nil || d != 3800*time.Millisecond {
		t.Fatalf("got %v %v, want 3.8s (380 ticks)", d, err)
	}
	if _, err := parseStatCPU([]byte("123 (x) S 1 2")); err == nil {
		t.Fatal("no error for a short stat line")
	}
	// This process has used some CPU by now.
	u, err := ReadUsage(os.Getpid())
	if err != nil || u.PeakRSS < u.RSS || u.RSS == 0 {
		t.Fatalf("own usage %+v, %v", u, err)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		in := slices.Clone(c.in)
		if got := Median(c.in); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.in, got, c.want)
		}
		if !slices.Equal(in, c.in) {
			t.Errorf("Median reordered its input")
		}
	}
}

func TestFormatCompare(t *testing.T) {
	rows := []compareRow{
		medianRow("bgplb", true, []runResult{{Install: 2 * time.Second, Gone: 4 * time.Second, PeakRSS: 100e6, IngestCPU: time.Second, CPU: 2 * time.Second},
			{Install: 4 * time.Second, Gone: 2 * time.Second, PeakRSS: 300e6, IngestCPU: time.Second, CPU: 2 * time.Second},
			{Install: 3 * time.Second, Gone: 3 * time.Second, PeakRSS: 200e6, IngestCPU: time.Second, CPU: 2 * time.Second}}),
		{Name: "gobgpd", Install: 6, Gone: 1.5, IngestCPU: 2, CPU: 4, PeakMB: 50},
	}
	if r := rows[0]; r.Install != 3 || r.Gone != 3 || r.PeakMB != 200 {
		t.Fatalf("medians %+v", r)
	}
	out := formatCompare(rows)
	for _, want := range []string{"6.00 (2.0x)", "1.50 (0.5x)", "50.00 (0.2x)", "gobgpd (RIB only)", "200.00 (1.0x)"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestUnitEnv(t *testing.T) {
	unit := "[Service]\n#Environment=GOMEMLIMIT=90MiB\nEnvironment=GOGC=50 \"GOMEMLIMIT=80MiB\"\nExecStart=/x\n"
	if got := unitEnv(unit); !slices.Equal(got, []string{"GOGC=50", "GOMEMLIMIT=80MiB"}) {
		t.Fatalf("got %q", got)
	}
	// The shipped unit parses (whatever it sets).
	if _, err := shippedEnv(); err != nil {
		t.Fatal(err)
	}
}

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(strings.NewReader("# HELP x\ngo_goroutines 42\nbgplb_router_sessions{state=\"Established\"} 5\nprocess_resident_memory_bytes 1.5e+07\n"))
	if err != nil || m["go_goroutines"] != 42 || m[`bgplb_router_sessions{state="Established"}`] != 5 || m["process_resident_memory_bytes"] != 1.5e7 {
		t.Fatalf("got %v, %v", m, err)
	}
	if _, err := parseMetrics(strings.NewReader("x notanumber\n")); err == nil {
		t.Fatal("no error for a bad value")
	}
}

func TestParseGoBGPSummary(t *testing.T) {
	n, err := parseGoBGPSummary([]byte("Table ipv4-unicast\nDestination: 100000, Path: 100000\n"))
	if err != nil || n != 100000 {
		t.Fatalf("got %d %v", n, err)
	}
	if _, err := parseGoBGPSummary([]byte("error")); err == nil {
		t.Fatal("no error without a count")
	}
}

func TestNodeAddrsDistinct(t *testing.T) {
	seen := map[string]bool{}
	for i := range 20000 {
		a := nodeAddr(i)
		if a == peersRouter || a == peersGen || seen[a.String()] || !a.Is4() || a.As4()[0] != 198 || a.As4()[1] > 19 {
			t.Fatalf("node %d: %v", i, a)
		}
		seen[a.String()] = true
		for _, r := range nodeRoutes(i, 4) {
			if seen[r.Prefix.String()] {
				t.Fatalf("route %v twice", r.Prefix)
			}
			seen[r.Prefix.String()] = true
		}
	}
}

func TestListensOn(t *testing.T) {
	data := []byte(`  sl  local_address rem_address   st tx_queue rx_queue
   0: 0100007F:24F1 00000000:0000 0A 00000000:00000000 00:00000000 00000000
   1: 016433C6:00B3 0B6433C6:9C40 01 00000000:00000000 00:00000000 00000000
`)
	if !listensOn(data, 9457) || listensOn(data, 179) {
		t.Fatal("want 9457 listening and 179 only connected")
	}
}
