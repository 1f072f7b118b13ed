package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Group is the API group of every kind here.
const Group = "bgplb.io"

// GroupVersion is group bgplb.io, version v1alpha1.
var GroupVersion = schema.GroupVersion{Group: Group, Version: "v1alpha1"}

// AddToScheme registers the kinds of this package with s. It is a plain
// function rather than the usual package-level SchemeBuilder so that the
// package holds no mutable state.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&LoadBalancerPool{}, &LoadBalancerPoolList{},
		&BGPRouter{}, &BGPRouterList{},
		&BGPAnnouncementPolicy{}, &BGPAnnouncementPolicyList{},
		&L2AnnouncementPolicy{}, &L2AnnouncementPolicyList{},
		&BFDPolicy{}, &BFDPolicyList{},
		&ServiceAnnouncement{}, &ServiceAnnouncementList{},
		&BGPSessionStatus{}, &BGPSessionStatusList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
