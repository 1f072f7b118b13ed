package v1alpha1

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
)

// AddressRange is an inclusive range of addresses of one family, First <=
// Last. A CIDR or a single address in an IPPool becomes the range it
// covers. It is a plain value for the allocator, not part of any object,
// so it has no generated DeepCopy.
//
// +kubebuilder:object:generate=false
type AddressRange struct {
	First, Last netip.Addr
}

// Ranges parses spec.addresses, in order, one AddressRange per entry. It
// accepts exactly what the CRD's CEL rules accept, so for an object read
// from the API server it fails only if the rules were bypassed; every bad
// entry is reported, each naming its index.
func (p *IPPool) Ranges() ([]AddressRange, error) {
	return ParseAddresses(p.Spec.Addresses)
}

// ParseAddresses parses a list of IPPool address entries (see
// ParseAddressRange), reporting every bad one.
func ParseAddresses(entries []string) ([]AddressRange, error) {
	out := make([]AddressRange, 0, len(entries))
	var errs []error
	for i, s := range entries {
		r, err := ParseAddressRange(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("spec.addresses[%d]: %w", i, err))
			continue
		}
		out = append(out, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// ParseAddressRange parses one IPPool address entry: a CIDR with no host
// bits ("203.0.113.0/24"), a range of one family with the start not after
// the end ("203.0.113.10-203.0.113.20", whitespace around either end
// allowed), or a single address. Zones and IPv4-mapped IPv6 addresses are
// refused, as the CRD's ip() and cidr() refuse them. Whitespace is trimmed
// only around a range's ends, as the CEL rule trims it.
func ParseAddressRange(s string) (AddressRange, error) {
	if strings.Contains(s, "/") {
		return parseCIDR(s)
	}
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		a, err := parseAddr(s)
		if err != nil {
			return AddressRange{}, fmt.Errorf("not a CIDR, a range or an address: %w", err)
		}
		return AddressRange{First: a, Last: a}, nil
	}
	if strings.Contains(hi, "-") {
		return AddressRange{}, fmt.Errorf("%q: a range has exactly one '-'", s)
	}
	first, err := parseAddr(strings.TrimSpace(lo))
	if err != nil {
		return AddressRange{}, fmt.Errorf("range %q: start: %w", s, err)
	}
	last, err := parseAddr(strings.TrimSpace(hi))
	if err != nil {
		return AddressRange{}, fmt.Errorf("range %q: end: %w", s, err)
	}
	if first.Is4() != last.Is4() {
		return AddressRange{}, fmt.Errorf("range %q: both ends must be of the same family", s)
	}
	if last.Less(first) {
		return AddressRange{}, fmt.Errorf("range %q: the start comes after the end", s)
	}
	return AddressRange{First: first, Last: last}, nil
}

func parseCIDR(s string) (AddressRange, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return AddressRange{}, fmt.Errorf("CIDR %q: %w", s, err)
	}
	if p.Addr().Is4In6() {
		return AddressRange{}, fmt.Errorf("CIDR %q: IPv4-mapped IPv6 addresses are not allowed; write the IPv4 prefix", s)
	}
	if p.Masked() != p {
		return AddressRange{}, fmt.Errorf("CIDR %q: bits set after the prefix length (did you mean %s?)", s, p.Masked())
	}
	return AddressRange{First: p.Addr(), Last: lastOf(p)}, nil
}

func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return netip.Addr{}, err
	case a.Zone() != "":
		return netip.Addr{}, fmt.Errorf("%q: zones are not allowed", s)
	case a.Is4In6():
		return netip.Addr{}, fmt.Errorf("%q: IPv4-mapped IPv6 addresses are not allowed; write the IPv4 address", s)
	}
	return a, nil
}

// lastOf is the last address of a masked prefix: its address with every
// host bit set.
func lastOf(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Contains reports whether a lies in r (an address of the other family
// never does).
func (r AddressRange) Contains(a netip.Addr) bool {
	return a.BitLen() == r.First.BitLen() && r.First.Compare(a) <= 0 && a.Compare(r.Last) <= 0
}

// String is the range as an IPPool entry would write it: a single address,
// or "first-last".
func (r AddressRange) String() string {
	if r.First == r.Last {
		return r.First.String()
	}
	return r.First.String() + "-" + r.Last.String()
}

// ClampCount turns an address count into an IPPoolStatus count: counts
// past math.MaxInt64 (only IPv6 pools have them) become math.MaxInt64,
// read as "at least this many".
func ClampCount(n uint64) int64 {
	if n > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(n)
}
