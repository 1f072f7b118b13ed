package healthcheck

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/bgplb/bgplb/internal/lbmodel"
	"github.com/bgplb/bgplb/speaker/healthcheck/hctest"
)

func startKubeProxy(t *testing.T) *hctest.Server { return hctest.Listen(t, "127.0.0.1:0") }

// startProber runs a prober for the test; changes are signalled on the
// returned channel.
func startProber(t *testing.T, cfg Config) (*Prober, chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	changed := make(chan struct{}, 1)
	p := New(ctx, cfg, slog.New(slog.DiscardHandler), func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	t.Cleanup(func() {
		cancel()
		p.Wait()
	})
	return p, changed
}

// waitReason waits until the target's reason is want.
func waitReason(t *testing.T, p *Prober, changed <-chan struct{}, tg Target, want string) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.After(10 * time.Second)
	for {
		if got := p.Verdict(tg).Reason; got == want {
			return time.Since(start)
		}
		select {
		case <-changed:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("reason of %v: %q, want %q", tg.Addr, p.Verdict(tg).Reason, want)
		}
	}
}

// waitState waits until the target is in state want.
func waitState(t *testing.T, p *Prober, tg Target, want State) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.mu.Lock()
		got := p.targets[tg.key()].track.State
		p.mu.Unlock()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("state of %v: %v, want %v", tg.Addr, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var fast = Config{Interval: 50 * time.Millisecond, Timeout: 200 * time.Millisecond, Thresholds: Thresholds{Rise: 2, Fall: 2}}

func svcKey(name string) lbmodel.Key { return lbmodel.Key{Namespace: "default", Name: name} }

// The probe follows a real HTTP server answering as kube-proxy does:
// 200 → 503 → 200, and a Service it finds later waits for its first pass.
func TestProberFollowsServer(t *testing.T) {
	kp := startKubeProxy(t)
	kp.Endpoints.Store(1)
	p, changed := startProber(t, fast)
	first := Target{Service: svcKey("pihole"), Addr: kp.Addr}
	p.Set([]Target{first})
	if got := p.Verdict(first).Reason; got != "" {
		t.Fatalf("a target of the first Set starts up, got %q", got)
	}
	waitState(t, p, first, Up)
	kp.Endpoints.Store(0)
	d := waitReason(t, p, changed, first, "kube-proxy health check on "+kp.Addr.String()+" says 0 local endpoints (503)")
	t.Logf("200 → 503 seen after %v (interval %v, fall %d)", d, fast.Interval, fast.Fall)
	kp.Endpoints.Store(2)
	d = waitReason(t, p, changed, first, "")
	t.Logf("503 → 200 seen after %v (rise %d)", d, fast.Rise)
	// One connection serves every probe of a target.
	if c, r := kp.Conns.Load(), kp.Requests.Load(); c != 1 || r < 4 {
		t.Errorf("%d probes over %d connections, want one connection", r, c)
	}

	// A target added later fails until its first pass.
	kp2 := startKubeProxy(t)
	kp2.Endpoints.Store(0)
	later := Target{Service: svcKey("web"), Addr: kp2.Addr}
	kp2.Delay.Store(int64(100 * time.Millisecond))
	p.Set([]Target{first, later})
	if got, want := p.Verdict(later).Reason, "waiting for the first kube-proxy health check on "+kp2.Addr.String(); got != want {
		t.Fatalf("later target pending: %q, want %q", got, want)
	}
	waitReason(t, p, changed, later, "kube-proxy health check on "+kp2.Addr.String()+" says 0 local endpoints (503)")
	st := p.Stats()
	// Never passed: still pending (and withheld).
	// The first target started up, fell and rose again; the later one has
	// not risen yet (and its first pass will not count as a rise).
	if st.Targets[Pending] != 1 || st.Targets[Up] != 1 || st.Passed == 0 || st.Failed == 0 || st.Falls != 1 || st.Rises != 1 {
		t.Errorf("stats %+v", st)
	}

	// kube-proxy catches up: one pass is enough for a target that never
	// served.
	kp2.Delay.Store(0)
	kp2.Endpoints.Store(1)
	d = waitReason(t, p, changed, later, "")
	t.Logf("a new target's first 200 seen after %v (pending: probed every %v)", d, fast.Interval/4)

	if st := p.Stats(); st.Rises != 1 {
		t.Errorf("a new target's first pass counted as a rise: %+v", st)
	}

	// Gone from the set: no longer probed; back, it starts over.
	p.Set([]Target{first})
	if got := p.Verdict(later); !got.Waiting {
		t.Errorf("removed target: %+v", got)
	}
}

// Nothing listening keeps a new target pending until NoServer refusals
// (then no health check server is assumed: the endpoints decide); a
// server that does not answer in time fails.
func TestProberRefusedAndTimeout(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	kp := startKubeProxy(t)
	kp.Endpoints.Store(1)
	kp.Delay.Store(int64(time.Second))
	cfg := fast
	cfg.NoServer = 4
	p, changed := startProber(t, cfg)
	p.Set(nil) // start: what follows is new
	refused := Target{Service: svcKey("a"), Addr: closed}
	slow := Target{Service: svcKey("b"), Addr: kp.Addr}
	p.Set([]Target{refused, slow})
	waitReason(t, p, changed, refused, "kube-proxy health check on "+closed.String()+" is refused: nothing listens")
	waitReason(t, p, changed, refused, "")
	waitReason(t, p, changed, slow, "kube-proxy health check on "+kp.Addr.String()+" has no answer within 200ms")
	if st := p.Stats(); st.Refused == 0 {
		t.Errorf("no refused probe counted: %+v", st)
	}
}

// A target is its Service and family: a new address (node addresses
// reordered, the port edited) keeps its state and probes the new one.
func TestProberAddressChangeKeepsState(t *testing.T) {
	kp, kp2 := startKubeProxy(t), startKubeProxy(t)
	kp.Endpoints.Store(1)
	kp2.Endpoints.Store(0)
	p, changed := startProber(t, fast)
	p.Set(nil)
	a := Target{Service: svcKey("a"), Addr: kp.Addr}
	p.Set([]Target{a})
	waitState(t, p, a, Up)
	moved := Target{Service: svcKey("a"), Addr: kp2.Addr}
	p.Set([]Target{moved})
	if got := p.Verdict(moved); got.Reason != "" {
		t.Fatalf("moved target: %+v, want it still up", got)
	}
	waitReason(t, p, changed, moved, "kube-proxy health check on "+kp2.Addr.String()+" says 0 local endpoints (503)")
	if st := p.Stats(); st.Falls != 1 || st.Targets[Down] != 1 {
		t.Errorf("stats %+v: want the moved target to fall by Fall", st)
	}
}

// A restart: the first Set's targets start up (Fall applies), those of the
// Services the last run withheld start down (Rise applies).
func TestProberRestart(t *testing.T) {
	kp, kp2 := startKubeProxy(t), startKubeProxy(t)
	kp.Endpoints.Store(0)
	kp2.Endpoints.Store(1)
	slowCfg := fast
	slowCfg.Interval = time.Hour // one probe each, at a random time within the hour: none here
	p, _ := startProber(t, slowCfg)
	p.Withheld([]lbmodel.Key{svcKey("withheld")})
	served := Target{Service: svcKey("served"), Addr: kp.Addr}
	withheld := Target{Service: svcKey("withheld"), Addr: kp2.Addr}
	if v := p.Verdict(withheld); v.Reason != "kube-proxy health check on "+kp2.Addr.String()+" failed before the speaker restarted" || v.Waiting {
		t.Errorf("withheld before the first Set: %+v", v)
	}
	if v := p.Verdict(served); v.Reason != "" {
		t.Errorf("served before the first Set: %+v", v)
	}
	p.Set([]Target{served, withheld})
	p.Withheld(nil) // too late: changes nothing
	if v := p.Verdict(withheld); v.Reason == "" {
		t.Errorf("withheld after the first Set: %+v", v)
	}
	if st := p.Stats(); st.Targets[Up] != 1 || st.Targets[Down] != 1 {
		t.Errorf("stats %+v", st)
	}

	// The same, probed: one failure does not withdraw, one pass does not
	// announce.
	p2, changed := startProber(t, fast)
	p2.Withheld([]lbmodel.Key{svcKey("withheld")})
	p2.Set([]Target{served, withheld})
	waitReason(t, p2, changed, served, "kube-proxy health check on "+kp.Addr.String()+" says 0 local endpoints (503)")
	waitReason(t, p2, changed, withheld, "")
	if st := p2.Stats(); st.Failed < 2 || st.Passed < 2 || st.Falls != 1 || st.Rises != 1 {
		t.Errorf("stats %+v: want Fall failures and Rise passes", st)
	}
}

// A single replica's rolling update: kube-proxy's "0 local endpoints"
// passes while the target's endpoints are the fallback.
func TestProberFallback(t *testing.T) {
	kp := startKubeProxy(t)
	kp.Endpoints.Store(1)
	p, changed := startProber(t, fast)
	a := Target{Service: svcKey("a"), Addr: kp.Addr}
	p.Set([]Target{a})
	waitState(t, p, a, Up)
	a.Fallback = true
	p.Set([]Target{a})
	kp.Endpoints.Store(0)
	before := kp.Requests.Load()
	for kp.Requests.Load() < before+4 {
		select {
		case <-changed:
		case <-time.After(20 * time.Millisecond):
		}
	}
	if v := p.Verdict(a); v.Reason != "" {
		t.Errorf("under the fallback: %+v, want up", v)
	}
	a.Fallback = false
	p.Set([]Target{a})
	waitReason(t, p, changed, a, "kube-proxy health check on "+kp.Addr.String()+" says 0 local endpoints (503)")
}

// The connections kept between probes are closed when the prober ends.
func TestProberClosesConnections(t *testing.T) {
	kp := startKubeProxy(t)
	ctx, cancel := context.WithCancel(context.Background())
	p := New(ctx, fast, slog.New(slog.DiscardHandler), nil)
	a := Target{Service: svcKey("a"), Addr: kp.Addr}
	p.Set([]Target{a})
	waitState(t, p, a, Up)
	for kp.Requests.Load() < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	p.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for kp.Closed.Load() != kp.Conns.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d connections closed after Wait", kp.Closed.Load(), kp.Conns.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
