package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConfigStatus is the status of the configuration objects (BGPRouter,
// BGPAnnouncementPolicy, L2AnnouncementPolicy, BFDPolicy): the leader
// controller's verdict on them. Only the controller writes it, never the
// speakers, so that one object's status does not churn with the number of
// nodes.
type ConfigStatus struct {
	// Conditions: ConfigConditionAccepted always; ConfigConditionSupported
	// (False) while the object asks for something bgplb does not do yet;
	// ConfigConditionResolvedRefs (False) while it names an object that
	// does not exist.
	//
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
}

// Condition types and reasons of ConfigStatus.Conditions.
const (
	// ConfigConditionAccepted is True when the object's current generation
	// is valid and in force; False (ConfigReasonInvalid) when it fails a
	// check the API server does not make (a label selector with operator
	// `in` in lower case): the message says what is wrong and which
	// version stays in force instead.
	ConfigConditionAccepted = "Accepted"
	// ConfigConditionSupported is False (ConfigReasonNotSupportedYet) when
	// the object asks for something bgplb does not implement yet (an
	// L2AnnouncementPolicy, a BFDPolicy's echoMode, a BGPRouter's
	// gracefulRestart); the message says what happens instead. Absent
	// otherwise.
	ConfigConditionSupported = "Supported"
	// ConfigConditionResolvedRefs is False (ConfigReasonRefNotFound) while
	// the object names another that does not exist (a BGPRouter's
	// bfdPolicy); the message says what happens meanwhile. Absent
	// otherwise.
	ConfigConditionResolvedRefs = "ResolvedRefs"

	ConfigReasonValid           = "Valid"
	ConfigReasonInvalid         = "Invalid"
	ConfigReasonNotSupportedYet = "NotSupportedYet"
	ConfigReasonRefNotFound     = "RefNotFound"
)
