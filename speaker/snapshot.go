package speaker

import (
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/lbmodel"
	"github.com/bgplb/bgplb/speaker/plan"
)

// objects is what the speaker reads from the API server, as plain lists:
// the input of buildSnapshot.
type objects struct {
	node           *corev1.Node
	services       []corev1.Service
	slices         []discoveryv1.EndpointSlice
	pools          []v1alpha1.LoadBalancerPool
	peers          []v1alpha1.BGPRouter
	advertisements []v1alpha1.BGPAnnouncementPolicy
	bfdPolicies    []v1alpha1.BFDPolicy
	// l2advertisements are the L2AnnouncementPolicies.
	l2advertisements []v1alpha1.L2AnnouncementPolicy
}

// converted is a snapshot for the planner, plus what went wrong turning the
// objects into one.
type converted struct {
	snap     plan.Snapshot
	problems []string
}

// lastGood keeps the versions of the advertisements and peers in force
// (lbmodel.LastGood): a bad edit leaves the last valid version announcing
// and peering, so that a typo does not withdraw routes or tear down
// sessions. The run goroutine's alone.
type lastGood struct {
	ads   lbmodel.LastGood[lbmodel.Advertisement]
	peers lbmodel.LastGood[lbmodel.Peer]
	l2s   lbmodel.LastGood[lbmodel.L2Advertisement]
}

func buildSnapshot(o objects, handleUnclassed bool, lg *lastGood) converted {
	var c converted
	c.snap.Node = lbmodel.NodeFrom(o.node)
	tallies := lbmodel.CountByService(o.slices)
	for i := range o.services {
		s := &o.services[i]
		if !lbmodel.Handles(s, handleUnclassed) {
			continue
		}
		addrs := lbmodel.Assigned(s)
		if len(addrs) == 0 {
			continue
		}
		key := lbmodel.KeyOf(s)
		c.snap.Services = append(c.snap.Services, plan.Service{
			Key:           key,
			Addresses:     addrs,
			TrafficPolicy: lbmodel.TrafficPolicyOf(s),
			Endpoints:     tallies[key].Endpoints,
			Fallback:      tallies[key].Fallback,
			LocalFallback: tallies[key].LocalFallback,
		})
	}
	// Every pool that converts goes to the planner, whatever its status
	// says: the planner applies the controller's pool rule itself, so a
	// stale or missing verdict (the controller down) changes nothing.
	pools, problems := lbmodel.PoolsFrom(o.pools)
	c.snap.Pools = pools
	for _, p := range problems {
		c.problems = append(c.problems, fmt.Sprintf("LoadBalancerPool %s: %v", p.Pool, p.Err))
	}
	for i, r := range lbmodel.ResolveAll(&lg.peers, o.peers, lbmodel.PeerFrom) {
		c.report("BGPRouter", o.peers[i].Name, r.Err, r.OK, r.Generation)
		if r.OK {
			c.snap.Peers = append(c.snap.Peers, r.Value)
		}
	}
	for i, r := range lbmodel.ResolveAll(&lg.ads, o.advertisements, lbmodel.AdvertisementFrom) {
		c.report("BGPAnnouncementPolicy", o.advertisements[i].Name, r.Err, r.OK, r.Generation)
		if r.OK {
			c.snap.Advertisements = append(c.snap.Advertisements, r.Value)
		}
	}
	for i, r := range lbmodel.ResolveAll(&lg.l2s, o.l2advertisements, lbmodel.L2AdvertisementFrom) {
		c.report("L2AnnouncementPolicy", o.l2advertisements[i].Name, r.Err, r.OK, r.Generation)
		if r.OK {
			c.snap.L2Advertisements = append(c.snap.L2Advertisements, r.Value)
		}
	}
	return c
}

// report records why the current version of an object is not used, and
// what is used instead.
func (c *converted) report(kind, name string, err error, inForce bool, gen int64) {
	if err == nil {
		return
	}
	msg := fmt.Sprintf("%s %s: %v; ", kind, name, err)
	if inForce {
		msg += fmt.Sprintf("the last valid version (generation %d) stays in force", gen)
	} else {
		msg += "it is not used until it is fixed"
	}
	c.problems = append(c.problems, msg)
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
