package fib

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// prefixMap maps installed prefixes to the nexthop object their route uses
// (0: next hops inline). Committing a million-route batch does a million
// updates on it, so IPv4 prefixes (the bulk of a load balancer's routes)
// live in a purpose-built table keyed by one uint64: one probe per
// operation that also returns the old value, no tombstones after mass
// deletions, and nothing for the GC to scan. IPv6 prefixes use a Go map
// keyed by 24 bytes, half the size of a netip.Prefix key.
type prefixMap struct {
	v4 u64Map
	v6 map[v6Key]uint32
}

type v6Key struct {
	hi, lo uint64
	bits   uint8
}

func newPrefixMap() prefixMap {
	return prefixMap{v6: make(map[v6Key]uint32)}
}

func v4Key(p netip.Prefix) uint64 {
	a := p.Addr().As4()
	return uint64(binary.BigEndian.Uint32(a[:]))<<8 | uint64(p.Bits())
}

func toV6Key(p netip.Prefix) v6Key {
	a := p.Addr().As16()
	return v6Key{binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:]), uint8(p.Bits())}
}

func (m *prefixMap) get(p netip.Prefix) (uint32, bool) {
	if p.Addr().Is4() {
		return m.v4.get(v4Key(p))
	}
	v, ok := m.v6[toV6Key(p)]
	return v, ok
}

// put sets p's value and returns the one it replaces.
func (m *prefixMap) put(p netip.Prefix, id uint32) (uint32, bool) {
	if p.Addr().Is4() {
		return m.v4.put(v4Key(p), id)
	}
	k := toV6Key(p)
	old, had := m.v6[k]
	m.v6[k] = id
	return old, had
}

// remove deletes p and returns its value.
func (m *prefixMap) remove(p netip.Prefix) (uint32, bool) {
	if p.Addr().Is4() {
		return m.v4.remove(v4Key(p))
	}
	k := toV6Key(p)
	old, had := m.v6[k]
	delete(m.v6, k)
	return old, had
}

func (m *prefixMap) len() int { return m.v4.n + len(m.v6) }

// all calls fn for every entry, in no particular order.
func (m *prefixMap) all(fn func(netip.Prefix, uint32)) {
	for _, s := range m.v4.slots {
		if s.used {
			var a [4]byte
			binary.BigEndian.PutUint32(a[:], uint32(s.key>>8))
			fn(netip.PrefixFrom(netip.AddrFrom4(a), int(s.key&0xff)), s.val)
		}
	}
	for k, v := range m.v6 {
		var a [16]byte
		binary.BigEndian.PutUint64(a[:8], k.hi)
		binary.BigEndian.PutUint64(a[8:], k.lo)
		fn(netip.PrefixFrom(netip.AddrFrom16(a), int(k.bits)), v)
	}
}

// u64Map is an open-addressing hash table with linear probing and
// backward-shift deletion. Its zero value is empty and ready to use.
type u64Map struct {
	slots []u64Slot // power-of-two length, or nil
	shift uint      // 64 - log2(len(slots))
	n     int
}

type u64Slot struct {
	key  uint64
	val  uint32
	used bool
}

const u64MinSlots = 64

// home is a slot's preferred index: Fibonacci hashing spreads consecutive
// keys (consecutive /32s) over the table.
func (m *u64Map) home(k uint64) int {
	return int((k * 0x9e3779b97f4a7c15) >> m.shift)
}

func (m *u64Map) get(k uint64) (uint32, bool) {
	if m.n == 0 {
		return 0, false
	}
	mask := len(m.slots) - 1
	for i := m.home(k); ; i = (i + 1) & mask {
		s := &m.slots[i]
		if !s.used {
			return 0, false
		}
		if s.key == k {
			return s.val, true
		}
	}
}

func (m *u64Map) put(k uint64, v uint32) (uint32, bool) {
	if (m.n+1)*4 > len(m.slots)*3 {
		m.resize(max(u64MinSlots, 2*len(m.slots)))
	}
	mask := len(m.slots) - 1
	for i := m.home(k); ; i = (i + 1) & mask {
		s := &m.slots[i]
		if !s.used {
			*s = u64Slot{key: k, val: v, used: true}
			m.n++
			return 0, false
		}
		if s.key == k {
			old := s.val
			s.val = v
			return old, true
		}
	}
}

func (m *u64Map) remove(k uint64) (uint32, bool) {
	if m.n == 0 {
		return 0, false
	}
	mask := len(m.slots) - 1
	i := m.home(k)
	for ; ; i = (i + 1) & mask {
		if !m.slots[i].used {
			return 0, false
		}
		if m.slots[i].key == k {
			break
		}
	}
	old := m.slots[i].val
	// Pull later entries of the probe run back into the hole unless that
	// would put them before their home slot, so lookups can stop at the
	// first empty slot.
	for j := i; ; {
		j = (j + 1) & mask
		if !m.slots[j].used {
			break
		}
		h := m.home(m.slots[j].key)
		if inCyclic(i, h, j) {
			continue
		}
		m.slots[i] = m.slots[j]
		i = j
	}
	m.slots[i] = u64Slot{}
	m.n--
	if len(m.slots) > u64MinSlots && m.n*8 < len(m.slots) {
		m.resize(len(m.slots) / 2)
	}
	return old, true
}

// inCyclic reports whether h lies in the cyclic interval (i, j].
func inCyclic(i, h, j int) bool {
	if i <= j {
		return i < h && h <= j
	}
	return i < h || h <= j
}

func (m *u64Map) resize(n int) {
	old := m.slots
	m.slots = make([]u64Slot, n)
	m.shift = uint(64 - bits.TrailingZeros(uint(n)))
	m.n = 0
	for _, s := range old {
		if s.used {
			m.put(s.key, s.val)
		}
	}
}
