package router

import (
	"fmt"
	"net/netip"
)

// Verdict is the import guard's answer for one prefix.
type Verdict uint8

// Verdicts.
const (
	Accept Verdict = iota
	RejectDefault
	RejectOutside
	RejectTooShort
	RejectTooLong
)

func (v Verdict) String() string {
	switch v {
	case Accept:
		return "accepted"
	case RejectDefault:
		return "default route"
	case RejectOutside:
		return "outside the import prefixes"
	case RejectTooShort:
		return "prefix length below the minimum"
	case RejectTooLong:
		return "prefix length above the maximum"
	}
	return fmt.Sprintf("verdict(%d)", uint8(v))
}

// Check decides whether a route for p may be imported. A default route is
// never accepted, whatever the ranges say.
func (im *Import) Check(p netip.Prefix) Verdict {
	if p.Bits() == 0 {
		return RejectDefault
	}
	min, max := im.MinPrefixLength.IPv4, im.MaxPrefixLength.IPv4
	if p.Addr().Is6() {
		min, max = im.MinPrefixLength.IPv6, im.MaxPrefixLength.IPv6
	}
	switch {
	case p.Bits() < min:
		return RejectTooShort
	case p.Bits() > max:
		return RejectTooLong
	}
	for _, r := range im.Prefixes {
		if r.Bits() <= p.Bits() && r.Contains(p.Addr()) {
			return Accept
		}
	}
	return RejectOutside
}
