package fib

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"
)

// TestResilientIDsRunOut: when every route of a group moves to a set
// with a new gateway and no nexthop id is left for it, each change is
// refused (as with hash-threshold groups), not the whole Apply, and the
// routes stay as they were.
func TestResilientIDsRunOut(t *testing.T) {
	ns := newNS(t)
	ctx := testCtx(t)
	// Three gateways and their group take all four ids.
	f := ns.open(t, Config{NextHopObjects: NextHopOn, NextHopIDCount: 4})
	requireResilient(t, f)
	ps := []string{"203.0.113.1/32", "203.0.113.2/32"}
	abc := []string{"198.51.100.2", "198.51.100.3", "198.51.100.4"}
	if _, err := f.Apply(ctx, changesFor(ps, abc...)); err != nil {
		t.Fatal(err)
	}
	res, err := f.Apply(ctx, changesFor(ps, "198.51.100.2", "198.51.100.3", "198.51.100.5"))
	if !errors.Is(err, ErrPartial) || len(res.Failed) != len(ps) {
		t.Fatalf("Apply = %+v, %v; want each change refused (%v)", res, err, ErrPartial)
	}
	checkKernel(t, ns, f, routesFor(ps, abc...))
}

// heldJoin opens a FIB with n routes through a two-gateway group and
// moves the first held of them to a third gateway in bulk: held back, as
// a member that joins is waited for.
func heldJoin(t *testing.T, n, held int) (*testNS, *FIB, []string) {
	t.Helper()
	ns := newNS(t)
	ctx := testCtx(t)
	f := ns.open(t, Config{NextHopObjects: NextHopOn})
	requireResilient(t, f)
	ps := numbered("2001:db8:1::%x/128", n)
	if _, err := f.Apply(ctx, changesFor(ps, "2001:db8::2", "2001:db8::3")); err != nil {
		t.Fatal(err)
	}
	if res, err := f.Apply(ctx, changesFor(ps[:held], "2001:db8::2", "2001:db8::3", "2001:db8::4")); err != nil || res.Replaced != held {
		t.Fatalf("Apply = %+v, %v; want %d replaced", res, err, held)
	}
	if got := heldCount(f); got != held {
		t.Fatalf("%d changes held back, want %d", got, held)
	}
	return ns, f, ps
}

func heldCount(f *FIB) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, m := range f.moves {
		n += m.len()
	}
	return n
}

func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// TestResilientFailureKeepsHeld: held-back changes released by a settle
// or by an Apply (another change makes the move partial) that an error
// stops after the first chunk: the rest are held again (they were
// reported applied), and a later settle writes them all.
func TestResilientFailureKeepsHeld(t *testing.T) {
	const n, held = planChunk + 1000, planChunk + 500
	tests := []struct {
		name string
		fail func(f *FIB, ps []string) error
	}{
		{"settle", func(f *FIB, _ []string) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			_, err := f.settleMoves(cancelled(), time.Now(), true)
			return err
		}},
		{"apply", func(f *FIB, ps []string) error {
			_, err := f.Apply(cancelled(), changesFor(ps[n-1:], "2001:db8::2"))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns, f, ps := heldJoin(t, n, held)
			if err := tt.fail(f, ps); err == nil {
				t.Fatal("succeeded with a cancelled context")
			}
			if got := heldCount(f); got != held-planChunk {
				t.Errorf("%d changes held back after the failure, want the %d past the first chunk", got, held-planChunk)
			}
			if _, err := f.Sync(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			checkKernel(t, ns, f, append(routesFor(ps[:held], "2001:db8::2", "2001:db8::3", "2001:db8::4"),
				routesFor(ps[held:], "2001:db8::2", "2001:db8::3")...))
		})
	}
}

// TestResilientHeldWithoutMaintain: held-back changes are written without
// Maintain, by the first Apply after they are due and by Close.
func TestResilientHeldWithoutMaintain(t *testing.T) {
	const n, held = 200, 100
	tests := []struct {
		name  string
		write func(t *testing.T, f *FIB)
	}{
		{"overdue at the next Apply", func(t *testing.T, f *FIB) {
			due := time.Now().Add(settleMax + time.Second)
			f.mu.Lock()
			f.clock = func() time.Time { return due }
			f.mu.Unlock()
			if _, err := f.Apply(testCtx(t), nil); err != nil {
				t.Fatal(err)
			}
			if got := heldCount(f); got != 0 {
				t.Errorf("%d changes still held back", got)
			}
		}},
		{"at Close", func(t *testing.T, f *FIB) {
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns, f, ps := heldJoin(t, n, held)
			tt.write(t, f)
			want := canonicalRoutes(append(routesFor(ps[:held], "2001:db8::2", "2001:db8::3", "2001:db8::4"),
				routesFor(ps[held:], "2001:db8::2", "2001:db8::3")...))
			if got := ns.ipRoutes(t, f.cfg.Table, strconv.Itoa(int(f.cfg.Protocol)), f.cfg.Metric); !routesEqual(got, want) {
				t.Errorf("ip route show =\n  %v\nwant\n  %v", got, want)
			}
		})
	}
}

// TestResilientHeldCountedOnce: held-back changes are counted by the
// Apply that holds them, not again by the one that releases them.
func TestResilientHeldCountedOnce(t *testing.T) {
	const n, held = 200, 100
	ns, f, ps := heldJoin(t, n, held)
	res, err := f.Apply(testCtx(t), changesFor(ps[n-1:], "2001:db8::2"))
	if err != nil || res.Replaced != 1 || res.Added != 0 {
		t.Errorf("Apply = %+v, %v; want the one change replaced", res, err)
	}
	checkKernel(t, ns, f, append(append(routesFor(ps[:held], "2001:db8::2", "2001:db8::3", "2001:db8::4"),
		routesFor(ps[held:n-1], "2001:db8::2", "2001:db8::3")...), routesFor(ps[n-1:], "2001:db8::2")...))
}
