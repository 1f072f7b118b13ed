package wire

import (
	"encoding/binary"
	"iter"
	"net/netip"
)

// NLRI is one prefix as carried in an UPDATE, with its ADD-PATH path
// identifier (0 when ADD-PATH is not in use).
type NLRI struct {
	Prefix netip.Prefix
	PathID uint32
}

// Prefixes is a validated, read-only view over an encoded list of prefixes
// (the withdrawn routes or NLRI field of an UPDATE, or the NLRI inside
// MP_REACH_NLRI / MP_UNREACH_NLRI). It holds no copy of the bytes.
type Prefixes struct {
	raw     []byte
	family  Family
	addPath bool
	n       int
}

// Family is the address family of the prefixes.
func (p Prefixes) Family() Family { return p.family }

// Len is the number of prefixes.
func (p Prefixes) Len() int { return p.n }

// Raw is the encoded list, exactly as received.
func (p Prefixes) Raw() []byte { return p.raw }

// AddPath reports whether each prefix carries a path identifier.
func (p Prefixes) AddPath() bool { return p.addPath }

// Iter returns an iterator positioned before the first prefix.
func (p Prefixes) Iter() PrefixIter {
	return PrefixIter{raw: p.raw, alen: p.family.addrLen(), addPath: p.addPath}
}

// All yields every prefix in order.
func (p Prefixes) All() iter.Seq[NLRI] {
	return func(yield func(NLRI) bool) {
		it := p.Iter()
		for n, ok := it.Next(); ok; n, ok = it.Next() {
			if !yield(n) {
				return
			}
		}
	}
}

// AppendTo appends every prefix to dst.
func (p Prefixes) AppendTo(dst []NLRI) []NLRI {
	it := p.Iter()
	for n, ok := it.Next(); ok; n, ok = it.Next() {
		dst = append(dst, n)
	}
	return dst
}

// PrefixIter walks a Prefixes view without allocating.
type PrefixIter struct {
	raw     []byte
	alen    int
	addPath bool
}

// Next returns the next prefix, or false at the end. The view was validated
// when it was made, so Next cannot meet a malformed entry; it still stops
// safely if it does.
func (it *PrefixIter) Next() (NLRI, bool) {
	var n NLRI
	b := it.raw
	if it.alen == 0 || len(b) == 0 {
		return n, false
	}
	if it.addPath {
		if len(b) < 5 {
			it.raw = nil
			return n, false
		}
		n.PathID = binary.BigEndian.Uint32(b)
		b = b[4:]
	}
	bits := int(b[0])
	nb := (bits + 7) / 8
	if bits > it.alen*8 || len(b) < 1+nb {
		it.raw = nil
		return n, false
	}
	if it.alen == 4 {
		var a [4]byte
		copy(a[:], b[1:1+nb])
		n.Prefix, _ = netip.AddrFrom4(a).Prefix(bits)
	} else {
		var a [16]byte
		copy(a[:], b[1:1+nb])
		n.Prefix, _ = netip.AddrFrom16(a).Prefix(bits)
	}
	it.raw = b[1+nb:]
	return n, true
}

// makePrefixes validates raw as a list of prefixes of family f and returns the
// view. A malformed list is a session reset with Invalid Network Field: RFC
// 7606 §5.3 leaves no safer choice once the NLRI cannot be parsed.
func makePrefixes(raw []byte, f Family, addPath bool) (Prefixes, *Error) {
	p := Prefixes{raw: raw, family: f, addPath: addPath}
	alen := f.addrLen()
	if alen == 0 {
		return p, nil
	}
	maxBits := alen * 8
	for i := 0; i < len(raw); {
		if addPath {
			if len(raw)-i < 4 {
				return Prefixes{}, resetErr(ErrCodeUpdate, ErrSubInvalidNetworkField, nil,
					"%s prefix %d: truncated path identifier", f, p.n)
			}
			i += 4
		}
		if i >= len(raw) {
			return Prefixes{}, resetErr(ErrCodeUpdate, ErrSubInvalidNetworkField, nil,
				"%s prefix %d: missing prefix length", f, p.n)
		}
		bits := int(raw[i])
		if bits > maxBits {
			return Prefixes{}, resetErr(ErrCodeUpdate, ErrSubInvalidNetworkField, nil,
				"%s prefix %d: length /%d exceeds /%d", f, p.n, bits, maxBits)
		}
		nb := (bits + 7) / 8
		if len(raw)-i-1 < nb {
			return Prefixes{}, resetErr(ErrCodeUpdate, ErrSubInvalidNetworkField, nil,
				"%s prefix %d: /%d needs %d bytes, %d left", f, p.n, bits, nb, len(raw)-i-1)
		}
		i += 1 + nb
		p.n++
	}
	return p, nil
}

// NewPrefixes encodes nlri as a Prefixes view of family f (for building
// messages; decoding never needs it). Prefixes of another family are an error.
func NewPrefixes(f Family, addPath bool, nlri []NLRI) (Prefixes, error) {
	var b []byte
	for _, n := range nlri {
		var err error
		if b, err = appendNLRI(b, f, addPath, n); err != nil {
			return Prefixes{}, err
		}
	}
	return Prefixes{raw: b, family: f, addPath: addPath, n: len(nlri)}, nil
}

// nlriLen is the encoded size of n.
func nlriLen(n NLRI, addPath bool) int {
	l := 1 + (n.Prefix.Bits()+7)/8
	if addPath {
		l += 4
	}
	return l
}

func appendNLRI(b []byte, f Family, addPath bool, n NLRI) ([]byte, error) {
	a := n.Prefix.Addr()
	if !n.Prefix.IsValid() || (f.AFI == AFIIPv4) != a.Is4() || f.addrLen() == 0 {
		return b, &familyError{f: f, p: n.Prefix}
	}
	if addPath {
		b = binary.BigEndian.AppendUint32(b, n.PathID)
	}
	bits := n.Prefix.Bits()
	nb := (bits + 7) / 8
	b = append(b, byte(bits))
	if a.Is4() {
		x := a.As4()
		b = append(b, x[:nb]...)
	} else {
		x := a.As16()
		b = append(b, x[:nb]...)
	}
	// Host bits beyond the prefix length are zeroed on the wire.
	if rem := bits % 8; rem != 0 {
		b[len(b)-1] &= byte(0xff << (8 - rem))
	}
	return b, nil
}

type familyError struct {
	f Family
	p netip.Prefix
}

func (e *familyError) Error() string {
	return "bgp: prefix " + e.p.String() + " is not in family " + e.f.String()
}
