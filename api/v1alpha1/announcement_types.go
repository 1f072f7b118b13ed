package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The speakers' reports. Each speaker writes only objects about its own
// node, so two speakers never contend for one object; the controller reads
// them all to tell the operator, on the Service, which nodes announce it.

// LabelNode and LabelService index the report objects: the node that wrote
// one, and the Service an announcement is about.
const (
	LabelNode    = "bgplb.io/node"
	LabelService = "bgplb.io/service"
)

// ServiceAnnouncement says that one node announces one Service's
// addresses, to which peers over BGP, and which it answers ARP and NDP for
// (L2, status.l2). It lives in the Service's namespace and
// exists while the node announces, or withholds the Service only because
// kube-proxy's health check for it fails on that node
// (externalTrafficPolicy Local): then its bgplb.io/health-check annotation
// says why, and the addresses withheld are in neither prefixes nor peers
// (none at all when every address is withheld). No object, no
// announcement from that node.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=svcann,categories=bgplb
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Service",type=string,JSONPath=`.spec.service`
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.spec.node`
// +kubebuilder:printcolumn:name="Prefixes",type=string,JSONPath=`.status.prefixes`
// +kubebuilder:printcolumn:name="Peers",type=string,JSONPath=`.status.peers`
// +kubebuilder:printcolumn:name="L2",type=string,JSONPath=`.status.l2[*].address`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ServiceAnnouncement struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec ServiceAnnouncementSpec `json:"spec"`
	// +optional
	Status ServiceAnnouncementStatus `json:"status,omitempty"`
}

// ServiceAnnouncementSpec names the Service and the node.
type ServiceAnnouncementSpec struct {
	// Service is the name of the Service, in this object's namespace.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Service string `json:"service"`
	// Node is the node that announces it.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Node string `json:"node"`
}

// ServiceAnnouncementStatus is what the node announces for the Service.
type ServiceAnnouncementStatus struct {
	// Prefixes announced for the Service's addresses (an aggregate when
	// the advertisement aggregates).
	//
	// +kubebuilder:validation:MaxItems=16
	// +listType=set
	// +optional
	Prefixes []string `json:"prefixes,omitempty"`
	// Peers are the BGPRouters the prefixes go to whose session is
	// Established.
	//
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	// +optional
	Peers []string `json:"peers,omitempty"`
	// Endpoints is the count of the node's local endpoints that count
	// (ready ones, else those serving while terminating), the weight the
	// node announces in the link-bandwidth community, or would announce
	// but for its health check.
	//
	// +optional
	Endpoints int32 `json:"endpoints,omitempty"`
	// L2 are the Service's addresses this node owns in L2 mode: it alone
	// answers ARP (IPv4) and NDP (IPv6) for them, on these interfaces.
	//
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=address
	// +optional
	L2 []L2Answer `json:"l2,omitempty"`
}

// L2Answer is one address a node answers ARP or NDP for.
type L2Answer struct {
	// Address is the Service address.
	//
	// +kubebuilder:validation:MaxLength=64
	Address string `json:"address"`
	// Interfaces are the node's interfaces it answers on; empty when no
	// interface qualifies (see lastError).
	//
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=15
	// +listType=set
	// +optional
	Interfaces []string `json:"interfaces,omitempty"`
	// Since is when this node took the address over.
	//
	// +optional
	Since *metav1.Time `json:"since,omitempty"`
	// LastError says why the node cannot answer on some interface (none
	// holds an address on the Service address's subnet, a socket failed).
	//
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	LastError string `json:"lastError,omitempty"`
}

// ServiceAnnouncementList is a list of ServiceAnnouncements.
//
// +kubebuilder:object:root=true
type ServiceAnnouncementList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServiceAnnouncement `json:"items"`
}

// BGPSessionStatus is one node's session with one BGPRouter, as its speaker
// sees it. Cluster-scoped like BGPRouter; named <node>.<peer>.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=bgpsess,categories=bgplb
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.spec.node`
// +kubebuilder:printcolumn:name="Peer",type=string,JSONPath=`.spec.peer`
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=`.status.peerAddress`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="BFD",type=string,JSONPath=`.status.bfd.state`
// +kubebuilder:printcolumn:name="Prefixes",type=integer,JSONPath=`.status.prefixesAnnounced`
// +kubebuilder:printcolumn:name="Since",type=date,JSONPath=`.status.since`
type BGPSessionStatus struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec BGPSessionStatusSpec `json:"spec"`
	// +optional
	Status BGPSessionStatusStatus `json:"status,omitempty"`
}

// BGPSessionStatusSpec names the node and the peer.
type BGPSessionStatusSpec struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Node string `json:"node"`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Peer string `json:"peer"`
}

// BGPSessionStatusStatus is the session's state.
type BGPSessionStatusStatus struct {
	// PeerAddress is the router's address.
	//
	// +kubebuilder:validation:MaxLength=64
	// +optional
	PeerAddress string `json:"peerAddress,omitempty"`
	// State is the RFC 4271 state: Idle, Connect, Active, OpenSent,
	// OpenConfirm or Established.
	//
	// +kubebuilder:validation:MaxLength=16
	// +optional
	State string `json:"state,omitempty"`
	// Since is when the session entered State.
	//
	// +optional
	Since *metav1.Time `json:"since,omitempty"`
	// PrefixesAnnounced to the peer; 0 is shown, not left out.
	//
	// +optional
	PrefixesAnnounced int32 `json:"prefixesAnnounced"`
	// LastError is why the session last went down or failed to come up.
	//
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	LastError string `json:"lastError,omitempty"`
	// BFD is the BFD session guarding this one, when the BGPRouter asks
	// for BFD: present while it runs (only while the BGP session is
	// Established) and after BFD took the session down.
	//
	// +optional
	BFD *BGPSessionBFD `json:"bfd,omitempty"`
}

// BGPSessionBFD is the state of the BFD session (RFC 5880) of one BGP
// session, as the node's speaker sees it.
type BGPSessionBFD struct {
	// State is this end's: Up, Init, Down or AdminDown.
	//
	// +kubebuilder:validation:Enum=AdminDown;Down;Init;Up
	State string `json:"state"`
	// RemoteState is the peer's, as it last reported it.
	//
	// +kubebuilder:validation:Enum=AdminDown;Down;Init;Up
	// +optional
	RemoteState string `json:"remoteState,omitempty"`
	// TransmitInterval is the negotiated interval between this end's
	// packets: the slower of its own and the peer's wish.
	//
	// +optional
	TransmitInterval *metav1.Duration `json:"transmitInterval,omitempty"`
	// ReceiveInterval is the negotiated interval between the peer's
	// packets.
	//
	// +optional
	ReceiveInterval *metav1.Duration `json:"receiveInterval,omitempty"`
	// DetectMultiplier is the peer's: the session goes Down when no packet
	// came for DetectMultiplier × ReceiveInterval.
	//
	// +optional
	DetectMultiplier int32 `json:"detectMultiplier,omitempty"`
	// LastDownReason is the RFC 5880 diagnostic of the last time the
	// session left Up: DetectionTimeExpired when this end heard nothing
	// for the detection time, NeighborDown when the peer said it was down
	// (see LastDownRemoteState for why).
	//
	// +kubebuilder:validation:MaxLength=32
	// +optional
	LastDownReason string `json:"lastDownReason,omitempty"`
	// LastDownRemoteState is the peer's state then: AdminDown when the
	// peer stopped on purpose, which does not take the BGP session down;
	// Down when it detected a failure itself (its detection time ran out)
	// or, after DetectionTimeExpired, as nothing more was heard.
	//
	// +kubebuilder:validation:Enum=AdminDown;Down;Init;Up
	// +optional
	LastDownRemoteState string `json:"lastDownRemoteState,omitempty"`
	// LastDownTime is when that was.
	//
	// +optional
	LastDownTime *metav1.Time `json:"lastDownTime,omitempty"`
}

// BGPSessionStatusList is a list of BGPSessionStatuses.
//
// +kubebuilder:object:root=true
type BGPSessionStatusList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPSessionStatus `json:"items"`
}
