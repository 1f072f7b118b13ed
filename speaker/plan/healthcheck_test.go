package plan

import (
	"slices"
	"testing"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

const (
	hc4 = "kube-proxy health check on 198.51.100.2:31234 says 0 local endpoints (503)"
	hc6 = "kube-proxy health check on [2001:db8::2]:31234 has no answer within 1s"
)

// The health check verdict as a plain input: it holds back a Local
// Service's addresses of the family it objects to, after the endpoint rule
// and before the pool and advertisement rules.
func TestHealthCheck(t *testing.T) {
	one := func(s *Snapshot) { s.Peers = s.Peers[:1] }
	probed := func(svc Service, h HealthCheck) []Service {
		svc.HealthCheck = h
		return []Service{svc}
	}
	runCases(t, []planCase{{
		name: "a failing probe withholds a Local Service",
		edit: func(s *Snapshot) {
			one(s)
			s.Services = probed(local("default/a", 1, "203.0.113.10"), HealthCheck{IPv4: hc4})
		},
		sessions:  []string{"r1"},
		decisions: []string{"default/a: " + hc4},
	}, {
		name: "no objection: announced",
		edit: func(s *Snapshot) {
			one(s)
			s.Services = probed(local("default/a", 1, "203.0.113.10"), HealthCheck{IPv6: hc6})
		},
		sessions:  []string{"r1"},
		routes:    []string{"r1 203.0.113.10/32 bw=1 default/a"},
		decisions: []string{"default/a -> r1"},
	}, {
		name: "no local endpoint says so, whatever the probe",
		edit: func(s *Snapshot) {
			one(s)
			s.Services = probed(local("default/a", 0, "203.0.113.10"), HealthCheck{IPv4: hc4})
		},
		sessions:  []string{"r1"},
		decisions: []string{"default/a: no ready endpoint on n1 (externalTrafficPolicy Local)"},
	}, {
		name: "dual stack: each family follows its own probe",
		edit: func(s *Snapshot) {
			one(s)
			s.Services = probed(local("default/a", 2, "203.0.113.10", "2001:db8:100::10"), HealthCheck{IPv6: hc6})
		},
		sessions:  []string{"r1"},
		routes:    []string{"r1 203.0.113.10/32 bw=2 default/a"},
		decisions: []string{"default/a -> r1 (" + hc6 + ")"},
	}, {
		name: "dual stack: both fail, both reasons",
		edit: func(s *Snapshot) {
			one(s)
			s.Services = probed(local("default/a", 2, "203.0.113.10", "2001:db8:100::10"), HealthCheck{IPv4: hc4, IPv6: hc6})
		},
		sessions:  []string{"r1"},
		decisions: []string{"default/a: " + hc4 + "; " + hc6},
	}, {
		name: "Cluster Services are not held back",
		edit: func(s *Snapshot) {
			one(s)
			s.Services = probed(cluster("default/a", 1, "203.0.113.10"), HealthCheck{IPv4: hc4})
		},
		sessions:  []string{"r1"},
		routes:    []string{"r1 203.0.113.10/32 bw=1 default/a"},
		decisions: []string{"default/a -> r1"},
	}, {
		name: "an excluded node gives its own reason",
		edit: func(s *Snapshot) {
			one(s)
			s.Node.Labels = map[string]string{lbmodel.ExcludeLabel: ""}
			s.Services = probed(local("default/a", 1, "203.0.113.10"), HealthCheck{IPv4: hc4})
		},
		sessions:  []string{"r1"},
		decisions: []string{"default/a: n1 is excluded from external load balancers (label " + lbmodel.ExcludeLabel + ")"},
	}, {
		name: "only the failing Service of an aggregate-free pair is withheld",
		edit: func(s *Snapshot) {
			one(s)
			s.Services = slices.Concat(probed(local("default/a", 1, "203.0.113.10"), HealthCheck{IPv4: hc4}),
				[]Service{local("default/b", 3, "203.0.113.11")})
		},
		sessions:  []string{"r1"},
		routes:    []string{"r1 203.0.113.11/32 bw=3 default/b"},
		decisions: []string{"default/a: " + hc4, "default/b -> r1"},
	}})
}

// ServiceDecision.HealthCheck carries the probe's reasons only, for the
// report to tell them from the others.
func TestHealthCheckDecision(t *testing.T) {
	s := base()
	s.Peers = s.Peers[:1]
	a := local("default/a", 2, "203.0.113.10", "2001:db8:100::10")
	a.HealthCheck = HealthCheck{IPv6: hc6}
	b := local("default/b", 0, "203.0.113.11")
	b.HealthCheck = HealthCheck{IPv4: hc4}
	s.Services = []Service{a, b}
	res := Plan(s)
	if got := res.Services[0].HealthCheck; got != hc6 {
		t.Errorf("a: %q, want %q", got, hc6)
	}
	if got := res.Services[1].HealthCheck; got != "" {
		t.Errorf("b (no endpoint here): %q, want none", got)
	}
}
