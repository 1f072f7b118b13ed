package plan

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

// l2Lines describes an L2Plan: "addr pool policies nodes services here ifaces".
func l2Lines(p L2Plan) []string {
	var out []string
	for _, w := range p.Wants {
		nodes := "any"
		if w.Nodes != nil {
			var ns []string
			for n := range w.Nodes {
				ns = append(ns, n)
			}
			slices.Sort(ns)
			nodes = "[" + strings.Join(ns, ",") + "]"
		}
		keys := make([]string, len(w.Services))
		for i, k := range w.Services {
			keys[i] = k.String()
		}
		ifs := "subnet"
		if w.Interfaces != nil {
			ifs = strings.Join(w.Interfaces, ",")
		}
		here := "-"
		if w.Here {
			here = "here " + ifs
		}
		out = append(out, fmt.Sprintf("%s %s %s %s %s %s", w.Addr, w.Pool, strings.Join(w.Policies, ","), nodes, strings.Join(keys, ","), here))
	}
	out = append(out, fmt.Sprintf("candidate=%v %s", p.Candidate, strings.Join(p.Policies, ",")))
	return out
}

func TestPlanL2(t *testing.T) {
	l2 := func(name string, pools []string, ifaces []string, nodes ...string) lbmodel.L2Advertisement {
		return lbmodel.L2Advertisement{Name: name, Pools: pools, Interfaces: ifaces, NodeSelectors: sels(nodes...)}
	}
	twoNodes := func(s Service) Service {
		s.Endpoints = lbmodel.NodeEndpoints{"n1": {IPv4: 1}, "n2": {IPv4: 2}}
		return s
	}
	for _, c := range []struct {
		name string
		mod  func(*Snapshot)
		want []string
	}{
		{"no L2 policy: nothing", func(s *Snapshot) {
			s.Services = []Service{cluster("default/a", 1, "203.0.113.5")}
		}, []string{"candidate=false "}},
		{"pool in L2, Cluster Service: any node; pool not in L2 left out", func(s *Snapshot) {
			s.L2Advertisements = []lbmodel.L2Advertisement{l2("lan", []string{"lan"}, nil)}
			s.Services = []Service{cluster("default/a", 1, "203.0.113.5", "2001:db8:100::5"), cluster("default/b", 1, "198.51.100.5")}
		}, []string{
			"203.0.113.5 lan lan/lan any default/a here subnet",
			"2001:db8:100::5 lan lan/lan any default/a here subnet",
			"candidate=true lan/lan",
		}},
		{"Local: only nodes with endpoints of the family", func(s *Snapshot) {
			s.L2Advertisements = []lbmodel.L2Advertisement{l2("lan", nil, []string{"eth*"})}
			sv := local("default/a", 1, "203.0.113.5", "2001:db8:100::5")
			sv.Endpoints = lbmodel.NodeEndpoints{"n1": {IPv4: 1}, "n2": {IPv4: 1, IPv6: 1}}
			s.Services = []Service{sv}
		}, []string{
			"203.0.113.5 lan lan/lan [n1,n2] default/a here eth*",
			"2001:db8:100::5 lan lan/lan [n2] default/a here eth*",
			"candidate=true lan/dmz,lan/lan",
		}},
		{"no endpoint anywhere: left out", func(s *Snapshot) {
			s.L2Advertisements = []lbmodel.L2Advertisement{l2("lan", nil, nil)}
			s.Services = []Service{{Key: key("default/a"), Addresses: addrs("203.0.113.5"), TrafficPolicy: lbmodel.Cluster}}
		}, []string{"candidate=true lan/lan"}},
		{"shared address: Local nodes narrowed, else merged", func(s *Snapshot) {
			s.L2Advertisements = []lbmodel.L2Advertisement{l2("lan", nil, nil)}
			a := twoNodes(local("default/a", 1, "203.0.113.5"))
			b := local("default/b", 1, "203.0.113.5")
			b.Endpoints = lbmodel.NodeEndpoints{"n2": {IPv4: 1}}
			c := local("default/c", 1, "203.0.113.6")
			d := local("default/d", 1, "203.0.113.6")
			d.Endpoints = lbmodel.NodeEndpoints{"n3": {IPv4: 1}}
			s.Services = []Service{a, b, cluster("default/z", 1, "203.0.113.5"), c, d}
		}, []string{
			"203.0.113.5 lan lan/lan [n2] default/a,default/b,default/z here subnet",
			"203.0.113.6 lan lan/lan [n1,n3] default/c,default/d here subnet",
			"candidate=true lan/lan",
		}},
		{"node selectors: this node not selected, another policy's node is", func(s *Snapshot) {
			s.L2Advertisements = []lbmodel.L2Advertisement{l2("b-zone", []string{"lan"}, nil, "zone=b")}
			s.Services = []Service{cluster("default/a", 1, "203.0.113.5")}
		}, []string{"203.0.113.5 lan b-zone/lan any default/a -", "candidate=false "}},
		{"not ready, excluded or draining: no candidacy, wants unchanged", func(s *Snapshot) {
			s.L2Advertisements = []lbmodel.L2Advertisement{l2("lan", nil, nil)}
			s.Services = []Service{cluster("default/a", 1, "203.0.113.5")}
			s.Drain = Drain{Phase: Draining, Why: "cordoned"}
		}, []string{"203.0.113.5 lan lan/lan any default/a here subnet", "candidate=false "}},
		{"overlapping younger pool is not used", func(s *Snapshot) {
			s.L2Advertisements = []lbmodel.L2Advertisement{l2("young", []string{"young"}, nil)}
			s.Pools = append(s.Pools, createdAt(cidrPool("young", "x", "203.0.113.0/28"), 10))
			s.Services = []Service{cluster("default/a", 1, "203.0.113.5")}
		}, []string{"candidate=false "}},
		{"no link on the pool's subnet: no candidacy for it", func(s *Snapshot) {
			s.L2Advertisements = []lbmodel.L2Advertisement{l2("lan", nil, nil), l2("eth9", []string{"dmz"}, []string{"eth9"})}
			s.Links = []Link{{Name: "eth0", Prefixes: []netip.Prefix{netip.MustParsePrefix("198.18.0.2/24"), netip.MustParsePrefix("203.0.113.9/32")}}}
			s.Services = []Service{cluster("default/a", 1, "203.0.113.5")}
		}, []string{"203.0.113.5 lan lan/lan any default/a here subnet", "candidate=false "}},
		{"Local: ready nodes before terminating ones", func(s *Snapshot) {
			s.L2Advertisements = []lbmodel.L2Advertisement{l2("lan", nil, nil)}
			a := local("default/a", 1, "203.0.113.5")
			a.Endpoints = lbmodel.NodeEndpoints{"n2": {IPv4: 1}}
			a.LocalFallback = lbmodel.NodeEndpoints{"n1": {IPv4: 1}}
			b := local("default/b", 1, "203.0.113.6")
			b.Endpoints = lbmodel.NodeEndpoints{"n1": {IPv4: 1}}
			b.LocalFallback = lbmodel.NodeEndpoints{"n1": {IPv4: 1}}
			s.Services = []Service{a, b}
		}, []string{
			"203.0.113.5 lan lan/lan [n2] default/a here subnet",
			"203.0.113.6 lan lan/lan [n1] default/b here subnet",
			"candidate=true lan/lan",
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := base()
			s.Links = []Link{{Name: "eth0", Prefixes: []netip.Prefix{netip.MustParsePrefix("203.0.113.2/24"), netip.MustParsePrefix("2001:db8:100::2/64")}}}
			c.mod(&s)
			checkLines(t, "PlanL2", l2Lines(PlanL2(s)), c.want)
		})
	}
	s := base()
	s.L2Advertisements = []lbmodel.L2Advertisement{l2("lan", nil, nil)}
	for _, mod := range []func(*Snapshot){
		func(s *Snapshot) { s.Node.Ready = false },
		func(s *Snapshot) { s.Node.Labels = map[string]string{lbmodel.ExcludeLabel: ""} },
		func(s *Snapshot) { s.Node = lbmodel.Node{} },
	} {
		x := s
		mod(&x)
		if p := PlanL2(x); p.Candidate || p.Policies != nil {
			t.Errorf("node %+v is a candidate: %+v", x.Node, p)
		}
	}
}
