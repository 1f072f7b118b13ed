package allocator

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

// TestRestoreHoldDown: a hold-down taken up from what a previous allocator
// persisted blocks the address for strangers until its end, not the
// configured length from now, and lets the releasing Service take it back.
func TestRestoreHoldDown(t *testing.T) {
	const hold = time.Minute
	a := newAlloc(t, Config{HoldDown: hold}, pool(t, "one", "203.0.113.10-203.0.113.11"))
	held := rq("held")
	if _, err := a.Restore(held, ips("203.0.113.11"), t0); err != nil {
		t.Fatal(err)
	}
	key := lbmodel.Key{Namespace: "default", Name: "gone"}
	for _, tc := range []struct {
		name  string
		addr  string
		until time.Time
		ok    bool
	}{
		{"ended already", "203.0.113.10", t0, false},
		{"held by a Service", "203.0.113.11", t0.Add(30 * time.Second), false},
		{"in force", "203.0.113.10", t0.Add(30 * time.Second), true},
		{"held down already", "203.0.113.10", t0.Add(40 * time.Second), false},
	} {
		if got := a.RestoreHoldDown(ip(tc.addr), key, tc.until, t0); got != tc.ok {
			t.Errorf("%s: RestoreHoldDown = %v, want %v", tc.name, got, tc.ok)
		}
	}
	want := []Held{{Addr: ip("203.0.113.10"), Pool: "one", Service: key, Until: t0.Add(30 * time.Second)}}
	if got := a.HeldDown(t0); !slices.Equal(got, want) {
		t.Errorf("HeldDown %+v, want %+v", got, want)
	}
	if st := a.Stats(t0); st[0].HoldDown != 1 || st[0].Available != 0 {
		t.Errorf("stats %+v, want 1 held down, none available", st)
	}
	// A stranger waits until the persisted end.
	_, err := a.Allocate(rq("stranger"), t0.Add(29*time.Second))
	var ae *Error
	if !errors.As(err, &ae) || ae.Reason != PoolExhausted || !ae.RetryAt.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("a stranger during the restored hold-down: %v, want PoolExhausted retrying at +30s", err)
	}
	// The Service that released it may take it back.
	b := newAlloc(t, Config{HoldDown: hold}, pool(t, "one", "203.0.113.10"))
	b.RestoreHoldDown(ip("203.0.113.10"), key, t0.Add(time.Second), t0)
	if got, err := b.Allocate(rq("gone"), t0); err != nil || got.Addrs()[0] != ip("203.0.113.10") {
		t.Errorf("the releasing Service: %v %v, want its address back", got, err)
	}
	// Then it comes free, by the clock.
	got, err := a.Allocate(rq("stranger"), t0.Add(30*time.Second))
	if err != nil || got.Addrs()[0] != ip("203.0.113.10") {
		t.Errorf("a stranger after the hold-down: %v %v", got, err)
	}
}

// TestRestoreHoldDownOrder: restored hold-downs expire in the order of
// their ends, among themselves and with ones started afterwards.
func TestRestoreHoldDownOrder(t *testing.T) {
	const hold = 10 * time.Second
	a := newAlloc(t, Config{HoldDown: hold}, pool(t, "p", "203.0.113.10-203.0.113.13"))
	k := lbmodel.Key{Namespace: "default", Name: "old"}
	a.RestoreHoldDown(ip("203.0.113.10"), k, t0.Add(50*time.Second), t0) // longer than hold: kept whole
	a.RestoreHoldDown(ip("203.0.113.11"), k, t0.Add(5*time.Second), t0)
	if _, err := a.Allocate(rq("x"), t0); err != nil {
		t.Fatal(err)
	}
	a.Release(rq("x").Key, t0.Add(time.Second)) // .12, until +11s
	addrsAt := func(at time.Duration) []string {
		var out []string
		for _, h := range a.HeldDown(t0.Add(at)) {
			out = append(out, h.Addr.String())
		}
		return out
	}
	for _, step := range []struct {
		at   time.Duration
		want []string
	}{
		{4 * time.Second, []string{"203.0.113.10", "203.0.113.11", "203.0.113.12"}},
		{5 * time.Second, []string{"203.0.113.10", "203.0.113.12"}},
		{11 * time.Second, []string{"203.0.113.10"}},
		{49 * time.Second, []string{"203.0.113.10"}},
		{50 * time.Second, nil},
	} {
		if got := addrsAt(step.at); !slices.Equal(got, step.want) {
			t.Errorf("held down at +%v: %v, want %v", step.at, got, step.want)
		}
	}
	if st := a.Stats(t0.Add(time.Minute)); st[0].HoldDown != 0 || st[0].Available != 4 {
		t.Errorf("stats after every hold-down ended: %+v", st)
	}
}

func TestRestoreHoldDownDisabled(t *testing.T) {
	a := newAlloc(t, Config{}, pool(t, "p", "203.0.113.10"))
	if a.RestoreHoldDown(ip("203.0.113.10"), lbmodel.Key{Name: "x"}, t0.Add(time.Minute), t0) {
		t.Error("a hold-down was restored with hold-down disabled")
	}
}
