package wire

import (
	"encoding/binary"
	"iter"
	"net/netip"
	"slices"
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

// AppendTo appends every prefix to dst: the fastest way to read many, into
// a slice the caller reuses.
func (p Prefixes) AppendTo(dst []NLRI) []NLRI {
	dst = slices.Grow(dst, p.n)
	it := p.Iter()
	if !p.addPath {
		// Host routes without ADD-PATH, the bulk of what a load balancer
		// announces, skip the general decoder. Fields are set one by one:
		// a whole NLRI built on the stack and copied in stalls on store
		// forwarding, which doubles the cost.
		raw, k := p.raw, len(dst)
		dst = dst[:k+p.n]
		switch p.family.addrLen() {
		case 4:
			for i := 0; len(raw)-i >= 5 && raw[i] == 32; i += 5 {
				e := &dst[k]
				e.Prefix = netip.PrefixFrom(netip.AddrFrom4([4]byte(raw[i+1:i+5])), 32)
				e.PathID = 0
				k++
				it.off = i + 5
			}
		case 16:
			for i := 0; len(raw)-i >= 17 && raw[i] == 128; i += 17 {
				e := &dst[k]
				e.Prefix = netip.PrefixFrom(netip.AddrFrom16([16]byte(raw[i+1:i+17])), 128)
				e.PathID = 0
				k++
				it.off = i + 17
			}
		}
		dst = dst[:k]
	}
	for n, ok := it.Next(); ok; n, ok = it.Next() {
		dst = append(dst, n)
	}
	return dst
}

// PrefixIter walks a Prefixes view without allocating.
type PrefixIter struct {
	raw     []byte
	off     int
	alen    int
	addPath bool
}

// Next returns the next prefix, or false at the end. The view was validated
// when it was made, so Next cannot meet a malformed entry; it still stops
// safely if it does. Host bits past the prefix length are cleared.
func (it *PrefixIter) Next() (NLRI, bool) {
	// Host routes, what a load balancer announces, take a path small
	// enough to be inlined into the caller's loop.
	if i := it.off; it.alen == 4 && !it.addPath && len(it.raw)-i >= 5 && it.raw[i] == 32 {
		it.off = i + 5
		return NLRI{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte(it.raw[i+1:i+5])), 32)}, true
	}
	return it.next()
}

func (it *PrefixIter) next() (NLRI, bool) {
	var n NLRI
	b, i := it.raw, it.off
	if it.addPath {
		if len(b)-i < 5 {
			return n, false
		}
		n.PathID = binary.BigEndian.Uint32(b[i:])
		i += 4
	} else if i >= len(b) {
		return n, false
	}
	bits := int(b[i])
	nb := (bits + 7) >> 3
	i++
	if len(b)-i < nb || bits > it.alen*8 {
		it.off = len(b)
		return n, false
	}
	if it.alen == 4 {
		var v uint32
		switch nb {
		case 4:
			v = binary.BigEndian.Uint32(b[i:])
		case 3:
			v = uint32(b[i])<<24 | uint32(b[i+1])<<16 | uint32(b[i+2])<<8
		case 2:
			v = uint32(b[i])<<24 | uint32(b[i+1])<<16
		case 1:
			v = uint32(b[i]) << 24
		}
		v &^= ^uint32(0) >> bits // bits is 0..32; a shift by 32 clears all
		n.Prefix = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), bits)
	} else if nb == 16 {
		n.Prefix = netip.PrefixFrom(netip.AddrFrom16([16]byte(b[i:i+16])), bits)
	} else {
		var a [16]byte
		copy(a[:], b[i:i+nb])
		if r := bits & 7; r != 0 {
			a[nb-1] &= byte(0xff << (8 - r))
		}
		n.Prefix = netip.PrefixFrom(netip.AddrFrom16(a), bits)
	}
	it.off = i + nb
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
	// The fast pass only counts; a failure is explained by the slow one.
	maxBits, skip, i, n := byte(alen*8), 0, 0, 0
	if addPath {
		skip = 4
	}
	if !addPath {
		// Runs of host routes of four at a time: the four loads do not
		// wait on each other, unlike the general loop's.
		for len(raw)-i >= 20 && raw[i] == 32 && raw[i+5] == 32 && raw[i+10] == 32 && raw[i+15] == 32 {
			i += 20
			n += 4
		}
	}
	for i+skip < len(raw) {
		bits := raw[i+skip]
		if bits > maxBits {
			break
		}
		i += skip + 1 + int(bits+7)>>3
		n++
	}
	if i == len(raw) {
		p.n = n
		return p, nil
	}
	return Prefixes{}, explainPrefixes(raw, f, addPath)
}

// explainPrefixes finds the first malformed prefix of raw and describes it.
func explainPrefixes(raw []byte, f Family, addPath bool) *Error {
	maxBits := f.addrLen() * 8
	for i, k := 0, 0; ; k++ {
		if addPath {
			if len(raw)-i < 4 {
				return resetErr(ErrCodeUpdate, ErrSubInvalidNetworkField, nil, "%s prefix %d: truncated path identifier", f, k)
			}
			i += 4
		}
		if i >= len(raw) {
			return resetErr(ErrCodeUpdate, ErrSubInvalidNetworkField, nil, "%s prefix %d: missing prefix length", f, k)
		}
		bits := int(raw[i])
		if bits > maxBits {
			return resetErr(ErrCodeUpdate, ErrSubInvalidNetworkField, nil, "%s prefix %d: length /%d exceeds /%d", f, k, bits, maxBits)
		}
		nb := (bits + 7) / 8
		if len(raw)-i-1 < nb {
			return resetErr(ErrCodeUpdate, ErrSubInvalidNetworkField, nil, "%s prefix %d: /%d needs %d bytes, %d left", f, k, bits, nb, len(raw)-i-1)
		}
		i += 1 + nb
	}
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

// appendNLRIs encodes nlri, all of family f.
func appendNLRIs(b []byte, f Family, addPath bool, nlri []NLRI) ([]byte, error) {
	if f.AFI != AFIIPv4 || addPath || f.addrLen() == 0 {
		var err error
		for _, n := range nlri {
			if b, err = appendNLRI(b, f, addPath, n); err != nil {
				return b, err
			}
		}
		return b, nil
	}
	// IPv4 without path IDs: at most 5 bytes a prefix, room made once.
	b = slices.Grow(b, 5*len(nlri))
	for _, n := range nlri {
		a, bits := n.Prefix.Addr(), n.Prefix.Bits()
		if !a.Is4() || bits < 0 {
			return b, &familyError{f: f, p: n.Prefix}
		}
		v := binary.BigEndian.Uint32(a.AsSlice())
		v &^= ^uint32(0) >> bits
		switch nb := (bits + 7) >> 3; nb {
		case 4:
			b = append(b, byte(bits), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
		case 3:
			b = append(b, byte(bits), byte(v>>24), byte(v>>16), byte(v>>8))
		case 2:
			b = append(b, byte(bits), byte(v>>24), byte(v>>16))
		case 1:
			b = append(b, byte(bits), byte(v>>24))
		default:
			b = append(b, 0)
		}
	}
	return b, nil
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
