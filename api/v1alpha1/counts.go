package v1alpha1

import "math"

// ClampCount turns an address count into a LoadBalancerPoolStatus count: counts
// past math.MaxInt64 (only IPv6 pools have them) become math.MaxInt64,
// read as "at least this many".
func ClampCount(n uint64) int64 {
	if n > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(n)
}
