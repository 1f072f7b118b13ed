package e2e

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/bgp/wire"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/daemons"
	"github.com/bgplb/bgplb/lab/labtest"
	"github.com/bgplb/bgplb/view"
)

// grConfig has node1 as a passive neighbour for the injector, with the
// router's graceful-restart caps.
const grConfig = `asn: 64512
routerID: 198.51.100.1
neighbors:
  - {address: 198.51.100.11, peerASN: 64512, passive: true, holdTime: 9s, gracefulRestart: {restartTime: RESTART, staleTime: 10s}}
import:
  prefixes: ["203.0.113.0/24", "198.18.0.0/15"]
  maxPrefixes: 200000
fib: {graceTime: GRACE}
metrics: {address: "127.0.0.1:9473"}
api: {socket: SOCKET}
`

func grConf(restart, grace string) string {
	return strings.NewReplacer("RESTART", restart, "GRACE", grace).Replace(grConfig)
}

// grSession makes an injector a speaker with graceful restart (RFC 4724)
// for IPv4: restart time 120 s, the F bit as forwarding, the R bit when it
// is the restart of an earlier process.
func grSession(restarting, forwarding bool) func(*session.Config) {
	return func(c *session.Config) {
		c.Families = []wire.Family{wire.IPv4Unicast}
		c.GracefulRestart = &session.GracefulRestart{Time: 120 * time.Second, Restarting: restarting, Forwarding: forwarding}
	}
}

// endOfRIB sends the IPv4 End-of-RIB marker.
func (in *injector) endOfRIB(t testing.TB, ctx context.Context) {
	t.Helper()
	enc := wire.Encoder{Options: in.neg.Tx}
	if err := in.send(ctx, enc.AppendEndOfRIB(nil, wire.IPv4Unicast)); err != nil {
		t.Fatal(err)
	}
}

// presence polls the router's kernel until stopped and records the
// prefixes it ever found missing: a route that must survive a restart may
// not disappear even for a moment.
type presence struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	gone   map[netip.Prefix]int
	polls  int
}

func watchPresent(t testing.TB, ctx context.Context, ns *lab.Netns, ps ...netip.Prefix) *presence {
	ctx, cancel := context.WithCancel(ctx)
	w := &presence{cancel: cancel, done: make(chan struct{}), gone: map[netip.Prefix]int{}}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			rs, err := ns.Routes(ctx, lab.RouteQuery{Proto: "bgp"})
			if ctx.Err() != nil {
				return
			}
			w.mu.Lock()
			if err == nil {
				w.polls++
				for _, p := range ps {
					if !slices.ContainsFunc(rs, func(r lab.Route) bool { return r.Dst == p }) {
						w.gone[p]++
					}
				}
			}
			w.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(w.stop)
	return w
}

// check ends the polling; it fails t if a watched prefix was ever
// missing. The caller proves the polling covered the time that matters
// with waitPolls.
func (w *presence) check(t testing.TB) {
	t.Helper()
	w.stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.gone) > 0 {
		t.Errorf("routes missing from the kernel during the restart (polls without them): %v", w.gone)
	}
	t.Logf("kernel polled %d times: the routes were always there", w.polls)
}

// waitPolls waits until the kernel has been looked at n more times.
func (w *presence) waitPolls(t testing.TB, ctx context.Context, n int) {
	t.Helper()
	w.mu.Lock()
	target := w.polls + n
	w.mu.Unlock()
	if err := lab.Poll(ctx, 10*time.Millisecond, func() (bool, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.polls >= target, nil
	}); err != nil {
		t.Fatal(err)
	}
}

func (w *presence) stop() {
	w.cancel()
	<-w.done
}

// deletions watches the router's kernel with `ip monitor` for route
// deletions, which a poll might miss between two looks.
type deletions struct{ proc *lab.Proc }

func watchDeletions(t testing.TB, ctx context.Context, ns *lab.Netns) deletions {
	t.Helper()
	p, err := ns.StartWith(ctx, lab.StartOptions{Label: "ip-monitor"}, "ip", "-o", "monitor", "route")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop() })
	// It is listening once it reports a change of our own; the first
	// may come before it subscribed, so the probe is repeated.
	probe := prefix("198.51.100.250/32").String()
	if err := lab.Poll(ctx, 20*time.Millisecond, func() (bool, error) {
		if strings.Contains(p.Logs(), "198.51.100.250") {
			return true, nil
		}
		if err := ns.IP(ctx, "route", "add", "blackhole", probe); err != nil {
			return false, err
		}
		return false, ns.IP(ctx, "route", "del", "blackhole", probe)
	}); err != nil {
		t.Fatal("ip monitor never reported the probe route")
	}
	return deletions{proc: p}
}

// of counts the deletions of p's route seen so far.
func (d deletions) of(p netip.Prefix) int {
	n := 0
	for _, line := range strings.Split(d.proc.Logs(), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && f[0] == "Deleted" && (f[1] == p.String() || p.IsSingleIP() && f[1] == p.Addr().String()) {
			n++
		}
	}
	return n
}

// waitGR polls `bgplb neighbor` until node's graceful-restart state
// satisfies ok.
func (rp *routerProc) waitGR(t *testing.T, ctx context.Context, peer netip.Addr, what string, ok func(*view.GracefulRestart) bool) *view.GracefulRestart {
	t.Helper()
	var last *view.GracefulRestart
	err := lab.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		var ns []view.Neighbor
		rp.cli(t, ctx, &ns, "neighbor")
		for _, n := range ns {
			if n.Address == peer {
				last = n.GracefulRestart
				return last != nil && ok(last), nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("neighbor %s never %s: last %+v", peer, what, last)
	}
	return last
}

// grLab is the router with node1's restarting speaker.
type grLab struct {
	routerLab
	metrics metricsProbe
	dels    deletions
}

func newGRLab(t *testing.T, restart string) grLab {
	t.Helper()
	l := grLab{routerLab: newRouterLab(t, 90*time.Second, grConf(restart, "5s"))}
	l.metrics = probeMetrics(t, l.r, "127.0.0.1:9473")
	l.dels = watchDeletions(t, l.ctx, l.r.ns)
	return l
}

// TestRouterGracefulRestart: a speaker with graceful restart leaves with no
// NOTIFICATION (session.Peer.Abandon, what bgplb speaker does on an
// upgrade): its routes stay in the router's kernel the whole time, marked
// stale; the new process sends one of them again, which never leaves the
// kernel, and End-of-RIB, which removes the other.
func TestRouterGracefulRestart(t *testing.T) {
	l := newGRLab(t, "60s")
	ctx, n1, rp := l.ctx, l.n1, l.rp
	kept, dropped := prefix("203.0.113.1/32"), prefix("203.0.113.2/32")
	in := injectWith(t, ctx, n1, l.r.v4, grSession(false, true))
	// The router has nothing to send: its End-of-RIB comes at once.
	select {
	case f := <-in.eor:
		if f != wire.IPv4Unicast {
			t.Errorf("End-of-RIB for %v", f)
		}
	case <-ctx.Done():
		t.Fatal("no End-of-RIB from the router")
	}
	in.announceVia(t, ctx, n1.v4, kept, dropped)
	in.endOfRIB(t, ctx)
	rp.waitKernel(t, ctx, want{kept: {n1.v4}, dropped: {n1.v4}})
	rp.waitGR(t, ctx, n1.v4, "negotiated", func(g *view.GracefulRestart) bool { return g.Negotiated && g.State == "" })
	keptWatch := watchPresent(t, ctx, l.r.ns, kept)
	droppedWatch := watchPresent(t, ctx, l.r.ns, dropped)

	if err := in.peer.Abandon(ctx); err != nil {
		t.Fatal(err)
	}
	g := rp.waitGR(t, ctx, n1.v4, "restarting", func(g *view.GracefulRestart) bool { return g.State == "restarting" })
	// The speaker is away a while: the routes stay all along.
	keptWatch.waitPolls(t, ctx, 50)
	if g.StalePaths != 2 || g.Deadline.IsZero() {
		t.Errorf("restarting: %+v, want 2 stale paths and a deadline", g)
	}
	l.metrics.waitGauge(t, ctx, `bgplb_router_gr_stale_paths{peer="198.51.100.11"}`, func(v float64) bool { return v == 2 })
	var rib []view.RIBEntry
	rp.cli(t, ctx, &rib, "rib")
	if len(rib) != 2 || !rib[0].Paths[0].Stale || !rib[1].Paths[0].Stale {
		t.Errorf("bgplb rib does not mark the paths stale: %+v", rib)
	}

	// The new process: the R and F bits, one route again, End-of-RIB.
	in2 := injectWith(t, ctx, n1, l.r.v4, grSession(true, true))
	rp.waitGR(t, ctx, n1.v4, "back, waiting for End-of-RIB", func(g *view.GracefulRestart) bool { return g.State == "stale" })
	in2.announceVia(t, ctx, n1.v4, kept)
	rp.waitGR(t, ctx, n1.v4, "down to one stale path", func(g *view.GracefulRestart) bool { return g.StalePaths == 1 })
	droppedWatch.check(t)
	in2.endOfRIB(t, ctx)
	rp.waitKernel(t, ctx, want{kept: {n1.v4}, dropped: nil})
	keptWatch.check(t)
	if n := l.dels.of(kept); n != 0 {
		t.Errorf("ip monitor saw %s deleted %d times", kept, n)
	}
	if n := l.dels.of(dropped); n != 1 {
		t.Errorf("ip monitor saw %s deleted %d times, want once", dropped, n)
	}
	rp.waitGR(t, ctx, n1.v4, "done", func(g *view.GracefulRestart) bool { return g.State == "" && g.Negotiated })
	l.metrics.waitGauge(t, ctx, `bgplb_router_gr_restarts_total{outcome="end_of_rib"}`, func(v float64) bool { return v == 1 })
}

// TestRouterGracefulRestartEnds: what ends a peer's restart without
// End-of-RIB. The router's restart time (capping the peer's 120 s) runs
// out with no new session; a speaker that comes back without the F bit has
// its stale routes removed at once; a speaker without graceful restart, or
// one that says Cease, has its routes removed as soon as the session ends.
func TestRouterGracefulRestartEnds(t *testing.T) {
	p := prefix("203.0.113.7/32")
	for _, tc := range []struct {
		name    string
		edit    func(*session.Config)
		end     func(t *testing.T, ctx context.Context, l grLab, in *injector)
		min     time.Duration // the route must stay at least this long
		outcome string
	}{
		{"restart time runs out", grSession(false, true), func(t *testing.T, ctx context.Context, l grLab, in *injector) {
			if err := in.peer.Abandon(ctx); err != nil {
				t.Fatal(err)
			}
		}, 2 * time.Second, "restart_time"},
		{"back without the F bit", grSession(false, true), func(t *testing.T, ctx context.Context, l grLab, in *injector) {
			if err := in.peer.Abandon(ctx); err != nil {
				t.Fatal(err)
			}
			l.rp.waitGR(t, ctx, l.n1.v4, "restarting", func(g *view.GracefulRestart) bool { return g.State == "restarting" })
			injectWith(t, ctx, l.n1, l.r.v4, grSession(true, false))
		}, 0, "not_preserved"},
		{"no graceful restart", nil, func(t *testing.T, ctx context.Context, l grLab, in *injector) {
			if err := in.peer.Abandon(ctx); err != nil {
				t.Fatal(err)
			}
		}, 0, ""},
		{"Cease", grSession(false, true), func(t *testing.T, ctx context.Context, l grLab, in *injector) {
			if err := in.peer.Close(ctx, &wire.Notification{Code: wire.ErrCodeCease, Subcode: wire.CeaseAdminShutdown}); err != nil {
				t.Fatal(err)
			}
		}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newGRLab(t, "3s")
			ctx := l.ctx
			in := injectWith(t, ctx, l.n1, l.r.v4, tc.edit)
			in.announceVia(t, ctx, l.n1.v4, p)
			l.rp.waitKernel(t, ctx, want{p: {l.n1.v4}})
			start := time.Now()
			tc.end(t, ctx, l, in)
			l.rp.waitKernel(t, ctx, want{p: nil})
			took := time.Since(start)
			t.Logf("route gone %v after the session ended", took.Round(time.Millisecond))
			switch {
			case took < tc.min:
				t.Errorf("route removed after %v, before %v", took, tc.min)
			case tc.min == 0 && took > 2*time.Second:
				t.Errorf("route removed after %v, want at once", took)
			}
			if tc.outcome != "" {
				l.metrics.waitGauge(t, ctx, `bgplb_router_gr_restarts_total{outcome="`+tc.outcome+`"}`, func(v float64) bool { return v == 1 })
			}
		})
	}
}

// goBGPGR is gobgpd on node1 with graceful restart for IPv4 (restart time
// 120 s), its session held down until the test enables it, so the routes
// are in its RIB before its first UPDATE.
const goBGPGR = `[global.config]
  as = 64512
  router-id = "198.51.100.11"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "198.51.100.1"
    peer-as = 64512
    admin-down = true
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 9
    keepalive-interval = 3
    idle-hold-time-after-reset = 1
  [neighbors.graceful-restart.config]
    enabled = true
    restart-time = 120
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
`

// startGoBGPGR starts gobgpd on n (with -r, the restart bit, when
// restarting), announces ps and brings its session up.
func startGoBGPGR(t *testing.T, ctx context.Context, n node, restarting bool, ps ...netip.Prefix) *lab.Proc {
	t.Helper()
	bin, err := exec.LookPath("gobgpd")
	if err != nil {
		labtest.Missing(t, "gobgpd: %v", err)
		return nil
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "gobgpd.toml")
	if err := os.WriteFile(conf, []byte(goBGPGR), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-f", conf, "-t", "toml", "--api-hosts", "127.0.0.1:50051", "--pprof-disable", "--log-plain"}
	if restarting {
		args = append(args, "-r")
	}
	p, err := n.ns.StartWith(ctx, lab.StartOptions{Label: "gobgpd-gr", Dir: dir}, bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop() })
	cli := func(args ...string) error {
		_, err := n.ns.Run(ctx, "gobgp", append([]string{"-p", "50051"}, args...)...)
		return err
	}
	if err := lab.Poll(ctx, 25*time.Millisecond, func() (bool, error) { return cli("global") == nil, nil }); err != nil {
		t.Fatalf("gobgpd not ready: %v\n%s", err, p.Logs())
	}
	for _, pf := range ps {
		if err := cli("global", "rib", "add", "-a", "ipv4", pf.String(), "nexthop", n.v4.String(), "origin", "igp"); err != nil {
			t.Fatal(err)
		}
	}
	if err := cli("neighbor", "198.51.100.1", "enable"); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRouterGracefulRestartGoBGP: gobgpd with graceful restart, killed
// with SIGKILL and started again with the restart bit (and so the F bit),
// is helped like bgplb's own speaker: its routes never leave the router's
// kernel, the one it announces again stays, the other goes at its
// End-of-RIB.
func TestRouterGracefulRestartGoBGP(t *testing.T) {
	l := newGRLab(t, "60s")
	ctx, n1, rp := l.ctx, l.n1, l.rp
	kept, dropped := prefix("203.0.113.1/32"), prefix("203.0.113.2/32")
	g := startGoBGPGR(t, ctx, n1, false, kept, dropped)
	rp.waitKernel(t, ctx, want{kept: {n1.v4}, dropped: {n1.v4}})
	rp.waitGR(t, ctx, n1.v4, "negotiated", func(g *view.GracefulRestart) bool { return g.Negotiated })
	keptWatch := watchPresent(t, ctx, l.r.ns, kept, dropped)

	if err := g.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-g.Done()
	rp.waitGR(t, ctx, n1.v4, "restarting", func(g *view.GracefulRestart) bool { return g.State == "restarting" && g.StalePaths == 2 })
	keptWatch.waitPolls(t, ctx, 20)
	keptWatch.check(t)
	keptWatch = watchPresent(t, ctx, l.r.ns, kept)
	startGoBGPGR(t, ctx, n1, true, kept)
	rp.waitKernel(t, ctx, want{kept: {n1.v4}, dropped: nil})
	keptWatch.check(t)
	if n := l.dels.of(kept); n != 0 {
		t.Errorf("ip monitor saw %s deleted %d times", kept, n)
	}
	l.metrics.waitGauge(t, ctx, `bgplb_router_gr_restarts_total{outcome="end_of_rib"}`, func(v float64) bool { return v == 1 })
}

// TestRouterGracefulRestartReload: a reload that changes only
// gracefulRestart keeps the session up; with enabled: false the router
// keeps nothing from then on, though the session negotiated it.
func TestRouterGracefulRestartReload(t *testing.T) {
	l := newGRLab(t, "60s")
	ctx, n1, rp := l.ctx, l.n1, l.rp
	p := prefix("203.0.113.9/32")
	in := injectWith(t, ctx, n1, l.r.v4, grSession(false, true))
	in.announceVia(t, ctx, n1.v4, p)
	rp.waitKernel(t, ctx, want{p: {n1.v4}})
	var before []view.Neighbor
	rp.cli(t, ctx, &before, "neighbor")
	off := strings.Replace(grConf("5s", "5s"), "gracefulRestart: {restartTime: 5s, staleTime: 10s}", "gracefulRestart: {enabled: false}", 1)
	if err := os.WriteFile(rp.config, []byte(strings.ReplaceAll(off, "SOCKET", rp.socket)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rp.proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := lab.Poll(ctx, 20*time.Millisecond, func() (bool, error) {
		return strings.Contains(rp.proc.Logs(), "graceful restart capability changes at the session's next restart"), nil
	}); err != nil {
		t.Fatal("the reload did not say when the capability changes")
	}
	var after []view.Neighbor
	rp.cli(t, ctx, &after, "neighbor")
	if len(after) != 1 || after[0].State != "Established" || !after[0].Since.Equal(before[0].Since) {
		t.Fatalf("the session was reset by a gracefulRestart-only reload: before %+v, after %+v", before, after)
	}
	if err := in.peer.Abandon(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rp.waitKernel(t, ctx, want{p: nil})
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("route kept %v with graceful restart off", took)
	}
}

// TestRouterGracefulRestartBFD: BFD taking a session down is a dead path,
// not a restart: a speaker that negotiated graceful restart loses its
// route at once when its cable is pulled.
func TestRouterGracefulRestartBFD(t *testing.T) {
	l, _ := newGRBFDLab(t)
	l.rp.waitGR(t, l.ctx, l.n1.v4, "negotiated", func(g *view.GracefulRestart) bool { return g.Negotiated })
	took := l.cut(t)
	t.Logf("route left the router's kernel %v after the cut", took)
	if took >= bfdBound {
		t.Errorf("route gone %v after the cut: kept as if the node restarted", took)
	}
	l.metrics.waitGauge(t, l.ctx, "bgplb_router_bfd_teardowns_total", func(v float64) bool { return v == 1 })
}

// TestRouterGracefulRestartBFDStale: BFD outlives a session that ended as
// a restart, guarding the routes kept for it: when the node's cable is
// pulled then, they go within BFD's detection time, not the restart time
// (RFC 5882 §4.3.2).
func TestRouterGracefulRestartBFDStale(t *testing.T) {
	l, in := newGRBFDLab(t)
	if err := in.peer.Abandon(l.ctx); err != nil {
		t.Fatal(err)
	}
	l.rp.waitGR(t, l.ctx, l.n1.v4, "restarting", func(g *view.GracefulRestart) bool { return g.State == "restarting" })
	var last []view.Neighbor
	if err := lab.Poll(l.ctx, 50*time.Millisecond, func() (bool, error) {
		l.rp.cli(t, l.ctx, &last, "neighbor")
		return slices.ContainsFunc(last, func(n view.Neighbor) bool {
			return n.State != "Established" && n.BFD != nil && n.BFD.State == "Up"
		}), nil
	}); err != nil {
		t.Fatalf("BFD not up with the session down and its routes kept: %v; last %+v", err, last)
	}
	took := l.cut(t)
	t.Logf("stale route left the router's kernel %v after the cut", took)
	if took >= bfdBound {
		t.Errorf("stale route gone %v after the cut: BFD did not guard it", took)
	}
	l.metrics.waitGauge(t, l.ctx, `bgplb_router_gr_restarts_total{outcome="reset"}`, func(v float64) bool { return v == 1 })
}

// newGRBFDLab is node1 with FRR's bfdd (50 ms × 3) and a speaker with
// graceful restart whose route is in the router's kernel, BFD Up.
func newGRBFDLab(t *testing.T) (bfdLab, *injector) {
	t.Helper()
	cfg := strings.Replace(bfdRouterConfig(50*time.Millisecond, 3), "connectRetry: 1s", "passive: true", 1)
	l := newBFDTopology(t, cfg)
	bfdd, err := daemons.StartFRRBFD(l.ctx, l.n1.ns, []daemons.BFDPeer{{Peer: l.r.v4, Local: l.n1.v4, Interval: 50 * time.Millisecond, Mult: 3}})
	labtest.SkipIfNotInstalled(t, err)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bfdd.Stop() })
	in := injectWith(t, l.ctx, l.n1, l.r.v4, grSession(false, true))
	in.announceVia(t, l.ctx, l.n1.v4, l.route)
	l.up(t, true)
	return l, in
}

// TestRouterGracefulRestartNewOpen: a speaker whose connection died
// without the router noticing (no FIN: a node rebooted) comes back with a
// new connection while its old session still looks established: the
// router takes it for the restart it is (RFC 4724 §4.2), at once rather
// than at the hold timer, and keeps its routes meanwhile.
func TestRouterGracefulRestartNewOpen(t *testing.T) {
	l := newGRLab(t, "60s")
	ctx, n1, rp := l.ctx, l.n1, l.rp
	kept, dropped := prefix("203.0.113.1/32"), prefix("203.0.113.2/32")
	old := injectWith(t, ctx, n1, l.r.v4, grSession(false, true))
	old.announceVia(t, ctx, n1.v4, kept, dropped)
	old.endOfRIB(t, ctx)
	rp.waitKernel(t, ctx, want{kept: {n1.v4}, dropped: {n1.v4}})
	rp.waitGR(t, ctx, n1.v4, "negotiated", func(g *view.GracefulRestart) bool { return g.Negotiated && g.State == "" })
	keptWatch := watchPresent(t, ctx, l.r.ns, kept)

	// The old injector stays connected: the router's end of its session
	// is what a silent death leaves.
	start := time.Now()
	in2 := injectWith(t, ctx, n1, l.r.v4, grSession(true, true))
	took := time.Since(start)
	t.Logf("the new session came up %v after it connected", took.Round(time.Millisecond))
	if took > 3*time.Second {
		t.Errorf("new session up after %v: the hold timer (9 s), not the new OPEN, ended the old one", took)
	}
	rp.waitGR(t, ctx, n1.v4, "back, waiting for End-of-RIB", func(g *view.GracefulRestart) bool { return g.State == "stale" })
	in2.announceVia(t, ctx, n1.v4, kept)
	in2.endOfRIB(t, ctx)
	rp.waitKernel(t, ctx, want{kept: {n1.v4}, dropped: nil})
	keptWatch.check(t)
	l.metrics.waitGauge(t, ctx, `bgplb_router_gr_restarts_total{outcome="end_of_rib"}`, func(v float64) bool { return v == 1 })
}
