package fib

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/labtest"
)

// requireResilient ends the test when the kernel has no resilient groups
// (before 5.13): a skip on a developer's machine, a failure in CI.
func requireResilient(t *testing.T, f *FIB) {
	t.Helper()
	if !f.ResilientGroups() {
		labtest.Missing(t, "the kernel has no resilient nexthop groups (Linux 5.13+)")
	}
}

// ipBuckets is `ip nexthop bucket show id ID`: the member id of every
// bucket, by index. iproute2 is the oracle, not our own parser.
func (ns *testNS) ipBuckets(t *testing.T, id uint32) []uint32 {
	t.Helper()
	bs, err := lab.ParseBuckets([]byte(ns.ip(t, "-j", "nexthop", "bucket", "show", "id", fmt.Sprint(id))))
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

// ipGroup is a group as `ip -d nexthop show id ID` describes it.
type ipGroup struct {
	Members []uint32
	Type    string
	Buckets int
	Idle    int // seconds
}

func (ns *testNS) ipGroup(t *testing.T, id uint32) ipGroup {
	t.Helper()
	var gs []struct {
		Group []struct {
			ID uint32 `json:"id"`
		} `json:"group"`
		Type string `json:"type"`
		Res  struct {
			Buckets int `json:"buckets"`
			Idle    int `json:"idle_timer"`
		} `json:"resilient_args"`
	}
	js := ns.ip(t, "-j", "-d", "nexthop", "show", "id", fmt.Sprint(id))
	if err := json.Unmarshal([]byte(js), &gs); err != nil || len(gs) != 1 {
		t.Fatalf("ip -j -d nexthop show id %d: %v: %s", id, err, js)
	}
	g := ipGroup{Type: gs[0].Type, Buckets: gs[0].Res.Buckets, Idle: gs[0].Res.Idle}
	if g.Type == "" {
		g.Type = "mpath"
	}
	for _, m := range gs[0].Group {
		g.Members = append(g.Members, m.ID)
	}
	return g
}

// singleID is the id of our single object for gateway gw (0: none).
func (ns *testNS) singleID(t *testing.T, gw string) uint32 {
	t.Helper()
	for _, n := range ns.ipNexthops(t) {
		if n.Gateway == gw && len(n.Group) == 0 {
			return n.ID
		}
	}
	return 0
}

// nhidOf returns the nexthop object id of the route to p, of either
// family (0: inline).
func (ns *testNS) nhidOf(t *testing.T, p string) uint32 {
	t.Helper()
	fam := "-4"
	if mustPrefix(p).Addr().Is6() {
		fam = "-6"
	}
	var rs []ipRoute
	if err := json.Unmarshal([]byte(ns.ip(t, "-j", fam, "route", "show", p)), &rs); err != nil || len(rs) != 1 {
		t.Fatalf("ip route show %s: %v %v", p, rs, err)
	}
	return rs[0].NHID
}

// sameGroup returns the object id all routes of ps go through.
func (ns *testNS) sameGroup(t *testing.T, ps []string) uint32 {
	t.Helper()
	id := ns.nhidOf(t, ps[0])
	for _, p := range ps[1:] {
		if got := ns.nhidOf(t, p); got != id {
			t.Fatalf("route %s through object %d, %s through %d", ps[0], id, p, got)
		}
	}
	return id
}

// numbered returns n prefixes, format filled in with 1..n.
func numbered(format string, n int) []string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = fmt.Sprintf(format, i+1)
	}
	return ps
}

func changesFor(ps []string, gws ...string) []Change {
	cs := make([]Change, len(ps))
	for i, p := range ps {
		cs[i] = change(p, gws...)
	}
	return cs
}

func routesFor(ps []string, gws ...string) []Route {
	rs := make([]Route, len(ps))
	for i, p := range ps {
		rs[i] = route(p, gws...)
	}
	return rs
}

// count returns how many buckets point at id.
func count(bs []uint32, id uint32) int {
	n := 0
	for _, b := range bs {
		if b == id {
			n++
		}
	}
	return n
}

// TestResilientMemberLeavesAndReturns proves what resilient groups are for:
// when one of three gateways leaves every route (a peer going down), each
// bucket that pointed at a surviving gateway still does, and only the
// leaver's buckets are dealt out; when it comes back, buckets move to it
// (once idle) and the others stay. The group is the same object
// throughout: its routes are never rewritten.
func TestResilientMemberLeavesAndReturns(t *testing.T) {
	ns := newNS(t)
	ctx := testCtx(t)
	f := ns.open(t, Config{NextHopObjects: NextHopOn, Resilient: Resilient{IdleTimer: time.Second}})
	requireResilient(t, f)
	ps := []string{"203.0.113.1/32", "203.0.113.2/32", "203.0.113.3/32"}
	all := []string{"198.51.100.2", "198.51.100.3", "198.51.100.4"}
	if _, err := f.Apply(ctx, changesFor(ps, all...)); err != nil {
		t.Fatal(err)
	}
	checkKernel(t, ns, f, routesFor(ps, all...))
	g := ns.sameGroup(t, ps)
	if got := ns.ipGroup(t, g); got.Type != "resilient" || got.Buckets != defaultBuckets || got.Idle != 1 || len(got.Members) != 3 {
		t.Fatalf("group %d = %+v, want resilient, %d buckets, idle timer 1s, 3 members", g, got, defaultBuckets)
	}
	before := ns.ipBuckets(t, g)
	gone := ns.singleID(t, "198.51.100.4")
	if len(before) != defaultBuckets || count(before, gone) == 0 {
		t.Fatalf("buckets before: %d, %d of them on the leaver", len(before), count(before, gone))
	}

	writes := f.Stats().Writes
	if _, err := f.Apply(ctx, changesFor(ps, all[:2]...)); err != nil {
		t.Fatal(err)
	}
	checkKernel(t, ns, f, routesFor(ps, all[:2]...))
	if got := ns.sameGroup(t, ps); got != g {
		t.Fatalf("routes moved from group %d to %d: its buckets were dealt afresh", g, got)
	}
	if st := f.Stats(); st.Writes != writes || st.Rekeyed != 1 {
		t.Errorf("%d route writes and %d groups changed in place, want 0 and 1", st.Writes-writes, st.Rekeyed)
	}
	after := ns.ipBuckets(t, g)
	if len(after) != len(before) {
		t.Fatalf("%d buckets after, %d before", len(after), len(before))
	}
	for i := range before {
		switch {
		case after[i] == gone:
			t.Errorf("bucket %d still points at the removed gateway's object %d", i, gone)
		case before[i] != gone && after[i] != before[i]:
			t.Errorf("bucket %d moved from surviving member %d to %d", i, before[i], after[i])
		}
	}
	if id := ns.singleID(t, "198.51.100.4"); id != 0 {
		t.Errorf("the removed gateway's object %d is still there", id)
	}

	// The gateway returns: it is added to the same group, and buckets
	// move to it only from members over their share, once idle.
	if _, err := f.Apply(ctx, changesFor(ps, all...)); err != nil {
		t.Fatal(err)
	}
	checkKernel(t, ns, f, routesFor(ps, all...))
	if got := ns.sameGroup(t, ps); got != g {
		t.Fatalf("routes moved from group %d to %d when a member joined", g, got)
	}
	back := ns.singleID(t, "198.51.100.4")
	var now []uint32
	waitFor(t, 15*time.Second, func() bool {
		now = ns.ipBuckets(t, g)
		return count(now, back) >= defaultBuckets/3
	})
	for i := range after {
		if now[i] != after[i] && now[i] != back {
			t.Errorf("bucket %d moved from %d to %d, not to the member that joined", i, after[i], now[i])
		}
	}
}

// TestResilientNotAllRoutesMove: when only some routes of a group leave
// for a new set, the group keeps its members for the others, and the
// movers get a group of their own.
func TestResilientNotAllRoutesMove(t *testing.T) {
	ns := newNS(t)
	ctx := testCtx(t)
	f := ns.open(t, Config{NextHopObjects: NextHopOn})
	requireResilient(t, f)
	ps := []string{"203.0.113.1/32", "203.0.113.2/32"}
	all := []string{"198.51.100.2", "198.51.100.3", "198.51.100.4"}
	if _, err := f.Apply(ctx, changesFor(ps, all...)); err != nil {
		t.Fatal(err)
	}
	g := ns.sameGroup(t, ps)
	before := ns.ipBuckets(t, g)
	if _, err := f.Apply(ctx, changesFor(ps[1:], all[:2]...)); err != nil {
		t.Fatal(err)
	}
	want := append(routesFor(ps[:1], all...), routesFor(ps[1:], all[:2]...)...)
	checkKernel(t, ns, f, want)
	if got := ns.nhidOf(t, ps[0]); got != g {
		t.Errorf("the route that kept its set moved from group %d to %d", g, got)
	}
	if got := ns.ipBuckets(t, g); !slices.Equal(got, before) {
		t.Errorf("the buckets of a group whose set did not change moved")
	}
	if f.Stats().Rekeyed != 0 {
		t.Errorf("a group changed in place while one of its routes kept the old set")
	}
}

// TestResilientRestartAndRepair: a restart adopts a resilient group as it
// stands (no rewrite: its buckets stay); a group deleted behind the FIB's
// back comes back, resilient, with its routes; and a change of idle timer
// replaces the group in place, while a change to hash-threshold groups and
// back moves the routes to new groups without a gap.
func TestResilientRestartAndRepair(t *testing.T) {
	ns := newNS(t)
	ctx := testCtx(t)
	cfg := Config{NextHopObjects: NextHopOn, Resilient: Resilient{IdleTimer: 30 * time.Second}}
	first := ns.open(t, cfg)
	requireResilient(t, first)
	ps := []string{"203.0.113.1/32", "203.0.113.2/32", "2001:db8:100::1/128"}
	gws4 := []string{"198.51.100.2", "198.51.100.3", "198.51.100.4"}
	want := append(routesFor(ps[:2], gws4...), route(ps[2], "2001:db8::2", "2001:db8::3"))
	if _, err := first.Apply(ctx, Diff(nil, want)); err != nil {
		t.Fatal(err)
	}
	g := ns.sameGroup(t, ps[:2])
	before := ns.ipBuckets(t, g)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	second := ns.open(t, cfg)
	checkKernel(t, ns, second, want)
	if got := ns.sameGroup(t, ps[:2]); got != g {
		t.Fatalf("restart moved the routes from group %d to %d", g, got)
	}
	if st := second.Stats(); st.Writes != 0 || st.Groups != "resilient" {
		t.Errorf("restart: %d route writes, groups %q; want 0, resilient", st.Writes, st.Groups)
	}
	if got := ns.ipBuckets(t, g); !slices.Equal(got, before) {
		t.Errorf("restart changed the buckets of group %d", g)
	}

	stop := maintainUntil(t, second)
	ns.ip(t, "nexthop", "del", "id", fmt.Sprint(g))
	waitFor(t, 10*time.Second, func() bool {
		r, err := second.Check(ctx)
		return err == nil && r.Equal() && len(ns.ipRoutes(t, 254, "bgp", 20)) == len(want)
	})
	checkKernel(t, ns, second, want)
	if got := ns.ipGroup(t, ns.sameGroup(t, ps[:2])); got.Type != "resilient" || got.Idle != 30 {
		t.Errorf("group written again as %+v, want resilient, idle timer 30s", got)
	}
	stop()
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}

	// Other timers: the same group, replaced in place.
	g = ns.sameGroup(t, ps[:2])
	before = ns.ipBuckets(t, g)
	cfg.Resilient.IdleTimer = 60 * time.Second
	third := ns.open(t, cfg)
	checkKernel(t, ns, third, want)
	if got := ns.sameGroup(t, ps[:2]); got != g {
		t.Errorf("a new idle timer moved the routes from group %d to %d", g, got)
	}
	if got := ns.ipGroup(t, g); got.Idle != 60 {
		t.Errorf("idle timer %ds after Open, want 60", got.Idle)
	}
	if got := ns.ipBuckets(t, g); !slices.Equal(got, before) {
		t.Errorf("a new idle timer changed the buckets")
	}
	third.Close()

	// Hash-threshold groups, resilient again, then another bucket count:
	// new groups each time, the old ones deleted, and no route ever
	// deleted on the way (make-before-break).
	steps := []struct {
		off     bool
		buckets uint16
		typ     string
	}{{true, 0, "mpath"}, {false, 0, "resilient"}, {false, 512, "resilient"}}
	for _, s := range steps {
		cfg.Resilient.Off, cfg.Resilient.Buckets = s.off, s.buckets
		deleted := ns.watchDeletes(t)
		f := ns.open(t, cfg)
		checkKernel(t, ns, f, want)
		if d := deleted(); d != "" {
			t.Errorf("%+v: routes deleted while they moved:\n%s", s, d)
		}
		g := ns.sameGroup(t, ps[:2])
		if got := ns.ipGroup(t, g); got.Type != s.typ || (s.buckets != 0 && got.Buckets != int(s.buckets)) {
			t.Errorf("%+v: group %d is %+v", s, g, got)
		}
		if got := f.Stats().Groups; got != s.typ {
			t.Errorf("Stats().Groups = %q, want %q", got, s.typ)
		}
		f.Close()
	}
}

// watchDeletes runs `ip monitor route` in the namespace; the returned func
// stops it, once a marker route's deletion has shown that everything
// before was read, and returns the route deletions it saw before the
// marker.
func (ns *testNS) watchDeletes(t *testing.T) func() string {
	t.Helper()
	cmd := exec.Command("ip", "-n", ns.name, "monitor", "route")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The reader is stopped by the cleanup: the kill ends its input, and
	// done frees it from a send nobody takes; Wait comes after it, as
	// os/exec asks of a StdoutPipe.
	lines := make(chan string, 1024)
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-done:
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		close(done)
		<-stopped
		_ = cmd.Wait()
	})
	// The monitor is subscribed once it reports a change: a marker route
	// comes and goes until it does.
	const start, end = "203.0.113.254", "203.0.113.253"
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for present, seen := false, false; !seen; present = !present {
		verb := map[bool]string{false: "add", true: "del"}[present]
		ns.ip(t, "route", verb, start+"/32", "dev", "d0", "proto", "static")
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("ip monitor ended")
			}
			seen = strings.Contains(l, start)
		case <-tick.C:
		case <-deadline:
			t.Fatal("ip monitor reported nothing within 10s")
		}
		if seen && !present {
			ns.ip(t, "route", "del", start+"/32", "dev", "d0", "proto", "static")
		}
	}
	return func() string {
		ns.ip(t, "route", "add", end+"/32", "dev", "d0", "proto", "static")
		defer ns.ip(t, "route", "del", end+"/32", "dev", "d0", "proto", "static")
		var deleted []string
		deadline := time.After(10 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				switch {
				case !ok:
					t.Fatal("ip monitor ended")
				case strings.Contains(l, end):
					_ = cmd.Process.Kill()
					return strings.Join(deleted, "\n")
				case strings.HasPrefix(l, "Deleted") && !strings.Contains(l, start):
					deleted = append(deleted, l)
				}
			case <-deadline:
				t.Fatal("ip monitor did not report the end marker within 10s")
			}
		}
	}
}

// TestResilientGatewayDown: a gateway whose link goes down leaves the
// group (the kernel flushes its object; the FIB's resync finds it
// unusable) without moving the others' buckets, and comes back into the
// same group when the link does.
func TestResilientGatewayDown(t *testing.T) {
	ns := newNS(t)
	ctx := testCtx(t)
	for _, args := range [][]string{
		{"link", "add", "d2", "type", "veth", "peer", "name", "d3"},
		{"link", "set", "d2", "addrgenmode", "none"},
		{"link", "set", "d3", "addrgenmode", "none"},
		{"link", "set", "d2", "up"},
		{"link", "set", "d3", "up"},
		{"addr", "add", "2001:db8:1::1/64", "dev", "d2", "nodad"},
	} {
		ns.ip(t, args...)
	}
	ns.waitUp(t, "d2", "d3")
	// The gateway's network must come back with the link.
	run(t, "ip", "netns", "exec", ns.name, "sysctl", "-qw", "net.ipv6.conf.d2.keep_addr_on_down=1")
	f := ns.open(t, Config{NextHopObjects: NextHopOn, Resilient: Resilient{IdleTimer: time.Second}})
	requireResilient(t, f)
	maintain(t, f, MaintainOptions{})
	ps := []string{"2001:db8:100::1/128", "2001:db8:100::2/128"}
	gws := []string{"2001:db8::2", "2001:db8::3", "2001:db8:1::2"}
	if _, err := f.Apply(ctx, changesFor(ps, gws...)); err != nil {
		t.Fatal(err)
	}
	g := ns.sameGroup(t, ps)
	before := ns.ipBuckets(t, g)
	leaver := ns.singleID(t, "2001:db8:1::2")

	ns.ip(t, "link", "set", "d2", "down")
	waitFor(t, 10*time.Second, func() bool { return len(ns.ipGroup(t, g).Members) == 2 })
	after := ns.ipBuckets(t, g)
	for i := range before {
		if before[i] != leaver && after[i] != before[i] {
			t.Errorf("bucket %d moved from surviving member %d to %d", i, before[i], after[i])
		}
	}
	if got := ns.sameGroup(t, ps); got != g {
		t.Errorf("routes moved from group %d to %d", g, got)
	}

	ns.ip(t, "link", "set", "d2", "up")
	ns.waitUp(t, "d2")
	waitFor(t, 10*time.Second, func() bool { return len(ns.ipGroup(t, g).Members) == 3 })
	if got := ns.sameGroup(t, ps); got != g {
		t.Errorf("routes moved from group %d to %d when the gateway came back", g, got)
	}
	checkRoutes(t, ns, f, routesFor(ps, gws...))
	back := ns.singleID(t, "2001:db8:1::2")
	waitFor(t, 15*time.Second, func() bool { return count(ns.ipBuckets(t, g), back) >= defaultBuckets/3 })
	if got := ns.ipGroup(t, g).Type; got != "resilient" {
		t.Errorf("group %d is %s, no longer resilient", g, got)
	}
}

// fakeClock stops f's clock; advance moves it on.
func fakeClock(f *FIB) (advance func(time.Duration)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	f.clock = func() time.Time { return now }
	return func(d time.Duration) {
		f.mu.Lock()
		defer f.mu.Unlock()
		now = now.Add(d)
	}
}

// maintainUntil runs f.Maintain until the returned stop is called or the
// test ends.
func maintainUntil(t *testing.T, f *FIB) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Maintain(ctx, MaintainOptions{}) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && ctx.Err() == nil {
				t.Errorf("Maintain: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestResilientSweepAcrossChunks: a peer's routes are swept in one Apply
// larger than the planner's chunk; the group still changes in place, and
// no route is written.
func TestResilientSweepAcrossChunks(t *testing.T) {
	ns := newNS(t)
	ctx := testCtx(t)
	f := ns.open(t, Config{NextHopObjects: NextHopOn})
	requireResilient(t, f)
	ps := numbered("2001:db8:100::%x/128", planChunk+planChunk/2)
	gws := []string{"2001:db8::2", "2001:db8::3", "2001:db8::4"}
	if _, err := f.Apply(ctx, changesFor(ps, gws...)); err != nil {
		t.Fatal(err)
	}
	groups := func() map[uint32]int {
		var rs []ipRoute
		if err := json.Unmarshal([]byte(ns.ip(t, "-j", "-6", "route", "show", "proto", "bgp")), &rs); err != nil {
			t.Fatal(err)
		}
		out := map[uint32]int{}
		for _, r := range rs {
			out[r.NHID]++
		}
		return out
	}
	before := groups()
	writes := f.Stats().Writes
	if _, err := f.Apply(ctx, changesFor(ps, gws[:2]...)); err != nil {
		t.Fatal(err)
	}
	if after := groups(); len(before) != 1 || !maps.Equal(after, before) {
		t.Errorf("routes by group: %v before, %v after; want one group, the same", before, after)
	}
	if st := f.Stats(); st.Writes != writes || st.Rekeyed != 1 {
		t.Errorf("%d route writes, %d groups changed in place; want 0, 1", st.Writes-writes, st.Rekeyed)
	}
	checkRoutes(t, ns, f, routesFor(ps, gws[:2]...))
}

// TestResilientHeldSweep: the router sweeps a departed peer's routes over
// several Apply calls under a Hold. The moves are held back until the
// group's last route follows, and then the group changes in place; moves
// that stay partial are written as ordinary changes once the Hold is
// released.
func TestResilientHeldSweep(t *testing.T) {
	ns := newNS(t)
	ctx := testCtx(t)
	f := ns.open(t, Config{NextHopObjects: NextHopOn})
	requireResilient(t, f)
	maintain(t, f, MaintainOptions{})
	ps := numbered("203.0.113.%d/32", 30)
	abc := []string{"198.51.100.2", "198.51.100.3", "198.51.100.4"}
	if _, err := f.Apply(ctx, changesFor(ps, abc...)); err != nil {
		t.Fatal(err)
	}
	g := ns.sameGroup(t, ps)
	before := ns.ipBuckets(t, g)
	gone := ns.singleID(t, "198.51.100.4")
	writes := f.Stats().Writes

	release := f.Hold()
	for i := 0; i < len(ps); i += 10 {
		res, err := f.Apply(ctx, changesFor(ps[i:i+10], abc[:2]...))
		if err != nil || res.Replaced != 10 {
			t.Fatalf("Apply: %+v, %v", res, err)
		}
		if i+10 < len(ps) && len(ns.ipGroup(t, g).Members) != 3 {
			t.Fatalf("group %d changed after %d of %d routes", g, i+10, len(ps))
		}
	}
	release()
	if got := ns.ipGroup(t, g); len(got.Members) != 2 {
		t.Errorf("group %d has %d members after the sweep, want 2", g, len(got.Members))
	}
	if got := ns.sameGroup(t, ps); got != g {
		t.Errorf("routes moved from group %d to %d", g, got)
	}
	if st := f.Stats(); st.Writes != writes || st.Rekeyed != 1 {
		t.Errorf("%d route writes, %d groups changed in place; want 0, 1", st.Writes-writes, st.Rekeyed)
	}
	checkKernel(t, ns, f, routesFor(ps, abc[:2]...))
	after := ns.ipBuckets(t, g)
	for i := range before {
		if before[i] != gone && after[i] != before[i] {
			t.Errorf("bucket %d moved from surviving member %d to %d", i, before[i], after[i])
		}
	}

	// A third of the routes move; the rest never follow.
	release = f.Hold()
	abd := []string{"198.51.100.2", "198.51.100.3", "198.51.100.5"}
	if _, err := f.Apply(ctx, changesFor(ps[:10], abd...)); err != nil {
		t.Fatal(err)
	}
	if got := ns.nhidOf(t, ps[0]); got != g {
		t.Fatalf("a held-back route moved to %d at once", got)
	}
	release()
	want := append(routesFor(ps[:10], abd...), routesFor(ps[10:], abc[:2]...)...)
	waitFor(t, 10*time.Second, func() bool { return ns.nhidOf(t, ps[0]) != g })
	checkKernel(t, ns, f, want)
	if got := ns.sameGroup(t, ps[10:]); got != g {
		t.Errorf("routes that did not move are on group %d, want %d", got, g)
	}
}

// TestResilientJoinInPieces: a peer that joins announces its routes over
// several Apply calls, with no Hold. A join moves no flow that must move,
// so partial moves in bulk wait for the rest, and the group takes the new
// member in place; a join that stays partial is written once quiet, and
// a small one at once. The FIB's clock stands still but when the test
// moves it, and no Maintain runs: a slow machine settles nothing early.
func TestResilientJoinInPieces(t *testing.T) {
	ns := newNS(t)
	ctx := testCtx(t)
	f := ns.open(t, Config{NextHopObjects: NextHopOn})
	requireResilient(t, f)
	advance := fakeClock(f)
	piece := deferMin + 10
	ps := numbered("2001:db8:100::%x/128", 3*piece)
	abc := []string{"2001:db8::2", "2001:db8::3", "2001:db8::4"}
	abcd := append(slices.Clone(abc), "2001:db8::5")
	if _, err := f.Apply(ctx, changesFor(ps, abc...)); err != nil {
		t.Fatal(err)
	}
	g := ns.sameGroup(t, ps)
	before := ns.ipBuckets(t, g)
	writes := f.Stats().Writes
	for i := 0; i < len(ps); i += piece {
		if _, err := f.Apply(ctx, changesFor(ps[i:i+piece], abcd...)); err != nil {
			t.Fatal(err)
		}
	}
	checkKernel(t, ns, f, routesFor(ps, abcd...))
	if got := ns.sameGroup(t, ps); got != g {
		t.Fatalf("routes moved from group %d to %d", g, got)
	}
	if st := f.Stats(); st.Writes != writes || st.Rekeyed != 1 {
		t.Errorf("%d route writes, %d groups changed in place; want 0, 1", st.Writes-writes, st.Rekeyed)
	}
	joined := ns.singleID(t, "2001:db8::5")
	for i, b := range ns.ipBuckets(t, g) {
		if b != before[i] && b != joined {
			t.Errorf("bucket %d moved from %d to %d, not to the member that joined", i, before[i], b)
		}
	}

	// Only some routes take a fifth gateway: written once quiet.
	abcde := append(slices.Clone(abcd), "2001:db8::6")
	if _, err := f.Apply(ctx, changesFor(ps[:piece], abcde...)); err != nil {
		t.Fatal(err)
	}
	if got := ns.nhidOf(t, ps[0]); got != g {
		t.Errorf("a partial join was written at once (group %d), not held back", got)
	}
	advance(settleQuiet)
	if _, err := f.Apply(ctx, nil); err != nil { // settles what is due
		t.Fatal(err)
	}
	if got := ns.nhidOf(t, ps[0]); got == g {
		t.Errorf("a partial join was not written once quiet")
	}
	want := append(routesFor(ps[:piece], abcde...), routesFor(ps[piece:], abcd...)...)
	checkKernel(t, ns, f, want)

	// One route's weights change: not bulk, written at once.
	w := change(ps[piece], "2001:db8::2*1", "2001:db8::3*2", "2001:db8::4*1", "2001:db8::5*1")
	if _, err := f.Apply(ctx, []Change{w}); err != nil {
		t.Fatal(err)
	}
	if got := ns.nhidOf(t, ps[piece]); got == g {
		t.Errorf("a single weight change was held back")
	}
}
