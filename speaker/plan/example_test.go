package plan_test

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/lbmodel"
	"github.com/bgplb/bgplb/speaker/plan"
)

// The shell's part: have the model parse what the CRDs hold, fill a
// Snapshot, and hand each peer's routes to the announcer (Attrs' fields are
// announce.Route's).
func ExamplePlan() {
	adv, err := lbmodel.AdvertisementFrom(&v1alpha1.BGPAnnouncementPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "lan"},
		Spec:       v1alpha1.BGPAnnouncementPolicySpec{Communities: []string{"no-export", "64512:100"}},
	})
	if err != nil {
		fmt.Println("bad BGPAnnouncementPolicy:", err) // the shell keeps its last good version
		return
	}
	res := plan.Plan(plan.Snapshot{
		Node: lbmodel.Node{Name: "node1", Labels: map[string]string{"rack": "a"}, Ready: true},
		Services: []plan.Service{{
			Key:           lbmodel.Key{Namespace: "dns", Name: "pihole"},
			Addresses:     []netip.Addr{netip.MustParseAddr("203.0.113.10")},
			TrafficPolicy: lbmodel.Local,
			Endpoints:     lbmodel.NodeEndpoints{"node1": {IPv4: 2}, "node2": {IPv4: 1}},
		}, {
			Key:           lbmodel.Key{Namespace: "web", Name: "site"},
			Addresses:     []netip.Addr{netip.MustParseAddr("203.0.113.20")},
			TrafficPolicy: lbmodel.Local,
			Endpoints:     lbmodel.NodeEndpoints{"node2": {IPv4: 3}},
		}},
		Pools: []lbmodel.Pool{{Name: "lan", Ranges: []lbmodel.Range{{
			First: netip.MustParseAddr("203.0.113.10"), Last: netip.MustParseAddr("203.0.113.50")}}}},
		Peers: []lbmodel.Peer{
			{Name: "router"},
			{Name: "backup", NodeSelectors: []labels.Selector{labels.SelectorFromSet(labels.Set{"rack": "b"})}},
		},
		Advertisements: []lbmodel.Advertisement{adv},
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
