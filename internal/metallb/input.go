package metallb

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The structs below are written from MetalLB's documented field lists, not
// imported: MetalLB's module would pull its whole controller into bgplb,
// and only the wire shape matters here. Fields bgplb cannot carry are still
// declared, so that strict decoding tells "known but dropped" (reported by
// name) apart from "unknown" (reported as such).

// legacyConfig is the YAML under the "config" key of MetalLB's ConfigMap
// (MetalLB 0.12 and before).
type legacyConfig struct {
	Peers          []legacyPeer      `json:"peers,omitempty"`
	BGPCommunities map[string]string `json:"bgp-communities,omitempty"`
	Pools          []legacyPool      `json:"address-pools,omitempty"`
	BFDProfiles    []legacyBFD       `json:"bfd-profiles,omitempty"`
}

type legacyPeer struct {
	MyASN         int64                `json:"my-asn,omitempty"`
	PeerASN       int64                `json:"peer-asn,omitempty"`
	PeerAddress   string               `json:"peer-address,omitempty"`
	SourceAddress string               `json:"source-address,omitempty"`
	PeerPort      int32                `json:"peer-port,omitempty"`
	HoldTime      string               `json:"hold-time,omitempty"`
	KeepaliveTime string               `json:"keepalive-time,omitempty"`
	RouterID      string               `json:"router-id,omitempty"`
	NodeSelectors []legacyNodeSelector `json:"node-selectors,omitempty"`
	Password      string               `json:"password,omitempty"`
	BFDProfile    string               `json:"bfd-profile,omitempty"`
	EBGPMultiHop  bool                 `json:"ebgp-multihop,omitempty"`
	VRF           string               `json:"vrf,omitempty"`
}

type legacyNodeSelector struct {
	MatchLabels      map[string]string   `json:"match-labels,omitempty"`
	MatchExpressions []legacyRequirement `json:"match-expressions,omitempty"`
}

type legacyRequirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values,omitempty"`
}

type legacyPool struct {
	Name              string            `json:"name"`
	Protocol          string            `json:"protocol"`
	Addresses         []string          `json:"addresses"`
	AvoidBuggyIPs     bool              `json:"avoid-buggy-ips,omitempty"`
	AutoAssign        *bool             `json:"auto-assign,omitempty"`
	BGPAdvertisements []legacyAdvertise `json:"bgp-advertisements,omitempty"`
}

type legacyAdvertise struct {
	AggregationLength   *int32   `json:"aggregation-length,omitempty"`
	AggregationLengthV6 *int32   `json:"aggregation-length-v6,omitempty"`
	LocalPref           *int64   `json:"localpref,omitempty"`
	Communities         []string `json:"communities,omitempty"`
}

type legacyBFD struct {
	Name             string `json:"name"`
	ReceiveInterval  *int32 `json:"receive-interval,omitempty"`
	TransmitInterval *int32 `json:"transmit-interval,omitempty"`
	DetectMultiplier *int32 `json:"detect-multiplier,omitempty"`
	EchoInterval     *int32 `json:"echo-interval,omitempty"`
	EchoMode         bool   `json:"echo-mode,omitempty"`
	PassiveMode      bool   `json:"passive-mode,omitempty"`
	MinimumTTL       *int32 `json:"minimum-ttl,omitempty"`
}

// object is any metallb.io object: its spec is decoded per kind.
type object[S any] struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              S              `json:"spec"`
	Status            map[string]any `json:"status,omitempty"`
}

type ipAddressPoolSpec struct {
	Addresses         []string           `json:"addresses"`
	AutoAssign        *bool              `json:"autoAssign,omitempty"`
	AvoidBuggyIPs     bool               `json:"avoidBuggyIPs,omitempty"`
	ServiceAllocation *serviceAllocation `json:"serviceAllocation,omitempty"`
}

type serviceAllocation struct {
	Priority           int32                  `json:"priority,omitempty"`
	Namespaces         []string               `json:"namespaces,omitempty"`
	NamespaceSelectors []metav1.LabelSelector `json:"namespaceSelectors,omitempty"`
	ServiceSelectors   []metav1.LabelSelector `json:"serviceSelectors,omitempty"`
}

// bgpPeerSpec covers v1beta1 and v1beta2: v1beta2 only adds fields, and
// v1beta1's node selectors have the same shape as a LabelSelector.
type bgpPeerSpec struct {
	MyASN                 int64                  `json:"myASN"`
	PeerASN               int64                  `json:"peerASN,omitempty"`
	DynamicASN            string                 `json:"dynamicASN,omitempty"`
	PeerAddress           string                 `json:"peerAddress,omitempty"`
	Interface             string                 `json:"interface,omitempty"`
	SourceAddress         string                 `json:"sourceAddress,omitempty"`
	PeerPort              int32                  `json:"peerPort,omitempty"`
	HoldTime              *metav1.Duration       `json:"holdTime,omitempty"`
	KeepaliveTime         *metav1.Duration       `json:"keepaliveTime,omitempty"`
	ConnectTime           *metav1.Duration       `json:"connectTime,omitempty"`
	RouterID              string                 `json:"routerID,omitempty"`
	NodeSelectors         []metav1.LabelSelector `json:"nodeSelectors,omitempty"`
	Password              string                 `json:"password,omitempty"`
	PasswordSecret        *secretReference       `json:"passwordSecret,omitempty"`
	BFDProfile            string                 `json:"bfdProfile,omitempty"`
	EnableGracefulRestart bool                   `json:"enableGracefulRestart,omitempty"`
	EBGPMultiHop          bool                   `json:"ebgpMultiHop,omitempty"`
	VRF                   string                 `json:"vrf,omitempty"`
	DisableMP             bool                   `json:"disableMP,omitempty"`
}

type secretReference struct {
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

type bgpAdvertisementSpec struct {
	AggregationLength      *int32                 `json:"aggregationLength,omitempty"`
	AggregationLengthV6    *int32                 `json:"aggregationLengthV6,omitempty"`
	LocalPref              int64                  `json:"localPref,omitempty"`
	Communities            []string               `json:"communities,omitempty"`
	IPAddressPools         []string               `json:"ipAddressPools,omitempty"`
	IPAddressPoolSelectors []metav1.LabelSelector `json:"ipAddressPoolSelectors,omitempty"`
	NodeSelectors          []metav1.LabelSelector `json:"nodeSelectors,omitempty"`
	Peers                  []string               `json:"peers,omitempty"`
}

type l2AdvertisementSpec struct {
	IPAddressPools         []string               `json:"ipAddressPools,omitempty"`
	IPAddressPoolSelectors []metav1.LabelSelector `json:"ipAddressPoolSelectors,omitempty"`
	NodeSelectors          []metav1.LabelSelector `json:"nodeSelectors,omitempty"`
	Interfaces             []string               `json:"interfaces,omitempty"`
}

type communitySpec struct {
	Communities []communityAlias `json:"communities,omitempty"`
}

type communityAlias struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type bfdProfileSpec struct {
	ReceiveInterval  *int32 `json:"receiveInterval,omitempty"`
	TransmitInterval *int32 `json:"transmitInterval,omitempty"`
	DetectMultiplier *int32 `json:"detectMultiplier,omitempty"`
	EchoInterval     *int32 `json:"echoInterval,omitempty"`
	EchoMode         *bool  `json:"echoMode,omitempty"`
	PassiveMode      *bool  `json:"passiveMode,omitempty"`
	MinimumTTL       *int32 `json:"minimumTtl,omitempty"`
}
