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
		if got := p.Reason(tg); got == want {
			return time.Since(start)
		}
		select {
		case <-changed:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("reason of %v: %q, want %q", tg.Addr, p.Reason(tg), want)
		}
	}
}

// waitState waits until the target is in state want.
func waitState(t *testing.T, p *Prober, tg Target, want State) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.mu.Lock()
		got := p.targets[tg].track.State
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
	if got := p.Reason(first); got != "" {
		t.Fatalf("a target of the first Set passes while pending, got %q", got)
	}
	waitState(t, p, first, Up)
	kp.Endpoints.Store(0)
	d := waitReason(t, p, changed, first, "kube-proxy health check on "+kp.Addr.String()+" says 0 local endpoints (503)")
	t.Logf("200 → 503 seen after %v (interval %v, fall %d)", d, fast.Interval, fast.Fall)
	kp.Endpoints.Store(2)
	d = waitReason(t, p, changed, first, "")
	t.Logf("503 → 200 seen after %v (rise %d)", d, fast.Rise)
	// One connection serves every probe of a target.
	if c, r := kp.Conns.Load(), kp.Requests.Load(); c != 1 || r < 5 {
		t.Errorf("%d probes over %d connections, want one connection", r, c)
	}

	// A target added later fails until its first pass.
	kp2 := startKubeProxy(t)
	kp2.Endpoints.Store(0)
	later := Target{Service: svcKey("web"), Addr: kp2.Addr}
	kp2.Delay.Store(int64(100 * time.Millisecond))
	p.Set([]Target{first, later})
	if got, want := p.Reason(later), "waiting for the first kube-proxy health check on "+kp2.Addr.String(); got != want {
		t.Fatalf("later target pending: %q, want %q", got, want)
	}
	waitReason(t, p, changed, later, "kube-proxy health check on "+kp2.Addr.String()+" says 0 local endpoints (503)")
	st := p.Stats()
	// Never passed: still pending (and withheld).
	if st.Targets[Pending] != 1 || st.Targets[Up] != 1 || st.Passed == 0 || st.Failed == 0 || st.Falls != 1 || st.Rises != 2 {
		t.Errorf("stats %+v", st)
	}

	// kube-proxy catches up: one pass is enough for a target that never
	// served.
	kp2.Delay.Store(0)
	kp2.Endpoints.Store(1)
	d = waitReason(t, p, changed, later, "")
	t.Logf("a new target's first 200 seen after %v (pending: probed every %v)", d, fast.Interval/4)

	// Gone from the set: no longer probed, no reason.
	p.Set([]Target{first})
	if got := p.Reason(later); got != "" {
		t.Errorf("removed target: %q", got)
	}
}

// Nothing listening passes (no health check server: the endpoints
// decide); a server that does not answer in time fails.
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
	p, changed := startProber(t, fast)
	p.Set(nil) // start: what follows is not trusted
	refused := Target{Service: svcKey("a"), Addr: closed}
	slow := Target{Service: svcKey("b"), Addr: kp.Addr}
	p.Set([]Target{refused, slow})
	waitReason(t, p, changed, refused, "")
	waitReason(t, p, changed, slow, "kube-proxy health check on "+kp.Addr.String()+" has no answer within 200ms")
	if st := p.Stats(); st.Refused == 0 {
		t.Errorf("no refused probe counted: %+v", st)
	}
}
