package lbmodel

import (
	"errors"
	"fmt"
	"path"
	"slices"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// L2Advertisement is an L2AnnouncementPolicy's spec, parsed and checked:
// the pools whose addresses are answered for with ARP and NDP, on which
// interfaces, from which nodes.
type L2Advertisement struct {
	Name string
	// Pools and PoolSelectors as in Advertisement: both empty selects
	// every pool.
	Pools         []string
	PoolSelectors []labels.Selector
	// Interfaces are names or globs; empty means the interfaces on the
	// address's subnet (l2.Select decides on the node).
	Interfaces []string
	// NodeSelectors select the nodes that may answer: a node matching
	// any; empty means every node.
	NodeSelectors []labels.Selector
}

// L2AdvertisementFrom parses an L2AnnouncementPolicy, reporting every
// problem; an error means it must not be used as it is (LastGood keeps
// the version before).
func L2AdvertisementFrom(a *v1alpha1.L2AnnouncementPolicy) (L2Advertisement, error) {
	s := &a.Spec
	out := L2Advertisement{Name: a.Name, Pools: s.IPPools, Interfaces: s.Interfaces}
	var errs []error
	out.PoolSelectors, out.NodeSelectors, errs = poolAndNodeSelectors(s.IPPoolSelectors, s.NodeSelectors)
	for i, p := range s.Interfaces {
		// path.Match reports a bad pattern only when it gets that far in
		// the name; matching the pattern against itself reaches the end.
		if _, err := path.Match(p, p); err != nil {
			errs = append(errs, fmt.Errorf("spec.interfaces[%d] %q: %w", i, p, err))
		}
	}
	return out, errors.Join(errs...)
}

// SelectsPool is the same pool rule as Advertisement.SelectsPool.
func (a *L2Advertisement) SelectsPool(pool string, poolLabels labels.Set) bool {
	return selectsPool(a.Pools, a.PoolSelectors, pool, poolLabels)
}

// SelectsNode reports whether a node with these labels may answer.
func (a *L2Advertisement) SelectsNode(nodeLabels labels.Set) bool {
	return MatchesAny(a.NodeSelectors, nodeLabels)
}

// L2Policies returns the names of the advertisements that select the
// pool, sorted: the policies a node must be selected by (L2NodePolicies)
// to answer for the pool's addresses.
func L2Policies(advs []L2Advertisement, pool string, poolLabels labels.Set) []string {
	var names []string
	for i := range advs {
		if advs[i].SelectsPool(pool, poolLabels) {
			names = append(names, advs[i].Name)
		}
	}
	slices.Sort(names)
	return names
}

// L2NodePolicies returns the names of the advertisements that select a
// node with these labels, sorted: the node's candidacy.
func L2NodePolicies(advs []L2Advertisement, nodeLabels labels.Set) []string {
	var names []string
	for i := range advs {
		if advs[i].SelectsNode(nodeLabels) {
			names = append(names, advs[i].Name)
		}
	}
	slices.Sort(names)
	return names
}

// L2Interfaces returns the interface patterns a node with nodeLabels
// answers on for an address of the pool: those of every advertisement
// selecting both, merged, sorted. ok is false when none selects both.
// Patterns is nil when one of them leaves interfaces open, which then
// wins: open means the address's own subnet, and a pattern in another
// advertisement must not narrow it.
func L2Interfaces(advs []L2Advertisement, pool string, poolLabels, nodeLabels labels.Set) (patterns []string, ok bool) {
	open := false
	for i := range advs {
		a := &advs[i]
		if !a.SelectsPool(pool, poolLabels) || !a.SelectsNode(nodeLabels) {
			continue
		}
		ok = true
		if len(a.Interfaces) == 0 {
			open = true
		}
		patterns = append(patterns, a.Interfaces...)
	}
	if open || !ok {
		return nil, ok
	}
	slices.Sort(patterns)
	return slices.Compact(patterns), true
}

// The speakers elect each L2 address's owner with a Lease in their
// namespace (speaker/l2owner); the controller reads the holder to tell a
// live owner's claim from a stale one, so both name the Leases from here.
const (
	// L2LeaseLabel marks the speakers' Leases; its value is
	// L2LeaseKindAddress on an address's Lease.
	L2LeaseLabel       = "bgplb.io/l2-lease"
	L2LeaseKindAddress = "address"
	// L2LeaseAddressAnnotation holds the address a Lease elects the
	// owner of.
	L2LeaseAddressAnnotation = "bgplb.io/address"
)
