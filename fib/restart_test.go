package fib

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestRestartReconcile closes the FIB and opens a new one on the same
// kernel state, as a daemon restart does: the old routes are adopted, kept
// while they are re-announced, and the rest removed after the grace time.
func TestRestartReconcile(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ns := newNS(t)
			ctx := testCtx(t)
			first := ns.open(t, Config{NextHopObjects: m.mode})
			old := []Route{
				route("203.0.113.1/32", "198.51.100.2"),
				route("203.0.113.2/32", "198.51.100.2*1", "198.51.100.3*2"),
				route("203.0.113.3/32", "198.51.100.3"),
				route("2001:db8:100::1/128", "2001:db8::2", "2001:db8::3"),
			}
			if _, err := first.Apply(ctx, Diff(nil, old)); err != nil {
				t.Fatal(err)
			}
			nhid := ns.nhid(t, "203.0.113.2/32")
			if err := first.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := first.Apply(ctx, nil); !errors.Is(err, ErrClosed) {
				t.Errorf("Apply after Close = %v, want ErrClosed", err)
			}

			second := ns.open(t, Config{NextHopObjects: m.mode})
			checkKernel(t, ns, second, old)
			if st := second.Stats(); st.Stale != len(old) {
				t.Errorf("%d stale routes after Open, want %d", st.Stale, len(old))
			}
			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- second.Maintain(runCtx, MaintainOptions{Grace: 2 * time.Second}) }()
			t.Cleanup(func() {
				cancel()
				<-done
			})
			// Peers come back: one route as it was, one with fewer next hops.
			if _, err := second.Apply(ctx, []Change{
				change("203.0.113.2/32", "198.51.100.2*1", "198.51.100.3*2"),
				change("2001:db8:100::1/128", "2001:db8::3"),
			}); err != nil {
				t.Fatal(err)
			}
			if got := len(ns.ipRoutes(t, 254, "bgp", 20)); got != 4 {
				t.Errorf("%d routes during the grace time, want all 4", got)
			}
			want := []Route{
				route("203.0.113.2/32", "198.51.100.2*1", "198.51.100.3*2"),
				route("2001:db8:100::1/128", "2001:db8::3"),
			}
			waitFor(t, 10*time.Second, func() bool { return len(ns.ipRoutes(t, 254, "bgp", 20)) == len(want) })
			checkKernel(t, ns, second, want)
			if got := ns.nhid(t, "203.0.113.2/32"); got != nhid {
				t.Errorf("the re-announced route moved from nexthop object %d to %d", nhid, got)
			}
		})
	}
}

// nhid returns the nexthop object id of the route to p (0: inline).
func (ns *testNS) nhid(t *testing.T, p string) uint32 {
	t.Helper()
	var rs []ipRoute
	if err := json.Unmarshal([]byte(ns.ip(t, "-j", "route", "show", p)), &rs); err != nil || len(rs) != 1 {
		t.Fatalf("ip route show %s: %v %v", p, rs, err)
	}
	return rs[0].NHID
}

func waitFor(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestOpenAdoptsNexthops leaves objects in the kernel the way a crashed run
// or another program would, and checks what Open keeps, deletes and avoids.
func TestOpenAdoptsNexthops(t *testing.T) {
	ns := newNS(t)
	base := uint32(ProtoBGP) << 24
	id := func(n uint32) string { return fmt.Sprint(base + n) }
	for _, args := range [][]string{
		{"nexthop", "add", "id", id(5), "via", "198.51.100.9", "dev", "d0", "proto", "bgp"},   // ours, unused
		{"nexthop", "add", "id", id(6), "via", "198.51.100.9", "dev", "d0", "proto", "4"},     // in our range, not ours
		{"nexthop", "add", "id", "77", "via", "198.51.100.8", "dev", "d0", "proto", "bgp"},    // outside our range
		{"nexthop", "add", "id", id(7), "via", "198.51.100.2", "dev", "d0", "proto", "bgp"},   // ours, used
		{"nexthop", "add", "id", id(8), "via", "198.51.100.3", "dev", "d0", "proto", "bgp"},   // ours, in a group
		{"nexthop", "add", "id", id(9), "group", id(7) + "/" + id(8), "proto", "bgp"},         // ours, used
		{"nexthop", "add", "id", id(10), "group", id(7) + "/" + id(5), "proto", "bgp"},        // ours, unused
		{"route", "add", "203.0.113.50/32", "nhid", id(7), "proto", "bgp", "metric", "20"},    // ours
		{"route", "add", "203.0.113.51/32", "nhid", id(9), "proto", "bgp", "metric", "20"},    // ours
		{"route", "add", "203.0.113.52/32", "nhid", "77", "proto", "bgp", "metric", "20"},     // ours, foreign object
		{"route", "add", "203.0.113.53/32", "nhid", id(6), "proto", "static", "metric", "20"}, // not ours
	} {
		ns.ip(t, args...)
	}
	// The groups above are hash-threshold ones: adopted as they are only
	// when that is what the FIB writes (TestResilientRestartAndRepair
	// adopts resilient ones).
	f := ns.open(t, Config{NextHopObjects: NextHopOn, Resilient: Resilient{Off: true}})
	ctx := testCtx(t)
	ids := func() []uint32 {
		var out []uint32
		for _, n := range ns.ipNexthops(t) {
			out = append(out, n.ID)
		}
		slices.Sort(out)
		return out
	}
	// The route through the foreign object 77 moves to one of ours.
	if got := ids(); len(got) != 6 || !containsIDs(got, 77, base+6, base+7, base+8, base+9) {
		t.Errorf("objects after Open: %v, want 77, %d, %d, %d, %d and a new one", got, base+6, base+7, base+8, base+9)
	}
	if id := ns.nhid(t, "203.0.113.52/32"); id == 77 {
		t.Errorf("203.0.113.52/32 still uses the foreign object 77")
	}
	got, err := f.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := canonicalRoutes([]Route{
		route("203.0.113.50/32", "198.51.100.2"),
		route("203.0.113.51/32", "198.51.100.2", "198.51.100.3"),
		route("203.0.113.52/32", "198.51.100.8"),
	})
	if !routesEqual(got, want) {
		t.Errorf("Dump = %v, want %v", got, want)
	}
	// New routes reuse the adopted objects by meaning and never take the
	// id that is not ours.
	res, err := f.Apply(ctx, []Change{
		change("203.0.113.60/32", "198.51.100.3", "198.51.100.2"),
		change("203.0.113.61/32", "198.51.100.9"),
		change("203.0.113.52/32", "198.51.100.8"),
	})
	if err != nil || res.Added != 2 || res.Replaced != 1 {
		t.Fatalf("Apply: %+v %v", res, err)
	}
	all := ids()
	if len(all) != 7 || !slices.Contains(all, base+6) {
		t.Errorf("objects after Apply: %v: want the 5 before, one for 198.51.100.9 and one for 198.51.100.8", all)
	}
	// Deleting everything of ours leaves only what is not ours.
	setTo(t, f, nil)
	if got, want := ids(), []uint32{77, base + 6}; !slices.Equal(got, want) {
		t.Errorf("objects after deleting all routes: %v, want %v", got, want)
	}
}

// TestSyncRepairsFlushedRoutes takes the interface down, which makes the
// kernel flush our routes and nexthop objects, and checks that the FIB
// notices and that Sync restores everything.
func TestSyncRepairsFlushedRoutes(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ns := newNS(t)
			f := ns.open(t, Config{NextHopObjects: m.mode})
			ctx := testCtx(t)
			want := []Route{
				route("203.0.113.1/32", "198.51.100.2"),
				route("203.0.113.2/32", "198.51.100.2", "198.51.100.3"),
				route("2001:db8:100::1/128", "2001:db8::2"),
			}
			if _, err := f.Apply(ctx, Diff(nil, want)); err != nil {
				t.Fatal(err)
			}
			ns.ip(t, "link", "set", "d0", "down")
			ns.ip(t, "link", "set", "d0", "up")
			ns.ip(t, "addr", "replace", "2001:db8::1/64", "dev", "d0", "nodad")
			if got := ns.ipRoutes(t, 254, "bgp", 20); len(got) == len(want) {
				t.Fatalf("the kernel kept the routes over link down; nothing to repair: %v", got)
			}
			res, err := f.Sync(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("Sync: %+v", res)
			checkKernel(t, ns, f, want)
		})
	}
}

func TestUseNexthops(t *testing.T) {
	other := errors.New("boom")
	tests := []struct {
		mode    Mode
		probe   error
		want    bool
		wantErr error
	}{
		{NextHopAuto, nil, true, nil},
		{NextHopAuto, &Error{Op: "dump", Errno: unix.EOPNOTSUPP}, false, nil},
		{NextHopAuto, other, false, other},
		{NextHopOn, nil, true, nil},
		{NextHopOn, &Error{Op: "dump", Errno: unix.EOPNOTSUPP}, false, ErrNoNexthopObjects},
		{NextHopOff, nil, false, nil},
		{NextHopOff, other, false, nil},
	}
	for _, tt := range tests {
		got, err := useNexthops(tt.mode, tt.probe)
		if got != tt.want || (tt.wantErr == nil) != (err == nil) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
			t.Errorf("useNexthops(%v, %v) = %v, %v; want %v, %v", tt.mode, tt.probe, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.Table != 254 || c.Metric != 20 || c.Protocol != 186 || c.NextHopIDBase != 186<<24 || c.NextHopIDCount != 1<<24 {
		t.Errorf("defaults %+v", c)
	}
	for _, bad := range []Config{
		{Protocol: 4},
		{NextHopObjects: 7},
		{NextHopIDBase: 1 << 31, NextHopIDCount: 1<<31 + 1},
	} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if _, err := (Config{NextHopIDBase: 1 << 31, NextHopIDCount: 1 << 31}).withDefaults(); err != nil {
		t.Errorf("the top half of the id space refused: %v", err)
	}
}

func TestOpenBadNetNS(t *testing.T) {
	_, err := Open(context.Background(), Config{NetNS: "/nonexistent/netns"}, nil)
	if !errors.Is(err, unix.ENOENT) {
		t.Errorf("Open in a missing namespace: %v", err)
	}
}

// TestAbandonedDumpReconnects leaves a dump half read, as a cancelled call
// does; the kernel then refuses another dump on that socket, so the next
// call must use a new one.
func TestAbandonedDumpReconnects(t *testing.T) {
	ns := newNS(t)
	f := ns.open(t, Config{})
	ctx := testCtx(t)
	var want []Route
	for i := range 3000 {
		p := netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x01, 14: byte(i >> 8), 15: byte(i)}), 128)
		want = append(want, Route{p, hops("2001:db8::2")})
	}
	if _, err := f.Apply(ctx, Diff(nil, want)); err != nil {
		t.Fatal(err)
	}
	var req msgBuf
	seq := f.c.nextSeq(1)
	req.dumpRoutes(seq, unix.AF_INET6, f.cfg.Table, f.cfg.Protocol)
	stop := errors.New("stop")
	if err := f.c.dump(ctx, req.b, seq, func(nlMsg) error { return stop }); err != stop || !f.c.dirty {
		t.Fatalf("abandoned dump: %v, dirty %v", err, f.c.dirty)
	}
	got, err := f.Dump(ctx)
	if err != nil || len(got) != len(want) {
		t.Fatalf("Dump after an abandoned dump: %d routes, %v", len(got), err)
	}
}

func containsIDs(ids []uint32, want ...uint32) bool {
	for _, w := range want {
		if !slices.Contains(ids, w) {
			return false
		}
	}
	return true
}
