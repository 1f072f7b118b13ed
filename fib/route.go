package fib

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
)

// MaxNextHops is the most next hops a route may have.
const MaxNextHops = 256

// MaxWeight is the largest weight the kernel gives a next hop, both in a
// nexthop group (NHA_GROUP) and in RTA_MULTIPATH (rtnh_hops+1).
const MaxWeight = 256

// NextHop is one gateway of a route. Weight 0 means unweighted; positive
// weights are relative shares on any scale (BGP link bandwidth in bytes/s
// works as is) and are scaled to the kernel's 1..[MaxWeight].
type NextHop struct {
	Addr   netip.Addr
	Weight uint32
}

// Route is a prefix and the gateways traffic to it is spread over.
// In canonical form (see [Canonical]) the prefix is masked, NextHops are
// sorted by address without duplicates, and the weights are either all 0
// (equal shares) or the smallest integers in 1..MaxWeight with the same ratios.
type Route struct {
	Prefix   netip.Prefix
	NextHops []NextHop
}

func (r Route) String() string {
	return fmt.Sprintf("%v via %v", r.Prefix, r.NextHops)
}

// Change sets the kernel route of Prefix to NextHops; no next hops deletes it.
type Change struct {
	Prefix   netip.Prefix
	NextHops []NextHop
}

// Delete reports whether the change removes the route.
func (c Change) Delete() bool { return len(c.NextHops) == 0 }

// Canonical returns r in canonical form. It does not modify r.
func Canonical(r Route) Route {
	return Route{Prefix: r.Prefix.Masked(), NextHops: canonicalHops(nil, r.NextHops)}
}

// canonicalHops appends the canonical form of hops to dst and returns the
// extended slice, so that hot callers can reuse one scratch buffer. Two
// entries for one gateway become one whose weight is the sum: two paths
// through the same gateway carry both their shares.
func canonicalHops(dst, hops []NextHop) []NextHop {
	start := len(dst)
	anyZero := false
	for _, h := range hops {
		h.Addr = h.Addr.Unmap()
		anyZero = anyZero || h.Weight == 0
		dst = append(dst, h)
	}
	out := dst[start:]
	if len(out) > 1 && !sortedUnique(out) {
		slices.SortFunc(out, func(a, b NextHop) int { return a.Addr.Compare(b.Addr) })
		n := 1
		for i := 1; i < len(out); i++ {
			if out[i].Addr == out[n-1].Addr {
				out[n-1].Weight = satAdd(out[n-1].Weight, out[i].Weight)
				continue
			}
			out[n] = out[i]
			n++
		}
		out = out[:n]
		dst = dst[:start+n]
	}
	if anyZero {
		for i := range out {
			out[i].Weight = 0
		}
		return dst
	}
	normalizeWeights(out)
	return dst
}

func sortedUnique(h []NextHop) bool {
	for i := 1; i < len(h); i++ {
		if h[i-1].Addr.Compare(h[i].Addr) >= 0 {
			return false
		}
	}
	return true
}

func satAdd(a, b uint32) uint32 {
	if s := a + b; s >= a {
		return s
	}
	return ^uint32(0)
}

// normalizeWeights rewrites positive weights as the smallest integers in
// 1..MaxWeight with (nearly) the same ratios, or all 0 when they are equal or
// when any of them is 0: a path without a bandwidth makes the set unweighted,
// since there is no share to give it. Equal ratios on different scales give
// equal results, so {1,2} and {1000,2000} share one nexthop group.
// Normalizing twice changes nothing.
func normalizeWeights(h []NextHop) {
	if len(h) == 0 {
		return
	}
	if len(h) == 1 || h[0].Weight == 0 || !weightsDiffer(h) {
		zeroWeights(h)
		return
	}
	for _, x := range h {
		if x.Weight == 0 {
			zeroWeights(h)
			return
		}
	}
	divideByGCD(h)
	var hi uint32
	for _, x := range h {
		hi = max(hi, x.Weight)
	}
	if hi <= MaxWeight {
		return
	}
	// Scale so the largest becomes MaxWeight, rounding to nearest; a share
	// too small to show keeps weight 1 rather than vanishing.
	for i := range h {
		w := (uint64(h[i].Weight)*MaxWeight + uint64(hi)/2) / uint64(hi)
		h[i].Weight = uint32(max(w, 1))
	}
	if !weightsDiffer(h) {
		zeroWeights(h)
		return
	}
	divideByGCD(h)
}

func divideByGCD(h []NextHop) {
	g := h[0].Weight
	for _, x := range h[1:] {
		g = gcd(g, x.Weight)
	}
	for i := range h {
		h[i].Weight /= g
	}
}

func weightsDiffer(h []NextHop) bool {
	for _, x := range h[1:] {
		if x.Weight != h[0].Weight {
			return true
		}
	}
	return false
}

func zeroWeights(h []NextHop) {
	for i := range h {
		h[i].Weight = 0
	}
}

func gcd(a, b uint32) uint32 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// kernelWeight is the weight the kernel is given for a canonical hop.
func kernelWeight(h NextHop) uint32 { return max(h.Weight, 1) }

// hopsEqual compares two canonical next-hop lists.
func hopsEqual(a, b []NextHop) bool {
	return slices.Equal(a, b)
}

// validateRoute checks what the kernel would reject for reasons of shape, so
// that such a change fails alone instead of in the middle of a batch.
// hops must be canonical.
func validateRoute(p netip.Prefix, hops []NextHop) error {
	if !p.IsValid() {
		return fmt.Errorf("%w: invalid prefix %v", ErrInvalidRoute, p)
	}
	if len(hops) > MaxNextHops {
		return fmt.Errorf("%w: %v: %d next hops, at most %d", ErrInvalidRoute, p, len(hops), MaxNextHops)
	}
	for _, h := range hops {
		a := h.Addr
		switch {
		case !a.IsValid() || a.IsUnspecified():
			return fmt.Errorf("%w: %v: invalid next hop %v", ErrInvalidRoute, p, a)
		case a.Zone() != "" && !needsZone(a):
			return fmt.Errorf("%w: %v: next hop %v has a zone; only IPv6 link-local gateways take one", ErrInvalidRoute, p, a)
		case needsZone(a) && a.Zone() == "":
			return fmt.Errorf("%w: %v: link-local next hop %v has no interface (zone)", ErrInvalidRoute, p, a)
		case a.Zone() != "" && !validZone(a.Zone()):
			return fmt.Errorf("%w: %v: next hop %v: zone is not an interface name or index", ErrInvalidRoute, p, a)
		case p.Addr().Is6() && a.Is4():
			return fmt.Errorf("%w: %v: IPv6 route with IPv4 next hop %v", ErrInvalidRoute, p, a)
		case a.IsMulticast() || a.IsLoopback():
			return fmt.Errorf("%w: %v: next hop %v is not a unicast gateway", ErrInvalidRoute, p, a)
		}
	}
	return nil
}

// Diff returns the changes that turn current into desired: first every route
// to add or replace, then every route to remove (adding before deleting keeps
// traffic flowing when a prefix moves), each part sorted by prefix. Routes are
// compared in canonical form, so a weight change counts and a rescaled weight
// does not. A desired route with no next hops is treated as absent; when a
// prefix repeats, its last route wins.
func Diff(current, desired []Route) []Change {
	cur := make(map[netip.Prefix][]NextHop, len(current))
	for _, r := range current {
		cur[r.Prefix.Masked()] = canonicalHops(nil, r.NextHops)
	}
	want := make(map[netip.Prefix][]NextHop, len(desired))
	for _, r := range desired {
		if len(r.NextHops) == 0 {
			delete(want, r.Prefix.Masked())
			continue
		}
		want[r.Prefix.Masked()] = canonicalHops(nil, r.NextHops)
	}
	var set, del []Change
	for p, hops := range want {
		if old, ok := cur[p]; !ok || len(old) == 0 || !hopsEqual(old, hops) {
			set = append(set, Change{Prefix: p, NextHops: hops})
		}
	}
	for p := range cur {
		if _, ok := want[p]; !ok {
			del = append(del, Change{Prefix: p})
		}
	}
	byPrefix := func(a, b Change) int { return comparePrefix(a.Prefix, b.Prefix) }
	slices.SortFunc(set, byPrefix)
	slices.SortFunc(del, byPrefix)
	return append(set, del...)
}

// comparePrefix orders IPv4 before IPv6, then by address, then by length.
func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Bits(), b.Bits())
}

// SortRoutes sorts routes by prefix, the order Dump returns them in.
func SortRoutes(rs []Route) {
	slices.SortFunc(rs, func(a, b Route) int { return comparePrefix(a.Prefix, b.Prefix) })
}
