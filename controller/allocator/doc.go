// Package allocator decides which addresses LoadBalancer Services get from
// the IP pools. It is pure: plain values in, plain values out, no Kubernetes
// client, no clock (calls take now), no goroutines. The reconciler converts
// LoadBalancerPools to lbmodel.Pool and Services to [Request], and turns
// results into Service status, conditions and events.
//
// # Pools
//
// A pool (lbmodel.Pool) is IPv4 and/or IPv6 ranges (lbmodel.Range, which
// parses the LoadBalancerPool notations). lbmodel.CheckPools, the rule the
// speakers apply too, refuses invalid pools, pools reusing a name, and pools
// overlapping an older one (by creationTimestamp, then name); refused pools
// take no part in allocation. With AvoidBuggyIPs a pool never hands out an
// IPv4 address whose last octet is 0 or 255, whatever the prefix length.
//
// # Which pools a Service may use
//
// A pool's lbmodel.ServiceAllocation admits a Service when its namespace is
// listed or its namespace's labels match a namespace selector (both empty:
// any namespace), and its labels match a service selector (none: any
// Service). A pool named by the Service's address-pool annotation must admit
// it (PoolNotAllowed) but need not have AutoAssign. Without a name the
// candidates are the pools with AutoAssign that admit the Service, in this
// order: pools with a positive priority, lowest first; then pools with none
// (0); ties by name.
//
// # Families
//
// SingleStack wants one address of Families[0]. RequireDualStack wants an
// IPv4 and an IPv6 address from one pool. PreferDualStack with two families
// first tries every candidate pool for both, then every pool for
// Families[0], then for Families[1]; with one family it is SingleStack.
//
// # Choosing addresses
//
// Requested addresses (spec.loadBalancerIP, the loadBalancerIPs annotation)
// are given exactly or refused: each must be of a wanted family
// (WrongFamily; RequireDualStack needs both), inside the named pool if any,
// inside some pool (NotInPool) that admits the Service (PoolNotAllowed), and
// not held by a Service it may not share with (InUse). Hold-down does not
// apply to them, nor AutoAssign.
//
// Otherwise, for each family, in the first candidate pool that can serve
// the whole family set: the lowest address this Service itself released and
// that is still held down; else the lowest address held by Services it may
// share with; else the lowest free address. Failing that: NoPool when no pool
// is a candidate, FamilyUnavailable when no candidate has the families,
// PoolExhausted otherwise (with [Error.RetryAt] when a held-down address would
// help later).
//
// # Sharing
//
// Two Services may hold the same address only when both carry the same
// non-empty sharing key, have the same externalTrafficPolicy, and use no
// protocol/port pair in common. Every holder of an address must be
// compatible with every other.
//
// # Hold-down
//
// An address nobody holds any more is held down for [Config.HoldDown]: other
// Services do not get it automatically, even when the pool has nothing else
// (strict: a full pool says PoolExhausted and when to retry, rather than
// hand a stale address to a stranger). The Service that released it may take
// it back, and anyone may request it by name. The allocator's time never
// runs backwards: an earlier now counts as the latest seen.
//
// # Stability
//
// [Allocator.Allocate] for a Service that holds addresses keeps those that
// still suit its request: of a wanted family, not contradicting a named pool,
// still shareable with their other holders. Pool changes never count against
// them: an address no pool covers any more stays with its Service and is
// listed by [Orphans]. A dual-stack Service holding one family gets the other
// from the same pool when it can; it is not moved to gain it. When the kept
// addresses do not satisfy the request the Service is allocated afresh and
// its old addresses are released. A failed Allocate changes nothing.
//
// # Counting
//
// [Allocator.Stats] gives size, assigned, held-down and available counts
// per pool and family, as uint64 saturating at MaxUint64 (IPv6 ranges of
// 2^64 addresses or more).
//
// # Cost
//
// Each pool range finds its lowest free address with a watermark and a heap
// of addresses freed below it (see span), so an allocation costs O(log n)
// amortised plus the number of pools, whatever the range sizes; sharing
// and self-release candidates cost what the Service's sharing key and own
// releases hold.
package allocator
