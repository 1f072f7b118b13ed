package controller

// The permissions `bgplb controller` needs, as controller-gen markers:
// `make generate` writes them to config/rbac/controller/role.yaml, and
// TestLeastPrivilege runs the controller with nothing more.
//
// Leader election's Lease lives in the controller's namespace, so it is a
// Role there, not a ClusterRole.

// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=services/status,verbs=update;patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=bgplb.io,resources=loadbalancerpools,verbs=get;list;watch
// +kubebuilder:rbac:groups=bgplb.io,resources=loadbalancerpools/status,verbs=update;patch
// +kubebuilder:rbac:groups=bgplb.io,resources=serviceannouncements;bgpannouncementpolicies;bgprouters;l2announcementpolicies;bfdpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=bgplb.io,resources=bgpannouncementpolicies/status;bgprouters/status;l2announcementpolicies/status;bfdpolicies/status,verbs=update;patch
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups=bgplb.io,resources=serviceannouncements;bgpsessionstatuses,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=bgplb-system,resources=leases,verbs=get;list;watch;create;update;patch;delete
