package wire

import (
	"errors"
	"fmt"
)

// ErrTooLong is returned by encoders when a message cannot fit the size limit.
var ErrTooLong = errors.New("message too long")

// AFI and SAFI values this codec understands (RFC 4760).
const (
	AFIIPv4 uint16 = 1
	AFIIPv6 uint16 = 2

	SAFIUnicast   uint8 = 1
	SAFIMulticast uint8 = 2
)

// Family is an address family: AFI and SAFI.
type Family struct {
	AFI  uint16
	SAFI uint8
}

// Families used everywhere.
var (
	IPv4Unicast = Family{AFIIPv4, SAFIUnicast}
	IPv6Unicast = Family{AFIIPv6, SAFIUnicast}
)

func (f Family) String() string {
	var a, s string
	switch f.AFI {
	case AFIIPv4:
		a = "ipv4"
	case AFIIPv6:
		a = "ipv6"
	default:
		a = fmt.Sprintf("afi%d", f.AFI)
	}
	switch f.SAFI {
	case SAFIUnicast:
		s = "unicast"
	case SAFIMulticast:
		s = "multicast"
	default:
		s = fmt.Sprintf("safi%d", f.SAFI)
	}
	return a + "-" + s
}

// addrLen is the length of this family's addresses, or 0 when the family's
// NLRI are not plain prefixes this codec can read.
func (f Family) addrLen() int {
	if f.SAFI != SAFIUnicast && f.SAFI != SAFIMulticast {
		return 0
	}
	switch f.AFI {
	case AFIIPv4:
		return 4
	case AFIIPv6:
		return 16
	}
	return 0
}

// FamilySet is a small set of the families this codec reads as prefixes.
type FamilySet uint8

func familyBit(f Family) FamilySet {
	if f.addrLen() == 0 {
		return 0
	}
	i := (f.AFI - 1) * 2
	if f.SAFI == SAFIMulticast {
		i++
	}
	return 1 << i
}

// FamilySetOf returns the set of the given families; others are ignored.
func FamilySetOf(fs ...Family) FamilySet {
	var s FamilySet
	for _, f := range fs {
		s |= familyBit(f)
	}
	return s
}

// Has reports whether f is in s.
func (s FamilySet) Has(f Family) bool { b := familyBit(f); return b != 0 && s&b != 0 }

// Options is the session context that changes the wire format, as negotiated
// in the OPEN exchange. Use one value per direction: for decoding, what the
// peer may send us; for encoding, what we may send it. The zero value is a
// plain RFC 4271 session with 2-octet AS numbers.
type Options struct {
	// AS4: both sides announced the 4-octet AS capability (RFC 6793).
	AS4 bool
	// ExtendedMessage: both sides announced RFC 8654 extended messages.
	ExtendedMessage bool
	// AddPath holds the families whose NLRI carry a path identifier in
	// this direction (RFC 7911).
	AddPath FamilySet
	// ExtendedNextHop holds the families whose routes may carry a next hop
	// of the other address family (RFC 8950), e.g. IPv4 unicast with an
	// IPv6 next hop.
	ExtendedNextHop FamilySet
	// External: the peer is in another AS. LOCAL_PREF, ORIGINATOR_ID and
	// CLUSTER_LIST from an external peer are discarded (RFC 7606 §7), and
	// are not sent to one, nor are confederation segments of AS_PATH.
	External bool
}
