package plan

import (
	"net/netip"
	"testing"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

type planCase struct {
	name      string
	edit      func(s *Snapshot) // applied to base()
	sessions  []string          // nil: r1, r2
	routes    []string
	decisions []string
	problems  []string
}

func (tc planCase) run(t *testing.T) {
	t.Run(tc.name, func(t *testing.T) {
		s := base()
		tc.edit(&s)
		res := Plan(s)
		want := tc.sessions
		if want == nil {
			want = []string{"r1", "r2"}
		}
		checkLines(t, "sessions", sessions(res), want)
		checkLines(t, "routes", routeLines(res), tc.routes)
		checkLines(t, "decisions", decisionLines(res), tc.decisions)
		checkLines(t, "problems", res.Problems, tc.problems)
	})
}

func runCases(t *testing.T, cases []planCase) {
	for _, tc := range cases {
		tc.run(t)
	}
}

func TestWhoAnnounces(t *testing.T) {
	runCases(t, []planCase{{
		name: "Cluster Service on a Ready node goes to every peer",
		edit: func(s *Snapshot) { s.Services = []Service{cluster("default/a", 0, "203.0.113.10")} },
		routes: []string{
			"r1 203.0.113.10/32 bw=1 default/a",
			"r2 203.0.113.10/32 bw=1 default/a",
		},
		decisions: []string{"default/a -> r1,r2"},
	}, {
		name: "Cluster Service on a node that is not Ready",
		edit: func(s *Snapshot) {
			s.Node.Ready = false
			s.Services = []Service{cluster("default/a", 3, "203.0.113.10")}
		},
		decisions: []string{"default/a: n1 is not Ready (externalTrafficPolicy Cluster)"},
	}, {
		name: "Local Service with endpoints on a node that is not Ready",
		edit: func(s *Snapshot) {
			s.Node.Ready = false
			s.Services = []Service{local("default/a", 2, "203.0.113.10")}
		},
		routes: []string{
			"r1 203.0.113.10/32 bw=2 default/a",
			"r2 203.0.113.10/32 bw=2 default/a",
		},
		decisions: []string{"default/a -> r1,r2"},
	}, {
		name: "Local Service whose endpoints are on another node",
		edit: func(s *Snapshot) {
			svc := local("default/a", 0, "203.0.113.10")
			svc.Endpoints = both("n2", 5)
			s.Services = []Service{svc}
		},
		decisions: []string{"default/a: no ready endpoint on n1 (externalTrafficPolicy Local)"},
	}, {
		name: "Local Service without any endpoint map",
		edit: func(s *Snapshot) {
			svc := local("default/a", 0, "203.0.113.10")
			svc.Endpoints = nil
			s.Services = []Service{svc}
		},
		decisions: []string{"default/a: no ready endpoint on n1 (externalTrafficPolicy Local)"},
	}, {
		name: "exclusion label with an empty value stops everything but keeps the sessions",
		edit: func(s *Snapshot) {
			s.Node.Labels[lbmodel.ExcludeLabel] = ""
			s.Services = []Service{cluster("default/a", 1, "203.0.113.10"), local("default/b", 3, "203.0.113.11")}
		},
		decisions: []string{
			"default/a: n1 is excluded from external load balancers (label node.kubernetes.io/exclude-from-external-load-balancers)",
			"default/b: n1 is excluded from external load balancers (label node.kubernetes.io/exclude-from-external-load-balancers)",
		},
	}, {
		name: "exclusion label with a value",
		edit: func(s *Snapshot) {
			s.Node.Labels[lbmodel.ExcludeLabel] = "true"
			s.Services = []Service{local("default/b", 3, "203.0.113.11")}
		},
		decisions: []string{
			"default/b: n1 is excluded from external load balancers (label node.kubernetes.io/exclude-from-external-load-balancers)",
		},
	}, {
		name: "a Service without addresses",
		edit: func(s *Snapshot) {
			s.Services = []Service{cluster("default/a", 1), {Key: key("default/b"), Addresses: []netip.Addr{{}}}}
		},
		decisions: []string{
			"default/a: no load-balancer address assigned",
			"default/b: no load-balancer address assigned",
		},
	}})
}

// TestTrafficPolicy: which policies announce with 0, 1 and 3 local
// endpoints, and the bandwidth each gives.
func TestTrafficPolicy(t *testing.T) {
	for _, tc := range []struct {
		policy lbmodel.TrafficPolicy
		eps    int
		ready  bool
		bw     float32 // 0: not announced
	}{
		{lbmodel.Local, 0, true, 0},
		{lbmodel.Local, 1, true, 1},
		{lbmodel.Local, 3, true, 3},
		{lbmodel.Local, 3, false, 3},
		{lbmodel.Local, -1, true, 0}, // a nonsense count is no endpoint
		{lbmodel.Cluster, 0, true, 1},
		{lbmodel.Cluster, 1, true, 1},
		{lbmodel.Cluster, 3, true, 3},
		{lbmodel.Cluster, 0, false, 0},
		{lbmodel.Cluster, 3, false, 0},
	} {
		s := base()
		s.Node.Ready = tc.ready
		s.Services = []Service{{Key: key("default/a"), Addresses: addrs("203.0.113.10"),
			TrafficPolicy: tc.policy, Endpoints: lbmodel.NodeEndpoints{"n1": {IPv4: tc.eps}, "n2": {IPv4: 7}}}}
		res := Plan(s)
		d := res.Services[0]
		if d.Announced != (tc.bw > 0) {
			t.Errorf("%v eps=%d ready=%v: announced=%v, want %v (%s)", tc.policy, tc.eps, tc.ready, d.Announced, tc.bw > 0, d.Reason)
			continue
		}
		for _, peer := range []string{"r1", "r2"} {
			routes := res.Peers[peer]
			switch {
			case tc.bw == 0 && len(routes) != 0:
				t.Errorf("%v eps=%d ready=%v: %s got routes %v", tc.policy, tc.eps, tc.ready, peer, routes)
			case tc.bw > 0 && (len(routes) != 1 || routes[0].Bandwidth != tc.bw):
				t.Errorf("%v eps=%d ready=%v: %s got %v, want one route with bandwidth %g", tc.policy, tc.eps, tc.ready, peer, routes, tc.bw)
			}
		}
	}
}

func TestAggregation(t *testing.T) {
	runCases(t, []planCase{{
		name: "two Services in one /24 make one route listing both, bandwidth summed",
		edit: func(s *Snapshot) {
			s.Advertisements[0].AggregationLength = 24
			s.Services = []Service{
				cluster("default/b", 3, "203.0.113.20"),
				cluster("default/a", 0, "203.0.113.10"),
				cluster("other/c", 2, "203.0.113.200"),
			}
		},
		routes: []string{
			"r1 203.0.113.0/24 bw=6 default/a,default/b,other/c",
			"r2 203.0.113.0/24 bw=6 default/a,default/b,other/c",
		},
		decisions: []string{"default/a -> r1,r2", "default/b -> r1,r2", "other/c -> r1,r2"},
	}, {
		name: "a Service that does not announce adds nothing to the aggregate's bandwidth",
		edit: func(s *Snapshot) {
			s.Advertisements[0].AggregationLength = 24
			none := cluster("default/b", 0, "203.0.113.20")
			none.Endpoints = nil
			s.Services = []Service{cluster("default/a", 2, "203.0.113.10"), none}
		},
		routes: []string{
			"r1 203.0.113.0/24 bw=2 default/a",
			"r2 203.0.113.0/24 bw=2 default/a",
		},
		decisions: []string{"default/a -> r1,r2", "default/b: NoReadyEndpoints: no ready endpoint on any node"},
	}, {
		// The rule for Local in an aggregate: its host route only, from the
		// nodes with its pods. The aggregate (from every node serving a
		// Cluster Service in it) does not list it, and the router's longest
		// match sends its traffic by the host route alone.
		name: "a Local Service is announced at host length, never in the aggregate",
		edit: func(s *Snapshot) {
			s.Advertisements[0].AggregationLength = 24
			s.Advertisements[0].AggregationLengthV6 = 64
			s.Peers = s.Peers[:1]
			s.Services = []Service{
				cluster("default/a", 1, "203.0.113.10", "2001:db8:100::10"),
				local("default/b", 3, "203.0.113.20", "2001:db8:100::20"),
				local("default/c", 0, "203.0.113.30"), // no pod here: nothing, not even in the aggregate
			}
		},
		sessions: []string{"r1"},
		routes: []string{
			"r1 203.0.113.0/24 bw=1 default/a",
			"r1 203.0.113.20/32 bw=3 default/b",
			"r1 2001:db8:100::/64 bw=1 default/a",
			"r1 2001:db8:100::20/128 bw=3 default/b",
		},
		decisions: []string{"default/a -> r1", "default/b -> r1", "default/c: no ready endpoint on n1 (externalTrafficPolicy Local)"},
	}, {
		name: "IPv6 uses AggregationLengthV6 and IPv4 its own length",
		edit: func(s *Snapshot) {
			s.Advertisements[0].AggregationLengthV6 = 64
			s.Peers = s.Peers[:1]
			s.Services = []Service{
				cluster("default/a", 1, "2001:db8:100::10", "203.0.113.10"),
				cluster("default/b", 1, "2001:db8:100::20", "203.0.113.20"),
			}
		},
		sessions: []string{"r1"},
		routes: []string{
			"r1 203.0.113.10/32 bw=1 default/a",
			"r1 203.0.113.20/32 bw=1 default/b",
			"r1 2001:db8:100::/64 bw=2 default/a,default/b",
		},
		decisions: []string{"default/a -> r1", "default/b -> r1"},
	}})
}

func TestAddresses(t *testing.T) {
	runCases(t, []planCase{{
		name: "dual-stack Service gets a v4 and a v6 host route",
		edit: func(s *Snapshot) {
			s.Peers = s.Peers[:1]
			s.Services = []Service{local("default/a", 1, "2001:db8:100::10", "203.0.113.10")}
		},
		sessions: []string{"r1"},
		routes: []string{
			"r1 203.0.113.10/32 bw=1 default/a",
			"r1 2001:db8:100::10/128 bw=1 default/a",
		},
		decisions: []string{"default/a -> r1"},
	}, {
		name: "two Services sharing an address make one route",
		edit: func(s *Snapshot) {
			s.Peers = s.Peers[:1]
			s.Services = []Service{local("dns/udp", 2, "203.0.113.53"), local("dns/tcp", 1, "203.0.113.53")}
		},
		sessions:  []string{"r1"},
		routes:    []string{"r1 203.0.113.53/32 bw=3 dns/tcp,dns/udp"},
		decisions: []string{"dns/tcp -> r1", "dns/udp -> r1"},
	}, {
		name: "one Service with two addresses in one aggregate counts once",
		edit: func(s *Snapshot) {
			s.Peers = s.Peers[:1]
			s.Advertisements[0].AggregationLength = 24
			s.Services = []Service{cluster("default/a", 2, "203.0.113.1", "203.0.113.2", "203.0.113.1")}
		},
		sessions:  []string{"r1"},
		routes:    []string{"r1 203.0.113.0/24 bw=2 default/a"},
		decisions: []string{"default/a -> r1"},
	}, {
		name: "invalid addresses are skipped, IPv4-mapped ones are IPv4",
		edit: func(s *Snapshot) {
			s.Peers = s.Peers[:1]
			svc := cluster("default/a", 1, "::ffff:203.0.113.10")
			svc.Addresses = append([]netip.Addr{{}}, svc.Addresses...)
			s.Services = []Service{svc}
		},
		sessions:  []string{"r1"},
		routes:    []string{"r1 203.0.113.10/32 bw=1 default/a"},
		decisions: []string{"default/a -> r1"},
	}, {
		name: "an address in no pool is not announced; its sibling is",
		edit: func(s *Snapshot) {
			s.Peers = s.Peers[:1]
			s.Services = []Service{
				cluster("default/a", 1, "203.0.113.10", "2001:db8:999::1"),
				cluster("default/b", 1, "192.0.2.9"),
			}
		},
		sessions: []string{"r1"},
		routes:   []string{"r1 203.0.113.10/32 bw=1 default/a"},
		decisions: []string{
			"default/a -> r1 (2001:db8:999::1 is in no pool)",
			"default/b: 192.0.2.9 is in no pool",
		},
	}, {
		name: "advertisements with different lengths give both prefixes",
		edit: func(s *Snapshot) {
			s.Peers = s.Peers[:1]
			s.Advertisements = append(s.Advertisements, lbmodel.Advertisement{Name: "agg", AggregationLength: 24, Communities: comms("64512:24")})
			s.Services = []Service{cluster("default/a", 1, "203.0.113.10")}
		},
		sessions: []string{"r1"},
		routes: []string{
			"r1 203.0.113.0/24 bw=1 default/a comm=64512:24",
			"r1 203.0.113.10/32 bw=1 default/a",
		},
		decisions: []string{"default/a -> r1"},
	}})
}

func TestPoolAndNodeSelection(t *testing.T) {
	svcs := func(s *Snapshot) {
		s.Services = []Service{cluster("default/a", 1, "203.0.113.10"), cluster("default/d", 1, "198.51.100.10")}
	}
	runCases(t, []planCase{{
		name: "advertisement naming a pool",
		edit: func(s *Snapshot) { svcs(s); s.Advertisements[0].Pools = []string{"dmz"} },
		routes: []string{
			"r1 198.51.100.10/32 bw=1 default/d",
			"r2 198.51.100.10/32 bw=1 default/d",
		},
		decisions: []string{"default/a: no BGPAnnouncementPolicy selects pool lan for n1", "default/d -> r1,r2"},
	}, {
		name: "advertisement selecting pools by label",
		edit: func(s *Snapshot) { svcs(s); s.Advertisements[0].PoolSelectors = sels("tier=lan") },
		routes: []string{
			"r1 203.0.113.10/32 bw=1 default/a",
			"r2 203.0.113.10/32 bw=1 default/a",
		},
		decisions: []string{"default/a -> r1,r2", "default/d: no BGPAnnouncementPolicy selects pool dmz for n1"},
	}, {
		name: "a pool named or matched is selected",
		edit: func(s *Snapshot) {
			svcs(s)
			s.Peers = s.Peers[:1]
			s.Advertisements[0].Pools = []string{"dmz"}
			s.Advertisements[0].PoolSelectors = sels("tier=nothing", "tier in (lan)")
		},
		sessions:  []string{"r1"},
		routes:    []string{"r1 198.51.100.10/32 bw=1 default/d", "r1 203.0.113.10/32 bw=1 default/a"},
		decisions: []string{"default/a -> r1", "default/d -> r1"},
	}, {
		name: "advertisement whose node selectors miss this node",
		edit: func(s *Snapshot) { svcs(s); s.Advertisements[0].NodeSelectors = sels("zone=b", "zone notin (a)") },
		decisions: []string{
			"default/a: no BGPAnnouncementPolicy selects pool lan for n1",
			"default/d: no BGPAnnouncementPolicy selects pool dmz for n1",
		},
	}, {
		name: "advertisement whose second node selector matches",
		edit: func(s *Snapshot) {
			svcs(s)
			s.Peers = s.Peers[:1]
			s.Advertisements[0].NodeSelectors = sels("zone=b", "zone")
		},
		sessions:  []string{"r1"},
		routes:    []string{"r1 198.51.100.10/32 bw=1 default/d", "r1 203.0.113.10/32 bw=1 default/a"},
		decisions: []string{"default/a -> r1", "default/d -> r1"},
	}})
}

func TestPeerSelection(t *testing.T) {
	svcs := func(s *Snapshot) {
		s.Services = []Service{cluster("default/a", 1, "203.0.113.10"), cluster("default/d", 1, "198.51.100.10")}
	}
	runCases(t, []planCase{{
		name: "advertisement naming one peer",
		edit: func(s *Snapshot) { svcs(s); s.Advertisements[0].Peers = []string{"r2"} },
		routes: []string{
			"r2 198.51.100.10/32 bw=1 default/d",
			"r2 203.0.113.10/32 bw=1 default/a",
		},
		decisions: []string{"default/a -> r2", "default/d -> r2"},
	}, {
		name:     "a peer whose node selectors miss this node gets no session",
		edit:     func(s *Snapshot) { svcs(s); s.Peers[1].NodeSelectors = sels("zone=b") },
		sessions: []string{"r1"},
		routes: []string{
			"r1 198.51.100.10/32 bw=1 default/d",
			"r1 203.0.113.10/32 bw=1 default/a",
		},
		decisions: []string{"default/a -> r1", "default/d -> r1"},
	}, {
		name: "a nil peer selector matches nothing",
		edit: func(s *Snapshot) {
			s.Services = []Service{cluster("default/a", 1, "203.0.113.10")}
			s.Peers[0].NodeSelectors = sels("zone=a")
			s.Peers[1].NodeSelectors = nil
			s.Peers[1].NodeSelectors = append(s.Peers[1].NodeSelectors, nil)
		},
		sessions:  []string{"r1"},
		routes:    []string{"r1 203.0.113.10/32 bw=1 default/a"},
		decisions: []string{"default/a -> r1"},
	}, {
		name: "no peer selects this node",
		edit: func(s *Snapshot) {
			svcs(s)
			s.Peers[0].NodeSelectors = sels("zone=b")
			s.Peers[1].NodeSelectors = sels("zone=c")
		},
		sessions:  []string{},
		decisions: []string{"default/a: no BGPRouter selects n1", "default/d: no BGPRouter selects n1"},
	}, {
		name: "the advertisement's only peer does not select this node",
		edit: func(s *Snapshot) {
			svcs(s)
			s.Peers[1].NodeSelectors = sels("zone=b")
			s.Advertisements[0].Peers = []string{"r2"}
		},
		sessions: []string{"r1"},
		decisions: []string{
			"default/a: no BGPRouter named by the BGPAnnouncementPolicies of pool lan selects n1",
			"default/d: no BGPRouter named by the BGPAnnouncementPolicies of pool dmz selects n1",
		},
	}, {
		name: "two advertisements of different pools to different peers share an aggregate",
		edit: func(s *Snapshot) {
			s.Pools = []lbmodel.Pool{
				{Name: "low", Ranges: []lbmodel.Range{rng("203.0.113.0", "203.0.113.127")}},
				{Name: "high", Ranges: []lbmodel.Range{rng("203.0.113.128", "203.0.113.255")}},
			}
			s.Advertisements = []lbmodel.Advertisement{
				{Name: "low", Pools: []string{"low"}, AggregationLength: 24, Peers: []string{"r1"}, Communities: comms("1:1")},
				{Name: "high", Pools: []string{"high"}, AggregationLength: 24, Communities: comms("2:2")},
			}
			s.Services = []Service{cluster("default/a", 1, "203.0.113.10"), cluster("default/z", 4, "203.0.113.200")}
		},
		routes: []string{
			"r1 203.0.113.0/24 bw=5 default/a,default/z comm=1:1,2:2",
			"r2 203.0.113.0/24 bw=4 default/z comm=2:2",
		},
		decisions: []string{"default/a -> r1", "default/z -> r1,r2"},
	}})
}

func TestMerge(t *testing.T) {
	runCases(t, []planCase{{
		name: "two advertisements of one prefix: union of communities, higher LOCAL_PREF, a problem",
		edit: func(s *Snapshot) {
			s.Peers = s.Peers[:1]
			s.Advertisements = []lbmodel.Advertisement{
				{Name: "b", LocalPref: lp(100), Communities: comms("no-export", "64512:2", "64512:1", "64512:2"), LargeCommunities: larges("1:2:3")},
				{Name: "a", LocalPref: lp(200), Communities: comms("64512:1"), LargeCommunities: larges("1:2:3", "0:0:1", "1:1:9")},
			}
			s.Services = []Service{cluster("default/a", 1, "203.0.113.10"), cluster("default/b", 1, "203.0.113.11")}
		},
		sessions: []string{"r1"},
		routes: []string{
			"r1 203.0.113.10/32 bw=1 default/a lp=200 comm=64512:1,64512:2,no-export large=0:0:1,1:1:9,1:2:3",
			"r1 203.0.113.11/32 bw=1 default/b lp=200 comm=64512:1,64512:2,no-export large=0:0:1,1:1:9,1:2:3",
		},
		decisions: []string{"default/a -> r1", "default/b -> r1"},
		problems: []string{
			`BGPAnnouncementPolicies "a" (localPref 200) and "b" (localPref 100) announce the same prefixes to the same peers (first 203.0.113.10/32 to r1); the routes carry the higher`,
		},
	}, {
		name: "an unset LOCAL_PREF does not disagree",
		edit: func(s *Snapshot) {
			s.Peers = s.Peers[:1]
			s.Advertisements = []lbmodel.Advertisement{
				{Name: "a", LocalPref: lp(50)},
				{Name: "b", Communities: comms("no-advertise")},
				{Name: "c", LocalPref: lp(50)},
			}
			s.Services = []Service{cluster("default/a", 1, "203.0.113.10")}
		},
		sessions:  []string{"r1"},
		routes:    []string{"r1 203.0.113.10/32 bw=1 default/a lp=50 comm=no-advertise"},
		decisions: []string{"default/a -> r1"},
	}, {
		name: "advertisements to different peers do not merge",
		edit: func(s *Snapshot) {
			s.Advertisements = []lbmodel.Advertisement{
				{Name: "a", LocalPref: lp(100), Peers: []string{"r1"}},
				{Name: "b", LocalPref: lp(200), Peers: []string{"r2"}},
			}
			s.Services = []Service{cluster("default/a", 1, "203.0.113.10")}
		},
		routes: []string{
			"r1 203.0.113.10/32 bw=1 default/a lp=100",
			"r2 203.0.113.10/32 bw=1 default/a lp=200",
		},
		decisions: []string{"default/a -> r1,r2"},
	}})
}

func TestProblems(t *testing.T) {
	runCases(t, []planCase{{
		name: "names of peers and pools that do not exist",
		edit: func(s *Snapshot) {
			s.Advertisements[0].Peers = []string{"r1", "r9"}
			s.Advertisements[0].Pools = []string{"lan", "gone"}
			s.Services = []Service{cluster("default/a", 1, "203.0.113.10")}
		},
		routes:    []string{"r1 203.0.113.10/32 bw=1 default/a"},
		decisions: []string{"default/a -> r1"},
		problems: []string{
			`BGPAnnouncementPolicy "all" names BGPRouter "r9", which does not exist`,
			`BGPAnnouncementPolicy "all" names LoadBalancerPool "gone", which does not exist or is not in use`,
		},
	}, {
		name: "a bad aggregation length disables the advertisement, even when its node selector misses",
		edit: func(s *Snapshot) {
			s.Advertisements[0].AggregationLength = 33
			s.Advertisements = append(s.Advertisements, lbmodel.Advertisement{Name: "v6", AggregationLengthV6: -1, NodeSelectors: sels("zone=b")})
			s.Services = []Service{cluster("default/a", 1, "203.0.113.10")}
		},
		decisions: []string{"default/a: no BGPAnnouncementPolicy selects pool lan for n1"},
		problems: []string{
			`BGPAnnouncementPolicy "all": aggregationLength 33 is not between 1 and 32; the policy is ignored`,
			`BGPAnnouncementPolicy "v6": aggregationLengthV6 -1 is not between 1 and 128; the policy is ignored`,
		},
	}, {
		name: "overlapping pools: the older keeps the addresses and the newer is not used, whatever their names",
		edit: func(s *Snapshot) {
			s.Peers = s.Peers[:1]
			s.Pools = append(s.Pools, createdAt(lbmodel.Pool{Name: "aaa", Ranges: []lbmodel.Range{rng("192.0.2.1", "192.0.2.2"), rng("203.0.113.200", "203.0.113.255")}}, 1))
			s.Advertisements = []lbmodel.Advertisement{{Name: "lan-only", Pools: []string{"lan"}}, {Name: "aaa-only", Pools: []string{"aaa"}}}
			s.Services = []Service{cluster("default/a", 1, "203.0.113.10"), cluster("default/b", 1, "203.0.113.210"), cluster("default/c", 1, "192.0.2.1")}
		},
		sessions:  []string{"r1"},
		routes:    []string{"r1 203.0.113.10/32 bw=1 default/a", "r1 203.0.113.210/32 bw=1 default/b"},
		decisions: []string{"default/a -> r1", "default/b -> r1", "default/c: 192.0.2.1 is in no pool"},
		problems: []string{
			`BGPAnnouncementPolicy "aaa-only" names LoadBalancerPool "aaa", which does not exist or is not in use`,
			`LoadBalancerPool "aaa" overlaps the older LoadBalancerPool "lan" (203.0.113.200-203.0.113.255); it is not used`,
		},
	}, {
		name: "overlapping pools created in the same second: the lower name keeps the addresses",
		edit: func(s *Snapshot) {
			s.Peers = s.Peers[:1]
			s.Pools = append(s.Pools, createdAt(lbmodel.Pool{Name: "aaa", Ranges: []lbmodel.Range{rng("203.0.113.200", "203.0.113.255")}}, 0))
			s.Advertisements = []lbmodel.Advertisement{{Name: "lan-only", Pools: []string{"lan"}}, {Name: "aaa-only", Pools: []string{"aaa"}}}
			s.Services = []Service{cluster("default/a", 1, "203.0.113.10"), cluster("default/b", 1, "203.0.113.210")}
		},
		sessions:  []string{"r1"},
		routes:    []string{"r1 203.0.113.210/32 bw=1 default/b"},
		decisions: []string{"default/a: 203.0.113.10 is in no pool", "default/b -> r1"},
		problems: []string{
			`BGPAnnouncementPolicy "lan-only" names LoadBalancerPool "lan", which does not exist or is not in use`,
			`LoadBalancerPool "lan" overlaps the older LoadBalancerPool "aaa" (203.0.113.0-203.0.113.255); it is not used`,
		},
	}, {
		name: "a pool with an invalid range is not used at all, as the controller refuses it",
		edit: func(s *Snapshot) {
			s.Peers = s.Peers[:1]
			s.Pools = []lbmodel.Pool{{Name: "p", Ranges: []lbmodel.Range{
				rng("203.0.113.20", "203.0.113.10"),
				rng("203.0.113.1", "2001:db8::1"),
				{First: netip.MustParseAddr("203.0.113.30")},
				rng("203.0.113.40", "203.0.113.40"),
			}}}
			s.Services = []Service{cluster("default/a", 1, "203.0.113.15"), cluster("default/b", 1, "203.0.113.40")}
		},
		sessions:  []string{"r1"},
		decisions: []string{"default/a: 203.0.113.15 is in no pool", "default/b: 203.0.113.40 is in no pool"},
		problems: []string{
			`LoadBalancerPool "p": range 203.0.113.1-2001:db8::1: 203.0.113.1 and 2001:db8::1 are of different families; ` +
				`range 203.0.113.20-203.0.113.10: 203.0.113.20 comes after 203.0.113.10; ` +
				`range 203.0.113.30-invalid IP: missing address; it is not used`,
		},
	}, {
		name: "repeated names: the first wins",
		edit: func(s *Snapshot) {
			s.Peers = append(s.Peers, lbmodel.Peer{Name: "r1", NodeSelectors: sels("zone=b")}, lbmodel.Peer{Name: "r1"})
			s.Pools = append(s.Pools, cidrPool("lan", "x", "192.0.2.0/24"))
			s.Advertisements = append(s.Advertisements, lbmodel.Advertisement{Name: "all", Peers: []string{"r2"}})
			s.Services = []Service{cluster("default/a", 1, "203.0.113.10"), cluster("default/a", 1, "203.0.113.11")}
		},
		routes:    []string{"r1 203.0.113.10/32 bw=1 default/a", "r2 203.0.113.10/32 bw=1 default/a"},
		decisions: []string{"default/a -> r1,r2"},
		problems: []string{
			`BGPAnnouncementPolicy "all" is listed more than once; all but the first are ignored`,
			`BGPRouter "r1" is listed more than once; all but the first are ignored`,
			`LoadBalancerPool "lan": name used by an earlier pool; it is not used`,
			`Service default/a is listed more than once; all but the first are ignored`,
		},
	}})
}

// Routes with equal attributes share one *Attrs, across peers, prefixes and
// advertisements; different attributes never do.
func TestAttrsShared(t *testing.T) {
	s := base()
	s.Advertisements = []lbmodel.Advertisement{
		{Name: "a", Pools: []string{"lan"}, Communities: comms("1:1", "2:2")},
		{Name: "b", Pools: []string{"dmz"}, Communities: comms("2:2", "1:1", "1:1")},
		{Name: "c", Pools: []string{"dmz"}, AggregationLength: 24, Communities: comms("1:1")},
	}
	s.Services = []Service{
		cluster("default/a", 1, "203.0.113.10"), cluster("default/b", 1, "203.0.113.11"),
		cluster("default/c", 1, "198.51.100.10"),
	}
	res := Plan(s)
	byAttrs := map[*Attrs][]string{}
	for peer, routes := range res.Peers {
		for _, r := range routes {
			byAttrs[r.Attrs] = append(byAttrs[r.Attrs], peer+" "+r.Prefix.String())
		}
	}
	if len(byAttrs) != 2 {
		t.Fatalf("got %d attribute sets, want 2 (1:1,2:2 and 1:1): %v", len(byAttrs), byAttrs)
	}
	for a, routes := range byAttrs {
		want := 6 // three /32 to two peers
		if len(a.Communities) == 1 {
			want = 2 // the /24 to two peers
		}
		if len(routes) != want {
			t.Errorf("attributes %s on %v, want %d routes", attrsString(a), routes, want)
		}
	}
}

// Attributes whose numbers coincide but mean different things never share
// a pointer: communities 0:1,0:2,0:3 against large community 1:2:3, and a
// LOCAL_PREF against none.
func TestAttrsDistinct(t *testing.T) {
	s := base()
	s.Peers = s.Peers[:1]
	s.Pools = append(s.Pools, cidrPool("p3", "x", "192.0.2.0/24"), cidrPool("p4", "x", "2001:db8:200::/120"))
	s.Advertisements = []lbmodel.Advertisement{
		{Name: "a", Pools: []string{"lan"}, Communities: comms("0:1", "0:2", "0:3")},
		{Name: "b", Pools: []string{"dmz"}, LargeCommunities: larges("1:2:3")},
		{Name: "c", Pools: []string{"p3"}, LocalPref: lp(0)},
		{Name: "d", Pools: []string{"p4"}},
	}
	s.Services = []Service{
		cluster("default/a", 1, "203.0.113.10"), cluster("default/b", 1, "198.51.100.10"),
		cluster("default/c", 1, "192.0.2.10"), cluster("default/d", 1, "2001:db8:200::10"),
	}
	res := Plan(s)
	checkLines(t, "routes", routeLines(res), []string{
		"r1 192.0.2.10/32 bw=1 default/c lp=0",
		"r1 198.51.100.10/32 bw=1 default/b large=1:2:3",
		"r1 203.0.113.10/32 bw=1 default/a comm=0:1,0:2,0:3",
		"r1 2001:db8:200::10/128 bw=1 default/d",
	})
	seen := map[*Attrs]bool{}
	for _, r := range res.Peers["r1"] {
		if seen[r.Attrs] {
			t.Errorf("%s shares its attributes with another route", r.Prefix)
		}
		seen[r.Attrs] = true
	}
}
