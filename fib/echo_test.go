package fib

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMaintainIgnoresOwnEcho applies 100k routes (and deletes them again
// through a re-dialled writer socket) while Maintain runs. The kernel
// echoes every route and object we write to the monitor socket unless its
// filter drops them: with a 1 MiB receive buffer the echo of one batch
// overruns it, and each overrun costs a full resync. A change made behind
// our back must still be seen and repaired.
func TestMaintainIgnoresOwnEcho(t *testing.T) {
	const n = 100_000
	ps := benchPrefixes(n)
	gw := []NextHop{{Addr: netip.MustParseAddr("198.51.100.2")}}
	adds := make([]Change, n)
	dels := make([]Change, n)
	for i, p := range ps {
		adds[i] = Change{Prefix: p, NextHops: gw}
		dels[i] = Change{Prefix: p}
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ns := newNS(t)
			f := ns.open(t, Config{NextHopObjects: m.mode, ReceiveBuffer: 1 << 20})
			maintain(t, f, MaintainOptions{})
			waitFor(t, repairBound, func() bool { return f.Stats().Resyncs > 0 })
			before := f.Stats().Resyncs
			if res, err := f.Apply(testCtx(t), adds); err != nil || res.Added != n {
				t.Fatalf("Apply: %d added, %v", res.Added, err)
			}
			// Behind our back: seen (after all of our echo, if it came).
			victim := ps[n/2].String()
			ns.ip(t, "route", "del", victim, "proto", "bgp", "metric", "20")
			waitFor(t, repairBound, func() bool { return f.Stats().Repairs > 0 })
			if out := ns.ip(t, "route", "show", victim, "proto", "bgp"); !strings.Contains(out, "198.51.100.2") {
				t.Errorf("%s not repaired: %q", victim, out)
			}
			st := f.Stats()
			if st.Overruns != 0 || st.Resyncs != before || st.Events > 10 {
				t.Errorf("after Apply: %d overruns, %d resyncs, %d events; want 0, %d and the foreign delete only", st.Overruns, st.Resyncs, before, st.Events)
			}

			// A new writer socket (one left mid-dump is replaced) has a new
			// port id: the filter must follow it. The new socket costs one
			// resync, of its own.
			f.mu.Lock()
			f.c.dirty = true
			f.mu.Unlock()
			if res, err := f.Apply(testCtx(t), dels); err != nil || res.Deleted != n {
				t.Fatalf("Apply deletes: %d deleted, %v", res.Deleted, err)
			}
			ns.ip(t, "route", "add", "203.0.113.9/32", "via", "198.51.100.9", "proto", "bgp", "metric", "20")
			waitFor(t, repairBound, func() bool {
				return !strings.Contains(ns.ip(t, "route", "show", "proto", "bgp"), "203.0.113.9")
			})
			if st := f.Stats(); st.Overruns != 0 || st.Resyncs != before+1 || st.Events > 20 {
				t.Errorf("after a new writer socket: %d overruns, %d resyncs, %d events; want 0, %d and the foreign changes only", st.Overruns, st.Resyncs, before+1, st.Events)
			}
		})
	}
}

// TestRepairDoesNotFightApply lets Apply run between a notification and
// the repair it calls for: a foreign route of our key that Apply then
// sets must keep Apply's route (not be deleted as foreign), and a route
// that a notification reported and Apply then wrote must not be written
// a second time by the repair.
func TestRepairDoesNotFightApply(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ns := newNS(t)
			f := ns.open(t, Config{NextHopObjects: m.mode})
			a, b := mustPrefix("203.0.113.1/32"), mustPrefix("203.0.113.2/32")
			if _, err := f.Apply(testCtx(t), []Change{change(a.String(), "198.51.100.2")}); err != nil {
				t.Fatal(err)
			}
			// Repairs wait long enough for the Apply below to come first.
			maintain(t, f, MaintainOptions{Coalesce: 2 * time.Second})
			waitFor(t, repairBound, func() bool { return f.Stats().Resyncs > 0 })
			mon := ns.watchRoutes(t)

			ns.ip(t, "route", "replace", a.String(), "via", "198.51.100.9", "proto", "bgp", "metric", "20")
			ns.ip(t, "route", "add", b.String(), "via", "198.51.100.9", "proto", "bgp", "metric", "20")
			waitFor(t, repairBound, func() bool { return f.Stats().Events >= 2 })
			if _, err := f.Apply(testCtx(t), []Change{
				change(a.String(), "198.51.100.2"),
				change(b.String(), "198.51.100.3"),
			}); err != nil {
				t.Fatal(err)
			}
			// Stats waits for the lock, which a repair round holds from
			// before it counts itself until it is over.
			waitFor(t, repairBound, func() bool { return f.Stats().Retries > 0 })
			checkKernel(t, ns, f, []Route{route(a.String(), "198.51.100.2"), route(b.String(), "198.51.100.3")})

			if writes := ourWrites(t, mon, f); writes[a] != 1 || writes[b] != 1 {
				t.Errorf("our writes: %v; want one each for %v (Apply) and %v (Apply)", writes, a, b)
			}
		})
	}
}

// watchRoutes subscribes a socket of the test's own to the namespace's
// IPv4 route notifications, for ourWrites.
func (ns *testNS) watchRoutes(t *testing.T) *conn {
	t.Helper()
	mon, err := dial(ns.path, 1<<20, 4096)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mon.close() })
	var joinErr error
	if err := mon.rc.Control(func(fd uintptr) {
		joinErr = unix.SetsockoptInt(int(fd), unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, grpIPv4Rt)
	}); err != nil || joinErr != nil {
		t.Fatal(err, joinErr)
	}
	return mon
}

// ourWrites counts, by prefix, the route notifications queued on mon that
// f's writer caused: the kernel sends one for every route it changes.
func ourWrites(t *testing.T, mon *conn, f *FIB) map[netip.Prefix]int {
	t.Helper()
	writes := map[netip.Prefix]int{}
	me := f.writer.Load()
	for {
		d, err := mon.recv(false)
		if err != nil {
			t.Fatal(err)
		}
		if d == nil {
			return writes
		}
		for len(d) > 0 {
			msg, rest, err := nextMsg(d)
			if err != nil {
				t.Fatal(err)
			}
			d = rest
			if r, _, err := parseRoute(msg.data, nil, nil); err == nil && msg.pid == me {
				writes[r.prefix]++
			}
		}
	}
}

// TestApplyUnchangedWritesNothing applies routes the kernel already holds
// as desired, in the same run and after a restart (peers re-announcing
// their routes): nothing is written, and a changed route still is.
func TestApplyUnchangedWritesNothing(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ns := newNS(t)
			ctx := testCtx(t)
			first := ns.open(t, Config{NextHopObjects: m.mode})
			a, b := "203.0.113.1/32", "203.0.113.2/32"
			if _, err := first.Apply(ctx, []Change{change(a, "198.51.100.2"), change(b, "198.51.100.2", "198.51.100.3")}); err != nil {
				t.Fatal(err)
			}
			mon := ns.watchRoutes(t)
			before := first.Stats().Writes
			res, err := first.Apply(ctx, []Change{change(a, "198.51.100.2"), change(b, "198.51.100.3")})
			if err != nil || res.Replaced != 2 {
				t.Fatalf("Apply: %+v %v", res, err)
			}
			// The kernel does not announce a replace by an identical route;
			// the FIB counts what it sends.
			if n := first.Stats().Writes - before; n != 1 {
				t.Errorf("%d routes written, want 1 (%s changed, %s did not)", n, b, a)
			}
			if w := ourWrites(t, mon, first); w[mustPrefix(a)] != 0 || w[mustPrefix(b)] != 1 {
				t.Errorf("writes %v: want none for the unchanged %s, one for %s", w, a, b)
			}
			first.Close()

			second := ns.open(t, Config{NextHopObjects: m.mode})
			if w := ourWrites(t, mon, second); len(w) != 0 {
				t.Errorf("writes by Open %v: want none", w)
			}
			res, err = second.Apply(ctx, []Change{change(a, "198.51.100.2"), change(b, "198.51.100.3")})
			if err != nil || res.Replaced != 2 {
				t.Fatalf("Apply after the restart: %+v %v", res, err)
			}
			if w := ourWrites(t, mon, second); len(w) != 0 {
				t.Errorf("writes after the restart %v: want none", w)
			}
			if n := second.Stats().Writes; n != 0 {
				t.Errorf("%d routes written after the restart, want none", n)
			}
			if st := second.Stats(); st.Stale != 0 {
				t.Errorf("%d routes still stale", st.Stale)
			}
			checkKernel(t, ns, second, []Route{route(a, "198.51.100.2"), route(b, "198.51.100.3")})
		})
	}
}
