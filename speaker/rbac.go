package speaker

// The permissions `bgplb speaker` needs, as controller-gen markers: `make
// generate` writes them to config/rbac/speaker/role.yaml.
//
// Secrets are read one by one (get), never listed or watched: a speaker
// sees only the passwords its BGPPeers name. A cluster could narrow that
// further with resourceNames.

// +kubebuilder:rbac:groups="",resources=services;nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch
// +kubebuilder:rbac:groups=bgplb.io,resources=ippools;bgppeers;bgpadvertisements,verbs=get;list;watch
// +kubebuilder:rbac:groups=bgplb.io,resources=serviceannouncements;bgpsessionstatuses,verbs=get;list;create;update;delete
// +kubebuilder:rbac:groups=bgplb.io,resources=serviceannouncements/status;bgpsessionstatuses/status,verbs=get;update;patch
