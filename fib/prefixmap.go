package fib

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"net/netip"
)

// prefixMap maps prefixes to the hop set their route should use (an id in
// the FIB's set table), with a few flag bits per entry (stale, pending,
// seen). It is the FIB's desired state: a million IPv4 routes cost two
// 12-byte slots each (the table is kept at most 3/4 full), plus the shared
// sets. IPv4 prefixes (the bulk of a load
// balancer's routes) live in a purpose-built table keyed by one uint64: one
// probe per operation that also returns the old value, no tombstones after
// mass deletions, and nothing for the GC to scan. IPv6 prefixes use a Go
// map keyed by 24 bytes, half the size of a netip.Prefix key.
type prefixMap struct {
	v4 u64Map
	v6 map[v6Key]v6Val
}

type v6Key struct {
	hi, lo uint64
	bits   uint8
}

type v6Val struct {
	id    uint32
	flags uint8
}

// Entry flags.
const (
	flagStale   uint8 = 1 << iota // left by a previous run, not set since
	flagPending                   // the kernel may differ: write it again
	flagSeen                      // found in the kernel by the current scan
	flagOld                       // also under the previous run's key: delete it there
)

func newPrefixMap() prefixMap {
	return prefixMap{v6: make(map[v6Key]v6Val)}
}

func v4Key(p netip.Prefix) uint64 {
	a := p.Addr().As4()
	return uint64(binary.BigEndian.Uint32(a[:]))<<8 | uint64(p.Bits())
}

func toV6Key(p netip.Prefix) v6Key {
	a := p.Addr().As16()
	return v6Key{binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:]), uint8(p.Bits())}
}

func fromV4Key(k uint64) netip.Prefix {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], uint32(k>>8))
	return netip.PrefixFrom(netip.AddrFrom4(a), int(k&0xff))
}

func fromV6Key(k v6Key) netip.Prefix {
	var a [16]byte
	binary.BigEndian.PutUint64(a[:8], k.hi)
	binary.BigEndian.PutUint64(a[8:], k.lo)
	return netip.PrefixFrom(netip.AddrFrom16(a), int(k.bits))
}

func (m *prefixMap) get(p netip.Prefix) (uint32, bool) {
	id, _, ok := m.lookup(p)
	return id, ok
}

// lookup returns p's value and flags.
func (m *prefixMap) lookup(p netip.Prefix) (uint32, uint8, bool) {
	if p.Addr().Is4() {
		if s := m.v4.find(v4Key(p)); s != nil {
			return s.val, s.flags, true
		}
		return 0, 0, false
	}
	v, ok := m.v6[toV6Key(p)]
	return v.id, v.flags, ok
}

// put sets p's value, keeping its flags, and returns the one it replaces.
func (m *prefixMap) put(p netip.Prefix, id uint32) (uint32, bool) {
	old, _, had := m.swap(p, id)
	return old, had
}

// swap sets p's value, keeping its flags, and returns the value and flags
// it had.
func (m *prefixMap) swap(p netip.Prefix, id uint32) (uint32, uint8, bool) {
	if p.Addr().Is4() {
		return m.v4.put(v4Key(p), id)
	}
	k := toV6Key(p)
	old, had := m.v6[k]
	m.v6[k] = v6Val{id: id, flags: old.flags}
	return old.id, old.flags, had
}

// mark sets and clears flags of p's entry, if there is one, and returns
// the flags it had.
func (m *prefixMap) mark(p netip.Prefix, set, clear uint8) (uint8, bool) {
	if p.Addr().Is4() {
		s := m.v4.find(v4Key(p))
		if s == nil {
			return 0, false
		}
		old := s.flags
		s.flags = old&^clear | set
		return old, true
	}
	k := toV6Key(p)
	v, ok := m.v6[k]
	if !ok {
		return 0, false
	}
	old := v.flags
	v.flags = old&^clear | set
	m.v6[k] = v
	return old, true
}

// remove deletes p and returns its value and flags.
func (m *prefixMap) remove(p netip.Prefix) (uint32, bool) {
	if p.Addr().Is4() {
		return m.v4.remove(v4Key(p))
	}
	k := toV6Key(p)
	old, had := m.v6[k]
	delete(m.v6, k)
	return old.id, had
}

func (m *prefixMap) len() int { return m.v4.n + len(m.v6) }

// all calls fn for every entry, in no particular order.
func (m *prefixMap) all(fn func(netip.Prefix, uint32)) {
	m.each(func(p netip.Prefix, id uint32, _ uint8) uint8 {
		fn(p, id)
		return 0
	})
}

// each calls fn for every entry with its flags; fn returns the flags to
// clear. Entries must not be added or removed meanwhile.
func (m *prefixMap) each(fn func(p netip.Prefix, id uint32, flags uint8) (clear uint8)) {
	for i := range m.v4.slots {
		s := &m.v4.slots[i]
		if s.used {
			s.flags &^= fn(fromV4Key(s.key()), s.val, s.flags)
		}
	}
	for k, v := range m.v6 {
		if c := fn(fromV6Key(k), v.id, v.flags); c&v.flags != 0 {
			v.flags &^= c
			m.v6[k] = v
		}
	}
}

// u64Map is an open-addressing hash table from keys below 2^40 (an IPv4
// address and a prefix length) to uint32, with linear probing and
// backward-shift deletion. Its zero value is empty and ready to use.
//
// Its hash is seeded, and the seed changes whenever the table shrinks. Other tables of
// the daemon (the RIB's shards) hash the same keys; with one shared hash, a
// sweep that deletes in their slot order deletes in ours too, and when the
// table shrinks, the entries left all hash to its last few slots and pack
// into one run that every later operation walks (74% of a million-route
// withdrawal went there). A fresh seed spreads the survivors anew.
type u64Map struct {
	slots []u64Slot // power-of-two length, or nil
	shift uint      // 64 - log2(len(slots))
	seed  uint64
	n     int
}

// u64Slot holds its 40-bit key in two parts, so that a slot is 12 bytes,
// not the 16 a uint64 field would align it to: a quarter of the desired
// state's memory at a million routes.
type u64Slot struct {
	lo    uint32 // key bits 0-31
	val   uint32
	hi    uint8 // key bits 32-39
	used  bool
	flags uint8
}

func (s *u64Slot) key() uint64 { return uint64(s.hi)<<32 | uint64(s.lo) }

func newSlot(k uint64, v uint32) u64Slot {
	return u64Slot{lo: uint32(k), hi: uint8(k >> 32), val: v, used: true}
}

const u64MinSlots = 64

// home is a key's preferred slot: a full 64-bit mix of the seeded key (the
// murmur3 finalizer), whose top bits index the table.
func (m *u64Map) home(k uint64) int {
	k ^= m.seed
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return int(k >> m.shift)
}

func (m *u64Map) find(k uint64) *u64Slot {
	if m.n == 0 {
		return nil
	}
	mask := len(m.slots) - 1
	for i := m.home(k); ; i = (i + 1) & mask {
		s := &m.slots[i]
		if !s.used {
			return nil
		}
		if s.key() == k {
			return s
		}
	}
}

func (m *u64Map) get(k uint64) (uint32, bool) {
	if s := m.find(k); s != nil {
		return s.val, true
	}
	return 0, false
}

func (m *u64Map) put(k uint64, v uint32) (uint32, uint8, bool) {
	if (m.n+1)*4 > len(m.slots)*3 {
		m.resize(max(u64MinSlots, 2*len(m.slots)))
	}
	return m.insert(newSlot(k, v))
}

// insert places s (or updates the value of its key) in a table with room,
// and returns the value and flags the key had.
func (m *u64Map) insert(n u64Slot) (uint32, uint8, bool) {
	mask := len(m.slots) - 1
	k := n.key()
	for i := m.home(k); ; i = (i + 1) & mask {
		s := &m.slots[i]
		if !s.used {
			*s = n
			m.n++
			return 0, 0, false
		}
		if s.key() == k {
			old := s.val
			s.val = n.val
			return old, s.flags, true
		}
	}
}

func (m *u64Map) remove(k uint64) (uint32, bool) {
	s, ok := m.take(k)
	return s.val, ok
}

// take deletes k and returns its slot as it was.
func (m *u64Map) take(k uint64) (u64Slot, bool) {
	if m.n == 0 {
		return u64Slot{}, false
	}
	mask := len(m.slots) - 1
	i := m.home(k)
	for ; ; i = (i + 1) & mask {
		if !m.slots[i].used {
			return u64Slot{}, false
		}
		if m.slots[i].key() == k {
			break
		}
	}
	old := m.slots[i]
	// Pull later entries of the probe run back into the hole unless that
	// would put them before their home slot, so lookups can stop at the
	// first empty slot.
	for j := i; ; {
		j = (j + 1) & mask
		if !m.slots[j].used {
			break
		}
		h := m.home(m.slots[j].key())
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

// reserve makes room for n IPv4 entries, so that filling the map does not
// resize it: growing holds the old slots and the new ones at once, half as
// much again as the table.
func (m *prefixMap) reserve(n int) { m.v4.reserve(n) }

func (m *u64Map) reserve(n int) {
	size := u64MinSlots
	for size*3 < n*4 {
		size *= 2
	}
	if size > len(m.slots) {
		m.resize(size)
	}
}

func (m *u64Map) resize(n int) {
	old := m.slots
	m.slots = make([]u64Slot, n)
	m.shift = uint(64 - bits.TrailingZeros(uint(n)))
	// A new seed when shrinking, where survivors would otherwise pack
	// (see u64Map). Growing keeps it: a key's home is then its old home
	// with one more bit, so the old slots are copied in order, front to
	// back, instead of scattered over the new table (twice as fast).
	if old == nil || n < len(old) {
		m.seed = rand.Uint64()
	}
	m.n = 0
	for _, s := range old {
		if s.used {
			m.insert(s)
		}
	}
}

// take deletes p and returns its value and flags.
func (m *prefixMap) take(p netip.Prefix) (uint32, uint8, bool) {
	if p.Addr().Is4() {
		s, ok := m.v4.take(v4Key(p))
		return s.val, s.flags, ok
	}
	k := toV6Key(p)
	old, had := m.v6[k]
	delete(m.v6, k)
	return old.id, old.flags, had
}
