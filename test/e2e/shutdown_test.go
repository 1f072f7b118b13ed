package e2e

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const shutdownConfig = `asn: 64512
routerID: 198.51.100.1
neighbors:
  - {address: 198.51.100.11, peerASN: 64512, passive: true, holdTime: 90s}
import:
  prefixes: ["198.18.0.0/15", "2001:db8:5000::/48"]
  maxPrefixes: 2000000
metrics: {address: "127.0.0.1:9473"}
api: {socket: SOCKET}
`

// shutdownRoutes is how many routes the shutdown tests hold: 150k by
// default (far above the 16,384 changes the FIB queue holds, which is what
// used to hang), BGPLB_SHUTDOWN_ROUTES=1000000 for the full-size run.
func shutdownRoutes(t *testing.T) int {
	n := 150_000
	if s := os.Getenv("BGPLB_SHUTDOWN_ROUTES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 100_000 {
			t.Fatalf("BGPLB_SHUTDOWN_ROUTES=%q: want at least 100000, well above what the FIB queue holds", s)
		}
	}
	return n
}

// TestRouterShutdown: SIGTERM stops the router cleanly (exit status 0, not
// the --shutdown-timeout safety net) whatever its one peer, holding many
// routes, is doing: announcing them, idle after announcing them, or
// withdrawing them. The routes already in the kernel stay there for the
// next start. The router used to hang for ever here: its sessions' down
// path pushed the peer's removals into the FIB queue after the FIB writer
// had returned.
func TestRouterShutdown(t *testing.T) {
	n := shutdownRoutes(t)
	for _, tc := range []struct {
		name string
		// kept: every route installed when SIGTERM was sent must stay
		// (a withdrawal goes on until the router reads SIGTERM).
		kept bool
		// term runs the peer's part and returns once it is time for
		// SIGTERM.
		term func(t *testing.T, s *shutdownLab)
	}{
		{"during ingest", true, func(t *testing.T, s *shutdownLab) {
			go func() { _ = s.in.send(s.ctx, s.announce) }()
			// Past the queue's size, well before the end.
			s.metrics.waitGauge(t, s.ctx, "bgplb_router_fib_routes", func(v float64) bool { return v > float64(n/4) })
		}},
		{"after ingest", true, func(t *testing.T, s *shutdownLab) {
			s.ingest(t)
		}},
		{"during withdraw", false, func(t *testing.T, s *shutdownLab) {
			s.ingest(t)
			go func() { _ = s.in.send(s.ctx, s.withdraw) }()
			s.metrics.waitGauge(t, s.ctx, "bgplb_router_fib_routes", func(v float64) bool { return v < float64(s.n) })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newShutdownLab(t, n)
			tc.term(t, s)
			before, err := s.metrics.gauge(s.ctx, "bgplb_router_fib_routes")
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := s.rp.proc.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			// The default --shutdown-timeout is 10 s: a clean stop needs
			// far less, and a late one exits with an error, below.
			wctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
			defer cancel()
			if err := s.rp.proc.Wait(wctx); err != nil {
				if wctx.Err() != nil {
					t.Fatalf("the router did not exit within 20 s of SIGTERM (%.0f kernel routes when it was sent)", before)
				}
				t.Fatalf("the router exited with %v", err)
			}
			t.Logf("%.0f kernel routes at SIGTERM; the router exited %v later", before, time.Since(start).Round(time.Millisecond))
			checkShutdownLog(t, s.rp.proc.Logs())

			// The kernel keeps what the router had installed.
			left := s.kernelRoutes(t)
			t.Logf("%d routes left in the kernel", left)
			if tc.kept && left < int(before) {
				t.Errorf("%d routes left in the kernel after the router stopped, %.0f before SIGTERM", left, before)
			}
		})
	}
}

// checkShutdownLog: nothing blames the kernel for the batch a shutdown
// abandons, and session lines name their peer once.
func checkShutdownLog(t *testing.T, logs string) {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		switch {
		case strings.Contains(line, "kernel refused"), strings.Contains(line, "programming the kernel FIB"),
			strings.Contains(line, "shutdown did not finish"):
			t.Errorf("router log: %s", line)
		case strings.Count(line, " peer=") > 1:
			t.Errorf("router log line names its peer twice: %s", line)
		}
	}
}

// shutdownLab is the router with one injecting node.
type shutdownLab struct {
	routerLab
	n                  int
	in                 *injector
	metrics            metricsProbe
	announce, withdraw []byte
}

func newShutdownLab(t *testing.T, n int) *shutdownLab {
	t.Helper()
	s := &shutdownLab{routerLab: newRouterLab(t, 4*time.Minute, shutdownConfig), n: n}
	s.metrics = probeMetrics(t, s.r, "127.0.0.1:9473")
	s.in = inject(t, s.ctx, s.n1, s.r.v4)
	v4, v6 := scaleRoutes(n)
	s.announce = s.in.updates(t, v4, v6, false)
	s.withdraw = s.in.updates(t, v4, v6, true)
	return s
}

// ingest announces every route and waits until all are in the kernel.
func (s *shutdownLab) ingest(t *testing.T) {
	t.Helper()
	if err := s.in.send(s.ctx, s.announce); err != nil {
		t.Fatal(err)
	}
	s.metrics.waitGauge(t, s.ctx, "bgplb_router_fib_routes", func(v float64) bool { return int(v) == s.n })
}

// kernelRoutes counts the routes of proto bgp in the router's kernel.
func (s *shutdownLab) kernelRoutes(t *testing.T) int {
	t.Helper()
	total := 0
	for _, fam := range []string{"-4", "-6"} {
		out, err := s.r.ns.IPOutput(s.ctx, fam, "route", "show", "proto", "bgp")
		if err != nil {
			t.Fatal(err)
		}
		total += bytes.Count(out, []byte("\n"))
	}
	return total
}
