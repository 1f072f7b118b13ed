package plan

import (
	"testing"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

// Make-before-break for a Local Service (issue 15): a node whose pods of
// the Service are all terminating but serving keeps announcing, with
// GRACEFUL_SHUTDOWN, so that the routers move new flows to a node with a
// ready pod as soon as it announces, and nothing is withdrawn before.
func TestTerminatingLocalPods(t *testing.T) {
	one := func(s *Snapshot) { s.Peers = s.Peers[:1] }
	// moving: the old pod terminating on n1, the new one ready on n2.
	moving := func(policy lbmodel.TrafficPolicy, a ...string) Service {
		return Service{Key: key("default/a"), Addresses: addrs(a...), TrafficPolicy: policy,
			Endpoints: both("n2", 1), LocalFallback: both("n1", 1)}
	}
	runCases(t, []planCase{{
		name: "terminating pods only: announced with GRACEFUL_SHUTDOWN, weighed by them",
		edit: func(s *Snapshot) {
			one(s)
			svc := moving(lbmodel.Local, "203.0.113.10", "2001:db8:100::10")
			svc.LocalFallback = lbmodel.NodeEndpoints{"n1": {IPv4: 2, IPv6: 2}}
			s.Services = []Service{svc}
		},
		sessions: []string{"r1"},
		routes: []string{
			"r1 203.0.113.10/32 bw=2 default/a comm=graceful-shutdown",
			"r1 2001:db8:100::10/128 bw=2 default/a comm=graceful-shutdown",
		},
		decisions: []string{"default/a -> r1"},
	}, {
		name: "a usable local pod: announced as usual",
		edit: func(s *Snapshot) {
			one(s)
			svc := moving(lbmodel.Local, "203.0.113.10")
			svc.Endpoints = lbmodel.NodeEndpoints{"n1": {IPv4: 1}, "n2": {IPv4: 1}}
			svc.LocalFallback = nil
			s.Services = []Service{svc}
		},
		sessions:  []string{"r1"},
		routes:    []string{"r1 203.0.113.10/32 bw=1 default/a"},
		decisions: []string{"default/a -> r1"},
	}, {
		name: "terminating pods only in one family: only that family's route is marked",
		edit: func(s *Snapshot) {
			one(s)
			svc := moving(lbmodel.Local, "203.0.113.10", "2001:db8:100::10")
			svc.Endpoints = lbmodel.NodeEndpoints{"n1": {IPv6: 1}, "n2": {IPv4: 1, IPv6: 1}}
			svc.LocalFallback = lbmodel.NodeEndpoints{"n1": {IPv4: 1}}
			s.Services = []Service{svc}
		},
		sessions: []string{"r1"},
		routes: []string{
			"r1 203.0.113.10/32 bw=1 default/a comm=graceful-shutdown",
			"r1 2001:db8:100::10/128 bw=1 default/a",
		},
		decisions: []string{"default/a -> r1"},
	}, {
		// kube-proxy answers 503 where only terminating pods are local: the
		// probe must not withhold what it still serves.
		name: "the health check's 0 local endpoints does not withhold it",
		edit: func(s *Snapshot) {
			one(s)
			svc := moving(lbmodel.Local, "203.0.113.10")
			svc.HealthCheck = HealthCheck{IPv4: fails4}
			s.Services = []Service{svc}
		},
		sessions:  []string{"r1"},
		routes:    []string{"r1 203.0.113.10/32 bw=1 default/a comm=graceful-shutdown"},
		decisions: []string{"default/a -> r1"},
	}, {
		name: "other health check failures still withhold it",
		edit: func(s *Snapshot) {
			one(s)
			svc := moving(lbmodel.Local, "203.0.113.10")
			svc.HealthCheck = HealthCheck{IPv4: Verdict{Reason: hc4 + ", then kube-proxy is not healthy"}}
			s.Services = []Service{svc}
		},
		sessions:  []string{"r1"},
		decisions: []string{"default/a: " + hc4 + ", then kube-proxy is not healthy"},
	}, {
		// No usable pod anywhere: the Service's own fallback, counted in
		// Endpoints and LocalFallback alike, on every node that serves.
		name: "the Service's fallback: announced with GRACEFUL_SHUTDOWN too",
		edit: func(s *Snapshot) {
			one(s)
			svc := moving(lbmodel.Local, "203.0.113.10")
			svc.Endpoints, svc.Fallback = both("n1", 1), lbmodel.Fallback{IPv4: true}
			svc.HealthCheck = HealthCheck{IPv4: fails4}
			s.Services = []Service{svc}
		},
		sessions:  []string{"r1"},
		routes:    []string{"r1 203.0.113.10/32 bw=1 default/a comm=graceful-shutdown"},
		decisions: []string{"default/a -> r1"},
	}, {
		name: "no endpoint here at all: nothing",
		edit: func(s *Snapshot) {
			one(s)
			svc := moving(lbmodel.Local, "203.0.113.10")
			svc.LocalFallback = nil
			s.Services = []Service{svc}
		},
		sessions:  []string{"r1"},
		decisions: []string{"default/a: no ready endpoint on n1 (externalTrafficPolicy Local)"},
	}, {
		name: "no endpoint anywhere: nothing",
		edit: func(s *Snapshot) {
			one(s)
			s.Services = []Service{{Key: key("default/a"), Addresses: addrs("203.0.113.10"), TrafficPolicy: lbmodel.Local}}
		},
		sessions:  []string{"r1"},
		decisions: []string{"default/a: no ready endpoint on n1 (externalTrafficPolicy Local)"},
	}, {
		name: "Cluster is unchanged: announced as usual",
		edit: func(s *Snapshot) {
			one(s)
			s.Services = []Service{moving(lbmodel.Cluster, "203.0.113.10")}
		},
		sessions:  []string{"r1"},
		routes:    []string{"r1 203.0.113.10/32 bw=1 default/a"},
		decisions: []string{"default/a -> r1"},
	}, {
		// A route is marked only when every Service on it is leaving: the
		// other Service's pod here is ready and should keep its flows.
		name: "a shared address with a ready Service: not marked",
		edit: func(s *Snapshot) {
			one(s)
			other := local("default/b", 1, "203.0.113.10")
			s.Services = []Service{moving(lbmodel.Local, "203.0.113.10"), other}
		},
		sessions:  []string{"r1"},
		routes:    []string{"r1 203.0.113.10/32 bw=2 default/a,default/b"},
		decisions: []string{"default/a -> r1", "default/b -> r1"},
	}, {
		name: "draining too: marked once",
		edit: func(s *Snapshot) {
			one(s)
			s.Services = []Service{moving(lbmodel.Local, "203.0.113.10")}
			s.Drain = Drain{Phase: Draining}
		},
		sessions:  []string{"r1"},
		routes:    []string{"r1 203.0.113.10/32 bw=1 default/a comm=graceful-shutdown"},
		decisions: []string{"default/a -> r1"},
	}})
}

// Service.On is the weight a node announces, what its report says.
func TestServiceOn(t *testing.T) {
	eps := lbmodel.NodeEndpoints{"n1": {IPv4: 2}, "n2": {IPv6: 1}}
	lf := lbmodel.NodeEndpoints{"n2": {IPv4: 3}}
	for _, tc := range []struct {
		policy lbmodel.TrafficPolicy
		node   string
		want   lbmodel.Counts
	}{
		{lbmodel.Local, "n1", lbmodel.Counts{IPv4: 2}},
		{lbmodel.Local, "n2", lbmodel.Counts{IPv4: 3, IPv6: 1}},
		{lbmodel.Local, "n3", lbmodel.Counts{}},
		{lbmodel.Cluster, "n2", lbmodel.Counts{IPv6: 1}},
	} {
		s := Service{TrafficPolicy: tc.policy, Endpoints: eps, LocalFallback: lf}
		if got := s.On(tc.node); got != tc.want {
			t.Errorf("%v on %s: %+v, want %+v", tc.policy, tc.node, got, tc.want)
		}
	}
}
