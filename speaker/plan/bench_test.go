package plan

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

// benchSnapshot is a large cluster: n Services (a quarter of them
// dual-stack, half lbmodel.Local), one pool, three peers, and two advertisements:
// host routes with communities to every peer, and /24 and /64 aggregates
// with a LOCAL_PREF to r1 only.
func benchSnapshot(n int) Snapshot {
	s := Snapshot{
		Node:  lbmodel.Node{Name: "n1", Labels: map[string]string{"zone": "a"}, Ready: true},
		Pools: []lbmodel.Pool{cidrPool("lan", "lan", "10.0.0.0/16", "fd00::/112")},
		Peers: []lbmodel.Peer{{Name: "r1"}, {Name: "r2"}, {Name: "r3", NodeSelectors: sels("zone=a")}},
		Advertisements: []lbmodel.Advertisement{
			{Name: "hosts", Communities: comms("64512:100", "no-export")},
			{Name: "aggregate", AggregationLength: 24, AggregationLengthV6: 64, LocalPref: lp(200),
				LargeCommunities: larges("64512:1:1"), Peers: []string{"r1"}},
		},
	}
	for i := range n {
		svc := Service{
			Key:       lbmodel.Key{Namespace: fmt.Sprintf("ns%d", i%50), Name: fmt.Sprintf("svc%d", i)},
			Addresses: []netip.Addr{netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})},
			Endpoints: lbmodel.NodeEndpoints{"n1": {IPv4: 1 + i%3, IPv6: 1 + i%3}, "n2": {IPv4: 2, IPv6: 2}},
		}
		if i%2 == 1 {
			svc.TrafficPolicy = lbmodel.Local
		}
		if i%4 == 0 {
			svc.Addresses = append(svc.Addresses, netip.AddrFrom16([16]byte{0: 0xfd, 14: byte(i >> 8), 15: byte(i)}))
		}
		s.Services = append(s.Services, svc)
	}
	return s
}

// BenchmarkPlan: the whole plan for 10,000 Services.
func BenchmarkPlan(b *testing.B) {
	for _, n := range []int{100, 10_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s := benchSnapshot(n)
			routes := 0
			for _, rs := range Plan(s).Peers {
				routes += len(rs)
			}
			b.ReportAllocs()
			for b.Loop() {
				Plan(s)
			}
			b.ReportMetric(float64(routes), "routes")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/service")
		})
	}
}

// BenchmarkTwin is the slow twin on the same snapshot, for scale.
func BenchmarkTwin(b *testing.B) {
	s := benchSnapshot(1_000)
	b.ReportAllocs()
	for b.Loop() {
		slowPlan(s)
	}
}

// TestAllocsDoNotGrowPerService: results share attribute sets, peer lists
// and one backing array of Service keys, so a hundredfold more Services
// costs a few more allocations (slice growth), not one or more per route.
func TestAllocsDoNotGrowPerService(t *testing.T) {
	small, large := benchSnapshot(100), benchSnapshot(10_000)
	a := testing.AllocsPerRun(5, func() { Plan(small) })
	b := testing.AllocsPerRun(5, func() { Plan(large) })
	if b > a+100 {
		t.Errorf("Plan allocates %.0f times for 100 Services and %.0f for 10,000; want at most 100 more", a, b)
	}
	t.Logf("allocations: %.0f for 100 Services, %.0f for 10,000", a, b)
}
