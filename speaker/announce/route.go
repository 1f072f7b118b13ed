package announce

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"unique"
	"unsafe"

	"github.com/bgplb/bgplb/bgp/wire"
)

// DefaultLocalPref is the LOCAL_PREF sent to internal peers for a route
// that sets none (RFC 4271 leaves it to local policy; 100 is what every
// implementation uses).
const DefaultLocalPref = 100

// Route is one prefix to announce to a peer, with the attributes the
// planner controls. The rest (ORIGIN, AS_PATH, NEXT_HOP) follows from the
// session; see the package documentation.
type Route struct {
	Prefix netip.Prefix
	// LocalPref is sent to internal peers only; nil means DefaultLocalPref.
	LocalPref *uint32
	// Communities (RFC 1997) and LargeCommunities (RFC 8092) are sets:
	// order and duplicates do not matter.
	Communities      []wire.Community
	LargeCommunities []wire.LargeCommunity
	// Bandwidth, when positive, is sent as the non-transitive
	// link-bandwidth extended community of our AS (bytes per second as an
	// IEEE float; the bgplb router weights ECMP next hops by it, so any
	// unit proportional to capacity, like the number of local endpoints,
	// works).
	Bandwidth float32
}

// SkippedRoute is a route that was not announced, and why.
type SkippedRoute struct {
	Prefix netip.Prefix `json:"prefix"`
	Reason string       `json:"reason"`
}

// routeAttrs is the session-independent part of a route's path attributes,
// in a canonical form so that equal sets compare equal. It is interned with
// unique.Make: routes with the same attributes share one handle, the
// Adj-RIB-Out compares handles, and grouping prefixes per UPDATE is a map
// lookup on a pointer-sized key.
type routeAttrs struct {
	localPref uint32
	bandwidth uint32 // float32 bits; 0 for none
	// communities is the sorted, deduplicated list as 4-byte big-endian
	// values; large as 12-byte ones. Strings keep the struct comparable.
	communities string
	large       string
}

type attrsHandle = unique.Handle[routeAttrs]

// wanted is one valid route of a desired set, its attributes interned.
type wanted struct {
	prefix netip.Prefix
	attrs  attrsHandle
}

// checkRoute reports why r cannot be announced to anyone, or "".
func checkRoute(r *Route) string {
	p := r.Prefix
	switch {
	case !p.IsValid():
		return "invalid prefix"
	case p.Addr().Is4In6():
		return "IPv4-mapped IPv6 prefix; use the IPv4 prefix"
	case p.Addr().Zone() != "":
		return "prefix with a zone"
	case p.Bits() != p.Addr().BitLen() && p != p.Masked(): // host routes need no masking
		return fmt.Sprintf("host bits set (did you mean %v?)", p.Masked())
	case math.IsNaN(float64(r.Bandwidth)) || math.IsInf(float64(r.Bandwidth), 0) || r.Bandwidth < 0:
		return fmt.Sprintf("bandwidth %v is not a finite number ≥ 0", r.Bandwidth)
	}
	return ""
}

// normalizer turns a desired set into wanted routes. It remembers the last
// route's attribute inputs: planners give many routes the same attributes,
// often the very same slices, so most routes skip canonicalization and the
// unique.Make lookup. Not safe for concurrent use.
type normalizer struct {
	last     attrsHandle
	lastIn   attrInputs
	haveLast bool
	comms    []wire.Community
	large    []wire.LargeCommunity
	buf      []byte
	seen     map[netip.Prefix]int // index into out, for duplicates
}

// attrInputs identifies a route's attribute inputs cheaply: the slices by
// their backing array and length (the caller must not change a slice after
// Announce, as documented there).
type attrInputs struct {
	localPref      uint32
	bandwidth      uint32
	comms, large   unsafe.Pointer
	nComms, nLarge int
}

func inputsOf(r *Route) attrInputs {
	in := attrInputs{localPref: DefaultLocalPref,
		comms: unsafe.Pointer(unsafe.SliceData(r.Communities)), nComms: len(r.Communities),
		large: unsafe.Pointer(unsafe.SliceData(r.LargeCommunities)), nLarge: len(r.LargeCommunities)}
	if r.LocalPref != nil {
		in.localPref = *r.LocalPref
	}
	if r.Bandwidth > 0 {
		in.bandwidth = math.Float32bits(r.Bandwidth)
	}
	return in
}

// normalize appends the valid routes of rs to out, in order, and the
// invalid ones to skipped. A prefix listed twice with the same attributes
// counts once; with different attributes the first one wins and the others
// are skipped. Sorted input (what a planner usually produces) cannot hold
// duplicates, so only unsorted input pays for a set of the prefixes.
func (n *normalizer) normalize(rs []Route, out []wanted, skipped []SkippedRoute) ([]wanted, []SkippedRoute) {
	start, sorted := len(out), true
	for i := range rs {
		r := &rs[i]
		if why := checkRoute(r); why != "" {
			skipped = append(skipped, SkippedRoute{Prefix: r.Prefix, Reason: why})
			continue
		}
		if k := len(out); k > start && !ascending(out[k-1].prefix, r.Prefix) {
			sorted = false
		}
		out = append(out, wanted{prefix: r.Prefix, attrs: n.attrs(r)})
	}
	if sorted {
		return out, skipped
	}
	if n.seen == nil {
		n.seen = make(map[netip.Prefix]int, len(out)-start)
	}
	clear(n.seen)
	kept := out[:start]
	for _, w := range out[start:] {
		if j, dup := n.seen[w.prefix]; dup {
			if kept[j].attrs != w.attrs {
				skipped = append(skipped, SkippedRoute{Prefix: w.prefix, Reason: "listed again with other attributes; the first one is announced"})
			}
			continue
		}
		n.seen[w.prefix] = len(kept)
		kept = append(kept, w)
	}
	return kept, skipped
}

// ascending reports whether a sorts strictly before b, for canonical
// prefixes: netip.Prefix.Compare masks both first, which costs more than
// the rest of normalizing a route.
func ascending(a, b netip.Prefix) bool {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c < 0
	}
	return a.Bits() < b.Bits()
}

// attrs interns r's attributes.
func (n *normalizer) attrs(r *Route) attrsHandle {
	in := inputsOf(r)
	if n.haveLast && in == n.lastIn {
		return n.last
	}
	a := routeAttrs{localPref: in.localPref, bandwidth: in.bandwidth}
	if len(r.Communities) > 0 {
		n.comms = append(n.comms[:0], r.Communities...)
		slices.Sort(n.comms)
		n.comms = slices.Compact(n.comms)
		n.buf = n.buf[:0]
		for _, c := range n.comms {
			n.buf = binary.BigEndian.AppendUint32(n.buf, uint32(c))
		}
		a.communities = string(n.buf)
	}
	if len(r.LargeCommunities) > 0 {
		n.large = append(n.large[:0], r.LargeCommunities...)
		slices.SortFunc(n.large, compareLarge)
		n.large = slices.Compact(n.large)
		n.buf = n.buf[:0]
		for _, c := range n.large {
			n.buf = binary.BigEndian.AppendUint32(n.buf, c.Global)
			n.buf = binary.BigEndian.AppendUint32(n.buf, c.Local1)
			n.buf = binary.BigEndian.AppendUint32(n.buf, c.Local2)
		}
		a.large = string(n.buf)
	}
	n.last, n.lastIn, n.haveLast = unique.Make(a), in, true
	return n.last
}

func compareLarge(a, b wire.LargeCommunity) int {
	if c := int64(a.Global) - int64(b.Global); c != 0 {
		return int(c)
	}
	if c := int64(a.Local1) - int64(b.Local1); c != 0 {
		return int(c)
	}
	return int(int64(a.Local2) - int64(b.Local2))
}

// communities decodes the canonical list, appending to dst.
func (a *routeAttrs) appendCommunities(dst []wire.Community) []wire.Community {
	for s := a.communities; len(s) >= 4; s = s[4:] {
		dst = append(dst, wire.Community(binary.BigEndian.Uint32([]byte(s[:4]))))
	}
	return dst
}

func (a *routeAttrs) appendLarge(dst []wire.LargeCommunity) []wire.LargeCommunity {
	for s := a.large; len(s) >= 12; s = s[12:] {
		b := []byte(s[:12])
		dst = append(dst, wire.LargeCommunity{Global: binary.BigEndian.Uint32(b), Local1: binary.BigEndian.Uint32(b[4:]), Local2: binary.BigEndian.Uint32(b[8:])})
	}
	return dst
}

// bandwidthValue is the link bandwidth, 0 for none.
func (a *routeAttrs) bandwidthValue() float32 { return math.Float32frombits(a.bandwidth) }
