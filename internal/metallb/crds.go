package metallb

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

func (c *converter) pool(o *object[ipAddressPoolSpec]) {
	src := srcOf("IPAddressPool", o.ObjectMeta)
	p := v1alpha1.LoadBalancerPool{TypeMeta: typeMeta("LoadBalancerPool"), ObjectMeta: c.meta("LoadBalancerPool", src, o.ObjectMeta)}
	p.Spec.Addresses = c.addresses(src, o.Spec.Addresses)
	if len(p.Spec.Addresses) == 0 {
		c.note(src, "", "not carried: no address left that bgplb accepts")
		return
	}
	p.Spec.AutoAssign = o.Spec.AutoAssign
	p.Spec.AvoidBuggyIPs = o.Spec.AvoidBuggyIPs
	if a := o.Spec.ServiceAllocation; a != nil {
		p.Spec.ServiceAllocation = &v1alpha1.ServiceAllocation{
			Priority: a.Priority, Namespaces: a.Namespaces,
			NamespaceSelectors: a.NamespaceSelectors, ServiceSelectors: a.ServiceSelectors,
		}
	}
	c.res.Pools = append(c.res.Pools, p)
}

func (c *converter) bfdProfile(o *object[bfdProfileSpec]) {
	src := srcOf("BFDProfile", o.ObjectMeta)
	s := &o.Spec
	p := v1alpha1.BFDPolicy{TypeMeta: typeMeta("BFDPolicy"), ObjectMeta: c.meta("BFDPolicy", src, o.ObjectMeta)}
	p.Spec = v1alpha1.BFDPolicySpec{ReceiveInterval: s.ReceiveInterval, TransmitInterval: s.TransmitInterval,
		DetectMultiplier: s.DetectMultiplier}
	if s.EchoMode != nil {
		p.Spec.EchoMode = *s.EchoMode
	}
	if s.PassiveMode != nil {
		p.Spec.PassiveMode = *s.PassiveMode
	}
	if s.EchoInterval != nil {
		c.note(src, "spec.echoInterval", "not carried: bgplb's BFDPolicy has no echo interval of its own")
	}
	if s.MinimumTTL != nil {
		c.note(src, "spec.minimumTtl", "not carried: bgplb's BFDPolicy has no minimum TTL (multi-hop BFD)")
	}
	c.res.BFDPolicies = append(c.res.BFDPolicies, p)
}

func (c *converter) peer(o *object[bgpPeerSpec]) {
	src := srcOf("BGPPeer", o.ObjectMeta)
	s := &o.Spec
	if s.PeerAddress == "" {
		c.note(src, "", "not carried: no peerAddress (spec.interface %q): bgplb has no BGP unnumbered and needs the router's address", s.Interface)
		return
	}
	if s.PeerASN == 0 {
		c.note(src, "", "not carried: no peerASN (spec.dynamicASN %q): bgplb needs the router's AS number", s.DynamicASN)
		return
	}
	if s.DynamicASN != "" {
		c.note(src, "spec.dynamicASN", "not carried: bgplb uses peerASN %d", s.PeerASN)
	}
	if s.Interface != "" {
		c.note(src, "spec.interface", "not carried: bgplb has no BGP unnumbered; it dials peerAddress")
	}
	r := v1alpha1.BGPRouter{TypeMeta: typeMeta("BGPRouter"), ObjectMeta: c.meta("BGPRouter", src, o.ObjectMeta)}
	r.Spec = v1alpha1.BGPRouterSpec{
		MyASN: s.MyASN, PeerASN: s.PeerASN, PeerAddress: s.PeerAddress, PeerPort: s.PeerPort,
		SourceAddress: s.SourceAddress, RouterID: s.RouterID, HoldTime: s.HoldTime,
		KeepaliveTime: s.KeepaliveTime, ConnectTime: s.ConnectTime, NodeSelectors: s.NodeSelectors,
		BFDPolicy: s.BFDProfile, GracefulRestart: s.EnableGracefulRestart,
	}
	c.multihop(src, "spec.ebgpMultiHop", &r.Spec, s.EBGPMultiHop)
	c.password(src, "spec.password", &r, s.Password, s.PasswordSecret)
	if s.VRF != "" {
		c.note(src, "spec.vrf", "not carried: bgplb has no VRFs; the session %q ran in VRF %q and now runs in the node's default routing table", r.Name, s.VRF)
	}
	if s.DisableMP {
		c.note(src, "spec.disableMP", "not carried: bgplb has no such setting")
	}
	c.res.Routers = append(c.res.Routers, r)
}

// multihop maps MetalLB's boolean to a TTL: 255 is what the boolean meant.
func (c *converter) multihop(src, field string, s *v1alpha1.BGPRouterSpec, on bool) {
	if !on {
		return
	}
	if s.MyASN == s.PeerASN {
		c.note(src, field, "not carried: applies only to eBGP, and this session is iBGP (AS %d on both sides)", s.MyASN)
		return
	}
	ttl := int32(255)
	s.EBGPMultiHop = &ttl
}

// password moves an inline password into a Secret, as bgplb keeps passwords
// out of its peer objects, and drops a Secret's namespace, as the speaker
// reads Secrets only in its own.
func (c *converter) password(src, field string, r *v1alpha1.BGPRouter, inline string, ref *secretReference) {
	switch {
	case ref != nil && ref.Name != "":
		r.Spec.PasswordSecret = &v1alpha1.SecretKeyReference{Name: ref.Name, Key: corev1.BasicAuthPasswordKey}
		if inline != "" {
			c.note(src, field, "not carried: passwordSecret is used instead, as MetalLB does")
		}
		if ref.Namespace != "" {
			c.note(src, "spec.passwordSecret.namespace", "not carried: bgplb's speakers read Secrets only in their own namespace; "+
				"copy Secret %s/%s there (key %q)", ref.Namespace, ref.Name, corev1.BasicAuthPasswordKey)
		}
	case inline != "":
		name := r.Name + "-bgp-password"
		c.res.Secrets = append(c.res.Secrets, corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Type:       corev1.SecretTypeBasicAuth,
			StringData: map[string]string{corev1.BasicAuthPasswordKey: inline},
		})
		r.Spec.PasswordSecret = &v1alpha1.SecretKeyReference{Name: name, Key: corev1.BasicAuthPasswordKey}
		c.note(src, field, "moved to Secret %s, which has no namespace: apply it in the namespace bgplb runs in", name)
	}
}

func (c *converter) bgpAdvert(o *object[bgpAdvertisementSpec]) {
	src := srcOf("BGPAdvertisement", o.ObjectMeta)
	s := &o.Spec
	a := v1alpha1.BGPAnnouncementPolicy{TypeMeta: typeMeta("BGPAnnouncementPolicy"),
		ObjectMeta: c.meta("BGPAnnouncementPolicy", src, o.ObjectMeta)}
	a.Spec = v1alpha1.BGPAnnouncementPolicySpec{
		IPPools: s.IPAddressPools, IPPoolSelectors: s.IPAddressPoolSelectors,
		AggregationLength: s.AggregationLength, AggregationLengthV6: s.AggregationLengthV6,
		Peers: s.Peers, NodeSelectors: s.NodeSelectors,
	}
	if s.LocalPref != 0 {
		lp := s.LocalPref
		a.Spec.LocalPref = &lp
	}
	a.Spec.Communities, a.Spec.LargeCommunities = c.communities(src, "spec.communities", s.Communities)
	c.res.BGPPolicies = append(c.res.BGPPolicies, a)
}

func (c *converter) l2Advert(o *object[l2AdvertisementSpec]) {
	src := srcOf("L2Advertisement", o.ObjectMeta)
	s := &o.Spec
	a := v1alpha1.L2AnnouncementPolicy{TypeMeta: typeMeta("L2AnnouncementPolicy"),
		ObjectMeta: c.meta("L2AnnouncementPolicy", src, o.ObjectMeta)}
	a.Spec = v1alpha1.L2AnnouncementPolicySpec{
		IPPools: s.IPAddressPools, IPPoolSelectors: s.IPAddressPoolSelectors,
		NodeSelectors: s.NodeSelectors,
	}
	for i, ifc := range s.Interfaces {
		if len(ifc) > 15 || ifc == "" || ifc == "." || ifc == ".." || strings.ContainsAny(ifc, "/: \t") {
			c.note(src, "spec.interfaces", "not carried: %q (item %d) is not a Linux interface name", ifc, i)
			continue
		}
		// MetalLB compares names; bgplb reads them as globs. A name with
		// glob characters would match others, or be refused whole.
		if strings.ContainsAny(ifc, "*?[\\") {
			c.note(src, "spec.interfaces", "not carried: %q (item %d) holds a glob character, and bgplb reads interfaces as patterns", ifc, i)
			continue
		}
		a.Spec.Interfaces = append(a.Spec.Interfaces, ifc)
	}
	switch {
	case len(a.Spec.Interfaces) > 0:
	case len(s.Interfaces) > 0:
		// Not "empty": the operator listed interfaces, and an empty list
		// here would widen the answer past them without a word.
		c.note(src, "spec.interfaces", "every listed interface was dropped (see above), so bgplb's default applies: "+
			"it answers ARP/NDP on the interfaces holding an address on the Service address's subnet, not on those listed; "+
			"list them as bgplb reads them (names, or globs such as \"eth*\")")
	default:
		c.l2Open(src, "spec.interfaces")
	}
	c.res.L2Policies = append(c.res.L2Policies, a)
}
