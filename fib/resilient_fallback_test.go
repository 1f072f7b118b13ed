package fib

import (
	"testing"
)

// setBuckets makes f ask the kernel for groups of n buckets from now on,
// which it refuses to change in place (n other than the groups have) or to
// create (n = 0): a stand-in for what a kernel may refuse.
func setBuckets(f *FIB, n uint16) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.form.buckets, f.sets.form.buckets = n, n
}

// TestResilientRefusedFallback: a group the kernel refuses to change in
// place keeps its members and its routes move to a new group; a new
// resilient group it refuses is written as a hash-threshold one, which
// a comparison leaves as it is.
func TestResilientRefusedFallback(t *testing.T) {
	abc := []string{"198.51.100.2", "198.51.100.3", "198.51.100.4"}
	abd := []string{"198.51.100.2", "198.51.100.3", "198.51.100.5"}
	ps := []string{"203.0.113.1/32", "203.0.113.2/32"}
	tests := []struct {
		name    string
		buckets uint16
		typ     string
	}{
		{"in-place change refused", 512, "resilient"},
		{"creation refused", 0, "mpath"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := newNS(t)
			ctx := testCtx(t)
			f := ns.open(t, Config{NextHopObjects: NextHopOn})
			requireResilient(t, f)
			if _, err := f.Apply(ctx, changesFor(ps, abc...)); err != nil {
				t.Fatal(err)
			}
			old := ns.sameGroup(t, ps)
			setBuckets(f, tt.buckets)
			if _, err := f.Apply(ctx, changesFor(ps, abd...)); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			checkKernel(t, ns, f, routesFor(ps, abd...))
			g := ns.sameGroup(t, ps)
			if got := ns.ipGroup(t, g); g == old || got.Type != tt.typ {
				t.Errorf("routes through group %d (%+v), want a new %s group", g, got, tt.typ)
			}
			if st := f.Stats(); st.Rekeyed != 0 {
				t.Errorf("%d groups changed in place, want none", st.Rekeyed)
			}
			if _, err := f.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			checkKernel(t, ns, f, routesFor(ps, abd...))
			if again := ns.sameGroup(t, ps); again != g {
				t.Errorf("Sync moved the routes from group %d to %d", g, again)
			}
		})
	}
}
