package plan

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/bgplb/bgplb/bgp/wire"
	"github.com/bgplb/bgplb/internal/lbmodel"
)

// The tests describe results as lines of text, so a table case states the
// whole outcome and a failure shows it in full:
//
//	route:    "r1 203.0.113.0/24 bw=4 default/a,default/b lp=200 comm=64512:1,no-export large=1:2:3"
//	decision: "default/a -> r1,r2", "default/a -> r1 (reason)", "default/a: reason"

func routeLines(res Result) []string {
	var out []string
	for _, peer := range sessions(res) {
		for _, r := range res.Peers[peer] {
			out = append(out, peer+" "+routeString(r))
		}
	}
	return out
}

func routeString(r Route) string {
	keys := make([]string, len(r.Services))
	for i, k := range r.Services {
		keys[i] = k.String()
	}
	s := fmt.Sprintf("%s bw=%g %s", r.Prefix, r.Bandwidth, strings.Join(keys, ","))
	if a := attrsString(r.Attrs); a != "" {
		s += " " + a
	}
	return s
}

func attrsString(a *Attrs) string {
	var parts []string
	if a.LocalPref != nil {
		parts = append(parts, fmt.Sprintf("lp=%d", *a.LocalPref))
	}
	if len(a.Communities) > 0 {
		parts = append(parts, "comm="+joinStrings(a.Communities))
	}
	if len(a.LargeCommunities) > 0 {
		parts = append(parts, "large="+joinStrings(a.LargeCommunities))
	}
	return strings.Join(parts, " ")
}

func joinStrings[T fmt.Stringer](xs []T) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = x.String()
	}
	return strings.Join(s, ",")
}

func decisionLines(res Result) []string {
	var out []string
	for _, d := range res.Services {
		switch {
		case d.Announced && d.Reason == "":
			out = append(out, fmt.Sprintf("%s -> %s", d.Key, strings.Join(d.Peers, ",")))
		case d.Announced:
			out = append(out, fmt.Sprintf("%s -> %s (%s)", d.Key, strings.Join(d.Peers, ","), d.Reason))
		default:
			out = append(out, fmt.Sprintf("%s: %s", d.Key, d.Reason))
		}
	}
	return out
}

func sessions(res Result) []string {
	var out []string
	for name := range res.Peers {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// checkLines compares line lists, printing both in full on a difference.
func checkLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\ngot:\n\t%s\nwant:\n\t%s", what, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func key(s string) lbmodel.Key {
	ns, name, _ := strings.Cut(s, "/")
	return lbmodel.Key{Namespace: ns, Name: name}
}

// cluster and local build Services; eps is the endpoint count on node n1
// in each family. A Cluster Service also has one on n2, so that it has
// one somewhere whatever eps is.
func cluster(k string, eps int, a ...string) Service {
	return Service{Key: key(k), Addresses: addrs(a...), TrafficPolicy: lbmodel.Cluster,
		Endpoints: lbmodel.NodeEndpoints{"n1": {IPv4: eps, IPv6: eps}, "n2": {IPv4: 1, IPv6: 1}}}
}

func local(k string, eps int, a ...string) Service {
	return Service{Key: key(k), Addresses: addrs(a...), TrafficPolicy: lbmodel.Local, Endpoints: both("n1", eps)}
}

// both is eps endpoints on node in each family.
func both(node string, eps int) lbmodel.NodeEndpoints {
	return lbmodel.NodeEndpoints{node: {IPv4: eps, IPv6: eps}}
}

func cidrPool(name, tier string, cidrs ...string) lbmodel.Pool {
	p := lbmodel.Pool{Name: name, Labels: map[string]string{"tier": tier}}
	for _, c := range cidrs {
		p.Ranges = append(p.Ranges, lbmodel.RangeOf(netip.MustParsePrefix(c)))
	}
	return createdAt(p, 0)
}

// createdAt dates a pool sec seconds after base's pools were created.
func createdAt(p lbmodel.Pool, sec int) lbmodel.Pool {
	p.Created = time.Date(2026, 1, 1, 0, 0, sec, 0, time.UTC)
	return p
}

func lastOf(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func rng(first, last string) lbmodel.Range {
	return lbmodel.Range{First: netip.MustParseAddr(first), Last: netip.MustParseAddr(last)}
}

func sel(s string) labels.Selector {
	x, err := labels.Parse(s)
	if err != nil {
		panic(err)
	}
	return x
}

func sels(ss ...string) []labels.Selector {
	out := make([]labels.Selector, len(ss))
	for i, s := range ss {
		out[i] = sel(s)
	}
	return out
}

func lp(v uint32) *uint32 { return &v }

func comms(ss ...string) []wire.Community {
	out := make([]wire.Community, len(ss))
	for i, s := range ss {
		out[i] = must(wire.ParseCommunity(s))
	}
	return out
}

func larges(ss ...string) []wire.LargeCommunity {
	out := make([]wire.LargeCommunity, len(ss))
	for i, s := range ss {
		out[i] = must(wire.ParseLargeCommunity(s))
	}
	return out
}

// base is the cluster most table cases start from: node n1 (Ready, zone a),
// pools lan (IPv4 and IPv6) and dmz, peers r1 and r2 that peer with every
// node, and one advertisement of every pool to every peer.
func base() Snapshot {
	return Snapshot{
		Node: lbmodel.Node{Name: "n1", Labels: map[string]string{"zone": "a"}, Ready: true},
		Pools: []lbmodel.Pool{
			cidrPool("lan", "lan", "203.0.113.0/24", "2001:db8:100::/120"),
			cidrPool("dmz", "dmz", "198.51.100.0/24"),
		},
		Peers:          []lbmodel.Peer{{Name: "r1"}, {Name: "r2"}},
		Advertisements: []lbmodel.Advertisement{{Name: "all"}},
	}
}
