package wire

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Community is an RFC 1997 community.
type Community uint32

// Well-known communities.
const (
	CommunityGracefulShutdown  Community = 0xffff0000 // RFC 8326
	CommunityAcceptOwn         Community = 0xffff0001 // RFC 7611
	CommunityLLGRStale         Community = 0xffff0006 // RFC 9494
	CommunityNoLLGR            Community = 0xffff0007 // RFC 9494
	CommunityBlackhole         Community = 0xffff029a // RFC 7999
	CommunityNoExport          Community = 0xffffff01
	CommunityNoAdvertise       Community = 0xffffff02
	CommunityNoExportSubconfed Community = 0xffffff03
	CommunityNoPeer            Community = 0xffffff04 // RFC 3765
)

// communityNames is the one name table: String prints these names and
// ParseCommunity reads them, so display and configuration cannot drift
// apart. BGPAnnouncementPolicy's CEL rule lists the same names (a test in
// internal/lbmodel holds the two together).
var communityNames = map[Community]string{
	CommunityGracefulShutdown: "graceful-shutdown", CommunityAcceptOwn: "accept-own",
	CommunityLLGRStale: "llgr-stale", CommunityNoLLGR: "no-llgr", CommunityBlackhole: "blackhole",
	CommunityNoExport: "no-export", CommunityNoAdvertise: "no-advertise",
	CommunityNoExportSubconfed: "no-export-subconfed", CommunityNoPeer: "no-peer",
}

var communityByName = func() map[string]Community {
	m := make(map[string]Community, len(communityNames))
	for c, n := range communityNames {
		m[n] = c
	}
	return m
}()

// CommunityNames are the well-known community names ParseCommunity accepts
// and String prints, in no particular order.
func CommunityNames() []string {
	out := make([]string, 0, len(communityNames))
	for _, n := range communityNames {
		out = append(out, n)
	}
	return out
}

// NewCommunity builds the community asn:value.
func NewCommunity(asn, value uint16) Community { return Community(uint32(asn)<<16 | uint32(value)) }

// String is the community's well-known name, or "AS:value"; ParseCommunity
// reads either back.
func (c Community) String() string {
	if n, ok := communityNames[c]; ok {
		return n
	}
	return strconv.Itoa(int(c>>16)) + ":" + strconv.Itoa(int(c&0xffff))
}

// ParseCommunity reads a community as String writes it and as
// BGPAnnouncementPolicy.spec.communities holds it: "AS:value", two decimal
// numbers of 1 to 5 digits each at most 65535 (leading zeros allowed, as
// the CRD's pattern allows them), or a well-known name. The error quotes
// the value.
func ParseCommunity(s string) (Community, error) {
	if c, ok := communityByName[s]; ok {
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
	return NewCommunity(uint16(a), uint16(v)), nil
}

// LargeCommunity is an RFC 8092 large community.
type LargeCommunity struct {
	Global, Local1, Local2 uint32
}

// String is "global:local1:local2"; ParseLargeCommunity reads it back.
func (c LargeCommunity) String() string {
	return fmt.Sprintf("%d:%d:%d", c.Global, c.Local1, c.Local2)
}

// ParseLargeCommunity reads a large community as String writes it and as
// BGPAnnouncementPolicy.spec.largeCommunities holds it: three decimal numbers of
// 1 to 10 digits each at most 4294967295. The error quotes the value.
func ParseLargeCommunity(s string) (LargeCommunity, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return LargeCommunity{}, fmt.Errorf("large community %q: want three numbers joined by colons (64512:1:100)", s)
	}
	var n [3]uint64
	var errs [3]error
	for i, p := range parts {
		n[i], errs[i] = parseDecimal(p, 10, 0xffffffff)
	}
	if err := errors.Join(errs[:]...); err != nil {
		return LargeCommunity{}, fmt.Errorf("large community %q: %w", s, err)
	}
	return LargeCommunity{Global: uint32(n[0]), Local1: uint32(n[1]), Local2: uint32(n[2])}, nil
}

// parseDecimal parses what the CRD's patterns allow: 1 to maxDigits ASCII
// digits (no sign, space or underscore, which strconv takes in some
// forms), at most limit.
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
