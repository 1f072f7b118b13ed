package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LoadBalancerPool is a set of addresses the controller may give to
// LoadBalancer Services.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=lbpool,categories=bgplb
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Addresses",type=string,JSONPath=`.spec.addresses`
// +kubebuilder:printcolumn:name="Auto Assign",type=boolean,JSONPath=`.spec.autoAssign`
// +kubebuilder:printcolumn:name="IPv4 Assigned",type=integer,JSONPath=`.status.assignedIPv4`
// +kubebuilder:printcolumn:name="IPv4 Available",type=integer,JSONPath=`.status.availableIPv4`
// +kubebuilder:printcolumn:name="IPv6 Assigned",type=integer,JSONPath=`.status.assignedIPv6`
// +kubebuilder:printcolumn:name="IPv6 Available",type=integer,JSONPath=`.status.availableIPv6`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type LoadBalancerPool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec LoadBalancerPoolSpec `json:"spec"`
	// +optional
	Status LoadBalancerPoolStatus `json:"status,omitempty"`
}

// LoadBalancerPoolSpec says which addresses a pool holds and which Services
// may have them.
type LoadBalancerPoolSpec struct {
	// Kept apart from the field comment, which becomes the CRD text: the
	// address rules run once per entry, self being the entry. CEL has no
	// "<" for addresses, so the order rule finds the first bit where a
	// range's ends differ: the range is in order when, at some prefix
	// length n, the start's n-bit network still holds the end but its
	// (n+1)-bit one does not, and the start's bit n is 0 (its n and n+1 bit
	// networks have the same address). The rules repeat split() because CRD
	// rules cannot bind variables, and take prefix lengths from a list of
	// string literals because string(n) has no size bound the cost
	// estimator can see, which would put the rule over the API server's
	// budget. The budget (checked by TestCRDsAreValid) is also why there
	// are at most 32 entries.

	// Addresses are the pool's addresses, IPv4 and IPv6 mixed freely. Each
	// entry is a CIDR with no host bits ("203.0.113.0/24",
	// "2001:db8:100::/120"), an inclusive range of one family
	// ("203.0.113.10-203.0.113.20"), or a single address. IPv4-mapped IPv6
	// addresses and zones are refused: they would let one address be
	// written two ways.
	//
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=100
	// +kubebuilder:validation:items:XValidation:rule="isIP(self) || isCIDR(self) || (self.split('-').size() == 2 && isIP(self.split('-')[0].trim()) && isIP(self.split('-')[1].trim()))",message="must be a CIDR (203.0.113.0/24), a range (203.0.113.10-203.0.113.20) or an address; IPv4-mapped IPv6 addresses and zones are not allowed"
	// +kubebuilder:validation:items:XValidation:rule="!isCIDR(self) || cidr(self) == cidr(self).masked()",message="a CIDR must have no bits set after its prefix length"
	// +kubebuilder:validation:items:XValidation:rule="self.split('-').size() != 2 || !isIP(self.split('-')[0].trim()) || !isIP(self.split('-')[1].trim()) || ip(self.split('-')[0].trim()).family() == ip(self.split('-')[1].trim()).family()",message="both ends of a range must be of the same family"
	// +kubebuilder:validation:items:XValidation:rule="self.split('-').size() != 2 || !isIP(self.split('-')[0].trim()) || !isIP(self.split('-')[1].trim()) || ip(self.split('-')[0].trim()).family() != ip(self.split('-')[1].trim()).family() || ip(self.split('-')[0].trim()) == ip(self.split('-')[1].trim()) || (ip(self.split('-')[0].trim()).family() == 4 ? lists.range(32) : lists.range(128)).exists(n, cidr(self.split('-')[0].trim() + '/' + ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12', '13', '14', '15', '16', '17', '18', '19', '20', '21', '22', '23', '24', '25', '26', '27', '28', '29', '30', '31', '32', '33', '34', '35', '36', '37', '38', '39', '40', '41', '42', '43', '44', '45', '46', '47', '48', '49', '50', '51', '52', '53', '54', '55', '56', '57', '58', '59', '60', '61', '62', '63', '64', '65', '66', '67', '68', '69', '70', '71', '72', '73', '74', '75', '76', '77', '78', '79', '80', '81', '82', '83', '84', '85', '86', '87', '88', '89', '90', '91', '92', '93', '94', '95', '96', '97', '98', '99', '100', '101', '102', '103', '104', '105', '106', '107', '108', '109', '110', '111', '112', '113', '114', '115', '116', '117', '118', '119', '120', '121', '122', '123', '124', '125', '126', '127', '128'][n]).containsIP(self.split('-')[1].trim()) && !cidr(self.split('-')[0].trim() + '/' + ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12', '13', '14', '15', '16', '17', '18', '19', '20', '21', '22', '23', '24', '25', '26', '27', '28', '29', '30', '31', '32', '33', '34', '35', '36', '37', '38', '39', '40', '41', '42', '43', '44', '45', '46', '47', '48', '49', '50', '51', '52', '53', '54', '55', '56', '57', '58', '59', '60', '61', '62', '63', '64', '65', '66', '67', '68', '69', '70', '71', '72', '73', '74', '75', '76', '77', '78', '79', '80', '81', '82', '83', '84', '85', '86', '87', '88', '89', '90', '91', '92', '93', '94', '95', '96', '97', '98', '99', '100', '101', '102', '103', '104', '105', '106', '107', '108', '109', '110', '111', '112', '113', '114', '115', '116', '117', '118', '119', '120', '121', '122', '123', '124', '125', '126', '127', '128'][n + 1]).containsIP(self.split('-')[1].trim()) && cidr(self.split('-')[0].trim() + '/' + ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12', '13', '14', '15', '16', '17', '18', '19', '20', '21', '22', '23', '24', '25', '26', '27', '28', '29', '30', '31', '32', '33', '34', '35', '36', '37', '38', '39', '40', '41', '42', '43', '44', '45', '46', '47', '48', '49', '50', '51', '52', '53', '54', '55', '56', '57', '58', '59', '60', '61', '62', '63', '64', '65', '66', '67', '68', '69', '70', '71', '72', '73', '74', '75', '76', '77', '78', '79', '80', '81', '82', '83', '84', '85', '86', '87', '88', '89', '90', '91', '92', '93', '94', '95', '96', '97', '98', '99', '100', '101', '102', '103', '104', '105', '106', '107', '108', '109', '110', '111', '112', '113', '114', '115', '116', '117', '118', '119', '120', '121', '122', '123', '124', '125', '126', '127', '128'][n + 1]).masked().ip() == cidr(self.split('-')[0].trim() + '/' + ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12', '13', '14', '15', '16', '17', '18', '19', '20', '21', '22', '23', '24', '25', '26', '27', '28', '29', '30', '31', '32', '33', '34', '35', '36', '37', '38', '39', '40', '41', '42', '43', '44', '45', '46', '47', '48', '49', '50', '51', '52', '53', '54', '55', '56', '57', '58', '59', '60', '61', '62', '63', '64', '65', '66', '67', '68', '69', '70', '71', '72', '73', '74', '75', '76', '77', '78', '79', '80', '81', '82', '83', '84', '85', '86', '87', '88', '89', '90', '91', '92', '93', '94', '95', '96', '97', '98', '99', '100', '101', '102', '103', '104', '105', '106', '107', '108', '109', '110', '111', '112', '113', '114', '115', '116', '117', '118', '119', '120', '121', '122', '123', '124', '125', '126', '127', '128'][n]).masked().ip())",message="the start of a range must not come after its end"
	// +listType=set
	Addresses []string `json:"addresses"`

	// AutoAssign lets the pool serve Services that name neither it nor one
	// of its addresses. When false, only Services that ask for the pool or
	// one of its addresses get one.
	//
	// +kubebuilder:default=true
	// +optional
	AutoAssign *bool `json:"autoAssign,omitempty"`

	// AvoidBuggyIPs keeps IPv4 addresses ending in .0 or .255 out of
	// automatic assignment: some consumer routers drop traffic to them,
	// taking them for network or broadcast addresses.
	//
	// +optional
	AvoidBuggyIPs bool `json:"avoidBuggyIPs,omitempty"`

	// ServiceAllocation narrows the pool to some Services and ranks it
	// among pools. Unset, every Service may use the pool.
	//
	// +optional
	ServiceAllocation *ServiceAllocation `json:"serviceAllocation,omitempty"`
}

// ServiceAllocation narrows a pool to some Services and ranks it.
type ServiceAllocation struct {
	// Priority orders the pools tried for automatic assignment: a lower
	// positive value is tried first; 0 (unset) comes after every set one.
	//
	// +kubebuilder:validation:Minimum=0
	// +optional
	Priority int32 `json:"priority,omitempty"`

	// Namespaces admits Services in the listed namespaces.
	// NamespaceSelectors admits Services whose namespace's labels match any
	// selector. When both are empty every namespace is admitted.
	//
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=63
	// +listType=set
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	NamespaceSelectors []metav1.LabelSelector `json:"namespaceSelectors,omitempty"`

	// ServiceSelectors admits Services whose labels match any selector;
	// empty admits every Service. A Service must pass both the namespace
	// and the service condition.
	//
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	ServiceSelectors []metav1.LabelSelector `json:"serviceSelectors,omitempty"`
}

// LoadBalancerPoolStatus is the controller's report on a pool.
//
// Counts are int64, not strings: they sort and compare in kubectl and in
// metrics, and only the IPv6 available count can outgrow them. A count that
// would pass 2^63-1 (any IPv6 pool of a /65 or more) is written as
// 2^63-1, meaning "at least this many".
type LoadBalancerPoolStatus struct {
	// AssignedIPv4 and AssignedIPv6 are the addresses of the pool that
	// Services hold.
	//
	// +optional
	AssignedIPv4 int64 `json:"assignedIPv4"`
	// +optional
	AssignedIPv6 int64 `json:"assignedIPv6"`
	// AvailableIPv4 and AvailableIPv6 are the addresses of the pool still
	// free to assign (after avoidBuggyIPs), saturating at 2^63-1.
	//
	// +optional
	AvailableIPv4 int64 `json:"availableIPv4"`
	// +optional
	AvailableIPv6 int64 `json:"availableIPv6"`

	// HeldDown are the pool's addresses released less than the
	// controller's hold-down ago, which no other Service gets
	// automatically until their time is up. The controller writes them so
	// that a restarted controller, or a new leader, keeps each for its full
	// hold-down; it reads them back when it starts. At most
	// MaxHeldDownPerPool are kept (those ending last); an address left out
	// comes free early after a restart.
	//
	// +kubebuilder:validation:MaxItems=256
	// +listType=atomic
	// +optional
	HeldDown []HeldAddress `json:"heldDown,omitempty"`

	// Conditions say whether the controller accepted the pool
	// (LoadBalancerPoolConditionReady) and why not, e.g. because it overlaps an
	// older pool.
	//
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
}

// MaxHeldDownPerPool bounds LoadBalancerPoolStatus.HeldDown, keeping a pool's
// status small (about 25 KiB at most) however many Services a burst deletes.
const MaxHeldDownPerPool = 256

// HeldAddress is one held-down address.
type HeldAddress struct {
	// Address is the released address.
	//
	// +kubebuilder:validation:MaxLength=45
	Address string `json:"address"`
	// Service (namespace/name) released it: it alone may take the address
	// back automatically before Until.
	//
	// +kubebuilder:validation:MaxLength=317
	// +optional
	Service string `json:"service,omitempty"`
	// Until is when the hold-down ends (rounded up to the second).
	Until metav1.Time `json:"until"`
}

// Condition types and reasons of LoadBalancerPoolStatus.Conditions.
const (
	// LoadBalancerPoolConditionReady is True when the controller accepted the
	// pool and assigns from it.
	LoadBalancerPoolConditionReady = "Ready"

	// LoadBalancerPoolReasonAccepted: the pool is in use.
	LoadBalancerPoolReasonAccepted = "Accepted"
	// LoadBalancerPoolReasonOverlap: the pool shares addresses with an older
	// pool and is not used until that is resolved.
	LoadBalancerPoolReasonOverlap = "Overlap"
	// LoadBalancerPoolReasonInvalid: the pool failed a check the API server
	// does not make.
	LoadBalancerPoolReasonInvalid = "Invalid"
)

// LoadBalancerPoolList is a list of LoadBalancerPools.
//
// +kubebuilder:object:root=true
type LoadBalancerPoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []LoadBalancerPool `json:"items"`
}

// AutoAssignEnabled is spec.autoAssign with the CRD's default (true) applied,
// for objects that did not come through the API server.
func (s *LoadBalancerPoolSpec) AutoAssignEnabled() bool {
	return s.AutoAssign == nil || *s.AutoAssign
}
