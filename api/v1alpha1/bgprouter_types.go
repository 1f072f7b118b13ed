package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BGPRouter is a router the speakers on the selected nodes each keep a BGP
// session with (one session per node).
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=bgplb
// +kubebuilder:printcolumn:name="Peer Address",type=string,JSONPath=`.spec.peerAddress`
// +kubebuilder:printcolumn:name="Peer ASN",type=integer,JSONPath=`.spec.peerASN`
// +kubebuilder:printcolumn:name="My ASN",type=integer,JSONPath=`.spec.myASN`
// +kubebuilder:printcolumn:name="BFD Policy",type=string,JSONPath=`.spec.bfdPolicy`,priority=1
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BGPRouter struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec BGPRouterSpec `json:"spec"`
	// +optional
	Status ConfigStatus `json:"status,omitempty"`
}

// BGPRouterSpec describes one BGP session per selected node.
//
// ASNs are int64 rather than uint32: Kubernetes APIs avoid unsigned
// integers, and an int32 cannot hold a 4-octet ASN.
//
// +kubebuilder:validation:XValidation:rule="!has(self.keepaliveTime) || !has(self.holdTime) || duration(self.keepaliveTime) <= duration(self.holdTime)",message="keepaliveTime must not exceed holdTime",fieldPath=".keepaliveTime"
// +kubebuilder:validation:XValidation:rule="!has(self.sourceAddress) || !isIP(self.sourceAddress) || !isIP(self.peerAddress) || ip(self.sourceAddress).family() == ip(self.peerAddress).family()",message="sourceAddress must be of the same family as peerAddress",fieldPath=".sourceAddress"
// +kubebuilder:validation:XValidation:rule="!has(self.ebgpMultiHop) || self.myASN != self.peerASN",message="ebgpMultiHop applies only to eBGP sessions (myASN different from peerASN)",fieldPath=".ebgpMultiHop"
type BGPRouterSpec struct {
	// MyASN is the AS number the speaker uses for this session.
	//
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967295
	MyASN int64 `json:"myASN"`

	// PeerASN is the AS number the router must open with.
	//
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967295
	PeerASN int64 `json:"peerASN"`

	// PeerAddress is the router's address.
	//
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="must be an IPv4 or IPv6 address without a zone"
	PeerAddress string `json:"peerAddress"`

	// PeerPort is the router's TCP port.
	//
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +kubebuilder:default=179
	// +optional
	PeerPort int32 `json:"peerPort,omitempty"`

	// HoldTime proposed in the OPEN message: 0 (no keepalives, the session
	// never times out) or from 3s to 65535s, as RFC 4271 allows. Unset, the
	// speaker's default applies.
	//
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$`
	// +kubebuilder:validation:XValidation:rule="duration(self) == duration('0s') || (duration(self) >= duration('3s') && duration(self) <= duration('65535s'))",message="holdTime must be 0 or between 3s and 65535s"
	// +optional
	HoldTime *metav1.Duration `json:"holdTime,omitempty"`

	// KeepaliveTime between KEEPALIVE messages; at most holdTime.
	//
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$`
	// +optional
	KeepaliveTime *metav1.Duration `json:"keepaliveTime,omitempty"`

	// ConnectTime is how long to wait between connection attempts.
	//
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('65535s')",message="connectTime must be between 1s and 65535s"
	// +optional
	ConnectTime *metav1.Duration `json:"connectTime,omitempty"`

	// PasswordSecret names the Secret holding the TCP-MD5 password. The
	// password lives in a Secret, never in this object, so that reading
	// peers does not mean reading passwords.
	//
	// +optional
	PasswordSecret *SecretKeyReference `json:"passwordSecret,omitempty"`

	// SourceAddress is the local address the session uses; unset, the
	// kernel chooses. Same family as peerAddress.
	//
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="must be an IPv4 or IPv6 address without a zone"
	// +optional
	SourceAddress string `json:"sourceAddress,omitempty"`

	// RouterID is the BGP identifier the speakers send this router, the
	// same on every node the peer selects (set the node annotation
	// bgplb.io/router-id for one per node). Unset, a node uses its
	// annotation, else an IPv4 sourceAddress, else its first IPv4 address,
	// else (an IPv6-only node) a number derived from its name: see the
	// README's speaker section.
	//
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="isIP(self) && ip(self).family() == 4 && !ip(self).isUnspecified()",message="must be an IPv4 address other than 0.0.0.0"
	// +optional
	RouterID string `json:"routerID,omitempty"`

	// EBGPMultiHop is the IP TTL of an eBGP session whose router is more
	// than one hop away. Unset, eBGP packets carry TTL 1 (directly
	// connected). A TTL rather than MetalLB's boolean: the operator knows
	// the hop count, and 255 gives the boolean's meaning.
	//
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=255
	// +optional
	EBGPMultiHop *int32 `json:"ebgpMultiHop,omitempty"`

	// Passive makes the speaker wait for the router to connect instead of
	// dialling it (the speaker must listen: bgplb speaker --listen). For
	// routers configured with each node as a static neighbour.
	//
	// +optional
	Passive bool `json:"passive,omitempty"`

	// NodeSelectors pick the nodes whose speakers keep this session: a
	// node matching any selector. Empty means every node.
	//
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	NodeSelectors []metav1.LabelSelector `json:"nodeSelectors,omitempty"`

	// BFDPolicy names a BFDPolicy; set, the session is watched by BFD
	// with that policy's timers.
	//
	// +kubebuilder:validation:MaxLength=253
	// +optional
	BFDPolicy string `json:"bfdPolicy,omitempty"`

	// GracefulRestart advertises the graceful restart capability, so the
	// router keeps this node's routes while its speaker restarts.
	//
	// +optional
	GracefulRestart bool `json:"gracefulRestart,omitempty"`
}

// SecretKeyReference points at one key of a Secret.
type SecretKeyReference struct {
	// Name of the Secret.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Namespace of the Secret; unset, the namespace bgplb runs in.
	//
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Key of the Secret's data that holds the password.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:default=password
	// +optional
	Key string `json:"key,omitempty"`
}

// BGPRouterList is a list of BGPRouters.
//
// +kubebuilder:object:root=true
type BGPRouterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPRouter `json:"items"`
}
