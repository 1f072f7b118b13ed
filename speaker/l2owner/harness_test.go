package l2owner

// A harness for electors against the real API server: several electors,
// one per pretend node, in this process, each with a transport of its own
// that can be frozen (a node cut off: every request and every open watch
// fails) and that counts the lease writes it makes.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/bgplb/bgplb/internal/kubetest"
)

var shared = kubetest.NewShared()

func TestMain(m *testing.M) { os.Exit(shared.Main(m)) }

var errFrozen = errors.New("test: node cut off")

// transport counts writes, and cuts the node off: while frozen every
// request and every open watch fails at once; while hung they hang (a
// partition: nothing answers) until the caller gives up.
type transport struct {
	rt      http.RoundTripper
	frozen  *atomic.Bool
	hung    *atomic.Bool
	stalled *atomic.Bool // watches deliver nothing; other requests work
	writes  *atomic.Int64
	delay   *atomic.Int64 // added to every request: a slow API server
	// held holds the informer's list and watch requests (and only them)
	// back: an informer slow to relist after a cut.
	held *atomic.Bool
}

func (t transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if d := time.Duration(t.delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	for t.held.Load() && r.URL.Query().Get("labelSelector") == labelKind {
		select {
		case <-time.After(5 * time.Millisecond):
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	if t.hung.Load() {
		<-r.Context().Done()
		return nil, r.Context().Err()
	}
	if t.frozen.Load() {
		return nil, errFrozen
	}
	if r.Method != http.MethodGet {
		t.writes.Add(1)
	}
	resp, err := t.rt.RoundTrip(r)
	if resp != nil {
		resp.Body = &body{ReadCloser: resp.Body, t: t, ctx: r.Context(), closed: make(chan struct{}),
			watch: r.URL.Query().Get("watch") == "true"}
	}
	return resp, err
}

type body struct {
	io.ReadCloser
	t      transport
	ctx    context.Context // the request's: a real hung read ends with it
	watch  bool
	once   sync.Once
	closed chan struct{}
}

func (b *body) Read(p []byte) (int, error) {
	n, err := 0, error(nil)
	if !b.t.frozen.Load() && !b.t.hung.Load() {
		n, err = b.ReadCloser.Read(p)
	}
	if b.t.hung.Load() || (b.watch && b.t.stalled.Load()) {
		select {
		case <-b.closed:
		case <-b.ctx.Done():
		}
		return 0, errFrozen
	}
	if b.t.frozen.Load() {
		return 0, errFrozen
	}
	return n, err
}

func (b *body) Close() error {
	b.once.Do(func() { close(b.closed) })
	return b.ReadCloser.Close()
}

// change is one OnChange call.
type change struct {
	node  string
	at    time.Time // monotonic
	owned []netip.Addr
}

// recorder keeps every node's OnChange calls.
type recorder struct {
	mu      sync.Mutex
	changes []change
	cur     map[string]map[netip.Addr]bool
	trans   []Transition
}

func (r *recorder) onChange(node string) func([]netip.Addr) {
	return func(owned []netip.Addr) {
		at := time.Now()
		r.mu.Lock()
		defer r.mu.Unlock()
		r.changes = append(r.changes, change{node, at, slices.Clone(owned)})
		set := map[netip.Addr]bool{}
		for _, a := range owned {
			set[a] = true
		}
		r.cur[node] = set
	}
}

// owners maps each address to the nodes answering for it now.
func (r *recorder) owners() map[netip.Addr][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[netip.Addr][]string{}
	for node, set := range r.cur {
		for a := range set {
			out[a] = append(out[a], node)
		}
	}
	return out
}

// dropped is when node's OnChange last stopped answering for a (after
// since); added is when node first started answering for it after since.
func (r *recorder) dropped(node string, a netip.Addr, since time.Time) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	had := false
	for _, c := range r.changes {
		if c.node != node {
			continue
		}
		has := slices.Contains(c.owned, a)
		if had && !has && c.at.After(since) {
			return c.at, true
		}
		had = has
	}
	return time.Time{}, false
}

func (r *recorder) added(node string, a netip.Addr, since time.Time) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.changes {
		if c.node == node && c.at.After(since) && slices.Contains(c.owned, a) {
			return c.at, true
		}
	}
	return time.Time{}, false
}

// member is one elector and what the test holds of it.
type member struct {
	node    string
	e       *Elector
	cancel  context.CancelFunc
	done    chan error
	frozen  atomic.Bool
	hung    atomic.Bool
	stalled atomic.Bool
	writes  atomic.Int64
	delay   atomic.Int64
	held    atomic.Bool
	// changeDelay holds each OnChange up that long; blockTrans holds
	// every OnTransition up until release is closed (unblock).
	changeDelay atomic.Int64
	blockTrans  atomic.Bool
	release     chan struct{}
	// fence is the last instant OnFence gave: past it, a responder that
	// heeds it sends nothing.
	fence atomic.Pointer[time.Time]
	once  sync.Once
}

func (m *member) unblock() { m.once.Do(func() { close(m.release) }) }

type cluster struct {
	t        testing.TB
	env      *kubetest.Env
	ns       string
	duration time.Duration
	interval time.Duration
	rec      *recorder
	mu       sync.Mutex
	members  map[string]*member
}

func newCluster(t testing.TB, duration, interval time.Duration) *cluster {
	env := shared.Env(t)
	return &cluster{
		t: t, env: env, ns: env.Namespace(t), duration: duration, interval: interval,
		rec:     &recorder{cur: map[string]map[netip.Addr]bool{}},
		members: map[string]*member{},
	}
}

// start runs an elector for node with the given candidacy and wants.
func (c *cluster) start(node string, want []Want, policies ...string) *member {
	c.t.Helper()
	return c.startSlow(node, 0, want, policies...)
}

// startSlow is start with every request of the node delayed by latency.
func (c *cluster) startSlow(node string, latency time.Duration, want []Want, policies ...string) *member {
	c.t.Helper()
	m := c.newMember(node, latency)
	m.e.Set(want)
	m.e.SetCandidacy(true, policies)
	c.run(m)
	return m
}

// newMember makes node's elector, not yet running and not yet told
// anything.
func (c *cluster) newMember(node string, latency time.Duration) *member {
	c.t.Helper()
	m := &member{node: node, done: make(chan error, 1), release: make(chan struct{})}
	m.delay.Store(int64(latency))
	cfg := rest.CopyConfig(c.env.Config)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return transport{rt: rt, frozen: &m.frozen, hung: &m.hung, stalled: &m.stalled, writes: &m.writes, delay: &m.delay, held: &m.held}
	}
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", node)
	}
	onChange := c.rec.onChange(node)
	e, err := New(cfg, Config{
		Namespace: c.ns, Node: node, LeaseDuration: c.duration, RenewInterval: c.interval,
		OnChange: func(owned []netip.Addr) {
			// A responder slow to stop: the answers end when it returns.
			time.Sleep(time.Duration(m.changeDelay.Load()))
			onChange(owned)
		},
		OnTransition: func(t Transition) {
			if m.blockTrans.Load() {
				<-m.release
			}
			c.rec.mu.Lock()
			c.rec.trans = append(c.rec.trans, t)
			c.rec.mu.Unlock()
		},
		OnFence: func(until time.Time) {
			if prev := m.fence.Load(); prev != nil && until.Before(*prev) {
				c.t.Errorf("%s: fence moved back from %v to %v", node, *prev, until)
			}
			m.fence.Store(&until)
		},
		Log: log,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	m.e = e
	c.mu.Lock()
	c.members[node] = m
	c.mu.Unlock()
	return m
}

// run runs m's elector until the test ends.
func (c *cluster) run(m *member) {
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() { m.done <- m.e.Run(ctx) }()
	c.t.Cleanup(func() { c.kill(m) })
	c.t.Cleanup(m.unblock) // first: a blocked callback would hold kill up
}

// kill ends m's Run without a graceful stop, and waits for it.
func (c *cluster) kill(m *member) {
	m.cancel()
	select {
	case <-m.done:
		m.done <- nil // for a second kill
	case <-time.After(time.Minute):
		c.t.Errorf("%s: Run did not return", m.node)
	}
}

func (c *cluster) setAll(want []Want) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.members {
		m.e.Set(want)
	}
}

// waitOwners waits until every address of want is answered by exactly the
// node expect gives (and nothing else is answered by anyone).
func (c *cluster) waitOwners(timeout time.Duration, want []Want, expect func(netip.Addr) string) time.Duration {
	c.t.Helper()
	start := time.Now()
	var last string
	for time.Since(start) < timeout {
		last = c.ownersDiff(want, expect)
		if last == "" {
			return time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.t.Fatalf("after %v: %s", timeout, last)
	return 0
}

func (c *cluster) ownersDiff(want []Want, expect func(netip.Addr) string) string {
	owners := c.rec.owners()
	for _, w := range want {
		got, exp := owners[w.Addr], expect(w.Addr)
		if exp == "" && len(got) == 0 {
			continue
		}
		if len(got) != 1 || got[0] != exp {
			return fmt.Sprintf("%s answered by %v, want %q", w.Addr, got, exp)
		}
	}
	wanted := map[netip.Addr]bool{}
	for _, w := range want {
		wanted[w.Addr] = true
	}
	for a, nodes := range owners {
		if !wanted[a] {
			return fmt.Sprintf("%s answered by %v, not wanted", a, nodes)
		}
	}
	return ""
}

// wants is n addresses of 203.0.113.0/24 (n ≤ 254) or 198.18.0.0/15.
func wants(n int, policies ...string) []Want {
	out := make([]Want, n)
	for i := range out {
		a := netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)})
		if n > 254 {
			a = netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		}
		out[i] = Want{Addr: a, Policies: policies, Services: []string{fmt.Sprintf("default/svc-%d", i)}}
	}
	return out
}

// bestFn ranks like Decide over the given nodes, all with policy p.
func bestFn(nodes ...string) func(netip.Addr) string {
	return func(a netip.Addr) string { return bestOf(a, nodes...) }
}

// checkSafety: for every address from moved away from, from's OnChange
// dropped it before to's added it (after since).
// checkFence: after a crash (no handover), the fence OnFence last gave the
// crashed node ends before any other node takes one of its addresses, so a
// responder that heeds it is silent even if the loop was late to drop them.
func (c *cluster) checkFence(want []Want, from string, to func(netip.Addr) string, since time.Time) {
	c.t.Helper()
	f := c.members[from].fence.Load()
	n := 0
	for _, w := range want {
		if bestOf(w.Addr, slices.Collect(maps.Keys(c.members))...) != from {
			continue
		}
		added, ok := c.rec.added(to(w.Addr), w.Addr, since)
		if !ok {
			continue // checkSafety says so
		}
		n++
		if f == nil || !f.Before(added) {
			c.t.Errorf("%s: %s's fence (%v) does not end before %s added it (%v)", w.Addr, from, f, to(w.Addr), added)
		}
	}
	if n == 0 {
		c.t.Errorf("no address moved away from %s: the fence check tests nothing", from)
	}
}

func (c *cluster) checkSafety(want []Want, from string, to func(netip.Addr) string, since time.Time) {
	c.t.Helper()
	n := 0
	gap := time.Duration(1 << 62)
	defer func() {
		if n > 0 {
			c.t.Logf("%d addresses moved from %s: dropped at least %v before taken", n, from, gap)
		}
	}()
	for _, w := range want {
		if bestOf(w.Addr, slices.Collect(maps.Keys(c.members))...) != from {
			continue
		}
		dropped, ok1 := c.rec.dropped(from, w.Addr, since)
		added, ok2 := c.rec.added(to(w.Addr), w.Addr, since)
		if !ok1 || !ok2 {
			c.t.Errorf("%s: dropped %v (%v), added by %s %v (%v)", w.Addr, ok1, dropped, to(w.Addr), ok2, added)
			continue
		}
		if !dropped.Before(added) {
			c.t.Errorf("%s: %s added it %v before %s dropped it", w.Addr, to(w.Addr), dropped.Sub(added), from)
		}

		gap = min(gap, added.Sub(dropped))
		n++
	}
	if n == 0 {
		c.t.Errorf("no address moved away from %s: the test tests nothing", from)
	}
}
