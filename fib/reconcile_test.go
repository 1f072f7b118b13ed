package fib

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

func prefixesOf(cs []Change) []netip.Prefix {
	var ps []netip.Prefix
	for _, c := range cs {
		if !c.Delete() {
			panic("reconciler produced a non-delete change")
		}
		ps = append(ps, c.Prefix)
	}
	return ps
}

// reconcileStale are the routes a previous run left, for TestReconciler.
var reconcileStale = []Route{
	route("203.0.113.1/32", "198.51.100.2"),
	route("203.0.113.2/32", "198.51.100.2"),
	route("203.0.113.3/32", "198.51.100.3"),
	route("2001:db8:100::1/128", "2001:db8::2"),
}

type reconcileStep struct {
	at      time.Duration
	observe []Change
	finish  bool
	want    []string // prefixes deleted at this step
}

var reconcileTests = []struct {
	name  string
	steps []reconcileStep
	left  int
}{
	{
		name: "nothing comes back",
		steps: []reconcileStep{
			{at: time.Second},
			{at: 10 * time.Second, want: []string{"203.0.113.1/32", "203.0.113.2/32", "203.0.113.3/32", "2001:db8:100::1/128"}},
			{at: 20 * time.Second},
		},
	},
	{
		name: "re-announced and withdrawn prefixes are the daemon's",
		steps: []reconcileStep{
			{at: time.Second, observe: []Change{change("203.0.113.1/32", "198.51.100.3")}},
			{at: 2 * time.Second, observe: []Change{{Prefix: mustPrefix("2001:db8:100::1/128")}}},
			{at: 9 * time.Second},
			{at: 10 * time.Second, want: []string{"203.0.113.2/32", "203.0.113.3/32"}},
			{at: 11 * time.Second, observe: []Change{change("203.0.113.2/32", "198.51.100.2")}},
		},
	},
	{
		name: "finish early",
		steps: []reconcileStep{
			{at: time.Second, observe: []Change{change("203.0.113.3/32", "198.51.100.3")}},
			{at: 2 * time.Second, finish: true, want: []string{"203.0.113.1/32", "203.0.113.2/32", "2001:db8:100::1/128"}},
			{at: 10 * time.Second},
		},
	},
	{
		name: "everything comes back",
		steps: []reconcileStep{
			{at: time.Second, observe: Diff(nil, reconcileStale)},
			{at: 10 * time.Second, want: nil},
		},
	},
	{
		name: "nothing expires before the deadline",
		steps: []reconcileStep{
			{at: time.Second, observe: []Change{{Prefix: netip.PrefixFrom(mustAddr("203.0.113.1"), 32)}}},
			{at: 3 * time.Second, observe: []Change{change("203.0.113.2/32", "198.51.100.9")}},
			{at: 4 * time.Second, observe: []Change{change("203.0.113.3/32", "198.51.100.9")}},
		},
		left: 1,
	},
}

func TestReconciler(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range reconcileTests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReconciler(reconcileStale, t0, 10*time.Second)
			for i, s := range tt.steps {
				r.Observe(s.observe)
				var got []Change
				if s.finish {
					got = r.Finish()
				} else {
					got = r.Expire(t0.Add(s.at))
				}
				var want []netip.Prefix
				for _, p := range s.want {
					want = append(want, mustPrefix(p))
				}
				if !slices.Equal(prefixesOf(got), want) {
					t.Errorf("step %d: deleted %v, want %v", i, prefixesOf(got), want)
				}
			}
			if r.Stale() != tt.left {
				t.Errorf("%d stale left, want %d", r.Stale(), tt.left)
			}
		})
	}
}

func TestReconcilerNothingStale(t *testing.T) {
	r := NewReconciler(nil, time.Now(), time.Hour)
	if _, ok := r.Deadline(); ok {
		t.Errorf("a reconciler with nothing stale is waiting")
	}
	if got := r.Expire(time.Now().Add(2 * time.Hour)); got != nil {
		t.Errorf("Expire = %v", got)
	}
}

// fakeFIB records what Run applies.
type fakeFIB struct {
	mu      sync.Mutex
	batches [][]Change
	err     error
}

func (f *fakeFIB) Apply(_ context.Context, cs []Change) (Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, cs)
	return Result{}, f.err
}

func (f *fakeFIB) applied() [][]Change {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.batches)
}

func TestReconcilerRun(t *testing.T) {
	stale := []Route{route("203.0.113.1/32", "198.51.100.2"), route("203.0.113.2/32", "198.51.100.2")}
	r := NewReconciler(stale, time.Now(), 100*time.Millisecond)
	fib := &fakeFIB{}
	in := make(chan []Change)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, fib, in, nil) }()
	in <- []Change{change("203.0.113.2/32", "198.51.100.3")}
	deadline := time.Now().Add(5 * time.Second)
	for len(fib.applied()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("grace deletions not applied; applied %v", fib.applied())
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := fib.applied()
	if !changesEqual(got[1], []Change{{Prefix: mustPrefix("203.0.113.1/32")}}) {
		t.Errorf("after the grace Run applied %v, want the delete of 203.0.113.1/32", got[1])
	}
	in <- []Change{change("203.0.113.1/32", "198.51.100.3")}
	close(in)
	if err := <-done; err != nil {
		t.Errorf("Run = %v after in closed", err)
	}
	if got := fib.applied(); len(got) != 3 {
		t.Errorf("applied %d batches, want 3", len(got))
	}
}

func TestReconcilerRunStopsOnFatalError(t *testing.T) {
	r := NewReconciler(nil, time.Now(), time.Second)
	in := make(chan []Change, 2)
	in <- []Change{change("203.0.113.1/32", "198.51.100.2")}
	partial := &fakeFIB{err: ErrPartial}
	in <- []Change{change("203.0.113.2/32", "198.51.100.2")}
	close(in)
	if err := r.Run(context.Background(), partial, in, nil); err != nil {
		t.Errorf("Run stopped on a partial failure: %v", err)
	}
	in = make(chan []Change, 1)
	in <- []Change{change("203.0.113.1/32", "198.51.100.2")}
	if err := r.Run(context.Background(), &fakeFIB{err: ErrClosed}, in, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Run = %v, want ErrClosed", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Run(ctx, &fakeFIB{}, make(chan []Change), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v after cancel", err)
	}
}
