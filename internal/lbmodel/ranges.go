package lbmodel

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Range is an inclusive range of addresses of one family, First <= Last: a
// LoadBalancerPool entry (a CIDR or a single address is the range it covers),
// a span of the allocator, a pool of the planner. It is bgplb's only
// address-range type.
type Range struct {
	First, Last netip.Addr
}

// ParseRange parses one LoadBalancerPool address entry: a CIDR with no host
// bits ("203.0.113.0/24"), a range of one family with the start not after the
// end ("203.0.113.10-203.0.113.20", whitespace around either end allowed), or
// a single address. Zones and IPv4-mapped IPv6 addresses are refused, as the
// CRD's ip() and cidr() refuse them; whitespace is trimmed only around a
// range's ends, as the CEL rule trims it. It accepts exactly what the CRD
// accepts (api/v1alpha1 tests the two against each other), so for an object
// read from the API server it fails only if the rules were bypassed.
func ParseRange(s string) (Range, error) {
	if strings.Contains(s, "/") {
		return parseCIDR(s)
	}
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		a, err := parseAddr(s)
		if err != nil {
			return Range{}, fmt.Errorf("not a CIDR, a range or an address: %w", err)
		}
		return Range{First: a, Last: a}, nil
	}
	if strings.Contains(hi, "-") {
		return Range{}, fmt.Errorf("%q: a range has exactly one '-'", s)
	}
	first, err := parseAddr(strings.TrimSpace(lo))
	if err != nil {
		return Range{}, fmt.Errorf("range %q: start: %w", s, err)
	}
	last, err := parseAddr(strings.TrimSpace(hi))
	if err != nil {
		return Range{}, fmt.Errorf("range %q: end: %w", s, err)
	}
	if first.Is4() != last.Is4() {
		return Range{}, fmt.Errorf("range %q: both ends must be of the same family", s)
	}
	if last.Less(first) {
		return Range{}, fmt.Errorf("range %q: the start comes after the end", s)
	}
	return Range{First: first, Last: last}, nil
}

// ParseRanges parses LoadBalancerPool.spec.addresses, in order, one Range per
// entry, reporting every bad entry with its index.
func ParseRanges(entries []string) ([]Range, error) {
	out := make([]Range, 0, len(entries))
	var errs []error
	for i, s := range entries {
		r, err := ParseRange(s)
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

func parseCIDR(s string) (Range, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return Range{}, fmt.Errorf("CIDR %q: %w", s, err)
	}
	if p.Addr().Is4In6() {
		return Range{}, fmt.Errorf("CIDR %q: IPv4-mapped IPv6 addresses are not allowed; write the IPv4 prefix", s)
	}
	if p.Masked() != p {
		return Range{}, fmt.Errorf("CIDR %q: bits set after the prefix length (did you mean %s?)", s, p.Masked())
	}
	return RangeOf(p), nil
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

// RangeOf is the range a prefix covers (its host bits are ignored).
func RangeOf(p netip.Prefix) Range {
	p = p.Masked()
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	last, _ := netip.AddrFromSlice(b)
	return Range{First: p.Addr(), Last: last}
}

// Validate refuses what no consumer can reason about: invalid addresses,
// zones, IPv4-mapped IPv6 addresses (a third family in disguise), mixed
// families and reversed ranges. A parsed Range is always valid; one built
// by hand need not be.
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

// Is4 reports whether the range holds IPv4 addresses.
func (r Range) Is4() bool { return r.First.Is4() }

// Contains reports whether a lies in r; an address of the other family
// never does.
func (r Range) Contains(a netip.Addr) bool {
	return a.BitLen() == r.First.BitLen() && r.First.Compare(a) <= 0 && a.Compare(r.Last) <= 0
}

// Overlaps reports whether two ranges share an address.
func (r Range) Overlaps(o Range) bool {
	return r.First.BitLen() == o.First.BitLen() && r.First.Compare(o.Last) <= 0 && o.First.Compare(r.Last) <= 0
}

// touches reports whether o (which does not start before r) overlaps r or
// starts right after it, so that the two merge into one range.
func (r Range) touches(o Range) bool {
	return r.Overlaps(o) || (r.Last.Next().IsValid() && r.Last.Next() == o.First)
}

// String is the range as a LoadBalancerPool entry would write it: a single
// address, or "first-last".
func (r Range) String() string {
	if r.First == r.Last {
		return r.First.String()
	}
	return r.First.String() + "-" + r.Last.String()
}
