package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Path attribute type codes.
const (
	AttrOrigin          uint8 = 1
	AttrASPath          uint8 = 2
	AttrNextHop         uint8 = 3
	AttrMED             uint8 = 4
	AttrLocalPref       uint8 = 5
	AttrAtomicAggregate uint8 = 6
	AttrAggregator      uint8 = 7
	AttrCommunities     uint8 = 8  // RFC 1997
	AttrOriginatorID    uint8 = 9  // RFC 4456
	AttrClusterList     uint8 = 10 // RFC 4456
	AttrMPReach         uint8 = 14 // RFC 4760
	AttrMPUnreach       uint8 = 15 // RFC 4760
	AttrExtCommunities  uint8 = 16 // RFC 4360
	AttrAS4Path         uint8 = 17 // RFC 6793
	AttrAS4Aggregator   uint8 = 18 // RFC 6793
	AttrLargeCommunity  uint8 = 32 // RFC 8092
	AttrOTC             uint8 = 35 // RFC 9234
)

// Path attribute flags.
const (
	FlagOptional   uint8 = 0x80
	FlagTransitive uint8 = 0x40
	FlagPartial    uint8 = 0x20
	FlagExtLen     uint8 = 0x10
)

var attrNames = [256]string{
	AttrOrigin: "ORIGIN", AttrASPath: "AS_PATH", AttrNextHop: "NEXT_HOP", AttrMED: "MULTI_EXIT_DISC",
	AttrLocalPref: "LOCAL_PREF", AttrAtomicAggregate: "ATOMIC_AGGREGATE", AttrAggregator: "AGGREGATOR",
	AttrCommunities: "COMMUNITIES", AttrOriginatorID: "ORIGINATOR_ID", AttrClusterList: "CLUSTER_LIST",
	AttrMPReach: "MP_REACH_NLRI", AttrMPUnreach: "MP_UNREACH_NLRI", AttrExtCommunities: "EXTENDED_COMMUNITIES",
	AttrAS4Path: "AS4_PATH", AttrAS4Aggregator: "AS4_AGGREGATOR", AttrLargeCommunity: "LARGE_COMMUNITY",
	AttrOTC: "OTC",
}

// AttrTypeString names a path attribute type code.
func AttrTypeString(t uint8) string {
	if n := attrNames[t]; n != "" {
		return n
	}
	return "attr(" + strconv.Itoa(int(t)) + ")"
}

// Origin is the ORIGIN attribute's value.
type Origin uint8

// ORIGIN values.
const (
	OriginIGP        Origin = 0
	OriginEGP        Origin = 1
	OriginIncomplete Origin = 2
)

func (o Origin) String() string {
	switch o {
	case OriginIGP:
		return "i"
	case OriginEGP:
		return "e"
	case OriginIncomplete:
		return "?"
	}
	return "origin(" + strconv.Itoa(int(o)) + ")"
}

// AS_PATH segment types (RFC 4271, RFC 5065).
const (
	ASSet            uint8 = 1
	ASSequence       uint8 = 2
	ASConfedSequence uint8 = 3
	ASConfedSet      uint8 = 4
)

// ASSegment is one AS_PATH segment.
type ASSegment struct {
	Type uint8
	ASNs []uint32
}

// ASPath is an AS_PATH, always with 4-octet AS numbers: a 2-octet path and
// its AS4_PATH are merged on decode (RFC 6793 §4.2.3).
type ASPath []ASSegment

// Len is the path length used by best-path selection (RFC 4271 §9.1.2.2):
// a sequence counts its ASes, a set counts one, confederation segments none.
func (p ASPath) Len() int {
	n := 0
	for _, s := range p {
		switch s.Type {
		case ASSequence:
			n += len(s.ASNs)
		case ASSet:
			n++
		}
	}
	return n
}

// NeighborAS is the first AS of the path, the neighbouring AS a route came
// from (0 for an empty or set-first path), as MED comparison needs.
func (p ASPath) NeighborAS() uint32 {
	for _, s := range p {
		switch s.Type {
		case ASSequence:
			if len(s.ASNs) > 0 {
				return s.ASNs[0]
			}
		case ASSet:
			return 0
		}
	}
	return 0
}

func (p ASPath) String() string {
	var b strings.Builder
	for i, s := range p {
		if i > 0 {
			b.WriteByte(' ')
		}
		open, close := "", ""
		switch s.Type {
		case ASSet:
			open, close = "{", "}"
		case ASConfedSequence:
			open, close = "(", ")"
		case ASConfedSet:
			open, close = "[", "]"
		}
		b.WriteString(open)
		for j, a := range s.ASNs {
			if j > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(strconv.FormatUint(uint64(a), 10))
		}
		b.WriteString(close)
	}
	return b.String()
}

// Clone returns a deep copy of p.
func (p ASPath) Clone() ASPath {
	if p == nil {
		return nil
	}
	c := make(ASPath, len(p))
	for i, s := range p {
		c[i] = ASSegment{Type: s.Type, ASNs: slices.Clone(s.ASNs)}
	}
	return c
}

// Aggregator is the AGGREGATOR attribute (merged with AS4_AGGREGATOR).
type Aggregator struct {
	AS   uint32
	Addr netip.Addr
}

// ExtCommunity is an RFC 4360 extended community, as its 8 bytes.
type ExtCommunity [8]byte

// Link bandwidth extended community type bytes
// (draft-ietf-idr-link-bandwidth): two-octet AS specific, subtype 0x04.
const (
	extTypeTwoOctetAS    = 0x00
	extTypeNonTransitive = 0x40
	extSubLinkBandwidth  = 0x04
)

// NewLinkBandwidth builds a link-bandwidth community: bandwidth in bytes per
// second as an IEEE float. It is non-transitive unless transitive is set.
func NewLinkBandwidth(as uint16, bytesPerSecond float32, transitive bool) ExtCommunity {
	var c ExtCommunity
	c[0] = extTypeNonTransitive
	if transitive {
		c[0] = extTypeTwoOctetAS
	}
	c[1] = extSubLinkBandwidth
	binary.BigEndian.PutUint16(c[2:], as)
	binary.BigEndian.PutUint32(c[4:], math.Float32bits(bytesPerSecond))
	return c
}

// LinkBandwidth returns the AS and bandwidth of a link-bandwidth community.
//
// The value is sanitised here, so that nothing downstream (weights, JSON)
// ever sees a bandwidth that is not a number of bytes per second: a NaN, an
// infinity or a negative value makes ok false, as if the community were not
// a link bandwidth at all (its raw bytes still travel with the attributes).
// Zero, and -0 read as 0, is a valid "no bandwidth"; tiny denormal values
// are valid positive bandwidths.
func (c ExtCommunity) LinkBandwidth() (as uint16, bytesPerSecond float32, ok bool) {
	if (c[0] != extTypeNonTransitive && c[0] != extTypeTwoOctetAS) || c[1] != extSubLinkBandwidth {
		return 0, 0, false
	}
	bw := math.Float32frombits(binary.BigEndian.Uint32(c[4:]))
	if !validBandwidth(bw) {
		return 0, 0, false
	}
	return binary.BigEndian.Uint16(c[2:]), bw + 0, true // +0 turns -0 into 0
}

// validBandwidth reports whether bw is a finite, non-negative bandwidth.
func validBandwidth(bw float32) bool {
	f := float64(bw)
	return !math.IsNaN(f) && !math.IsInf(f, 0) && f >= 0
}

func (c ExtCommunity) String() string {
	if as, bw, ok := c.LinkBandwidth(); ok {
		return fmt.Sprintf("lb:%d:%g", as, bw)
	}
	return fmt.Sprintf("ext:%x", c[:])
}

// MPReach is the MP_REACH_NLRI attribute.
type MPReach struct {
	Family  Family
	NextHop netip.Addr
	// LinkLocal is the second address of a 32-byte IPv6 next hop.
	LinkLocal netip.Addr
	// OtherNextHop is the next hop of a family whose NLRI this codec does
	// not read (NextHop is then invalid), as received.
	OtherNextHop []byte
	NLRI         Prefixes
}

// MPUnreach is the MP_UNREACH_NLRI attribute.
type MPUnreach struct {
	Family    Family
	Withdrawn Prefixes
}

// RawAttr is a path attribute kept as received: an unrecognised optional
// transitive attribute to pass on.
type RawAttr struct {
	Flags uint8
	Type  uint8
	Value []byte
}

// Attrs is the path attributes of an UPDATE. Presence is tracked per type
// code (Has, Set, Clear), so a zero MED and no MED differ. When filled by
// DecodeUpdate, slices are reused by the next decode into the same Update
// and Unknown values alias the message: Clone what must be kept.
type Attrs struct {
	present [4]uint64

	Origin           Origin
	ASPath           ASPath
	NextHop          netip.Addr
	MED              uint32
	LocalPref        uint32
	Aggregator       Aggregator
	Communities      []Community
	OriginatorID     netip.Addr
	ClusterList      []netip.Addr
	MPReach          MPReach
	MPUnreach        MPUnreach
	ExtCommunities   []ExtCommunity
	LargeCommunities []LargeCommunity
	OTC              uint32
	// Unknown holds unrecognised optional transitive attributes, in order.
	// Encoding sets their Partial bit (RFC 4271 §5: we pass them on).
	Unknown []RawAttr
}

// Has reports whether the attribute of type t is present. ATOMIC_AGGREGATE
// has no value: its presence is all there is.
func (a *Attrs) Has(t uint8) bool { return a.present[t>>6]&(1<<(t&63)) != 0 }

// Set marks the attribute of type t present.
func (a *Attrs) Set(t uint8) { a.present[t>>6] |= 1 << (t & 63) }

// Clear marks the attribute of type t absent.
func (a *Attrs) Clear(t uint8) { a.present[t>>6] &^= 1 << (t & 63) }

// reset empties a for reuse, keeping slice capacity.
func (a *Attrs) reset() {
	*a = Attrs{
		ASPath:           a.ASPath[:0],
		Communities:      a.Communities[:0],
		ClusterList:      a.ClusterList[:0],
		ExtCommunities:   a.ExtCommunities[:0],
		LargeCommunities: a.LargeCommunities[:0],
		Unknown:          a.Unknown[:0],
	}
}

// Clone returns a deep copy of a that shares nothing with a decode buffer.
func (a *Attrs) Clone() *Attrs {
	c := *a
	c.ASPath = a.ASPath.Clone()
	c.Communities = slices.Clone(a.Communities)
	c.ClusterList = slices.Clone(a.ClusterList)
	c.ExtCommunities = slices.Clone(a.ExtCommunities)
	c.LargeCommunities = slices.Clone(a.LargeCommunities)
	c.MPReach.NLRI.raw = slices.Clone(a.MPReach.NLRI.raw)
	c.MPReach.OtherNextHop = slices.Clone(a.MPReach.OtherNextHop)
	c.MPUnreach.Withdrawn.raw = slices.Clone(a.MPUnreach.Withdrawn.raw)
	c.Unknown = make([]RawAttr, len(a.Unknown))
	for i, u := range a.Unknown {
		c.Unknown[i] = RawAttr{Flags: u.Flags, Type: u.Type, Value: slices.Clone(u.Value)}
	}
	if a.Unknown == nil {
		c.Unknown = nil
	}
	return &c
}

// HasCommunity reports whether c is among the COMMUNITIES.
func (a *Attrs) HasCommunity(c Community) bool {
	return a.Has(AttrCommunities) && slices.Contains(a.Communities, c)
}
