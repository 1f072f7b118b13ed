package lbmodel

import (
	"errors"
	"fmt"
	"math"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp/wire"
)

// Advertisement is a BGPAnnouncementPolicy's spec, parsed and checked.
type Advertisement struct {
	Name string
	// Pools names pools; PoolSelectors match pool labels. A pool named or
	// matched is selected; both empty selects every pool.
	Pools         []string
	PoolSelectors []labels.Selector
	// AggregationLength is the prefix length announced for an IPv4
	// address, AggregationLengthV6 for an IPv6 one. 0 means the host route
	// (32, 128): an aggregate of length 0 would be a default route, which
	// no router should take from a Kubernetes node.
	AggregationLength, AggregationLengthV6 int
	// LocalPref, when set, is the LOCAL_PREF of the routes.
	LocalPref *uint32
	// Communities and LargeCommunities are attached to the routes, in any
	// order, repeats allowed.
	Communities      []wire.Community
	LargeCommunities []wire.LargeCommunity
	// Peers names the peers to announce to; empty means every peer.
	Peers []string
	// NodeSelectors select the nodes that announce: a node matching any.
	// Empty means every node; a nil entry matches nothing.
	NodeSelectors []labels.Selector
}

// AdvertisementFrom parses a BGPAnnouncementPolicy, reporting every problem.
// An error means the advertisement must not be used as it is (see
// LastGood for what is used instead).
func AdvertisementFrom(a *v1alpha1.BGPAnnouncementPolicy) (Advertisement, error) {
	s := &a.Spec
	out := Advertisement{Name: a.Name, Pools: s.IPPools, Peers: s.Peers}
	var errs []error
	var err error
	out.PoolSelectors, out.NodeSelectors, errs = poolAndNodeSelectors(s.IPPoolSelectors, s.NodeSelectors)
	if l := s.AggregationLength; l != nil {
		out.AggregationLength = int(*l)
	}
	if l := s.AggregationLengthV6; l != nil {
		out.AggregationLengthV6 = int(*l)
	}
	if lp := s.LocalPref; lp != nil {
		if *lp < 0 || *lp > math.MaxUint32 {
			errs = append(errs, fmt.Errorf("spec.localPref %d is not between 0 and %d", *lp, uint32(math.MaxUint32)))
		} else {
			v := uint32(*lp)
			out.LocalPref = &v
		}
	}
	if out.Communities, err = parseAll(s.Communities, "spec.communities", wire.ParseCommunity); err != nil {
		errs = append(errs, err)
	}
	if out.LargeCommunities, err = parseAll(s.LargeCommunities, "spec.largeCommunities", wire.ParseLargeCommunity); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, out.Validate())
	return out, errors.Join(errs...)
}

// Validate checks what a hand-built Advertisement may get wrong: the
// aggregation lengths (0, the default, or 1 to 32 and 1 to 128).
func (a *Advertisement) Validate() error {
	var errs []error
	if _, ok := Aggregation(a.AggregationLength, 32); !ok {
		errs = append(errs, fmt.Errorf("aggregationLength %d is not between 1 and 32", a.AggregationLength))
	}
	if _, ok := Aggregation(a.AggregationLengthV6, 128); !ok {
		errs = append(errs, fmt.Errorf("aggregationLengthV6 %d is not between 1 and 128", a.AggregationLengthV6))
	}
	return errors.Join(errs...)
}

// Aggregation applies the default (the host route, bits) to a length of 0
// and checks the range.
func Aggregation(n, bits int) (int, bool) {
	if n == 0 {
		return bits, true
	}
	return n, n >= 1 && n <= bits
}

// poolAndNodeSelectors parses the two selector lists both kinds of
// announcement policy have, with their field paths.
func poolAndNodeSelectors(pool, node []metav1.LabelSelector) (pools, nodes []labels.Selector, errs []error) {
	var err error
	if pools, err = Selectors("spec.ipPoolSelectors", pool); err != nil {
		errs = append(errs, err)
	}
	if nodes, err = Selectors("spec.nodeSelectors", node); err != nil {
		errs = append(errs, err)
	}
	return pools, nodes, errs
}

// SelectsPool is the advertisement's pool rule, which the speakers
// announce by and the controller explains by: with neither pool names nor
// selectors every pool; otherwise a pool named, or matched by a selector.
func (a *Advertisement) SelectsPool(pool string, poolLabels labels.Set) bool {
	return selectsPool(a.Pools, a.PoolSelectors, pool, poolLabels)
}

func selectsPool(pools []string, sels []labels.Selector, pool string, poolLabels labels.Set) bool {
	if len(pools) == 0 && len(sels) == 0 {
		return true
	}
	return slices.Contains(pools, pool) || len(sels) > 0 && MatchesAny(sels, poolLabels)
}

// SelectsNode reports whether a node with these labels announces for the
// advertisement.
func (a *Advertisement) SelectsNode(nodeLabels labels.Set) bool {
	return MatchesAny(a.NodeSelectors, nodeLabels)
}

// SendsToAny reports whether the advertisement names no peer (so sends to
// every one) or names one of peers.
func (a *Advertisement) SendsToAny(peers []string) bool {
	return len(a.Peers) == 0 && len(peers) > 0 ||
		slices.ContainsFunc(a.Peers, func(p string) bool { return slices.Contains(peers, p) })
}

// parseAll parses a list, reporting every bad entry with its index; on
// error it returns nil, so that an advertisement is never used with part of
// its communities.
func parseAll[T any](ss []string, path string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	var errs []error
	for i, s := range ss {
		c, err := parse(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %w", path, i, err))
			continue
		}
		out = append(out, c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}
