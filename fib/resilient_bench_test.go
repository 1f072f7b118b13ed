package fib

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
)

// BenchmarkGroupChurn compares hash-threshold (mpath) with resilient
// groups where groups change:
//
//   - member-flap: 10k or 100k routes through one 3-gateway group; each op is one
//     gateway leaving every route and coming back (two Applies). Resilient
//     groups change in place (no route written); mpath routes move to
//     another group and back, every route written twice.
//
//   - new-groups: 1024 routes, each through its own 3-gateway group; each
//     op moves every route to a new group (1024 groups created, 1024
//     deleted), the cost of a group with a 256-bucket table.
//
//     go test -run '^$' -bench GroupChurn -benchtime 10x ./fib
func BenchmarkGroupChurn(b *testing.B) {
	for _, kind := range []struct {
		name string
		off  bool
	}{{"mpath", true}, {"resilient", false}} {
		for _, n := range []int{10_000, 100_000} {
			b.Run(fmt.Sprintf("member-flap-%dk/%s", n/1000, kind.name), func(b *testing.B) { benchMemberFlap(b, n, kind.off) })
		}
		b.Run("new-groups/"+kind.name, func(b *testing.B) { benchNewGroups(b, kind.off) })
	}
}

func benchGateway(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 51, 100, byte(2 + i)}) }

func openBench(b *testing.B, off bool) *FIB {
	ns := newNS(b)
	f := ns.open(b, Config{NextHopObjects: NextHopOn, Resilient: Resilient{Off: off}})
	if !off && !f.ResilientGroups() {
		b.Skip("the kernel has no resilient nexthop groups")
	}
	b.Cleanup(func() { flushNS(b, ns) })
	return f
}

func benchMemberFlap(b *testing.B, n int, off bool) {
	f := openBench(b, off)
	ps := benchPrefixes(n)
	three := []NextHop{{Addr: benchGateway(0)}, {Addr: benchGateway(1)}, {Addr: benchGateway(2)}}
	all, fewer := make([]Change, len(ps)), make([]Change, len(ps))
	for i, p := range ps {
		all[i] = Change{Prefix: p, NextHops: three}
		fewer[i] = Change{Prefix: p, NextHops: three[:2]}
	}
	ctx := context.Background()
	if _, err := f.Apply(ctx, all); err != nil {
		b.Fatal(err)
	}
	writes := f.Stats().Writes
	u0, s0 := cpuTimes(b)
	b.ResetTimer()
	for range b.N {
		for _, cs := range [][]Change{fewer, all} {
			if _, err := f.Apply(ctx, cs); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	u1, s1 := cpuTimes(b)
	b.ReportMetric((u1-u0)/float64(b.N), "user-s")
	b.ReportMetric((s1-s0)/float64(b.N), "sys-s")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "flaps/s")
	b.ReportMetric(float64(f.Stats().Writes-writes)/float64(b.N), "route-writes/flap")
}

func benchNewGroups(b *testing.B, off bool) {
	f := openBench(b, off)
	const n = 1024
	ps := benchPrefixes(n)
	// 2048 distinct 3-gateway sets of 25 gateways (there are 2300).
	var sets [][]NextHop
	for a := 0; a < 25; a++ {
		for c := a + 1; c < 25; c++ {
			for d := c + 1; d < 25 && len(sets) < 2*n; d++ {
				sets = append(sets, []NextHop{{Addr: benchGateway(a)}, {Addr: benchGateway(c)}, {Addr: benchGateway(d)}})
			}
		}
	}
	set := func(k int) []NextHop { return sets[k%len(sets)] }
	step := func(round int) []Change {
		cs := make([]Change, n)
		for i, p := range ps {
			cs[i] = Change{Prefix: p, NextHops: set(i + round*n)}
		}
		return cs
	}
	rounds := [][]Change{step(0), step(1)}
	ctx := context.Background()
	if _, err := f.Apply(ctx, rounds[0]); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := f.Apply(ctx, rounds[(i+1)%2]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "groups/s")
}
