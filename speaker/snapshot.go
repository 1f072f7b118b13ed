package speaker

import (
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/controller"
	"github.com/bgplb/bgplb/internal/endpoint"
	"github.com/bgplb/bgplb/speaker/plan"
)

// objects is what the speaker reads from the API server, as plain lists:
// the input of buildSnapshot.
type objects struct {
	node           *corev1.Node
	services       []corev1.Service
	slices         []discoveryv1.EndpointSlice
	pools          []v1alpha1.IPPool
	peers          []v1alpha1.BGPPeer
	advertisements []v1alpha1.BGPAdvertisement
}

// converted is a snapshot for the planner, plus what went wrong turning the
// objects into one. A bad advertisement or peer is replaced by its last
// good version when there is one (lastGood), so that a typo in an edit
// does not withdraw what was announced.
type converted struct {
	snap     plan.Snapshot
	problems []string
}

// lastGood remembers the last version of each advertisement that parsed.
type lastGood struct {
	ads map[string]plan.Advertisement
}

func buildSnapshot(o objects, handleUnclassed bool, lg *lastGood) converted {
	var c converted
	c.snap.Node = nodeOf(o.node)
	eps := endpointsByService(o.slices)
	for i := range o.services {
		s := &o.services[i]
		if !controller.Handles(s, handleUnclassed) {
			continue
		}
		addrs := controller.Assigned(s)
		if len(addrs) == 0 {
			continue
		}
		ps := plan.Service{
			Key:       plan.Key{Namespace: s.Namespace, Name: s.Name},
			Addresses: addrs,
			Endpoints: eps[plan.Key{Namespace: s.Namespace, Name: s.Name}],
		}
		if s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
			ps.TrafficPolicy = plan.Local
		}
		c.snap.Services = append(c.snap.Services, ps)
	}
	for i := range o.pools {
		p := &o.pools[i]
		if cond := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.IPPoolConditionReady); cond != nil && cond.Status == metav1.ConditionFalse {
			continue // refused by the controller: nothing is assigned from it
		}
		rs, err := p.Ranges()
		if err != nil {
			c.problems = append(c.problems, fmt.Sprintf("IPPool %s: %v", p.Name, err))
			continue
		}
		pp := plan.Pool{Name: p.Name, Labels: p.Labels}
		for _, r := range rs {
			pp.Ranges = append(pp.Ranges, plan.Range{First: r.First, Last: r.Last})
		}
		c.snap.Pools = append(c.snap.Pools, pp)
	}
	for i := range o.peers {
		p := &o.peers[i]
		sels, err := selectors(p.Spec.NodeSelectors)
		if err != nil {
			c.problems = append(c.problems, fmt.Sprintf("BGPPeer %s: spec.nodeSelectors: %v", p.Name, err))
			continue
		}
		c.snap.Peers = append(c.snap.Peers, plan.Peer{Name: p.Name, NodeSelectors: sels})
	}
	seen := map[string]bool{}
	for i := range o.advertisements {
		a := &o.advertisements[i]
		seen[a.Name] = true
		pa, err := advertisementOf(a)
		if err != nil {
			c.problems = append(c.problems, fmt.Sprintf("BGPAdvertisement %s: %v", a.Name, err))
			old, ok := lg.ads[a.Name]
			if !ok {
				continue
			}
			c.problems[len(c.problems)-1] += "; the last valid version stays in force"
			pa = old
		}
		lg.ads[a.Name] = pa
		c.snap.Advertisements = append(c.snap.Advertisements, pa)
	}
	for name := range lg.ads {
		if !seen[name] {
			delete(lg.ads, name)
		}
	}
	return c
}

func nodeOf(n *corev1.Node) plan.Node {
	if n == nil {
		return plan.Node{}
	}
	out := plan.Node{Name: n.Name, Labels: n.Labels}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			out.Ready = c.Status == corev1.ConditionTrue
		}
	}
	return out
}

// endpointsByService counts, per Service and node, the endpoints that are
// ready, serving and not terminating. A nil ready or serving condition
// counts as true and a nil terminating as false, as the API documents.
func endpointsByService(ss []discoveryv1.EndpointSlice) map[plan.Key]map[string]int {
	out := map[plan.Key]map[string]int{}
	for i := range ss {
		s := &ss[i]
		svc := s.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		key := plan.Key{Namespace: s.Namespace, Name: svc}
		for _, e := range s.Endpoints {
			node, ok := endpoint.Node(e)
			if !ok {
				continue
			}
			m := out[key]
			if m == nil {
				m = map[string]int{}
				out[key] = m
			}
			m[node]++
		}
	}
	return out
}

func advertisementOf(a *v1alpha1.BGPAdvertisement) (plan.Advertisement, error) {
	out := plan.Advertisement{Name: a.Name, Pools: a.Spec.IPPools, Peers: a.Spec.Peers}
	var err error
	if out.PoolSelectors, err = selectors(a.Spec.IPPoolSelectors); err != nil {
		return out, fmt.Errorf("spec.ipPoolSelectors: %w", err)
	}
	if out.NodeSelectors, err = selectors(a.Spec.NodeSelectors); err != nil {
		return out, fmt.Errorf("spec.nodeSelectors: %w", err)
	}
	if l := a.Spec.AggregationLength; l != nil {
		out.AggregationLength = int(*l)
	}
	if l := a.Spec.AggregationLengthV6; l != nil {
		out.AggregationLengthV6 = int(*l)
	}
	if lp := a.Spec.LocalPref; lp != nil {
		v := uint32(*lp)
		out.LocalPref = &v
	}
	if out.Communities, err = plan.ParseCommunities(a.Spec.Communities); err != nil {
		return out, err
	}
	if out.LargeCommunities, err = plan.ParseLargeCommunities(a.Spec.LargeCommunities); err != nil {
		return out, err
	}
	return out, nil
}

func selectors(ls []metav1.LabelSelector) ([]labels.Selector, error) {
	out := make([]labels.Selector, 0, len(ls))
	for i := range ls {
		s, err := metav1.LabelSelectorAsSelector(&ls[i])
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// nodeAddrs are a Node's InternalIPs (else ExternalIPs), IPv4 first.
func nodeAddrs(n *corev1.Node) []netip.Addr {
	var out []netip.Addr
	for _, typ := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP} {
		for _, a := range n.Status.Addresses {
			if a.Type != typ {
				continue
			}
			if x, err := netip.ParseAddr(a.Address); err == nil {
				out = append(out, x.Unmap())
			}
		}
		if len(out) > 0 {
			break
		}
	}
	slices.SortStableFunc(out, func(a, b netip.Addr) int {
		if a.Is4() == b.Is4() {
			return 0
		}
		if a.Is4() {
			return -1
		}
		return 1
	})
	return out
}
