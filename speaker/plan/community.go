package plan

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/bgplb/bgplb/bgp/wire"
)

// wellKnown are the community names BGPAdvertisement.spec.communities
// accepts, as its CEL rule lists them.
var wellKnown = map[string]wire.Community{
	"no-export":           wire.CommunityNoExport,
	"no-advertise":        wire.CommunityNoAdvertise,
	"no-export-subconfed": wire.CommunityNoExportSubconfed,
	"no-peer":             wire.CommunityNoPeer,
	"blackhole":           wire.CommunityBlackhole,
	"graceful-shutdown":   wire.CommunityGracefulShutdown,
	"accept-own":          wire.CommunityAcceptOwn,
	"llgr-stale":          wire.CommunityLLGRStale,
	"no-llgr":             wire.CommunityNoLLGR,
}

// ParseCommunity parses a community as BGPAdvertisement.spec.communities
// writes it: "AS:value", two decimal numbers of 1 to 5 digits each at most
// 65535, or one of the well-known names (no-export, no-advertise,
// no-export-subconfed, no-peer, blackhole, graceful-shutdown, accept-own,
// llgr-stale, no-llgr). It accepts exactly what the CRD's rule accepts, so
// an error means the rule was bypassed; the error quotes the value.
func ParseCommunity(s string) (wire.Community, error) {
	if c, ok := wellKnown[s]; ok {
		return c, nil
	}
	hi, lo, ok := strings.Cut(s, ":")
	if !ok {
		return 0, fmt.Errorf("community %q: want AS:value (64512:100) or a well-known name (no-export, no-advertise, no-export-subconfed, no-peer, blackhole, graceful-shutdown, accept-own, llgr-stale, no-llgr)", s)
	}
	a, errA := parseDecimal(hi, 5, 0xffff)
	v, errV := parseDecimal(lo, 5, 0xffff)
	if err := errors.Join(errA, errV); err != nil {
		return 0, fmt.Errorf("community %q: %w", s, err)
	}
	return wire.NewCommunity(uint16(a), uint16(v)), nil
}

// ParseLargeCommunity parses a large community (RFC 8092) as
// BGPAdvertisement.spec.largeCommunities writes it: "global:local1:local2",
// three decimal numbers of 1 to 10 digits each at most 4294967295. The
// error quotes the value.
func ParseLargeCommunity(s string) (wire.LargeCommunity, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return wire.LargeCommunity{}, fmt.Errorf("large community %q: want three numbers joined by colons (64512:1:100)", s)
	}
	var n [3]uint64
	var errs [3]error
	for i, p := range parts {
		n[i], errs[i] = parseDecimal(p, 10, 0xffffffff)
	}
	if err := errors.Join(errs[:]...); err != nil {
		return wire.LargeCommunity{}, fmt.Errorf("large community %q: %w", s, err)
	}
	return wire.LargeCommunity{Global: uint32(n[0]), Local1: uint32(n[1]), Local2: uint32(n[2])}, nil
}

// parseDecimal parses what the CRD's regular expressions allow: 1 to
// maxDigits ASCII digits (leading zeros allowed; no sign, space or
// underscore, which strconv would take in some forms), at most limit.
func parseDecimal(s string, maxDigits int, limit uint64) (uint64, error) {
	if s == "" || len(s) > maxDigits || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a number of 1 to %d digits", s, maxDigits)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > limit {
		return 0, fmt.Errorf("%s is more than %d", s, limit)
	}
	return n, nil
}

// ParseCommunities parses spec.communities (see [ParseCommunity]),
// reporting every bad entry with its index; on error it returns nil, so
// that an advertisement is never used with part of its communities.
func ParseCommunities(ss []string) ([]wire.Community, error) {
	return parseAll(ss, "communities", ParseCommunity)
}

// ParseLargeCommunities parses spec.largeCommunities (see
// [ParseLargeCommunity]) as ParseCommunities does.
func ParseLargeCommunities(ss []string) ([]wire.LargeCommunity, error) {
	return parseAll(ss, "largeCommunities", ParseLargeCommunity)
}

func parseAll[T any](ss []string, field string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	var errs []error
	for i, s := range ss {
		c, err := parse(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("spec.%s[%d]: %w", field, i, err))
			continue
		}
		out = append(out, c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}
