package plan

import (
	"testing"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

// The endpoint rules of issue 12 as the planner applies them; which
// endpoints count (terminating fallback, dual-stack de-duplication) is
// lbmodel.EndpointsOf's, table-tested there.
func TestEndpointRules(t *testing.T) {
	svc := func(policy lbmodel.TrafficPolicy, eps lbmodel.NodeEndpoints, a ...string) []Service {
		return []Service{{Key: key("default/a"), Addresses: addrs(a...), TrafficPolicy: policy, Endpoints: eps}}
	}
	one := func(s *Snapshot) { s.Peers = s.Peers[:1] }
	runCases(t, []planCase{{
		name: "Cluster with no endpoint anywhere is withdrawn",
		edit: func(s *Snapshot) {
			one(s)
			s.Services = svc(lbmodel.Cluster, lbmodel.NodeEndpoints{"n1": {}, "n2": {}}, "203.0.113.10")
		},
		sessions:  []string{"r1"},
		decisions: []string{"default/a: NoReadyEndpoints: no ready endpoint on any node"},
	}, {
		name: "Cluster with no EndpointSlice at all is withdrawn",
		edit: func(s *Snapshot) {
			one(s)
			s.Services = svc(lbmodel.Cluster, nil, "203.0.113.10")
		},
		sessions:  []string{"r1"},
		decisions: []string{"default/a: NoReadyEndpoints: no ready endpoint on any node"},
	}, {
		name: "Cluster with one endpoint on another node is announced here too",
		edit: func(s *Snapshot) {
			one(s)
			s.Services = svc(lbmodel.Cluster, lbmodel.NodeEndpoints{"n7": {IPv4: 1}}, "203.0.113.10")
		},
		sessions:  []string{"r1"},
		routes:    []string{"r1 203.0.113.10/32 bw=1 default/a"},
		decisions: []string{"default/a -> r1"},
	}, {
		name: "Cluster with an endpoint on no node (a selectorless Service) is announced",
		edit: func(s *Snapshot) {
			one(s)
			s.Services = svc(lbmodel.Cluster, lbmodel.NodeEndpoints{"": {IPv4: 1}}, "203.0.113.10")
		},
		sessions:  []string{"r1"},
		routes:    []string{"r1 203.0.113.10/32 bw=1 default/a"},
		decisions: []string{"default/a -> r1"},
	}, {
		name: "the node's own reason comes before the Service's",
		edit: func(s *Snapshot) {
			one(s)
			s.Node.Ready = false
			s.Services = svc(lbmodel.Cluster, nil, "203.0.113.10")
		},
		sessions:  []string{"r1"},
		decisions: []string{"default/a: n1 is not Ready (externalTrafficPolicy Cluster)"},
	}, {
		name: "dual stack: each route's bandwidth counts its own family's endpoints",
		edit: func(s *Snapshot) {
			one(s)
			s.Services = svc(lbmodel.Local, lbmodel.NodeEndpoints{"n1": {IPv4: 3, IPv6: 2}}, "203.0.113.10", "2001:db8:100::10")
		},
		sessions:  []string{"r1"},
		routes:    []string{"r1 203.0.113.10/32 bw=3 default/a", "r1 2001:db8:100::10/128 bw=2 default/a"},
		decisions: []string{"default/a -> r1"},
	}, {
		name: "dual stack, Cluster: a family with no endpoint anywhere is withdrawn alone",
		edit: func(s *Snapshot) {
			one(s)
			s.Services = svc(lbmodel.Cluster, lbmodel.NodeEndpoints{"n1": {IPv6: 2}}, "203.0.113.10", "2001:db8:100::10")
		},
		sessions:  []string{"r1"},
		routes:    []string{"r1 2001:db8:100::10/128 bw=2 default/a"},
		decisions: []string{"default/a -> r1 (NoReadyEndpoints: no ready endpoint on any node)"},
	}, {
		name: "dual stack, Local: an address is announced by the endpoints of its family",
		edit: func(s *Snapshot) {
			one(s)
			s.Services = svc(lbmodel.Local, lbmodel.NodeEndpoints{"n1": {IPv6: 1}, "n2": {IPv4: 1}}, "203.0.113.10", "2001:db8:100::10")
		},
		sessions:  []string{"r1"},
		routes:    []string{"r1 2001:db8:100::10/128 bw=1 default/a"},
		decisions: []string{"default/a -> r1 (no ready endpoint on n1 (externalTrafficPolicy Local))"},
	}})
}
