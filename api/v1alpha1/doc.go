// Package v1alpha1 holds bgplb's custom resources, group bgplb.io: the
// address pools the controller hands out (LoadBalancerPool), the BGP sessions
// the speakers keep (BGPRouter, BFDPolicy) and what they announce where
// (BGPAnnouncementPolicy, L2AnnouncementPolicy).
//
// Every rule the API server can check lives in the CRD itself, as OpenAPI
// bounds and CEL rules generated from the markers here: there is no
// admission webhook to install, time out or fail. The Go parsers of these
// objects live in internal/lbmodel and accept exactly what those rules
// accept (tests here hold the two together), so a consumer never sees an
// object the API server let through but the code cannot read. Run `make
// generate` after changing a marker.
//
// +kubebuilder:object:generate=true
// +groupName=bgplb.io
package v1alpha1
