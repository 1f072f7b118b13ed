package metallb

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// legacy converts MetalLB's ConfigMap. Its peers have no names, so each
// BGPRouter is named after its address; its pools carry their protocol and
// advertisements, which become announcement policies named after the pool.
func (c *converter) legacy(src string, cfg *legacyConfig) {
	src += " ConfigMap"
	for i := range cfg.BFDProfiles {
		c.legacyBFD(&cfg.BFDProfiles[i])
	}
	for i := range cfg.Peers {
		c.legacyPeer(fmt.Sprintf("%s peers[%d]", src, i), &cfg.Peers[i])
	}
	for i := range cfg.Pools {
		c.legacyPool(fmt.Sprintf("%s address-pools[%d]", src, i), &cfg.Pools[i])
	}
}

func (c *converter) legacyBFD(b *legacyBFD) {
	c.bfdProfile(&object[bfdProfileSpec]{ObjectMeta: metav1.ObjectMeta{Name: b.Name}, Spec: bfdProfileSpec{
		ReceiveInterval: b.ReceiveInterval, TransmitInterval: b.TransmitInterval, DetectMultiplier: b.DetectMultiplier,
		EchoInterval: b.EchoInterval, EchoMode: &b.EchoMode, PassiveMode: &b.PassiveMode, MinimumTTL: b.MinimumTTL,
	}})
}

func (c *converter) legacyPeer(src string, p *legacyPeer) {
	if p.PeerAddress == "" || p.PeerASN == 0 || p.MyASN == 0 {
		c.note(src, "", "not carried: a peer needs peer-address, peer-asn and my-asn")
		return
	}
	name := "peer-" + strings.Trim(strings.NewReplacer(".", "-", ":", "-").Replace(strings.ToLower(p.PeerAddress)), "-")
	r := v1alpha1.BGPRouter{TypeMeta: typeMeta("BGPRouter"), ObjectMeta: c.meta("BGPRouter", src, metav1.ObjectMeta{Name: name})}
	r.Spec = v1alpha1.BGPRouterSpec{
		MyASN: p.MyASN, PeerASN: p.PeerASN, PeerAddress: p.PeerAddress, PeerPort: p.PeerPort,
		SourceAddress: p.SourceAddress, RouterID: p.RouterID, BFDPolicy: p.BFDProfile,
	}
	r.Spec.HoldTime = c.duration(src, "hold-time", p.HoldTime)
	r.Spec.KeepaliveTime = c.duration(src, "keepalive-time", p.KeepaliveTime)
	for i, ns := range p.NodeSelectors {
		sel := metav1.LabelSelector{MatchLabels: ns.MatchLabels}
		for j, e := range ns.MatchExpressions {
			op, ok := operators[strings.ToLower(e.Operator)]
			if !ok {
				c.note(src, fmt.Sprintf("node-selectors[%d].match-expressions[%d]", i, j), "not carried: unknown operator %q", e.Operator)
				continue
			}
			sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{Key: e.Key, Operator: op, Values: e.Values})
		}
		r.Spec.NodeSelectors = append(r.Spec.NodeSelectors, sel)
	}
	c.multihop(src, "ebgp-multihop", &r.Spec, p.EBGPMultiHop)
	c.password(src, "password", &r, p.Password, nil)
	if p.VRF != "" {
		c.note(src, "vrf", "not carried: bgplb has no VRFs; the session ran in VRF %q and now runs in the node's default routing table", p.VRF)
	}
	c.res.Routers = append(c.res.Routers, r)
}

var operators = map[string]metav1.LabelSelectorOperator{
	"in": metav1.LabelSelectorOpIn, "notin": metav1.LabelSelectorOpNotIn,
	"exists": metav1.LabelSelectorOpExists, "doesnotexist": metav1.LabelSelectorOpDoesNotExist,
}

func (c *converter) duration(src, field, s string) *metav1.Duration {
	if s == "" {
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		c.note(src, field, "not carried: %v", err)
		return nil
	}
	return &metav1.Duration{Duration: d}
}

func (c *converter) legacyPool(src string, p *legacyPool) {
	pool := v1alpha1.LoadBalancerPool{TypeMeta: typeMeta("LoadBalancerPool"), ObjectMeta: c.meta("LoadBalancerPool", src, metav1.ObjectMeta{Name: p.Name})}
	pool.Spec.Addresses = c.addresses(src, p.Addresses)
	if p.Name == "" || len(pool.Spec.Addresses) == 0 {
		c.note(src, "", "not carried: a pool needs a name and an address bgplb accepts")
		return
	}
	pool.Spec.AutoAssign = p.AutoAssign
	pool.Spec.AvoidBuggyIPs = p.AvoidBuggyIPs
	c.res.Pools = append(c.res.Pools, pool)
	switch p.Protocol {
	case "bgp":
		c.legacyAdverts(src, p)
	case "layer2":
		if len(p.BGPAdvertisements) > 0 {
			c.note(src, "bgp-advertisements", "not carried: the pool's protocol is layer2")
		}
		l2 := v1alpha1.L2AnnouncementPolicy{TypeMeta: typeMeta("L2AnnouncementPolicy"),
			ObjectMeta: c.meta("L2AnnouncementPolicy", src, metav1.ObjectMeta{Name: p.Name})}
		l2.Spec.IPPools = []string{pool.Name}
		c.l2Open(src, "protocol")
		c.res.L2Policies = append(c.res.L2Policies, l2)
	default:
		c.note(src, "protocol", "not carried: %q is neither bgp nor layer2, so the pool is announced by no policy", p.Protocol)
	}
}

// legacyAdverts: a bgp pool with no advertisement was announced with the
// defaults (one route per address, to every peer), so it gets one policy.
func (c *converter) legacyAdverts(src string, p *legacyPool) {
	adverts := p.BGPAdvertisements
	if len(adverts) == 0 {
		adverts = []legacyAdvertise{{}}
	}
	for i, ad := range adverts {
		name := p.Name
		if len(adverts) > 1 {
			name = fmt.Sprintf("%s-%d", p.Name, i)
		}
		a := v1alpha1.BGPAnnouncementPolicy{TypeMeta: typeMeta("BGPAnnouncementPolicy"),
			ObjectMeta: c.meta("BGPAnnouncementPolicy", src, metav1.ObjectMeta{Name: name})}
		a.Spec = v1alpha1.BGPAnnouncementPolicySpec{IPPools: []string{p.Name},
			AggregationLength: ad.AggregationLength, AggregationLengthV6: ad.AggregationLengthV6, LocalPref: ad.LocalPref}
		a.Spec.Communities, a.Spec.LargeCommunities = c.communities(src,
			fmt.Sprintf("bgp-advertisements[%d].communities", i), ad.Communities)
		c.res.BGPPolicies = append(c.res.BGPPolicies, a)
	}
}
