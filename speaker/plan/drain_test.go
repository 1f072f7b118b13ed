package plan

import (
	"testing"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

func TestDrain(t *testing.T) {
	twoAdvs := func(s *Snapshot) {
		s.Advertisements = []lbmodel.Advertisement{
			{Name: "lan", Pools: []string{"lan"}, LocalPref: lp(200), Communities: comms("64512:1")},
			{Name: "dmz", Pools: []string{"dmz"}},
		}
		s.Services = []Service{cluster("default/a", 1, "203.0.113.10"), local("default/b", 2, "198.51.100.7")}
	}
	runCases(t, []planCase{{
		name: "draining: every route carries GRACEFUL_SHUTDOWN, next to the policy's communities",
		edit: func(s *Snapshot) {
			twoAdvs(s)
			s.Drain = Drain{Phase: Draining, Why: "cordoned"}
		},
		routes: []string{
			"r1 198.51.100.7/32 bw=2 default/b comm=graceful-shutdown",
			"r1 203.0.113.10/32 bw=1 default/a lp=200 comm=64512:1,graceful-shutdown",
			"r2 198.51.100.7/32 bw=2 default/b comm=graceful-shutdown",
			"r2 203.0.113.10/32 bw=1 default/a lp=200 comm=64512:1,graceful-shutdown",
		},
		decisions: []string{"default/a -> r1,r2", "default/b -> r1,r2"},
	}, {
		name: "a policy that sets GRACEFUL_SHUTDOWN itself: not twice",
		edit: func(s *Snapshot) {
			s.Advertisements = []lbmodel.Advertisement{{Name: "all", Communities: comms("graceful-shutdown")}}
			s.Services = []Service{cluster("default/a", 1, "203.0.113.10")}
			s.Drain = Drain{Phase: Draining}
		},
		routes: []string{
			"r1 203.0.113.10/32 bw=1 default/a comm=graceful-shutdown",
			"r2 203.0.113.10/32 bw=1 default/a comm=graceful-shutdown",
		},
		decisions: []string{"default/a -> r1,r2"},
	}, {
		name: "drained: nothing, and the reason says why; sessions stay",
		edit: func(s *Snapshot) {
			twoAdvs(s)
			s.Drain = Drain{Phase: Drained, Why: "cordoned"}
		},
		decisions: []string{
			"default/a: n1 is drained (cordoned): its routes are withdrawn",
			"default/b: n1 is drained (cordoned): its routes are withdrawn",
		},
	}, {
		name: "excluded and draining: still announced, marked",
		edit: func(s *Snapshot) {
			s.Node.Labels[lbmodel.ExcludeLabel] = ""
			s.Services = []Service{cluster("default/a", 1, "203.0.113.10")}
			s.Drain = Drain{Phase: Draining, Why: "label " + lbmodel.ExcludeLabel}
		},
		routes: []string{
			"r1 203.0.113.10/32 bw=1 default/a comm=graceful-shutdown",
			"r2 203.0.113.10/32 bw=1 default/a comm=graceful-shutdown",
		},
		decisions: []string{"default/a -> r1,r2"},
	}, {
		name: "excluded, no drain timed by the shell: nothing at once, as before",
		edit: func(s *Snapshot) {
			s.Node.Labels[lbmodel.ExcludeLabel] = ""
			s.Services = []Service{cluster("default/a", 1, "203.0.113.10")}
		},
		decisions: []string{"default/a: n1 is excluded from external load balancers (label node.kubernetes.io/exclude-from-external-load-balancers)"},
	}, {
		name: "draining, but a Service's own rules still apply",
		edit: func(s *Snapshot) {
			s.Services = []Service{local("default/b", 0, "198.51.100.7")}
			s.Drain = Drain{Phase: Draining}
		},
		decisions: []string{"default/b: no ready endpoint on n1 (externalTrafficPolicy Local)"},
	}})
}

func TestDrainSharesAttrs(t *testing.T) {
	s := base()
	s.Services = []Service{cluster("default/a", 1, "203.0.113.10"), cluster("default/c", 1, "203.0.113.11")}
	s.Drain = Drain{Phase: Draining}
	res := Plan(s)
	r1, r2 := res.Peers["r1"], res.Peers["r2"]
	if len(r1) != 2 || len(r2) != 2 {
		t.Fatalf("routes: %v", routeLines(res))
	}
	if r1[0].Attrs != r1[1].Attrs || r1[0].Attrs != r2[0].Attrs {
		t.Error("equal attributes of a draining node are not one *Attrs")
	}
}
