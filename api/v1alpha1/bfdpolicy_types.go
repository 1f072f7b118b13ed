package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BFDPolicy holds BFD (RFC 5880) timers that BGPRouters refer to by name.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=bgplb
// +kubebuilder:printcolumn:name="Receive ms",type=integer,JSONPath=`.spec.receiveInterval`
// +kubebuilder:printcolumn:name="Transmit ms",type=integer,JSONPath=`.spec.transmitInterval`
// +kubebuilder:printcolumn:name="Multiplier",type=integer,JSONPath=`.spec.detectMultiplier`
// +kubebuilder:printcolumn:name="Passive",type=boolean,JSONPath=`.spec.passiveMode`,priority=1
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BFDPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec BFDPolicySpec `json:"spec,omitempty"`
	// +optional
	Status ConfigStatus `json:"status,omitempty"`
}

// BFDPolicySpec are the timers of a BFD session. Intervals are whole
// milliseconds: BFD carries microseconds, but below 10ms a userspace
// implementation cannot keep its promise.
type BFDPolicySpec struct {
	// ReceiveInterval is the shortest interval, in milliseconds, at which
	// this end can receive control packets.
	//
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=60000
	// +kubebuilder:default=300
	// +optional
	ReceiveInterval *int32 `json:"receiveInterval,omitempty"`

	// TransmitInterval is the shortest interval, in milliseconds, at which
	// this end wants to send control packets.
	//
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=60000
	// +kubebuilder:default=300
	// +optional
	TransmitInterval *int32 `json:"transmitInterval,omitempty"`

	// DetectMultiplier is how many intervals without a packet declare the
	// session down.
	//
	// +kubebuilder:validation:Minimum=2
	// +kubebuilder:validation:Maximum=255
	// +kubebuilder:default=3
	// +optional
	DetectMultiplier *int32 `json:"detectMultiplier,omitempty"`

	// EchoMode turns on the BFD echo function. Off by default.
	//
	// +optional
	EchoMode bool `json:"echoMode,omitempty"`

	// PassiveMode waits for the peer to send the first control packet.
	//
	// +optional
	PassiveMode bool `json:"passiveMode,omitempty"`
}

// BFDPolicyList is a list of BFDPolicies.
//
// +kubebuilder:object:root=true
type BFDPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BFDPolicy `json:"items"`
}
