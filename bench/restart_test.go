package bench

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkRouterRestart measures a router restarted while
// BGPLB_RESTART_ROUTES routes (default 1M) it installed are still in the
// kernel (the first one was killed, as by a crash or an upgrade): its peak
// RSS, the time until it has read the kernel back (its metrics answer),
// and the time until the peer, reconnected and announcing the same routes
// again, is fully accepted and installed.
func BenchmarkRouterRestart(b *testing.B) {
	n := envInt("BGPLB_RESTART_ROUTES", 1_000_000)
	b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
		requireLab(b)
		for range b.N {
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(envInt("BGPLB_BENCH_TIMEOUT_S", 600))*time.Second)
			err := restartOnce(ctx, b, n)
			cancel()
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

func restartOnce(ctx context.Context, b *testing.B, n int) error {
	l, err := pairLAN(ctx, "br")
	if err != nil {
		return err
	}
	defer l.Close()
	rns, nns := l.Host("router"), l.Host("node")
	nlri := hostRoutes(n)
	icfg := injectorConfig{Local: cmpNode, Remote: cmpRouter, LocalAS: cmpNodeAS, PeerAS: cmpRouterAS}
	// feed connects and announces every route, waits until the router has
	// accepted them all, reads its usage, and waits until the router's FIB
	// holds them all as its own: every route desired, none pending, none
	// left stale from the previous run (the metrics say so; listing a
	// million routes over the API every poll would be most of what is
	// measured).
	feed := func(r *routerProc) (*injector, Usage, error) {
		inj, err := dialInjector(ctx, nns, icfg)
		if err != nil {
			return nil, Usage{}, err
		}
		var u Usage
		var accepted float64
		installed := -1
		msgs, err := inj.encodeReach(nlri)
		if err == nil {
			err = inj.send(ctx, msgs)
		}
		if err == nil {
			err = r.waitMetric(ctx, func(m map[string]float64) bool {
				accepted = sumMetric(m, "bgplb_router_prefixes_accepted")
				return accepted == float64(n)
			})
		}
		if err == nil {
			u, err = ReadUsage(r.proc.PID())
		}
		if err == nil {
			err = r.waitMetric(ctx, func(m map[string]float64) bool {
				installed = int(m["bgplb_router_fib_routes"])
				return installed == n && m["bgplb_router_fib_stale_routes"] == 0 && m["bgplb_router_fib_pending_routes"] == 0
			})
		}
		if err != nil {
			inj.drop()
			return nil, u, fmt.Errorf("%w (last seen: %.0f accepted, %d in the router's FIB, want %d)", err, accepted, installed, n)
		}
		return inj, u, nil
	}

	first, err := startRouter(ctx, bgplb(b), rns, rns.Dir, compareRouterConfig, "warn")
	if err != nil {
		return err
	}
	inj, _, err := feed(first)
	if err != nil {
		first.kill()
		return fmt.Errorf("first run: %w", err)
	}
	base, err := KernelRoutes(first.proc.PID())
	first.kill()
	inj.drop()
	if err != nil {
		return err
	}

	start := time.Now()
	second, err := startRouter(ctx, bgplb(b), rns, rns.Dir, compareRouterConfig, "warn")
	if err != nil {
		return err
	}
	defer second.kill()
	if err := second.waitMetric(ctx, func(map[string]float64) bool { return true }); err != nil {
		return err
	}
	readBack := time.Since(start)
	if left, err := KernelRoutes(second.proc.PID()); err != nil || left != base {
		return fmt.Errorf("kernel routes after the restart: %d, want the %d left by the first run (%v)", left, base, err)
	}
	start = time.Now()
	inj, u, err := feed(second)
	if err != nil {
		return fmt.Errorf("after the restart: %w", err)
	}
	defer inj.drop()
	reconverged := time.Since(start)
	b.ReportMetric(float64(u.PeakRSS)/1e6, "restart-peak-MB")
	b.ReportMetric(readBack.Seconds(), "read-back-s")
	b.ReportMetric(reconverged.Seconds(), "reconverge-s")
	fmt.Printf("bgplb restart with %d routes in the kernel: peak RSS %.0f MB, read back in %.2f s, peer re-accepted and installed in %.2f s; load %s\n",
		n, float64(u.PeakRSS)/1e6, readBack.Seconds(), reconverged.Seconds(), loadAvg())
	return nil
}

// sumMetric adds up every series of a metric, whatever its labels.
func sumMetric(m map[string]float64, name string) float64 {
	var s float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			s += v
		}
	}
	return s
}
