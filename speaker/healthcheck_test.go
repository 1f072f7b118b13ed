package speaker

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/internal/lbmodel"
	"github.com/bgplb/bgplb/speaker/announce"
	"github.com/bgplb/bgplb/speaker/healthcheck"
	"github.com/bgplb/bgplb/speaker/plan"
)

func TestHealthProbes(t *testing.T) {
	key := func(n string) lbmodel.Key { return lbmodel.Key{Namespace: "default", Name: n} }
	v4, v6 := netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("2001:db8::2")
	svcs := []plan.Service{
		{Key: key("pihole"), TrafficPolicy: lbmodel.Local, Addresses: []netip.Addr{netip.MustParseAddr("203.0.113.53")},
			Endpoints: lbmodel.NodeEndpoints{"node2": {IPv4: 1}}},
		// Dual stack with endpoints of one family here.
		{Key: key("dual"), TrafficPolicy: lbmodel.Local,
			Addresses: []netip.Addr{netip.MustParseAddr("203.0.113.54"), netip.MustParseAddr("2001:db8:100::54")},
			Endpoints: lbmodel.NodeEndpoints{"node2": {IPv6: 2}, "node1": {IPv4: 1}}},
		{Key: key("elsewhere"), TrafficPolicy: lbmodel.Local, Addresses: []netip.Addr{netip.MustParseAddr("203.0.113.55")},
			Endpoints: lbmodel.NodeEndpoints{"node1": {IPv4: 1}}},
		{Key: key("cluster"), TrafficPolicy: lbmodel.Cluster, Addresses: []netip.Addr{netip.MustParseAddr("203.0.113.56")},
			Endpoints: lbmodel.NodeEndpoints{"node2": {IPv4: 1}}},
		{Key: key("noport"), TrafficPolicy: lbmodel.Local, Addresses: []netip.Addr{netip.MustParseAddr("203.0.113.57")},
			Endpoints: lbmodel.NodeEndpoints{"node2": {IPv4: 1}}},
	}
	ports := map[lbmodel.Key]uint16{key("pihole"): 31234, key("dual"): 31235, key("elsewhere"): 31236, key("cluster"): 31237}
	show := func(ps []probe) []string {
		var out []string
		for _, p := range ps {
			out = append(out, fmt.Sprintf("%d %s %s", p.svc, p.target.Service.Name, p.target.Addr))
		}
		return out
	}
	got := show(healthProbes("node2", []netip.Addr{v4, v6}, ports, svcs))
	want := []string{"0 pihole 198.51.100.2:31234", "1 dual [2001:db8::2]:31235"}
	if !slices.Equal(got, want) {
		t.Errorf("probes %q, want %q", got, want)
	}
	// A node without an address of a family probes nothing of it.
	if got := show(healthProbes("node2", []netip.Addr{v4}, ports, svcs)); !slices.Equal(got, want[:1]) {
		t.Errorf("IPv4-only node: %q", got)
	}
	// Link-local addresses are skipped: kube-proxy serves none.
	ll := netip.MustParseAddr("fe80::1").WithZone("eth0")
	if got := show(healthProbes("node2", []netip.Addr{v4, ll, v6}, ports, svcs)); !slices.Equal(got, want) {
		t.Errorf("with a link-local address first: %q", got)
	}
	// The fallback of the probed family goes with the target.
	svcs[1].Fallback = lbmodel.Fallback{IPv4: true}
	svcs[0].Fallback = lbmodel.Fallback{IPv4: true}
	ps := healthProbes("node2", []netip.Addr{v4, v6}, ports, svcs)
	if !ps[0].target.Fallback || ps[1].target.Fallback {
		t.Errorf("fallback: %+v", ps)
	}
	// Only terminating pods here: probed, under the fallback, since the
	// plan announces them (plan.Service.LocalFallback).
	svcs[0].Fallback, svcs[0].Endpoints = lbmodel.Fallback{}, lbmodel.NodeEndpoints{"node1": {IPv4: 1}}
	svcs[0].LocalFallback = lbmodel.NodeEndpoints{"node2": {IPv4: 1}}
	ps = healthProbes("node2", []netip.Addr{v4, v6}, ports, svcs)
	if got := show(ps); !slices.Equal(got, want) || !ps[0].target.Fallback {
		t.Errorf("terminating pods only: %q %+v", got, ps)
	}
}

// Only the families the plan says the health check decides in are probed.
func TestDecidingTargets(t *testing.T) {
	key := func(n string) lbmodel.Key { return lbmodel.Key{Namespace: "default", Name: n} }
	svcs := []plan.Service{{Key: key("b")}, {Key: key("a")}, {Key: key("c")}}
	target := func(svc int, v6 bool) probe {
		a := netip.MustParseAddrPort("198.51.100.2:31234")
		if v6 {
			a = netip.MustParseAddrPort("[2001:db8::2]:31234")
		}
		return probe{svc: svc, ipv6: v6, target: healthcheck.Target{Service: svcs[svc].Key, Addr: a}}
	}
	probes := []probe{target(0, false), target(0, true), target(1, false), target(2, false)}
	res := plan.Result{Services: []plan.ServiceDecision{ // in key order
		{Key: key("a"), HealthChecked: plan.Families{IPv4: true}},
		{Key: key("b"), HealthChecked: plan.Families{IPv6: true}},
		{Key: key("c")}, // say, in a pool no advertisement selects
	}}
	var got []string
	for _, tg := range decidingTargets(probes, svcs, res) {
		got = append(got, tg.Service.Name+" "+tg.Addr.String())
	}
	if want := []string{"b [2001:db8::2]:31234", "a 198.51.100.2:31234"}; !slices.Equal(got, want) {
		t.Errorf("targets %q, want %q", got, want)
	}
}

func TestDesiredReportsHealthCheck(t *testing.T) {
	pihole, dual := lbmodel.Key{Namespace: "dns", Name: "pihole"}, lbmodel.Key{Namespace: "dns", Name: "dual"}
	const why = "kube-proxy health check on 198.51.100.2:31234 says 0 local endpoints (503)"
	res := plan.Result{
		Peers: map[string][]plan.Route{"r1": {{Prefix: netip.MustParsePrefix("203.0.113.54/32"), Services: []lbmodel.Key{dual}}}},
		Services: []plan.ServiceDecision{
			{Key: dual, Announced: true, Peers: []string{"r1"}, Reason: why, HealthCheck: why},
			{Key: pihole, Reason: why, HealthCheck: why},
		},
	}
	st := []announce.PeerStatus{{Name: "r1", Addr: netip.MustParseAddr("198.51.100.1"), State: session.Established}}
	anns := desiredReports("node2", res, map[lbmodel.Key]int32{pihole: 1, dual: 2}, st, nil, nil).anns
	if len(anns) != 2 {
		t.Fatalf("%d announcements, want 2: %+v", len(anns), anns)
	}
	// Announced in one family, withheld in the other.
	d := anns[nsName("dns", "dual.node2")]
	if !slices.Equal(d.status.Peers, []string{"r1"}) || d.healthCheck != why || d.status.Endpoints != 2 {
		t.Errorf("dual %+v", d)
	}
	// Withheld: an announcement with no peers, for the reason.
	p := anns[nsName("dns", "pihole.node2")]
	if len(p.status.Peers) != 0 || len(p.status.Prefixes) != 0 || p.healthCheck != why || p.service != "pihole" || p.status.Endpoints != 1 {
		t.Errorf("pihole %+v", p)
	}
}
