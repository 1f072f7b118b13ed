package plan

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/bgplb/bgplb/bgp/wire"
	"github.com/bgplb/bgplb/internal/lbmodel"
)

// slowPlan is the obviously correct planner Plan is compared with. It
// follows the rules sentence by sentence: for every peer of this node, for
// every Service, for every address, for every advertisement, decide from
// scratch; collect routes in maps keyed by peer and prefix; merge
// attributes at the end. No indices, no sorting of contributions, no
// interning, no shared backing slices. It assumes unique names (the
// generator makes them).
type slowResult struct {
	peers     map[string][]Route
	announced map[lbmodel.Key][]string // Service -> peers, sorted; absent: not announced
	complete  map[lbmodel.Key]bool     // every valid address reached some peer (no Reason expected)
	checked   map[lbmodel.Key]Families // families where the health check decides
	health    map[lbmodel.Key]bool     // some health check objection is published
	conflicts map[[2]string]bool
}

type slowRoute struct {
	services map[lbmodel.Key]bool
	advs     map[string]bool
}

func slowPlan(s Snapshot) slowResult {
	out := slowResult{peers: map[string][]Route{}, announced: map[lbmodel.Key][]string{}, complete: map[lbmodel.Key]bool{}, conflicts: map[[2]string]bool{},
		checked: map[lbmodel.Key]Families{}, health: map[lbmodel.Key]bool{}}
	node := labels.Set(s.Node.Labels)
	var myPeers []string
	for _, p := range s.Peers {
		if slowMatches(p.NodeSelectors, node) {
			myPeers = append(myPeers, p.Name)
		}
	}
	sort.Strings(myPeers)
	routes := map[string]map[netip.Prefix]*slowRoute{}
	for _, peer := range myPeers {
		routes[peer] = map[netip.Prefix]*slowRoute{}
	}
	_, excluded := s.Node.Labels[lbmodel.ExcludeLabel]
	for _, svc := range s.Services {
		valid, reached := 0, 0
		for _, a := range svc.Addresses {
			a = a.Unmap()
			if !a.IsValid() {
				continue
			}
			valid++
			if excluded || !slowEndpointsAllow(s.Node, svc, a) {
				continue
			}
			pool := slowPoolOf(s.Pools, a)
			if pool == nil {
				continue
			}
			blocked, published := slowHealthObjects(s.Node, svc, a)
			hit := false
			for _, peer := range myPeers {
				for _, adv := range s.Advertisements {
					bits, ok := slowLength(adv, a)
					if !ok || !slowMatches(adv.NodeSelectors, node) || !slowSelectsPool(adv, pool) ||
						len(adv.Peers) > 0 && !slices.Contains(adv.Peers, peer) {
						continue
					}
					hit = true
					if blocked {
						continue
					}
					if svc.TrafficPolicy == lbmodel.Local {
						bits = a.BitLen() // a Local Service is never aggregated
					}
					prefix := netip.PrefixFrom(a, bits).Masked()
					r := routes[peer][prefix]
					if r == nil {
						r = &slowRoute{services: map[lbmodel.Key]bool{}, advs: map[string]bool{}}
						routes[peer][prefix] = r
					}
					r.services[svc.Key] = true
					r.advs[adv.Name] = true
				}
			}
			if hit && svc.TrafficPolicy == lbmodel.Local {
				f := out.checked[svc.Key]
				if a.Is4() {
					f.IPv4 = true
				} else {
					f.IPv6 = true
				}
				out.checked[svc.Key] = f
			}
			if hit && published {
				out.health[svc.Key] = true
			}
			if hit && !blocked {
				reached++
			}
		}
		out.complete[svc.Key] = valid > 0 && reached == valid
	}
	for peer, byPrefix := range routes {
		out.peers[peer] = nil
		for prefix, r := range byPrefix {
			out.peers[peer] = append(out.peers[peer], slowRouteOf(s, prefix, r, out.conflicts))
			for k := range r.services {
				if !slices.Contains(out.announced[k], peer) {
					out.announced[k] = append(out.announced[k], peer)
				}
			}
		}
		slices.SortFunc(out.peers[peer], func(a, b Route) int { return a.Prefix.Compare(b.Prefix) })
	}
	for _, ps := range out.announced {
		sort.Strings(ps)
	}
	return out
}

func slowRouteOf(s Snapshot, prefix netip.Prefix, r *slowRoute, conflicts map[[2]string]bool) Route {
	route := Route{Prefix: prefix, Attrs: &Attrs{}}
	comm := map[wire.Community]bool{}
	large := map[wire.LargeCommunity]bool{}
	var prefs []string
	for _, adv := range s.Advertisements {
		if !r.advs[adv.Name] {
			continue
		}
		for _, c := range adv.Communities {
			comm[c] = true
		}
		for _, c := range adv.LargeCommunities {
			large[c] = true
		}
		if adv.LocalPref != nil {
			for _, other := range prefs {
				o := slowAdv(s, other)
				if *o.LocalPref != *adv.LocalPref {
					pair := [2]string{min(other, adv.Name), max(other, adv.Name)}
					conflicts[pair] = true
				}
			}
			prefs = append(prefs, adv.Name)
			if route.Attrs.LocalPref == nil || *adv.LocalPref > *route.Attrs.LocalPref {
				route.Attrs.LocalPref = lp(*adv.LocalPref)
			}
		}
	}
	for c := range comm {
		route.Attrs.Communities = append(route.Attrs.Communities, c)
	}
	slices.Sort(route.Attrs.Communities)
	for c := range large {
		route.Attrs.LargeCommunities = append(route.Attrs.LargeCommunities, c)
	}
	slices.SortFunc(route.Attrs.LargeCommunities, func(a, b wire.LargeCommunity) int {
		return strings.Compare(fmt.Sprintf("%010d:%010d:%010d", a.Global, a.Local1, a.Local2),
			fmt.Sprintf("%010d:%010d:%010d", b.Global, b.Local1, b.Local2))
	})
	leaving := true // every Service of the route served here by terminating pods only
	for k := range r.services {
		route.Services = append(route.Services, k)
		svc := slowService(s, k)
		n := max(svc.Endpoints[s.Node.Name].Of(prefix.Addr()), 0)
		if svc.TrafficPolicy == lbmodel.Cluster && n == 0 {
			n = 1
		}
		lf := svc.LocalFallback[s.Node.Name].Of(prefix.Addr())
		if svc.TrafficPolicy == lbmodel.Local {
			n = max(n, lf)
		}
		leaving = leaving && svc.TrafficPolicy == lbmodel.Local && lf > 0
		route.Bandwidth += float32(n)
	}
	if leaving && !slices.Contains(route.Attrs.Communities, wire.CommunityGracefulShutdown) {
		route.Attrs.Communities = append(route.Attrs.Communities, wire.CommunityGracefulShutdown)
		slices.Sort(route.Attrs.Communities)
	}
	slices.SortFunc(route.Services, func(a, b lbmodel.Key) int {
		return strings.Compare(a.Namespace+"\x00"+a.Name, b.Namespace+"\x00"+b.Name)
	})
	return route
}

func slowAdv(s Snapshot, name string) lbmodel.Advertisement {
	for _, a := range s.Advertisements {
		if a.Name == name {
			return a
		}
	}
	panic(name)
}

func slowService(s Snapshot, k lbmodel.Key) Service {
	for _, x := range s.Services {
		if x.Key == k {
			return x
		}
	}
	panic(k)
}

func slowMatches(ss []labels.Selector, set labels.Set) bool {
	if len(ss) == 0 {
		return true
	}
	for _, s := range ss {
		if s != nil && s.Matches(set) {
			return true
		}
	}
	return false
}

func slowEndpointsAllow(n lbmodel.Node, svc Service, a netip.Addr) bool {
	anywhere := 0
	for _, c := range svc.Endpoints {
		anywhere += c.Of(a)
	}
	if svc.TrafficPolicy == lbmodel.Local {
		// A node's terminating pods count where the Service has some
		// endpoint: with none anywhere they are the Service's fallback,
		// counted in Endpoints too.
		return anywhere > 0 && (svc.Endpoints[n.Name].Of(a) > 0 || svc.LocalFallback[n.Name].Of(a) > 0)
	}
	return n.Ready && anywhere > 0
}

// slowHealthObjects: whether the probe keeps a Local Service's address
// back, and whether it says so as a failure.
func slowHealthObjects(n lbmodel.Node, svc Service, a netip.Addr) (blocked, published bool) {
	if svc.TrafficPolicy != lbmodel.Local {
		return false, false
	}
	v, fallback := svc.HealthCheck.IPv4, svc.Fallback.IPv4
	if !a.Is4() {
		v, fallback = svc.HealthCheck.IPv6, svc.Fallback.IPv6
	}
	fallback = fallback || svc.LocalFallback[n.Name].Of(a) > 0
	if v.Reason == "" || v.NoReadyLocal && fallback {
		return false, false
	}
	return true, !v.Waiting
}

// slowPoolOf is the pool rule spelt out: a pool is used when all its
// ranges are valid and none of them shares an address with a pool used
// before it, pools taken oldest first, then by name; a is in the used pool
// that holds it.
func slowPoolOf(pools []lbmodel.Pool, a netip.Addr) *lbmodel.Pool {
	valid := func(r lbmodel.Range) bool {
		return r.First.IsValid() && r.Last.IsValid() && r.First.Is4() == r.Last.Is4() && !r.Last.Less(r.First)
	}
	holds := func(r lbmodel.Range, x netip.Addr) bool {
		return x.Is4() == r.First.Is4() && !x.Less(r.First) && !r.Last.Less(x)
	}
	share := func(r, q lbmodel.Range) bool { return holds(r, q.First) || holds(q, r.First) }
	order := make([]*lbmodel.Pool, len(pools))
	for i := range pools {
		order[i] = &pools[i]
	}
	sort.SliceStable(order, func(i, j int) bool {
		if !order[i].Created.Equal(order[j].Created) {
			return order[i].Created.Before(order[j].Created)
		}
		return order[i].Name < order[j].Name
	})
	var used []*lbmodel.Pool
	for _, p := range order {
		ok := p.Name != ""
		for _, r := range p.Ranges {
			ok = ok && valid(r)
		}
		for _, u := range used {
			ok = ok && u.Name != p.Name
			for _, r := range p.Ranges {
				for _, q := range u.Ranges {
					ok = ok && !share(r, q)
				}
			}
		}
		if ok {
			used = append(used, p)
		}
	}
	for _, p := range used {
		for _, r := range p.Ranges {
			if holds(r, a) {
				return p
			}
		}
	}
	return nil
}

func slowSelectsPool(a lbmodel.Advertisement, p *lbmodel.Pool) bool {
	if len(a.Pools) == 0 && len(a.PoolSelectors) == 0 {
		return true
	}
	if slices.Contains(a.Pools, p.Name) {
		return true
	}
	for _, s := range a.PoolSelectors {
		if s != nil && s.Matches(labels.Set(p.Labels)) {
			return true
		}
	}
	return false
}

// slowLength is the advertisement's prefix length for a's family; false when
// either length is out of range (the advertisement is then ignored).
func slowLength(a lbmodel.Advertisement, x netip.Addr) (int, bool) {
	v4, v6 := a.AggregationLength, a.AggregationLengthV6
	if v4 == 0 {
		v4 = 32
	}
	if v6 == 0 {
		v6 = 128
	}
	if v4 < 1 || v4 > 32 || v6 < 1 || v6 > 128 {
		return 0, false
	}
	if x.Is4() {
		return v4, true
	}
	return v6, true
}

// TestAgainstTwin compares Plan with slowPlan on random snapshots.
func TestAgainstTwin(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 300
	}
	var withRoutes, aggregates, partial, conflicts int
	for seed := range uint64(n) {
		s := randomSnapshot(rand.New(rand.NewPCG(seed, 1)))
		got, want := Plan(s), slowPlan(s)
		if !compareTwin(t, seed, got, want) {
			return
		}
		routes := 0
		for _, rs := range got.Peers {
			routes += len(rs)
			for _, r := range rs {
				if len(r.Services) > 1 {
					aggregates++
				}
			}
		}
		if routes > 0 {
			withRoutes++
		}
		for _, d := range got.Services {
			if d.Announced && d.Reason != "" {
				partial++
			}
		}
		conflicts += len(want.conflicts)
	}
	// A generator that rarely announces, aggregates, announces part of a
	// Service or merges disagreeing advertisements would make the
	// comparison pass without testing those paths.
	if withRoutes < n/5 || aggregates < n/20 || partial < n/10 || conflicts == 0 {
		t.Errorf("over %d snapshots: %d with routes, %d routes of several Services, %d Services partly announced, %d LOCAL_PREF conflicts: the generator hardly exercises the planner",
			n, withRoutes, aggregates, partial, conflicts)
	}
}

func compareTwin(t *testing.T, seed uint64, got Result, want slowResult) bool {
	t.Helper()
	fail := func(format string, args ...any) bool {
		t.Errorf("seed %d: "+format, append([]any{seed}, args...)...)
		return false
	}
	if !reflect.DeepEqual(got.Peers, want.peers) {
		return fail("routes differ\nplan: %v\ntwin: %v", describeRoutes(got.Peers), describeRoutes(want.peers))
	}
	for _, d := range got.Services {
		if ps := want.announced[d.Key]; d.Announced != (len(ps) > 0) || !slices.Equal(d.Peers, ps) {
			return fail("%s: announced=%v to %v, twin says %v", d.Key, d.Announced, d.Peers, ps)
		}
		if (d.Reason == "") != want.complete[d.Key] {
			return fail("%s: reason %q, twin says every address announced: %v", d.Key, d.Reason, want.complete[d.Key])
		}
		if d.HealthChecked != want.checked[d.Key] || (d.HealthCheck != "") != want.health[d.Key] {
			return fail("%s: health checked %+v, reason %q; twin says %+v, published %v", d.Key, d.HealthChecked, d.HealthCheck,
				want.checked[d.Key], want.health[d.Key])
		}
	}
	var lpProblems []string
	for _, p := range got.Problems {
		if strings.Contains(p, "localPref") {
			lpProblems = append(lpProblems, p)
		}
	}
	if len(lpProblems) != len(want.conflicts) {
		return fail("LOCAL_PREF problems %q, twin finds conflicts %v", lpProblems, want.conflicts)
	}
	for pair := range want.conflicts {
		if !slices.ContainsFunc(lpProblems, func(p string) bool {
			return strings.Contains(p, fmt.Sprintf("%q (", pair[0])) && strings.Contains(p, fmt.Sprintf("%q (", pair[1]))
		}) {
			return fail("no problem names advertisements %v: %q", pair, lpProblems)
		}
	}
	return true
}

func describeRoutes(m map[string][]Route) []string {
	var out []string
	for peer, routes := range m {
		if len(routes) == 0 {
			out = append(out, peer+": -")
		}
		for _, r := range routes {
			out = append(out, peer+" "+routeString(r))
		}
	}
	sort.Strings(out)
	return out
}

// TestDeterministic: shuffling every input list, and the lists inside the
// objects, changes nothing in the result.
func TestDeterministic(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 2))
		s := randomSnapshot(r)
		want := Plan(s)
		for range 5 {
			shuffleSnapshot(r, &s)
			if got := Plan(s); !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d: a shuffled snapshot gives another result\ngot:  %v\n%q\nwant: %v\n%q", seed,
					describeRoutes(got.Peers), got.Problems, describeRoutes(want.Peers), want.Problems)
			}
		}
	}
}

// TestInputUntouched: Plan neither modifies the snapshot (communities are
// sorted into copies) nor returns slices that alias it.
func TestInputUntouched(t *testing.T) {
	for seed := range uint64(200) {
		s := randomSnapshot(rand.New(rand.NewPCG(seed, 3)))
		res := Plan(s)
		if orig := randomSnapshot(rand.New(rand.NewPCG(seed, 3))); !reflect.DeepEqual(s, orig) {
			t.Fatalf("seed %d: Plan modified its input", seed)
		}
		for _, routes := range res.Peers {
			for _, r := range routes {
				for i := range s.Advertisements {
					a := &s.Advertisements[i]
					if len(a.Communities) > 0 && len(r.Attrs.Communities) > 0 && &a.Communities[0] == &r.Attrs.Communities[0] ||
						len(a.LargeCommunities) > 0 && len(r.Attrs.LargeCommunities) > 0 && &a.LargeCommunities[0] == &r.Attrs.LargeCommunities[0] ||
						a.LocalPref != nil && a.LocalPref == r.Attrs.LocalPref {
						t.Fatalf("seed %d: route %s shares attributes with advertisement %s", seed, r.Prefix, a.Name)
					}
				}
			}
		}
	}
}
