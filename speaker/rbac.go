package speaker

// The permissions `bgplb speaker` needs, as controller-gen markers: `make
// generate` writes them to config/rbac/speaker/role.yaml.
//
// Secrets are read one by one (get), never listed or watched, and only in
// bgplb's own namespace (a Role there, not a ClusterRole over every
// Secret): a node's speaker runs on the host network, and a compromised
// node should not read the cluster's Secrets. A passwordSecret naming
// another namespace is refused before any read (peerConfig). A cluster
// installing bgplb elsewhere than bgplb-system moves the Role there.
//
// Its own pod and DaemonSet are read (get) once, at SIGTERM, to tell a
// speaker removed for good from a restart (shutdownMode); events go on
// its Node, saying when a drain starts and ends.
//
// L2 mode elects one owner per address through Leases in bgplb's own
// namespace (speaker/l2owner): a heartbeat per node and one Lease per L2
// address; events on a Service say when its L2 owner changes.

// +kubebuilder:rbac:groups="",resources=services;nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups="",namespace=bgplb-system,resources=secrets,verbs=get
// +kubebuilder:rbac:groups="",namespace=bgplb-system,resources=pods,verbs=get
// +kubebuilder:rbac:groups=apps,namespace=bgplb-system,resources=daemonsets,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=bgplb-system,resources=leases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=bgplb.io,resources=loadbalancerpools;bgprouters;bgpannouncementpolicies;l2announcementpolicies;bfdpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=bgplb.io,resources=serviceannouncements;bgpsessionstatuses,verbs=get;list;create;update;patch;delete;deletecollection
// +kubebuilder:rbac:groups=bgplb.io,resources=serviceannouncements/status;bgpsessionstatuses/status,verbs=get;update;patch
