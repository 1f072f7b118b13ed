package rib

import (
	"iter"
	"math/bits"
	"math/rand/v2"
)

// flatMap holds a shard's prefixes with one path (V = path) or two (V =
// pair): an open-addressing table with linear probing and backward-shift
// deletion, 16 bytes a slot for one IPv4 path. It replaces a Go map because
// of where a million prefixes land: a Go map grows by doubling, and at 16k
// entries a shard it sits just past a doubling, half empty, at 36 bytes a
// prefix; this table grows by a quarter and stays between 64% and 80% full
// (about 24 bytes a prefix).
type flatMap[K prefixKey, V flatValue[V]] struct {
	slots []flatSlot[K, V]
	n     int
	// seed makes each table's slot order its own. Two tables hashing
	// alike are a trap for linear probing: walking one in slot order
	// while filling the other (a peer-down sweep moving every two-path
	// prefix to one) inserts in hash order, and the keys so far all land
	// in the front of the new table, one run that grows with each insert.
	seed uint64
}

// flatValue is what a flatMap holds. A slot is in use when its value is
// marked: the top bit of the (first) path's source index, which a real
// index never reaches (2^31 sources would not fit in memory).
type flatValue[V any] interface {
	flatUsed() bool
	flatMark() V
	flatClear() V
}

const usedBit = 1 << 31

func (p path) flatUsed() bool  { return p.src&usedBit != 0 }
func (p path) flatMark() path  { p.src |= usedBit; return p }
func (p path) flatClear() path { p.src &^= usedBit; return p }

// pair is the ranked paths of a prefix with exactly two.
type pair [2]path

func (p pair) flatUsed() bool  { return p[0].flatUsed() }
func (p pair) flatMark() pair  { p[0] = p[0].flatMark(); return p }
func (p pair) flatClear() pair { p[0] = p[0].flatClear(); return p }

type flatSlot[K prefixKey, V flatValue[V]] struct {
	k K
	v V
}

func (s *flatSlot[K, V]) used() bool { return s.v.flatUsed() }

// Load bounds: grow past maxLoad, rebuild at fillLoad.
const (
	maxLoadNum, maxLoadDen = 4, 5 // 80%
	minFlatSlots           = 8
)

func (m *flatMap[K, V]) len() int { return m.n }

// home is the slot a key hashes to.
func (m *flatMap[K, V]) home(k K) int {
	hi, _ := bits.Mul64(mix64(k.shardHash()^m.seed), uint64(len(m.slots)))
	return int(hi)
}

func (m *flatMap[K, V]) next(i int) int {
	if i++; i == len(m.slots) {
		return 0
	}
	return i
}

// find returns the slot of k, or the free slot where it would go and false.
func (m *flatMap[K, V]) find(k K) (int, bool) {
	if len(m.slots) == 0 {
		return -1, false
	}
	for i := m.home(k); ; i = m.next(i) {
		s := &m.slots[i]
		if !s.used() {
			return i, false
		}
		if s.k == k {
			return i, true
		}
	}
}

func (m *flatMap[K, V]) get(k K) (V, bool) {
	if i, ok := m.find(k); ok {
		return m.slots[i].v.flatClear(), true
	}
	var zero V
	return zero, false
}

// set stores v under k.
func (m *flatMap[K, V]) set(k K, v V) {
	v = v.flatMark()
	i, ok := m.find(k)
	if ok {
		m.slots[i].v = v
		return
	}
	if (m.n+1)*maxLoadDen > len(m.slots)*maxLoadNum {
		m.resize(m.n + 1)
		i, _ = m.find(k)
	}
	m.slots[i] = flatSlot[K, V]{k, v}
	m.n++
}

// resize rebuilds the table for n entries: a quarter more room than the
// 80% bound asks for (doubling while small, where copies are cheap).
func (m *flatMap[K, V]) resize(n int) {
	size := n * maxLoadDen / maxLoadNum
	if size < 1024 {
		size *= 2
	} else {
		size += size / 4
	}
	old := m.slots
	if m.seed == 0 {
		m.seed = rand.Uint64() | 1
	}
	m.slots = make([]flatSlot[K, V], max(size, minFlatSlots))
	if n == 0 && m.n == 0 {
		m.slots = nil
	}
	for _, s := range old {
		if s.used() {
			i, _ := m.find(s.k)
			m.slots[i] = s
		}
	}
}

// shrink rebuilds the table to fit what it holds.
func (m *flatMap[K, V]) shrink() { m.resize(m.n) }

func (m *flatMap[K, V]) del(k K) bool {
	i, ok := m.find(k)
	if ok {
		m.deleteAt(i)
	}
	return ok
}

// deleteAt empties slot i and moves back the entries after it that would
// otherwise be cut off from their home slot.
func (m *flatMap[K, V]) deleteAt(i int) {
	m.n--
	for j := m.next(i); m.slots[j].used(); j = m.next(j) {
		h := m.home(m.slots[j].k)
		// Slot j's entry may fill the hole at i unless its home lies
		// cyclically in (i, j].
		if i <= j && (h <= i || h > j) || i > j && h <= i && h > j {
			m.slots[i] = m.slots[j]
			i = j
		}
	}
	m.slots[i] = flatSlot[K, V]{}
}

// all yields every entry. Values of existing keys may be set meanwhile;
// nothing may be added or deleted.
func (m *flatMap[K, V]) all() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		for i := range m.slots {
			if s := &m.slots[i]; s.used() && !yield(s.k, s.v.flatClear()) {
				return
			}
		}
	}
}

// deleteIf removes every entry for which drop returns true, after calling
// gone with it. drop may see an entry twice (deletions move entries
// around), so it must answer the same both times; gone is called once per
// deleted entry. Neither may change the table.
func (m *flatMap[K, V]) deleteIf(drop func(K, V) bool, gone func(K, V)) {
	for i := 0; i < len(m.slots); {
		s := m.slots[i]
		v := s.v.flatClear()
		if s.used() && drop(s.k, v) {
			gone(s.k, v)
			m.deleteAt(i)
			continue // an entry from further on may have moved into i
		}
		i++
	}
}
