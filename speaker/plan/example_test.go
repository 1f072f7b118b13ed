package plan_test

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/bgplb/bgplb/speaker/plan"
)

// The shell's part: parse what the CRDs hold, fill a Snapshot, and hand
// each peer's routes to the announcer (Attrs' fields are announce.Route's).
func ExamplePlan() {
	communities, err := plan.ParseCommunities([]string{"no-export", "64512:100"})
	if err != nil {
		fmt.Println("bad BGPAdvertisement:", err) // the shell reports it on the object
		return
	}
	res := plan.Plan(plan.Snapshot{
		Node: plan.Node{Name: "node1", Labels: map[string]string{"rack": "a"}, Ready: true},
		Services: []plan.Service{{
			Key:           plan.Key{Namespace: "dns", Name: "pihole"},
			Addresses:     []netip.Addr{netip.MustParseAddr("203.0.113.10")},
			TrafficPolicy: plan.Local,
			Endpoints:     map[string]int{"node1": 2, "node2": 1},
		}, {
			Key:           plan.Key{Namespace: "web", Name: "site"},
			Addresses:     []netip.Addr{netip.MustParseAddr("203.0.113.20")},
			TrafficPolicy: plan.Local,
			Endpoints:     map[string]int{"node2": 3},
		}},
		Pools: []plan.Pool{{Name: "lan", Ranges: []plan.Range{{
			First: netip.MustParseAddr("203.0.113.10"), Last: netip.MustParseAddr("203.0.113.50")}}}},
		Peers: []plan.Peer{
			{Name: "router"},
			{Name: "backup", NodeSelectors: []labels.Selector{labels.SelectorFromSet(labels.Set{"rack": "b"})}},
		},
		Advertisements: []plan.Advertisement{{Name: "lan", Communities: communities}},
	})
	for _, peer := range slices.Sorted(maps.Keys(res.Peers)) { // peers that select node1

		for _, r := range res.Peers[peer] {
			fmt.Println(peer, r.Prefix, "bandwidth", r.Bandwidth, "communities", r.Attrs.Communities, "for", r.Services)
		}
	}
	for _, d := range res.Services {
		fmt.Printf("%s announced=%v peers=%v reason=%q\n", d.Key, d.Announced, d.Peers, d.Reason)
	}
	// Output:
	// router 203.0.113.10/32 bandwidth 2 communities [64512:100 no-export] for [dns/pihole]
	// dns/pihole announced=true peers=[router] reason=""
	// web/site announced=false peers=[] reason="no ready endpoint on node1 (externalTrafficPolicy Local)"
}
