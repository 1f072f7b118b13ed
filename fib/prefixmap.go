package fib

import (
	"encoding/binary"
	"math"
	"math/bits"
	"math/rand/v2"
	"net/netip"
)

// prefixMap maps prefixes to the hop set their route should use (an id in
// the FIB's set table), with a few flag bits per entry (stale, pending,
// seen). It is the FIB's desired state: a million IPv4 routes cost 1.25 to
// 1.6 12-byte slots each (see u64Map), plus the shared sets. IPv4 prefixes
// (the bulk of a load balancer's routes) live in a purpose-built table
// keyed by one uint64: one probe per operation that also returns the old
// value, no tombstones after mass deletions, and nothing for the GC to
// scan. IPv6 prefixes use a Go
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
	flagMoving                    // its change waits in a groupMove (groupmove.go)
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
	for i := range m.v4.parts {
		slots := m.v4.parts[i].slots
		for j := range slots {
			if s := &slots[j]; s.used() {
				s.flags &^= fn(fromV4Key(s.key()), s.val, s.flags)
			}
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
// address and a prefix length) to uint32, with Robin Hood linear probing
// and backward-shift deletion. Its zero value is empty and ready to use.
//
// It is split into u64Parts tables by a seeded multiplicative hash, each
// grown (by a quarter) and shrunk on its own. A million routes then cost
// 15 to 19 bytes each (each part between 64% and 80% full, its capacity
// any number of slots), and growing holds one part's old slots beside its
// new ones, not the whole table's twice over: one table doubling from 1M
// to 2M slots had 36 MB live at once, where the parts peak under 19 MB.
//
// Each part's hash is seeded, and the seed changes whenever the part
// shrinks. Other tables of the daemon (the RIB's shards) hash the same
// keys; with one shared hash, a sweep that deletes in their slot order
// deletes in ours too, and when a table shrinks, the entries left all hash
// to its last few slots and pack into one run that every later operation
// walks (74% of a million-route withdrawal went there). A fresh seed
// spreads the survivors anew.
type u64Map struct {
	parts [u64Parts]u64Part
	seed  uint64 // picks the part; set once, as parts never merge
	n     int
}

const (
	u64PartBits = 6
	u64Parts    = 1 << u64PartBits
	// Load bounds: a part grows past 4/5 full to 16/25 (a quarter more
	// room than the bound asks) and shrinks below 1/5, back to 16/25.
	u64LoadNum, u64LoadDen = 4, 5
	u64ShrinkDen           = 5
	u64MinSlots            = 8 // per part
)

// u64Slot holds its 40-bit key in two parts, so that a slot is 12 bytes,
// not the 16 a uint64 field would align it to: a quarter of the desired
// state's memory at a million routes. The byte the alignment leaves holds
// the entry's distance from its home slot.
type u64Slot struct {
	lo    uint32 // key bits 0-31
	val   uint32
	hi    uint8 // key bits 32-39
	dist  uint8 // 0: empty; else 1 + slots from the key's home slot
	flags uint8
}

// u64MaxDist bounds dist: a part whose probe run would go further grows,
// with a new seed.
const u64MaxDist = 255

func (s *u64Slot) used() bool  { return s.dist != 0 }
func (s *u64Slot) key() uint64 { return uint64(s.hi)<<32 | uint64(s.lo) }

func newSlot(k uint64, v uint32) u64Slot {
	return u64Slot{lo: uint32(k), hi: uint8(k >> 32), val: v}
}

// part is k's table: the top bits of a Fibonacci hash of the seeded key,
// which spreads the keys evenly and owes nothing to the parts' own hash.
func (m *u64Map) part(k uint64) *u64Part {
	return &m.parts[(k^m.seed)*0x9e3779b97f4a7c15>>(64-u64PartBits)]
}

func (m *u64Map) find(k uint64) *u64Slot {
	if m.n == 0 {
		return nil
	}
	return m.part(k).find(k)
}

func (m *u64Map) get(k uint64) (uint32, bool) {
	if s := m.find(k); s != nil {
		return s.val, true
	}
	return 0, false
}

func (m *u64Map) put(k uint64, v uint32) (uint32, uint8, bool) {
	if m.seed == 0 {
		m.seed = rand.Uint64() | 1
	}
	old, flags, had := m.part(k).put(newSlot(k, v))
	if !had {
		m.n++
	}
	return old, flags, had
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
	s, ok := m.part(k).remove(k)
	if ok {
		m.n--
	}
	return s, ok
}

// slots is the number of slots of all parts.
func (m *u64Map) slots() int {
	n := 0
	for i := range m.parts {
		n += len(m.parts[i].slots)
	}
	return n
}

// reserve makes room for n IPv4 entries, so that filling the map does not
// resize it: each growth copies a part, and a map filled from empty copies
// its entries about four times over.
func (m *prefixMap) reserve(n int) { m.v4.reserve(n) }

func (m *u64Map) reserve(n int) {
	// A part's share of n random keys varies by about its square root:
	// four deviations more keep all parts but a rare one from growing.
	per := n / u64Parts
	per += 4*int(math.Sqrt(float64(per))) + 1
	for i := range m.parts {
		if p := &m.parts[i]; per*u64LoadDen > len(p.slots)*u64LoadNum {
			p.resize(max(u64MinSlots, per*u64LoadDen/u64LoadNum))
		}
	}
}

// u64Part is one table of a u64Map: Robin Hood linear probing, where an
// entry placed further from its home than the one in its way takes that
// slot and moves the other on. A run's entries then stay in order of their
// home slots, so that a search for an absent key stops at the first entry
// that is closer to its home than the key would be (at 80% full, a few
// slots instead of a dozen), and a deletion moves the rest of the run back
// without hashing any of it.
type u64Part struct {
	slots []u64Slot // any length, or nil
	seed  uint64
	n     int
}

// home is a key's preferred slot: a full 64-bit mix of the seeded key (the
// murmur3 finalizer), mapped onto the slots by its top bits (Lemire's
// multiply-shift range reduction), so that a slot's keys hash below the
// next slot's whatever the table's length.
func (p *u64Part) home(k uint64) int {
	k ^= p.seed
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	hi, _ := bits.Mul64(k, uint64(len(p.slots)))
	return int(hi)
}

func (p *u64Part) next(i int) int {
	if i++; i == len(p.slots) {
		return 0
	}
	return i
}

// search returns the slot where k is, or where it would go (the first
// slot closer to its home than k would be) and k's dist there.
func (p *u64Part) search(k uint64) (i, d int, found bool) {
	for i, d = p.home(k), 1; ; i, d = p.next(i), d+1 {
		s := &p.slots[i]
		if int(s.dist) < d {
			return i, d, false
		}
		if int(s.dist) == d && s.key() == k {
			return i, d, true
		}
	}
}

func (p *u64Part) find(k uint64) *u64Slot {
	if p.n == 0 {
		return nil
	}
	if i, _, ok := p.search(k); ok {
		return &p.slots[i]
	}
	return nil
}

// put inserts or updates s's key, growing the part first if it is full.
func (p *u64Part) put(s u64Slot) (uint32, uint8, bool) {
	if (p.n+1)*u64LoadDen > len(p.slots)*u64LoadNum {
		p.resize(sizeFor(p.n + 1))
	}
	return p.insert(s)
}

// remove deletes k, shrinking the part if it falls below the load bound.
func (p *u64Part) remove(k uint64) (u64Slot, bool) {
	s, ok := p.take(k)
	if ok && len(p.slots) > u64MinSlots && p.n*u64ShrinkDen < len(p.slots) {
		p.resize(sizeFor(p.n))
	}
	return s, ok
}

// insert places s (or updates the value of its key) in a table with room,
// and returns the value and flags the key had.
func (p *u64Part) insert(n u64Slot) (uint32, uint8, bool) {
	i, d, ok := p.search(n.key())
	if ok {
		s := &p.slots[i]
		old := s.val
		s.val = n.val
		return old, s.flags, true
	}
	p.n++
	p.place(n, i, d)
	return 0, 0, false
}

// place puts n in slot i at dist d, moving on whatever is there.
func (p *u64Part) place(n u64Slot, i, d int) {
	for ; ; i, d = p.next(i), d+1 {
		if d > u64MaxDist {
			// Only a run no random seed should give; a larger table
			// with a new seed breaks it up.
			p.n--
			p.seed = rand.Uint64()
			p.resize(2 * len(p.slots))
			p.insert(n)
			return
		}
		s := &p.slots[i]
		if int(s.dist) < d {
			n.dist = uint8(d)
			if s.dist == 0 {
				*s = n
				return
			}
			n, *s = *s, n
			d = int(n.dist)
		}
	}
}

// take deletes k and returns its slot as it was.
func (p *u64Part) take(k uint64) (u64Slot, bool) {
	if p.n == 0 {
		return u64Slot{}, false
	}
	i, _, ok := p.search(k)
	if !ok {
		return u64Slot{}, false
	}
	old := p.slots[i]
	// Move the rest of the run back a slot, up to an entry in its home
	// slot, so that no tombstone is left.
	for j := p.next(i); p.slots[j].dist > 1; i, j = j, p.next(j) {
		p.slots[i] = p.slots[j]
		p.slots[i].dist--
	}
	p.slots[i] = u64Slot{}
	p.n--
	return old, true
}

// sizeFor is the number of slots a part is rebuilt with for n entries: a
// quarter more room than the load bound asks for.
func sizeFor(n int) int {
	return max(u64MinSlots, n*u64LoadDen/u64LoadNum*5/4)
}

// resize rebuilds the part with size slots.
func (p *u64Part) resize(size int) {
	old := p.slots
	// A new seed unless growing, where survivors of a sweep would
	// otherwise pack (see u64Map). Growing keeps it: a key's home then
	// moves with the table's length, in the same order, so the old slots
	// are copied front to back instead of scattered over the new table
	// (twice as fast).
	if old == nil || size <= len(old) {
		p.seed = rand.Uint64()
	}
	p.slots = make([]u64Slot, size)
	p.n = 0
	for i := range old {
		if s := old[i]; s.used() {
			p.insertNew(s)
		}
	}
}

// insertNew places s, whose key the part does not hold, in a part with
// room: no key is compared on the way.
func (p *u64Part) insertNew(s u64Slot) {
	i, d := p.home(s.key()), 1
	for int(p.slots[i].dist) >= d {
		i, d = p.next(i), d+1
	}
	p.n++
	p.place(s, i, d)
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
