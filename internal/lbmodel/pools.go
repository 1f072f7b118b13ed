package lbmodel

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// Pool is a LoadBalancerPool as plain values.
type Pool struct {
	Name string
	// Labels are the pool's labels, which advertisements select it by.
	Labels map[string]string
	// Created is the pool's creationTimestamp: of two overlapping pools
	// the older keeps the addresses (see CheckPools).
	Created time.Time
	Ranges  []Range
	// AutoAssign lets the pool serve Services that name neither it nor one
	// of its addresses. (The CRD defaults it to true; the zero value here
	// is false so that a test's pool says what it means.)
	AutoAssign bool
	// AvoidBuggyIPs keeps IPv4 addresses ending in .0 or .255 out of the
	// pool.
	AvoidBuggyIPs bool
	// Allocation, when set, narrows and ranks the pool.
	Allocation *ServiceAllocation
}

// ServiceAllocation narrows a pool to some Services and ranks it.
type ServiceAllocation struct {
	// Priority orders the pools tried for automatic assignment: a lower
	// positive value is tried first; 0 means unset and comes after every
	// set priority. Negative values are refused.
	Priority int
	// Namespaces and NamespaceSelectors admit a Service whose namespace is
	// listed or whose namespace's labels match any selector; when both are
	// empty every namespace is admitted.
	Namespaces         []string
	NamespaceSelectors []labels.Selector
	// ServiceSelectors admit a Service whose labels match any selector;
	// empty admits every Service. Both conditions must hold.
	ServiceSelectors []labels.Selector
}

// Admits reports whether a pool restricted by sa may serve a Service of
// namespace ns (whose labels are nsLabels) with labels svcLabels; a nil sa
// admits everything.
func (sa *ServiceAllocation) Admits(ns string, nsLabels, svcLabels map[string]string) bool {
	if sa == nil {
		return true
	}
	nsOK := len(sa.Namespaces) == 0 && len(sa.NamespaceSelectors) == 0 ||
		slices.Contains(sa.Namespaces, ns) ||
		len(sa.NamespaceSelectors) > 0 && MatchesAny(sa.NamespaceSelectors, nsLabels)
	return nsOK && MatchesAny(sa.ServiceSelectors, svcLabels)
}

func (sa *ServiceAllocation) validate() error {
	if sa.Priority < 0 {
		return fmt.Errorf("serviceAllocation.priority %d is negative", sa.Priority)
	}
	for _, ns := range sa.Namespaces {
		if ns == "" {
			return errors.New("serviceAllocation.namespaces: empty name")
		}
	}
	if slices.Contains(sa.NamespaceSelectors, nil) || slices.Contains(sa.ServiceSelectors, nil) {
		return errors.New("serviceAllocation: a missing selector")
	}
	return nil
}

// PoolFrom converts a LoadBalancerPool. It fails when the addresses or a
// selector do not parse (the CRD's rules were bypassed, or a selector the API
// server does not check is wrong); such a pool takes no part in anything.
func PoolFrom(ip *v1alpha1.LoadBalancerPool) (Pool, error) {
	rs, err := ParseRanges(ip.Spec.Addresses)
	if err != nil {
		return Pool{}, err
	}
	p := Pool{
		Name:          ip.Name,
		Labels:        ip.Labels,
		Created:       ip.CreationTimestamp.Time,
		Ranges:        rs,
		AutoAssign:    ip.Spec.AutoAssignEnabled(),
		AvoidBuggyIPs: ip.Spec.AvoidBuggyIPs,
	}
	if sa := ip.Spec.ServiceAllocation; sa != nil {
		p.Allocation = &ServiceAllocation{Priority: int(sa.Priority), Namespaces: sa.Namespaces}
		if p.Allocation.NamespaceSelectors, err = Selectors("spec.serviceAllocation.namespaceSelectors", sa.NamespaceSelectors); err != nil {
			return Pool{}, err
		}
		if p.Allocation.ServiceSelectors, err = Selectors("spec.serviceAllocation.serviceSelectors", sa.ServiceSelectors); err != nil {
			return Pool{}, err
		}
	}
	return p, nil
}

// PoolsFrom converts LoadBalancerPools (see PoolFrom), in the order given; a
// pool that does not convert is a problem instead.
func PoolsFrom(items []v1alpha1.LoadBalancerPool) ([]Pool, []PoolProblem) {
	var pools []Pool
	var problems []PoolProblem
	for i := range items {
		p, err := PoolFrom(&items[i])
		if err != nil {
			problems = append(problems, PoolProblem{Pool: items[i].Name, Err: err})
			continue
		}
		pools = append(pools, p)
	}
	return pools, problems
}

// PoolProblem is why a pool was refused. A refused pool takes no part in
// allocation or announcement; Services already holding its addresses keep
// them.
type PoolProblem struct {
	Pool string
	Err  error
}

func (p PoolProblem) Error() string { return "pool " + p.Pool + ": " + p.Err.Error() }

// OverlapError refuses a pool sharing addresses with an older one; the
// controller reports it as the pool's Overlap condition.
type OverlapError struct {
	Range, Other Range
	// Pool is the older pool that keeps the addresses.
	Pool string
}

func (e *OverlapError) Error() string {
	return fmt.Sprintf("%s overlaps %s of pool %s", e.Range, e.Other, e.Pool)
}

// Older is the pool precedence: the older pool first (creationTimestamp),
// then by name. Ties (the same name: a repeat) keep their order.
func Older(a, b *Pool) int {
	return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.Name, b.Name))
}

// CheckPools is the pool rule the controller and every speaker apply, each
// on its own (a speaker does not wait for the controller's verdict, so the
// rule holds while the controller is down): pools are taken in Older order,
// and a pool is refused as a whole when it is invalid, when its name was
// already taken, or when it overlaps a pool accepted before it. So a new
// pool never takes addresses from an existing one, whichever name sorts
// first. The accepted pools are returned normalised (each pool's ranges
// sorted by family and address, overlapping or adjacent ones merged), in
// Older order; pools is not modified.
func CheckPools(pools []Pool) (accepted []Pool, problems []PoolProblem) {
	order := make([]*Pool, len(pools))
	for i := range pools {
		order[i] = &pools[i]
	}
	slices.SortStableFunc(order, Older)
	names := map[string]bool{}
	for _, p := range order {
		n, err := normalize(*p)
		if err == nil && names[p.Name] {
			err = errors.New("name used by an earlier pool")
		}
		if err == nil {
			err = overlap(n, accepted)
		}
		if err != nil {
			problems = append(problems, PoolProblem{Pool: p.Name, Err: err})
			continue
		}
		names[p.Name] = true
		accepted = append(accepted, n)
	}
	return accepted, problems
}

func normalize(p Pool) (Pool, error) {
	if p.Name == "" {
		return Pool{}, errors.New("empty name")
	}
	// Every bad range, sorted: the report must not depend on the order
	// of the ranges.
	var bad []string
	for _, r := range p.Ranges {
		if err := r.Validate(); err != nil {
			bad = append(bad, fmt.Sprintf("range %s: %v", r, err))
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return Pool{}, errors.New(strings.Join(slices.Compact(bad), "; "))
	}
	if p.Allocation != nil {
		if err := p.Allocation.validate(); err != nil {
			return Pool{}, err
		}
		sa := *p.Allocation
		p.Allocation = &sa
	}
	rs := slices.Clone(p.Ranges)
	slices.SortFunc(rs, func(a, b Range) int {
		return cmp.Or(cmp.Compare(a.First.BitLen(), b.First.BitLen()), a.First.Compare(b.First))
	})
	var merged []Range
	for _, r := range rs {
		if n := len(merged); n > 0 && merged[n-1].touches(r) {
			if merged[n-1].Last.Less(r.Last) {
				merged[n-1].Last = r.Last
			}
			continue
		}
		merged = append(merged, r)
	}
	p.Ranges = merged
	return p, nil
}

func overlap(p Pool, accepted []Pool) error {
	for _, q := range accepted {
		for _, r := range p.Ranges {
			for _, s := range q.Ranges {
				if r.Overlaps(s) {
					return &OverlapError{Range: r, Other: s, Pool: q.Name}
				}
			}
		}
	}
	return nil
}
