package allocator

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	klabels "k8s.io/apimachinery/pkg/labels"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func ips(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = ip(s)
	}
	return out
}

func rng(tb testing.TB, s string) lbmodel.Range {
	tb.Helper()
	r, err := lbmodel.ParseRange(s) // the product's one parser
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// pool is an auto-assigning pool over the given ranges.
func pool(tb testing.TB, name string, ranges ...string) lbmodel.Pool {
	tb.Helper()
	p := lbmodel.Pool{Name: name, AutoAssign: true}
	for _, s := range ranges {
		p.Ranges = append(p.Ranges, rng(tb, s))
	}
	return p
}

// createdAt dates a pool sec seconds after the epoch: of two overlapping
// pools the older is kept (then the one whose name sorts first).
func createdAt(p lbmodel.Pool, sec int64) lbmodel.Pool {
	p.Created = time.Unix(sec, 0)
	return p
}

// sel is a selector in kubectl's syntax.
func sel(s string) klabels.Selector {
	out, err := klabels.Parse(s)
	if err != nil {
		panic(err)
	}
	return out
}

func svc(ns, name string) Request { return Request{Key: lbmodel.Key{Namespace: ns, Name: name}} }

func newAlloc(tb testing.TB, cfg Config, pools ...lbmodel.Pool) *Allocator {
	tb.Helper()
	a, problems := New(cfg, pools)
	if len(problems) > 0 {
		tb.Fatalf("pools refused: %v", problems)
	}
	return a
}

// mkPool is pool for table literals.
func mkPool(name string, ranges ...string) lbmodel.Pool {
	p := lbmodel.Pool{Name: name, AutoAssign: true}
	for _, s := range ranges {
		r, err := lbmodel.ParseRange(s) // the product's one parser
		if err != nil {
			panic(err)
		}
		p.Ranges = append(p.Ranges, r)
	}
	return p
}

func manual(p lbmodel.Pool) lbmodel.Pool { p.AutoAssign = false; return p }
func avoid(p lbmodel.Pool) lbmodel.Pool  { p.AvoidBuggyIPs = true; return p }

func withAlloc(p lbmodel.Pool, sa lbmodel.ServiceAllocation) lbmodel.Pool {
	p.Allocation = &sa
	return p
}
func prio(n int, p lbmodel.Pool) lbmodel.Pool {
	return withAlloc(p, lbmodel.ServiceAllocation{Priority: n})
}

// rq is a request for Service default/name, changed by the options.
func rq(name string, opts ...func(*Request)) Request {
	r := Request{Key: lbmodel.Key{Namespace: "default", Name: name}}
	for _, o := range opts {
		o(&r)
	}
	return r
}

func inNS(ns string) func(*Request) { return func(r *Request) { r.Key.Namespace = ns } }
func want(addrs ...string) func(*Request) {
	return func(r *Request) { r.Addresses = ips(addrs...) }
}
func fromPool(name string) func(*Request) { return func(r *Request) { r.Pool = name } }
func fams(fs ...Family) func(*Request)    { return func(r *Request) { r.Families = fs } }
func policy(p FamilyPolicy) func(*Request) {
	return func(r *Request) { r.Policy = p }
}
func local(r *Request) { r.TrafficPolicy = lbmodel.Local }
func selecting(sel string) func(*Request) {
	return func(r *Request) { r.Selector = sel }
}
func labels(kv ...string) func(*Request) {
	return func(r *Request) { r.Labels = kvMap(kv) }
}
func nsLabels(kv ...string) func(*Request) {
	return func(r *Request) { r.NamespaceLabels = kvMap(kv) }
}

// share sets the sharing key and ports ("53/TCP").
func share(key string, ports ...string) func(*Request) {
	return func(r *Request) {
		r.SharingKey = key
		r.Ports = nil
		for _, p := range ports {
			var n uint16
			var proto string
			if _, err := fmt.Sscanf(p, "%d/%s", &n, &proto); err != nil {
				panic(err)
			}
			r.Ports = append(r.Ports, Port{Protocol: map[string]Protocol{"TCP": TCP, "UDP": UDP, "SCTP": SCTP}[proto], Port: n})
		}
	}
}

func kvMap(kv []string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}
