package fib

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// memFIB is a FIB in nexthop mode with resilient groups and no kernel:
// n routes 203.0.113.0/24-ish through group abc, enough for moveGroups
// paths that write nothing.
func memFIB(t testing.TB, n int) (*FIB, uint32, []netip.Prefix) {
	t.Helper()
	f := &FIB{useNH: true, form: groupForm{resilient: true, buckets: 256}, routes: newPrefixMap(), sets: newNHTable(100, 1<<20)}
	ps := make([]netip.Prefix, n)
	var from uint32
	for i := range n {
		id, _, err := f.sets.acquire(canonicalHops(nil, hops(rekeySets["abc"]...)), nil)
		if err != nil {
			t.Fatal(err)
		}
		from = id
		ps[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
		f.routes.put(ps[i], id)
	}
	return f, from, ps
}

// TestMoveGroupsKeepsInput: when a group's changes are mixed and nothing
// is released or held, moveGroups hands the caller's slice back, without
// a copy of a large Apply.
func TestMoveGroupsKeepsInput(t *testing.T) {
	const n = 20_000
	f, _, ps := memFIB(t, n)
	changes := make([]Change, n)
	for i, p := range ps {
		changes[i] = Change{Prefix: p, NextHops: hops(rekeySets["a"]...)} // to a single: mixed
	}
	ctx := context.Background()
	now := time.Now()
	allocs := testing.AllocsPerRun(5, func() {
		out, nrel, held, err := f.moveGroups(ctx, changes, now)
		if err != nil || nrel != 0 || held != 0 || len(out) != n || &out[0] != &changes[0] {
			t.Fatalf("moveGroups = %d changes, %d held, %v; want the input as is", len(out), held, err)
		}
	})
	if allocs > 20 {
		t.Errorf("moveGroups of %d mixed changes: %.0f allocations, want a few", n, allocs)
	}
}
