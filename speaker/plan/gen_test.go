package plan

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/bgplb/bgplb/bgp/wire"
	"github.com/bgplb/bgplb/internal/lbmodel"
)

// randomSnapshot makes a small snapshot in a small address space, so that
// Services collide in aggregates, pools overlap, advertisements merge and
// selectors both match and miss. Names are unique (Plan's handling of
// repeats depends on input order by design). The same generator state gives
// the same snapshot.
func randomSnapshot(r *rand.Rand) Snapshot {
	s := Snapshot{Node: lbmodel.Node{Name: "n1", Labels: map[string]string{"zone": pick(r, "a", "b")}, Ready: r.IntN(6) != 0}}
	if r.IntN(2) == 0 {
		s.Node.Labels["role"] = "edge"
	}
	if r.IntN(20) == 0 {
		s.Node.Labels[lbmodel.ExcludeLabel] = ""
	}
	for _, name := range subset1(r, "a", "b", "c") {
		p := lbmodel.Pool{Name: name, Labels: map[string]string{"tier": pick(r, "lan", "dmz")},
			Created: time.Unix(int64(r.IntN(3)), 0)} // ties, so that names decide too
		for range 1 + r.IntN(3) {
			p.Ranges = append(p.Ranges, randomRange(r, v4))
		}
		for range r.IntN(3) {
			p.Ranges = append(p.Ranges, randomRange(r, v6))
		}
		s.Pools = append(s.Pools, p)
	}
	for _, name := range subset1(r, "r1", "r2", "r3") {
		s.Peers = append(s.Peers, lbmodel.Peer{Name: name, NodeSelectors: randomSelectors(r, "zone")})
	}
	for _, name := range subset1(r, "x", "y", "z") {
		s.Advertisements = append(s.Advertisements, randomAdvertisement(r, name))
	}
	for i := range r.IntN(12) {
		s.Services = append(s.Services, randomService(r, i))
	}
	return s
}

func randomAdvertisement(r *rand.Rand, name string) lbmodel.Advertisement {
	a := lbmodel.Advertisement{
		Name:                name,
		Pools:               subset(r, "a", "b", "c", "q"),
		AggregationLength:   pick(r, 0, 0, 32, 31, 30, 28, 24, 24, 16, 1, 33),
		AggregationLengthV6: pick(r, 0, 0, 128, 126, 124, 120, 120, 64, 56, 1),
		Peers:               subset(r, "r1", "r2", "r3", "r9"),
		NodeSelectors:       randomSelectors(r, "zone"),
	}
	if r.IntN(3) == 0 {
		a.Pools = nil
	}
	if r.IntN(3) == 0 {
		a.PoolSelectors = randomSelectors(r, "tier")
	}
	if r.IntN(3) != 0 {
		a.Peers = nil
	}
	if r.IntN(2) == 0 {
		a.LocalPref = lp(pick[uint32](r, 100, 200, 300))
	}
	for _, c := range subset(r, "64512:1", "64512:2", "no-export", "64512:1") {
		a.Communities = append(a.Communities, must(wire.ParseCommunity(c)))
	}
	for _, c := range subset(r, "1:2:3", "1:2:4", "4294967295:0:1") {
		a.LargeCommunities = append(a.LargeCommunities, must(wire.ParseLargeCommunity(c)))
	}
	return a
}

func randomService(r *rand.Rand, i int) Service {
	svc := Service{
		Key:           lbmodel.Key{Namespace: pick(r, "default", "dns"), Name: fmt.Sprintf("s%d", i)},
		TrafficPolicy: pick(r, lbmodel.Cluster, lbmodel.Local),
		Endpoints: lbmodel.NodeEndpoints{
			"n1": {IPv4: pick(r, 0, 1, 1, 3), IPv6: pick(r, 0, 1, 2)},
			"n2": {IPv4: r.IntN(3), IPv6: r.IntN(2)},
		},
	}
	for range pick(r, 0, 1, 1, 2, 2, 3) {
		svc.Addresses = append(svc.Addresses, randomAddr(r))
	}
	verdict := func(fam string) Verdict {
		return pick(r, Verdict{}, Verdict{}, Verdict{}, Verdict{}, Verdict{Reason: fam + " probe fails"},
			Verdict{Reason: fam + " probe says 0 local endpoints", NoReadyLocal: true},
			Verdict{Reason: "waiting for the " + fam + " probe", Waiting: true})
	}
	svc.HealthCheck = HealthCheck{IPv4: verdict("v4"), IPv6: verdict("v6")}
	svc.Fallback = lbmodel.Fallback{IPv4: r.IntN(3) == 0, IPv6: r.IntN(3) == 0}
	if r.IntN(3) == 0 {
		svc.LocalFallback = lbmodel.NodeEndpoints{"n1": {IPv4: r.IntN(2), IPv6: r.IntN(2)}, "n2": {IPv4: 1}}
	}
	return svc
}

// randomAddr draws from 10.0.0.0/26 and 2001:db8::/122 (pool ranges are
// drawn from the same), with a few outside, invalid and IPv4-mapped.
func randomAddr(r *rand.Rand) netip.Addr {
	switch r.IntN(20) {
	case 0:
		return netip.Addr{}
	case 1, 2:
		return netip.AddrFrom16(v4(r.IntN(64)).As16()) // ::ffff:10.0.0.x
	case 3:
		return netip.AddrFrom4([4]byte{10, 0, 1, byte(r.IntN(4))})
	case 4, 5, 6, 7, 8, 9:
		return v6(r.IntN(64))
	}
	return v4(r.IntN(64))
}

func randomRange(r *rand.Rand, addr func(int) netip.Addr) lbmodel.Range {
	a := r.IntN(48)
	b := a + r.IntN(64-a)
	if r.IntN(10) == 0 { // now and then a reversed, invalid range
		a, b = b, a
	}
	return lbmodel.Range{First: addr(a), Last: addr(b)}
}

func v4(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}) }

func v6(i int) netip.Addr {
	return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)})
}

// randomSelectors: none (everything) most often, else one or two selectors
// on key, now and then a nil one (matches nothing).
func randomSelectors(r *rand.Rand, key string) []labels.Selector {
	var out []labels.Selector
	for range pick(r, 0, 0, 0, 1, 2) {
		if r.IntN(10) == 0 {
			out = append(out, nil)
			continue
		}
		v := map[string]string{"zone": pick(r, "a", "b"), "tier": pick(r, "lan", "dmz")}[key]
		out = append(out, sel(pick(r, key+"="+v, key+"!="+v, key, "!"+key, key+" in (a,lan)")))
	}
	return out
}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

// subset keeps each of xs with probability 1/2, in order.
func subset[T any](r *rand.Rand, xs ...T) []T {
	var out []T
	for _, x := range xs {
		if r.IntN(2) == 0 {
			out = append(out, x)
		}
	}
	return out
}

// subset1 is subset, but never empty: an empty list of pools, peers or
// advertisements makes a snapshot that announces nothing.
func subset1[T any](r *rand.Rand, xs ...T) []T {
	if out := subset(r, xs...); len(out) > 0 {
		return out
	}
	return []T{pick(r, xs...)}
}

func must[T any](x T, err error) T {
	if err != nil {
		panic(err)
	}
	return x
}

// shuffleSnapshot reorders every list whose order Plan must ignore.
func shuffleSnapshot(r *rand.Rand, s *Snapshot) {
	shuffle(r, s.Services)
	shuffle(r, s.Pools)
	shuffle(r, s.Peers)
	shuffle(r, s.Advertisements)
	for i := range s.Pools {
		shuffle(r, s.Pools[i].Ranges)
	}
	for i := range s.Peers {
		shuffle(r, s.Peers[i].NodeSelectors)
	}
	for i := range s.Advertisements {
		a := &s.Advertisements[i]
		shuffle(r, a.Pools)
		shuffle(r, a.PoolSelectors)
		shuffle(r, a.Peers)
		shuffle(r, a.NodeSelectors)
		shuffle(r, a.Communities)
		shuffle(r, a.LargeCommunities)
	}
}

func shuffle[T any](r *rand.Rand, xs []T) {
	r.Shuffle(len(xs), func(i, j int) { xs[i], xs[j] = xs[j], xs[i] })
}
