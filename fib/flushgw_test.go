package fib

import (
	"net/netip"
	"testing"
	"time"
)

// hostRoutes is n /32s from 198.18.0.0/15, starting at the first-th, each
// through the given next hops.
func hostRoutes(first, n int, gws ...string) []Route {
	rs := make([]Route, n)
	for i := range rs {
		k := first + i
		a := netip.AddrFrom4([4]byte{198, 18 + byte(k>>16), byte(k >> 8), byte(k)})
		rs[i] = Route{Prefix: netip.PrefixFrom(a, 32), NextHops: hops(gws...)}
	}
	return rs
}

func deletes(rs []Route) []Change {
	cs := make([]Change, len(rs))
	for i, r := range rs {
		cs[i] = Change{Prefix: r.Prefix}
	}
	return cs
}

func adds(rs []Route) []Change {
	cs := make([]Change, len(rs))
	for i, r := range rs {
		cs[i] = Change{Prefix: r.Prefix, NextHops: r.NextHops}
	}
	return cs
}

func applyAll(t *testing.T, f *FIB, parts ...[]Change) {
	t.Helper()
	for _, cs := range parts {
		if res, err := f.Apply(testCtx(t), cs); err != nil {
			if len(res.Failed) > 0 {
				t.Fatalf("Apply: %v; first of %d failed: %+v", err, len(res.Failed), res.Failed[0])
			}
			t.Fatalf("Apply: %v", err)
		}
	}
}

// TestDeferredDeletes: routes leaving through a single nexthop object in
// bulk go with the object (one message, Stats.Flushed) when nothing else
// uses it, and are deleted one by one otherwise; either way the kernel ends
// equal to the desired state, and routes announced again in between stay.
func TestDeferredDeletes(t *testing.T) {
	viaA := hostRoutes(0, 2000, "198.51.100.2")
	viaB := hostRoutes(5000, 10, "198.51.100.3")
	group := hostRoutes(6000, 10, "198.51.100.2", "198.51.100.3")
	tests := []struct {
		name    string
		install [][]Route
		changes [][]Change
		want    []Route
		flushed uint64 // routes gone with their object
		writes  int    // route messages the changes cost, before settling
	}{
		{"peer gone", [][]Route{viaA, viaB}, [][]Change{deletes(viaA)}, viaB, 2000, 0},
		{"peer gone over many applies", [][]Route{viaA, viaB},
			[][]Change{deletes(viaA[:100]), deletes(viaA[100:1000]), deletes(viaA[1000:])}, viaB, 2000, 0},
		{"part withdrawn", [][]Route{viaA}, [][]Change{deletes(viaA[:1000])}, viaA[1000:], 0, 0},
		{"few withdrawn: written at once", [][]Route{viaA}, [][]Change{deletes(viaA[:10])}, viaA[10:], 0, 10},
		{"gateway still in a group", [][]Route{viaA, group}, [][]Change{deletes(viaA)}, group, 0, 0},
		{"announced again before settling", [][]Route{viaA},
			[][]Change{deletes(viaA[:1000]), adds(hostRoutes(0, 500, "198.51.100.3")), adds(viaA[500:700])},
			append(append(hostRoutes(0, 500, "198.51.100.3"), viaA[500:700]...), viaA[1000:]...), 0, 700},
		{"gone, then back through the same gateway", [][]Route{viaA},
			[][]Change{deletes(viaA), adds(viaA[:5])}, viaA[:5], 2000, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := newNS(t)
			f := ns.open(t, Config{NextHopObjects: NextHopOn})
			for _, rs := range tt.install {
				applyAll(t, f, adds(rs))
			}
			before := f.Stats()
			applyAll(t, f, tt.changes...)
			if got := f.Stats().Writes - before.Writes; got != uint64(tt.writes) {
				t.Errorf("route messages for the changes = %d, want %d", got, tt.writes)
			}
			// Check settles what is deferred, then compares.
			rep, err := f.Check(testCtx(t))
			if err != nil || !rep.Equal() {
				t.Fatalf("Check = %+v, %v", rep, err)
			}
			if got := f.Stats().Flushed; got != tt.flushed {
				t.Errorf("Flushed = %d, want %d", got, tt.flushed)
			}
			checkKernel(t, ns, f, tt.want)
		})
	}
}

// TestDeferredDeletesSettle: with Maintain running, deletes that do not
// empty their object reach the kernel on their own, soon after the last
// change.
func TestDeferredDeletesSettle(t *testing.T) {
	ns := newNS(t)
	f := ns.open(t, Config{NextHopObjects: NextHopOn})
	maintain(t, f, MaintainOptions{})
	viaA := hostRoutes(0, 2000, "198.51.100.2")
	applyAll(t, f, adds(viaA), deletes(viaA[:1500]))
	deadline := time.Now().Add(repairBound)
	for {
		rs, err := f.Dump(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) == 500 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d routes in the kernel after %v, want 500", len(rs), repairBound)
		}
		time.Sleep(10 * time.Millisecond)
	}
	checkKernel(t, ns, f, viaA[1500:])
}

// TestInlineDeletesAreNotDeferred: without nexthop objects there is no
// object to delete, and deletes are written as they come.
func TestInlineDeletesAreNotDeferred(t *testing.T) {
	ns := newNS(t)
	f := ns.open(t, Config{NextHopObjects: NextHopOff})
	viaA := hostRoutes(0, 2000, "198.51.100.2")
	applyAll(t, f, adds(viaA), deletes(viaA))
	checkRoutes(t, ns, f, nil)
	if s := f.Stats(); s.Flushed != 0 {
		t.Errorf("Flushed = %d inline", s.Flushed)
	}
}

// TestHoldKeepsDeferredDeletes: a peer's routes swept slowly (pauses
// longer than the quiet time, as on a loaded machine) still go with their
// object while a Hold is outstanding; without one, the pauses let Maintain
// write them one by one.
func TestHoldKeepsDeferredDeletes(t *testing.T) {
	for _, hold := range []bool{true, false} {
		t.Run(map[bool]string{true: "held", false: "not held"}[hold], func(t *testing.T) {
			ns := newNS(t)
			f := ns.open(t, Config{NextHopObjects: NextHopOn})
			maintain(t, f, MaintainOptions{})
			// Maintain compares everything once as it starts, which settles
			// deferred deletes whatever the holds: let that happen first.
			deadline := time.Now().Add(repairBound)
			for f.Stats().Resyncs == 0 {
				if time.Now().After(deadline) {
					t.Fatal("Maintain never made its first comparison")
				}
				time.Sleep(5 * time.Millisecond)
			}
			viaA := hostRoutes(0, 3000, "198.51.100.2")
			applyAll(t, f, adds(viaA))
			before := f.Stats().Writes
			release := func() {}
			if hold {
				release = f.Hold()
			}
			for i := 0; i < 3000; i += 1000 {
				applyAll(t, f, deletes(viaA[i:i+1000]))
				if hold || i == 2000 {
					// Not a wait for a result: the pause is the slow sweep.
					time.Sleep(3 * settleQuiet)
					continue
				}
				// Unheld, the pause lasts until Maintain has written the
				// deferred deletes one by one.
				deadline := time.Now().Add(repairBound)
				for f.Stats().Writes-before < uint64(i+1000) {
					if time.Now().After(deadline) {
						t.Fatalf("deferred deletes not settled within %v", repairBound)
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			release()
			rep, err := f.Check(testCtx(t))
			if err != nil || !rep.Equal() {
				t.Fatalf("Check = %+v, %v", rep, err)
			}
			st := f.Stats()
			if hold && (st.Flushed != 3000 || st.Writes != before) {
				t.Errorf("held: Flushed = %d, route messages = %d; want 3000 and 0", st.Flushed, st.Writes-before)
			}
			// Unheld, the first two parts were settled one by one; the last
			// emptied the object.
			if !hold && (st.Flushed != 1000 || st.Writes-before != 2000) {
				t.Errorf("not held: Flushed = %d, route messages = %d; want 1000 and 2000", st.Flushed, st.Writes-before)
			}
			checkKernel(t, ns, f, nil)
		})
	}
}

// TestHoldDefersFewDeletes: while a Hold is out, even a chunk with fewer
// deletes than deferMin waits for its object: a departed peer's sweep may
// begin with a handful.
func TestHoldDefersFewDeletes(t *testing.T) {
	ns := newNS(t)
	f := ns.open(t, Config{NextHopObjects: NextHopOn})
	viaA := hostRoutes(0, 500, "198.51.100.2")
	applyAll(t, f, adds(viaA))
	before := f.Stats().Writes
	release := f.Hold()
	applyAll(t, f, deletes(viaA[:5]), deletes(viaA[5:]))
	release()
	if st := f.Stats(); st.Flushed != 500 || st.Writes != before {
		t.Errorf("Flushed = %d, route messages = %d; want 500 and 0", st.Flushed, st.Writes-before)
	}
	checkKernel(t, ns, f, nil)
}
