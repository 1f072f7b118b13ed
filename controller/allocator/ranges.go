package allocator

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
)

// Range is an inclusive range of addresses of one family.
type Range struct {
	First, Last netip.Addr
}

// RangeOf is the range a prefix covers (its host bits are ignored).
func RangeOf(p netip.Prefix) Range {
	p = p.Masked()
	first := p.Addr()
	b := first.AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	last, _ := netip.AddrFromSlice(b)
	return Range{First: first, Last: last}
}

// Validate refuses what the allocator cannot reason about: invalid
// addresses, zones, IPv4-mapped IPv6 addresses (they would be a third family
// in disguise), mixed families and reversed ranges.
func (r Range) Validate() error {
	for _, a := range [2]netip.Addr{r.First, r.Last} {
		switch {
		case !a.IsValid():
			return errors.New("missing address")
		case a.Zone() != "":
			return fmt.Errorf("%s: zones are not allowed", a)
		case a.Is4In6():
			return fmt.Errorf("%s: IPv4-mapped IPv6 addresses are not allowed; write the IPv4 address", a)
		}
	}
	if r.First.Is4() != r.Last.Is4() {
		return fmt.Errorf("%s and %s are of different families", r.First, r.Last)
	}
	if r.Last.Less(r.First) {
		return fmt.Errorf("%s comes after %s", r.First, r.Last)
	}
	return nil
}

// Family is the family of the range's addresses.
func (r Range) Family() Family { return FamilyOf(r.First) }

// Contains reports whether a lies in the range.
func (r Range) Contains(a netip.Addr) bool {
	return a.BitLen() == r.First.BitLen() && r.First.Compare(a) <= 0 && a.Compare(r.Last) <= 0
}

func (r Range) String() string {
	if r.First == r.Last {
		return r.First.String()
	}
	return r.First.String() + "-" + r.Last.String()
}

// overlaps reports whether two ranges share an address.
func (r Range) overlaps(o Range) bool {
	return r.First.BitLen() == o.First.BitLen() && r.First.Compare(o.Last) <= 0 && o.First.Compare(r.Last) <= 0
}

// touches reports whether o (which does not start before r) overlaps r or
// starts right after it, so the two merge into one range.
func (r Range) touches(o Range) bool {
	return r.overlaps(o) || (r.Last.Next().IsValid() && r.Last.Next() == o.First)
}

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
func (r Range) size(avoidBuggy bool) uint64 {
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
