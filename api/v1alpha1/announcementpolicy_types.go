package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BGPAnnouncementPolicy says how the speakers announce the addresses of some
// pools over BGP. Cluster-scoped like the pools and peers it names: bgplb
// has no namespace of its own that users must know about, and an
// advertisement in a user's namespace would still act cluster-wide.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=bgpannounce,categories=bgplb
// +kubebuilder:printcolumn:name="Pools",type=string,JSONPath=`.spec.ipPools`
// +kubebuilder:printcolumn:name="Peers",type=string,JSONPath=`.spec.peers`
// +kubebuilder:printcolumn:name="Aggregation",type=integer,JSONPath=`.spec.aggregationLength`,priority=1
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BGPAnnouncementPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec BGPAnnouncementPolicySpec `json:"spec,omitempty"`
	// +optional
	Status ConfigStatus `json:"status,omitempty"`
}

// BGPAnnouncementPolicySpec selects pools, peers and nodes and the attributes
// of the routes announced.
type BGPAnnouncementPolicySpec struct {
	// IPPools names LoadBalancerPools to announce; IPPoolSelectors picks
	// them by label. A pool named or matched by either is announced; both
	// empty means every pool.
	//
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	// +listType=set
	// +optional
	IPPools []string `json:"ipPools,omitempty"`
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	IPPoolSelectors []metav1.LabelSelector `json:"ipPoolSelectors,omitempty"`

	// AggregationLength is the prefix length announced for an IPv4 Service
	// address: 32 announces the address itself; shorter announces the
	// covering prefix, once for all the Services in it.
	//
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=32
	// +kubebuilder:default=32
	// +optional
	AggregationLength *int32 `json:"aggregationLength,omitempty"`
	// AggregationLengthV6 is the same for IPv6.
	//
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=128
	// +kubebuilder:default=128
	// +optional
	AggregationLengthV6 *int32 `json:"aggregationLengthV6,omitempty"`

	// LocalPref is the LOCAL_PREF attribute sent on iBGP sessions. An int64
	// because the attribute is 32 bits unsigned and Kubernetes APIs avoid
	// unsigned integers.
	//
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +optional
	LocalPref *int64 `json:"localPref,omitempty"`

	// Communities are attached to the routes: "64512:100" (two numbers up
	// to 65535) or a well-known name: no-export, no-advertise,
	// no-export-subconfed, no-peer, blackhole, graceful-shutdown,
	// accept-own, llgr-stale, no-llgr.
	//
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=32
	// +kubebuilder:validation:items:XValidation:rule="self in ['no-export', 'no-advertise', 'no-export-subconfed', 'no-peer', 'blackhole', 'graceful-shutdown', 'accept-own', 'llgr-stale', 'no-llgr'] || (self.matches('^[0-9]{1,5}:[0-9]{1,5}$') && self.split(':').all(p, int(p) <= 65535))",message="must be AS:value with both numbers at most 65535 (64512:100) or a well-known community name (no-export, no-advertise, no-export-subconfed, no-peer, blackhole, graceful-shutdown, accept-own, llgr-stale, no-llgr)"
	// +listType=set
	// +optional
	Communities []string `json:"communities,omitempty"`

	// LargeCommunities (RFC 8092) are attached to the routes:
	// "global:local1:local2", three numbers up to 4294967295.
	//
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=32
	// +kubebuilder:validation:items:XValidation:rule="self.matches('^[0-9]{1,10}:[0-9]{1,10}:[0-9]{1,10}$') && self.split(':').all(p, int(p) <= 4294967295)",message="must be three numbers at most 4294967295 joined by colons (64512:1:100)"
	// +listType=set
	// +optional
	LargeCommunities []string `json:"largeCommunities,omitempty"`

	// Peers names the BGPRouters to announce to; empty means every peer.
	//
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	// +listType=set
	// +optional
	Peers []string `json:"peers,omitempty"`

	// NodeSelectors pick the nodes that announce; a node matching any
	// selector. Empty means every node.
	//
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	NodeSelectors []metav1.LabelSelector `json:"nodeSelectors,omitempty"`
}

// BGPAnnouncementPolicyList is a list of BGPAnnouncementPolicies.
//
// +kubebuilder:object:root=true
type BGPAnnouncementPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPAnnouncementPolicy `json:"items"`
}

// L2AnnouncementPolicy says that the addresses of some pools are answered for
// with ARP and NDP from the selected nodes.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=l2announce,categories=bgplb
// +kubebuilder:printcolumn:name="Pools",type=string,JSONPath=`.spec.ipPools`
// +kubebuilder:printcolumn:name="Interfaces",type=string,JSONPath=`.spec.interfaces`
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type L2AnnouncementPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec L2AnnouncementPolicySpec `json:"spec,omitempty"`
	// +optional
	Status ConfigStatus `json:"status,omitempty"`
}

// L2AnnouncementPolicySpec selects pools, interfaces and nodes.
type L2AnnouncementPolicySpec struct {
	// IPPools and IPPoolSelectors as in BGPAnnouncementPolicySpec; both empty
	// means every pool.
	//
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	// +listType=set
	// +optional
	IPPools []string `json:"ipPools,omitempty"`
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	IPPoolSelectors []metav1.LabelSelector `json:"ipPoolSelectors,omitempty"`

	// Interfaces are the node interfaces to answer on: names, or patterns
	// with * ? and [...] as in shell globs ("eth*", "enp?s0"). Empty means
	// the interfaces holding an address on the Service address's subnet,
	// so that a node never answers on a link the address does not belong
	// to. Loopback is never answered on. Up to 15 characters, no '/', ':'
	// or whitespace, not "." or "..".
	//
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=15
	// +kubebuilder:validation:items:Pattern=`^[^/:\s]+$`
	// +kubebuilder:validation:items:XValidation:rule="self != '.' && self != '..'",message="must be an interface name"
	// +listType=set
	// +optional
	Interfaces []string `json:"interfaces,omitempty"`

	// NodeSelectors pick the nodes that may answer; a node matching any
	// selector. Empty means every node.
	//
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	NodeSelectors []metav1.LabelSelector `json:"nodeSelectors,omitempty"`
}

// L2AnnouncementPolicyList is a list of L2AnnouncementPolicies.
//
// +kubebuilder:object:root=true
type L2AnnouncementPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []L2AnnouncementPolicy `json:"items"`
}
