package allocator

// Counting the addresses of a range, for the pools' statistics.

import (
	"encoding/binary"
	"math"
	"net/netip"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

// buggy reports whether avoidBuggyIPs excludes a: an IPv4 address whose last
// octet is 0 or 255. Old consumer routers drop traffic to those, taking them
// for network or broadcast addresses whatever the real prefix length. IPv6
// addresses are never excluded.
func buggy(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	last := a.As4()[3]
	return last == 0 || last == 255
}

// size is the number of addresses in r that a pool with the given
// avoidBuggyIPs can hand out, saturating at math.MaxUint64: an IPv6 /64 or
// larger counts as MaxUint64, which is as good as unbounded for counting
// Services and keeps the figures plain uint64 (and exact below 2^64).
func size(r lbmodel.Range, avoidBuggy bool) uint64 {
	if r.First.Is4() {
		lo, hi := u32(r.First), u32(r.Last)
		n := uint64(hi-lo) + 1
		if avoidBuggy {
			n -= buggyUpTo(hi) - buggyBelow(lo)
		}
		return n
	}
	loHi, loLo := u128(r.First)
	hiHi, hiLo := u128(r.Last)
	// The difference fits 64 bits only when the upper halves are equal, or
	// differ by one with a borrow from the lower half; then the wrapping
	// subtraction of the lower halves is exact.
	if hiHi != loHi && (hiHi-loHi > 1 || hiLo >= loLo) {
		return math.MaxUint64
	}
	d := hiLo - loLo
	if d == math.MaxUint64 {
		return math.MaxUint64
	}
	return d + 1
}

// buggyUpTo counts the buggy IPv4 addresses in [0, x].
func buggyUpTo(x uint32) uint64 {
	n := 2*(uint64(x)/256) + 1 // every full block of 256 has .0 and .255; x's own block has .0
	if x%256 == 255 {
		n++
	}
	return n
}

// buggyBelow counts the buggy IPv4 addresses in [0, x).
func buggyBelow(x uint32) uint64 {
	if x == 0 {
		return 0
	}
	return buggyUpTo(x - 1)
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func u128(a netip.Addr) (hi, lo uint64) {
	b := a.As16()
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

// addSat adds without wrapping.
func addSat(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}
