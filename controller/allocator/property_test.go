package allocator

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	klabels "k8s.io/apimachinery/pkg/labels"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

// world generates random pools and requests over a small address universe,
// so that collisions, exhaustion, sharing and pool churn are frequent.
type world struct {
	rng  *rand.Rand
	keys []lbmodel.Key
	// Per-Service identity that does not change between requests (a
	// Service's namespace labels come with its namespace).
	nsLabels map[string]map[string]string
}

var worldRanges = []string{
	"203.0.113.0/29",
	"203.0.113.4-203.0.113.12", // overlaps the one above
	"203.0.113.16-203.0.113.19",
	"198.51.100.254-198.51.101.1", // crosses .255/.0 for avoidBuggyIPs
	"198.51.100.7",
	"2001:db8::/125",
	"2001:db8::4-2001:db8::a", // overlaps the one above
	"2001:db8:1::fe-2001:db8:1::101",
}

var worldPorts = []Port{{TCP, 53}, {UDP, 53}, {TCP, 80}, {TCP, 443}}

func newWorld(seed uint64) *world {
	w := &world{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	for _, ns := range []string{"red", "blue", "green"} {
		for i := range 5 {
			w.keys = append(w.keys, lbmodel.Key{Namespace: ns, Name: fmt.Sprintf("svc%d", i)})
		}
	}
	w.nsLabels = map[string]map[string]string{"red": {"team": "a"}, "blue": {"team": "b"}, "green": {}}
	return w
}

func (w *world) pick(n int) int { return w.rng.IntN(n) }

func (w *world) pools() []lbmodel.Pool {
	var out []lbmodel.Pool
	for i := range 1 + w.pick(4) {
		p := lbmodel.Pool{Name: fmt.Sprintf("p%d", w.pick(5)), AutoAssign: w.pick(6) != 0, AvoidBuggyIPs: w.pick(3) == 0}
		if i == 0 && w.pick(10) == 0 {
			p.Name = "" // refused
		}
		for range 1 + w.pick(3) {
			r, err := lbmodel.ParseRange(worldRanges[w.pick(len(worldRanges))])
			if err != nil {
				panic(err)
			}
			p.Ranges = append(p.Ranges, r)
		}
		switch w.pick(8) {
		case 0:
			p.Allocation = &lbmodel.ServiceAllocation{Priority: w.pick(3), Namespaces: []string{"red"}}
		case 1:
			p.Allocation = &lbmodel.ServiceAllocation{Priority: w.pick(3),
				NamespaceSelectors: []klabels.Selector{sel("team=b")}}
		case 2:
			p.Allocation = &lbmodel.ServiceAllocation{Priority: w.pick(3),
				ServiceSelectors: []klabels.Selector{sel("app in (web)")}}
		}
		out = append(out, p)
	}
	return out
}

func (w *world) addr() netip.Addr {
	r, _ := lbmodel.ParseRange(worldRanges[w.pick(len(worldRanges))])
	x := r.First
	for range w.pick(8) {
		if x.Next().IsValid() {
			x = x.Next()
		}
	}
	if w.pick(10) == 0 {
		return netip.MustParseAddr("203.0.113.200") // outside every pool
	}
	return x
}

// request is a random request; held says what the Service holds now, which
// it asks for by name now and then, as a Service with loadBalancerIP does.
func (w *world) request(held func(lbmodel.Key) []netip.Addr) Request {
	k := w.keys[w.pick(len(w.keys))]
	req := Request{
		Key:             k,
		NamespaceLabels: w.nsLabels[k.Namespace],
		Labels:          [](map[string]string){nil, {"app": "web"}, {"app": "db"}}[w.pick(3)],
		Policy:          FamilyPolicy(w.pick(3)),
		SharingKey:      []string{"", "k1", "k2"}[w.pick(3)],
		TrafficPolicy:   lbmodel.TrafficPolicy(w.pick(2)),
		Selector:        []string{"", "app=web", "app=db"}[w.pick(3)],
	}
	switch w.pick(4) {
	case 0:
		req.Families = []Family{IPv4}
	case 1:
		req.Families = []Family{IPv6}
	case 2:
		req.Families = []Family{IPv4, IPv6}
	default:
		req.Families = []Family{IPv6, IPv4}
	}
	for _, p := range worldPorts {
		if w.pick(3) == 0 {
			req.Ports = append(req.Ports, p)
		}
	}
	if h := held(k); len(h) > 0 && w.pick(6) == 0 {
		req.Addresses = h
	} else if w.pick(4) == 0 {
		req.Addresses = []netip.Addr{w.addr()}
		if w.pick(3) == 0 {
			req.Addresses = append(req.Addresses, w.addr())
		}
	}
	if w.pick(8) == 0 {
		req.Pool = fmt.Sprintf("p%d", w.pick(6))
	}
	return req
}

// coverage counts what a random walk reached, so that a generator change
// that stops reaching something fails instead of passing vacuously.
type coverage struct {
	reasons                                            [FamilyUnavailable + 1]int
	shared, orphaned, retry, reclaimed, released, dual int
}

// walk is one seeded random walk driving the allocator and the twin alike.
type walk struct {
	t     *testing.T
	w     *world
	a     *Allocator
	tw    *twin
	hold  time.Duration
	now   time.Time
	cover *coverage
}

// TestPropertyAgainstTwin runs thousands of random operations on the real
// allocator and the twin, comparing every answer and the whole state after
// each, and checking the invariants on the real one.
func TestPropertyAgainstTwin(t *testing.T) {
	const seeds, ops = 40, 500
	var cover coverage
	for seed := range uint64(seeds) {
		w := newWorld(seed)
		pools := w.pools()
		hold := 10 * time.Second
		cfg := Config{HoldDown: hold * time.Duration(seed%2)} // half the seeds without hold-down
		a, _ := New(cfg, pools)
		wk := &walk{t: t, w: w, a: a, tw: newTwin(cfg, pools), hold: hold, now: t0, cover: &cover}
		for op := range ops {
			wk.step(fmt.Sprintf("seed %d op %d", seed, op))
		}
	}
	for r, n := range cover.reasons {
		if n < 20 {
			t.Errorf("only %d allocations ended with reason %v", n, Reason(r))
		}
		name := Reason(r).String()
		if r == 0 {
			name = "(allocated)"
		}
		t.Logf("%-18s %d", name, n)
	}
	t.Logf("seen: %+v", cover)
	if c := cover; c.shared < 100 || c.orphaned < 100 || c.retry < 20 || c.reclaimed < 20 || c.released < 100 || c.dual < 100 {
		t.Errorf("the random walk missed a behaviour: %+v", c)
	}
}

// held is what a Service holds now.
func (wk *walk) held(k lbmodel.Key) []netip.Addr {
	as, _ := wk.a.Lookup(k)
	var out []netip.Addr
	for _, x := range as.Addresses {
		out = append(out, x.Addr)
	}
	return out
}

func (wk *walk) step(where string) {
	t, w, a, tw := wk.t, wk.w, wk.a, wk.tw
	switch n := w.pick(100); {
	case n < 60:
		wk.allocate(where)
	case n < 75:
		k := w.keys[w.pick(len(w.keys))]
		if got, want := a.Release(k, wk.now), tw.release(k, wk.now); !slices.Equal(got, want) {
			t.Fatalf("%s release %v: got %v, twin %v", where, k, got, want)
		}
	case n < 80:
		req := w.request(wk.held)
		addrs := []netip.Addr{w.addr()}
		if w.pick(2) == 0 {
			addrs = append(addrs, w.addr())
		}
		got, gerr := a.Restore(req, addrs, wk.now)
		want, werr := tw.restore(req, addrs, wk.now)
		compareResult(t, where+" restore", got, gerr, want, werr)
	case n < 85:
		pools := w.pools()
		a.SetPools(pools)
		tw.setPools(pools)
	default:
		wk.now = wk.now.Add(time.Duration(w.pick(4)) * wk.hold / 2)
		if w.pick(20) == 0 {
			wk.now = wk.now.Add(-wk.hold) // a clock stepping back counts as standing still
		}
	}
	compareState(t, where, a, tw, wk.now)
	checkInvariants(t, where, a)
	wk.cover.orphaned += len(a.Orphans())
	for _, hs := range a.holders {
		if len(hs) > 1 {
			wk.cover.shared++
		}
	}
}

func (wk *walk) allocate(where string) {
	req := wk.w.request(wk.held)
	own := map[netip.Addr]bool{} // what the Service released and may reclaim
	for x, r := range wk.tw.released {
		own[x] = r.key == req.Key && wk.now.Before(r.at.Add(wk.hold))
	}
	got, gerr := wk.a.Allocate(req, wk.now)
	want, werr := wk.tw.allocate(req, wk.now)
	compareResult(wk.t, where+" allocate "+fmt.Sprint(req), got, gerr, want, werr)
	c := wk.cover
	c.reasons[reasonOf(gerr)]++
	if e, ok := gerr.(*Error); ok && !e.RetryAt.IsZero() {
		c.retry++
	}
	if len(got.Released) > 0 {
		c.released++
	}
	if len(got.Addresses) == 2 {
		c.dual++
	}
	for _, x := range got.Addresses {
		if _, ok := wk.a.released[x.Addr]; ok {
			wk.t.Fatalf("%s: %v still held down after %v took it", where, x.Addr, req.Key)
		}
		if own[x.Addr] {
			c.reclaimed++
		}
	}
}

func compareResult(t *testing.T, where string, got Allocation, gerr error, want Allocation, werr error) {
	t.Helper()
	if reasonOf(gerr) != reasonOf(werr) || (gerr == nil) != (werr == nil) {
		t.Fatalf("%s: got %v, %v; twin %v, %v", where, got, gerr, want, werr)
	}
	if gerr != nil {
		ge, we := gerr.(*Error), werr.(*Error)
		if !ge.RetryAt.Equal(we.RetryAt) {
			t.Fatalf("%s: RetryAt %v, twin %v", where, ge.RetryAt, we.RetryAt)
		}
		return
	}
	if !reflect.DeepEqual(got.Addresses, want.Addresses) || !slices.Equal(got.Released, want.Released) {
		t.Fatalf("%s: got %+v; twin %+v", where, got, want)
	}
}

func compareState(t *testing.T, where string, a *Allocator, tw *twin, now time.Time) {
	t.Helper()
	got, want := a.Assignments(), tw.assignments()
	if !equalAssignments(got, want) {
		t.Fatalf("%s: assignments\n got %+v\nwant %+v", where, got, want)
	}
	if a.Len() != len(want) {
		t.Fatalf("%s: Len %d, want %d", where, a.Len(), len(want))
	}
	if gs, ws := a.Stats(now), tw.stats(now); !slices.Equal(gs, ws) {
		t.Fatalf("%s: stats\n got %+v\nwant %+v", where, gs, ws)
	}
	var wantOrphans []Orphan
	for _, as := range want {
		for _, x := range as.Addresses {
			if x.Pool == "" {
				wantOrphans = append(wantOrphans, Orphan{Key: as.Key, Addr: x.Addr})
			}
		}
	}
	gotOrphans := a.Orphans()
	if len(gotOrphans) != len(wantOrphans) {
		t.Fatalf("%s: orphans %v, want %v", where, gotOrphans, wantOrphans)
	}
	for i := range gotOrphans {
		if gotOrphans[i].Key != wantOrphans[i].Key || gotOrphans[i].Addr != wantOrphans[i].Addr || gotOrphans[i].Why == "" {
			t.Fatalf("%s: orphans %v, want %v", where, gotOrphans, wantOrphans)
		}
	}
}

func equalAssignments(a, b []Assignment) bool {
	return slices.EqualFunc(a, b, func(x, y Assignment) bool {
		return x.Key == y.Key && x.SharingKey == y.SharingKey && x.TrafficPolicy == y.TrafficPolicy && x.Selector == y.Selector &&
			slices.Equal(x.Ports, y.Ports) && slices.Equal(x.Addresses, y.Addresses)
	})
}

// checkInvariants holds whatever the operations: no address is held by two
// Services that may not share it, no Service holds two addresses of one
// family, every held address is in a pool or listed as an orphan, and the
// counts add up.
func checkInvariants(t *testing.T, where string, a *Allocator) {
	t.Helper()
	byAddr := map[netip.Addr][]Assignment{}
	orphans := map[netip.Addr]bool{}
	for _, o := range a.Orphans() {
		orphans[o.Addr] = true
	}
	for _, as := range a.Assignments() {
		if len(as.Addresses) == 0 || len(as.Addresses) > 2 ||
			len(as.Addresses) == 2 && FamilyOf(as.Addresses[0].Addr) == FamilyOf(as.Addresses[1].Addr) {
			t.Fatalf("%s: %v holds %v", where, as.Key, as.Addresses)
		}
		for _, x := range as.Addresses {
			if x.Pool == "" && !orphans[x.Addr] {
				t.Fatalf("%s: %v holds %v, in no pool and not an orphan", where, as.Key, x.Addr)
			}
			byAddr[x.Addr] = append(byAddr[x.Addr], as)
		}
	}
	for x, hs := range byAddr {
		for i := range hs {
			for j := range i {
				if !assignmentsShare(hs[i], hs[j]) {
					t.Fatalf("%s: %v held by %v and %v, which may not share", where, x, hs[i], hs[j])
				}
			}
		}
	}
	for _, st := range a.Stats(time.Time{}) {
		if st.Size != ^uint64(0) && st.Assigned+st.HoldDown+st.Available != st.Size {
			t.Fatalf("%s: stats do not add up: %+v", where, st)
		}
	}
}

// assignmentsShare is the sharing rule restated once more, over the
// snapshot, independently of both implementations.
func assignmentsShare(a, b Assignment) bool {
	if a.SharingKey == "" || a.SharingKey != b.SharingKey || a.TrafficPolicy != b.TrafficPolicy {
		return false
	}
	if a.TrafficPolicy == lbmodel.Local && (a.Selector == "" || a.Selector != b.Selector) {
		return false
	}
	for _, p := range a.Ports {
		for _, q := range b.Ports {
			if p == q {
				return false
			}
		}
	}
	return true
}
