package rib

import (
	"iter"
	"math/bits"
)

// flatMap holds a shard's single-path prefixes: an open-addressing table
// with linear probing and backward-shift deletion, 16 bytes a slot for
// IPv4. It replaces a Go map because of where a million prefixes land: a
// Go map grows by doubling, and at 16k entries a shard it sits just past a
// doubling, half empty, at 36 bytes a prefix; this table grows by a quarter
// and stays between 64% and 80% full (about 22 bytes a prefix).
//
// A slot is in use when its path has ecmpBit set: single paths never carry
// it (setOne clears it), so the bit is free to mark occupancy.
type flatMap[K prefixKey] struct {
	slots []flatSlot[K]
	n     int
}

type flatSlot[K prefixKey] struct {
	k K
	p path
}

func (s *flatSlot[K]) used() bool { return s.p.meta&ecmpBit != 0 }

// Load bounds: grow past maxLoad, rebuild at fillLoad.
const (
	maxLoadNum, maxLoadDen = 4, 5 // 80%
	minFlatSlots           = 8
)

func (m *flatMap[K]) len() int { return m.n }

// home is the slot a key hashes to. The top shardBits of shardHash chose
// the shard and are the same for every key in it, so they are dropped.
func (m *flatMap[K]) home(k K) int {
	hi, _ := bits.Mul64(k.shardHash()<<shardBits, uint64(len(m.slots)))
	return int(hi)
}

func (m *flatMap[K]) next(i int) int {
	if i++; i == len(m.slots) {
		return 0
	}
	return i
}

// find returns the slot of k, or the free slot where it would go and false.
func (m *flatMap[K]) find(k K) (int, bool) {
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

func (m *flatMap[K]) get(k K) (path, bool) {
	if i, ok := m.find(k); ok {
		return path{m.slots[i].p.src, m.slots[i].p.meta &^ ecmpBit}, true
	}
	return path{}, false
}

// set stores p (whose ecmpBit is ignored) under k.
func (m *flatMap[K]) set(k K, p path) {
	p.meta |= ecmpBit
	if i, ok := m.find(k); ok {
		m.slots[i].p = p
		return
	}
	if (m.n+1)*maxLoadDen > len(m.slots)*maxLoadNum {
		m.resize(m.n + 1)
	}
	i, _ := m.find(k)
	m.slots[i] = flatSlot[K]{k, p}
	m.n++
}

// resize rebuilds the table for n entries: a quarter more room than the
// 80% bound asks for (doubling while small, where copies are cheap).
func (m *flatMap[K]) resize(n int) {
	size := n * maxLoadDen / maxLoadNum
	if size < 1024 {
		size *= 2
	} else {
		size += size / 4
	}
	old := m.slots
	m.slots = make([]flatSlot[K], max(size, minFlatSlots))
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
func (m *flatMap[K]) shrink() { m.resize(m.n) }

func (m *flatMap[K]) del(k K) bool {
	i, ok := m.find(k)
	if ok {
		m.deleteAt(i)
	}
	return ok
}

// deleteAt empties slot i and moves back the entries after it that would
// otherwise be cut off from their home slot.
func (m *flatMap[K]) deleteAt(i int) {
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
	m.slots[i] = flatSlot[K]{}
}

// all yields every entry. The table must not change meanwhile.
func (m *flatMap[K]) all() iter.Seq2[K, path] {
	return func(yield func(K, path) bool) {
		for i := range m.slots {
			if s := &m.slots[i]; s.used() && !yield(s.k, path{s.p.src, s.p.meta &^ ecmpBit}) {
				return
			}
		}
	}
}

// deleteIf removes every entry for which drop returns true, after calling
// gone with it. drop may see an entry twice (deletions move entries
// around), so it must answer the same both times; gone is called once per
// deleted entry. Neither may change the table.
func (m *flatMap[K]) deleteIf(drop func(K, path) bool, gone func(K, path)) {
	for i := 0; i < len(m.slots); {
		s := m.slots[i]
		p := path{s.p.src, s.p.meta &^ ecmpBit}
		if s.used() && drop(s.k, p) {
			gone(s.k, p)
			m.deleteAt(i)
			continue // an entry from further on may have moved into i
		}
		i++
	}
}
