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

var (
	fails4 = Verdict{Reason: hc4, NoReadyLocal: true}
	fails6 = Verdict{Reason: hc6}
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
			s.Services = probed(local("default/a", 1, "203.0.113.10"), HealthCheck{IPv4: fails4})
		},
		sessions:  []string{"r1"},
		decisions: []string{"default/a: " + hc4},
	}, {
		name: "no objection: announced",
		edit: func(s *Snapshot) {
			one(s)
			s.Services = probed(local("default/a", 1, "203.0.113.10"), HealthCheck{IPv6: fails6})
		},
		sessions:  []string{"r1"},
		routes:    []string{"r1 203.0.113.10/32 bw=1 default/a"},
		decisions: []string{"default/a -> r1"},
	}, {
		name: "no local endpoint says so, whatever the probe",
		edit: func(s *Snapshot) {
			one(s)
			s.Services = probed(local("default/a", 0, "203.0.113.10"), HealthCheck{IPv4: fails4})
		},
		sessions:  []string{"r1"},
		decisions: []string{"default/a: no ready endpoint on n1 (externalTrafficPolicy Local)"},
	}, {
		name: "dual stack: each family follows its own probe",
		edit: func(s *Snapshot) {
			one(s)
			s.Services = probed(local("default/a", 2, "203.0.113.10", "2001:db8:100::10"), HealthCheck{IPv6: fails6})
		},
		sessions:  []string{"r1"},
		routes:    []string{"r1 203.0.113.10/32 bw=2 default/a"},
		decisions: []string{"default/a -> r1 (" + hc6 + ")"},
	}, {
		name: "dual stack: both fail, both reasons",
		edit: func(s *Snapshot) {
			one(s)
			s.Services = probed(local("default/a", 2, "203.0.113.10", "2001:db8:100::10"), HealthCheck{IPv4: fails4, IPv6: fails6})
		},
		sessions:  []string{"r1"},
		decisions: []string{"default/a: " + hc4 + "; " + hc6},
	}, {
		name: "Cluster Services are not held back",
		edit: func(s *Snapshot) {
			one(s)
			s.Services = probed(cluster("default/a", 1, "203.0.113.10"), HealthCheck{IPv4: fails4})
		},
		sessions:  []string{"r1"},
		routes:    []string{"r1 203.0.113.10/32 bw=1 default/a"},
		decisions: []string{"default/a -> r1"},
	}, {
		name: "an excluded node gives its own reason",
		edit: func(s *Snapshot) {
			one(s)
			s.Node.Labels = map[string]string{lbmodel.ExcludeLabel: ""}
			s.Services = probed(local("default/a", 1, "203.0.113.10"), HealthCheck{IPv4: fails4})
		},
		sessions:  []string{"r1"},
		decisions: []string{"default/a: n1 is excluded from external load balancers (label " + lbmodel.ExcludeLabel + ")"},
	}, {
		name: "only the failing Service of an aggregate-free pair is withheld",
		edit: func(s *Snapshot) {
			one(s)
			s.Services = slices.Concat(probed(local("default/a", 1, "203.0.113.10"), HealthCheck{IPv4: fails4}),
				[]Service{local("default/b", 3, "203.0.113.11")})
		},
		sessions:  []string{"r1"},
		routes:    []string{"r1 203.0.113.11/32 bw=3 default/b"},
		decisions: []string{"default/a: " + hc4, "default/b -> r1"},
	}, {
		// A single replica's rolling update: kube-proxy counts no ready
		// local endpoint but forwards to the terminating one.
		name: "0 local endpoints under the fallback: announced",
		edit: func(s *Snapshot) {
			one(s)
			svc := local("default/a", 1, "203.0.113.10")
			svc.Fallback = lbmodel.Fallback{IPv4: true}
			s.Services = probed(svc, HealthCheck{IPv4: fails4})
		},
		sessions:  []string{"r1"},
		routes:    []string{"r1 203.0.113.10/32 bw=1 default/a"},
		decisions: []string{"default/a -> r1"},
	}, {
		name: "the fallback of the other family excuses nothing",
		edit: func(s *Snapshot) {
			one(s)
			svc := local("default/a", 1, "203.0.113.10")
			svc.Fallback = lbmodel.Fallback{IPv6: true}
			s.Services = probed(svc, HealthCheck{IPv4: fails4})
		},
		sessions:  []string{"r1"},
		decisions: []string{"default/a: " + hc4},
	}, {
		name: "under the fallback other failures still withhold",
		edit: func(s *Snapshot) {
			one(s)
			svc := local("default/a", 1, "203.0.113.10")
			svc.Fallback = lbmodel.Fallback{IPv4: true}
			s.Services = probed(svc, HealthCheck{IPv4: Verdict{Reason: hc4 + ", then kube-proxy is not healthy"}})
		},
		sessions:  []string{"r1"},
		decisions: []string{"default/a: " + hc4 + ", then kube-proxy is not healthy"},
	}, {
		name: "waiting for the first probe withholds",
		edit: func(s *Snapshot) {
			one(s)
			s.Services = probed(local("default/a", 1, "203.0.113.10"), HealthCheck{IPv4: Verdict{Reason: "waiting", Waiting: true}})
		},
		sessions:  []string{"r1"},
		decisions: []string{"default/a: waiting"},
	}, {
		name: "a pool no advertisement selects gives its own reason",
		edit: func(s *Snapshot) {
			one(s)
			s.Advertisements[0].Pools = []string{"dmz"}
			s.Services = probed(local("default/a", 1, "203.0.113.10"), HealthCheck{IPv4: fails4})
		},
		sessions:  []string{"r1"},
		decisions: []string{"default/a: no BGPAnnouncementPolicy selects pool lan for n1"},
	}})
}

// ServiceDecision.HealthChecked: the families where the probe decides,
// those the node would announce but for it; HealthCheck leaves out a
// probe that waits for its first answer.
func TestHealthChecked(t *testing.T) {
	dual := func(name string, h HealthCheck) Service {
		s := local(name, 1, "203.0.113.10", "2001:db8:100::10")
		s.HealthCheck = h
		return s
	}
	cases := []struct {
		name   string
		edit   func(*Snapshot)
		svc    Service
		want   Families
		health string
	}{
		{"announced", nil, dual("default/a", HealthCheck{}), Families{IPv4: true, IPv6: true}, ""},
		{"withheld in one family", nil, dual("default/a", HealthCheck{IPv6: fails6}), Families{IPv4: true, IPv6: true}, hc6},
		{"waiting: withheld, no failure", nil, dual("default/a", HealthCheck{IPv4: Verdict{Reason: "waiting", Waiting: true}}), Families{IPv4: true, IPv6: true}, ""},
		{"no endpoint here", nil, local("default/a", 0, "203.0.113.10"), Families{}, ""},
		{"Cluster", nil, cluster("default/a", 1, "203.0.113.10"), Families{}, ""},
		{"excluded node", func(s *Snapshot) { s.Node.Labels = map[string]string{lbmodel.ExcludeLabel: ""} },
			dual("default/a", HealthCheck{IPv4: fails4}), Families{}, ""},
		{"no peer selects the node", func(s *Snapshot) { s.Peers = nil }, dual("default/a", HealthCheck{IPv4: fails4}), Families{}, ""},
		{"no advertisement for the pool", func(s *Snapshot) { s.Advertisements[0].Pools = []string{"dmz"} },
			dual("default/a", HealthCheck{IPv4: fails4}), Families{}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := base()
			if c.edit != nil {
				c.edit(&s)
			}
			s.Services = []Service{c.svc}
			d := Plan(s).Services[0]
			if d.HealthChecked != c.want || d.HealthCheck != c.health {
				t.Errorf("health checked %+v, reason %q; want %+v, %q (decision %+v)", d.HealthChecked, d.HealthCheck, c.want, c.health, d)
			}
		})
	}
}

// ServiceDecision.HealthCheck carries the probe's reasons only, for the
// report to tell them from the others.
func TestHealthCheckDecision(t *testing.T) {
	s := base()
	s.Peers = s.Peers[:1]
	a := local("default/a", 2, "203.0.113.10", "2001:db8:100::10")
	a.HealthCheck = HealthCheck{IPv6: fails6}
	b := local("default/b", 0, "203.0.113.11")
	b.HealthCheck = HealthCheck{IPv4: fails4}
	s.Services = []Service{a, b}
	res := Plan(s)
	if got := res.Services[0].HealthCheck; got != hc6 {
		t.Errorf("a: %q, want %q", got, hc6)
	}
	if got := res.Services[1].HealthCheck; got != "" {
		t.Errorf("b (no endpoint here): %q, want none", got)
	}
}
