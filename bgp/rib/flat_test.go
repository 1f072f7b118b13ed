package rib

import (
	"math/rand/v2"
	"testing"
)

// TestFlatMap drives the table and a Go map with the same random calls,
// keys drawn from a small space so that probe runs collide, wrap around
// the end of the table and are cut by deletions.
func TestFlatMap(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		var m flatMap[key4, path]
		want := map[key4]path{}
		space := 8 + rng.IntN(3000)
		key := func() key4 { return key4(uint64(rng.IntN(space))<<8 | 32) }
		check := func(step int) {
			if m.len() != len(want) {
				t.Fatalf("seed %d step %d: len %d, want %d", seed, step, m.len(), len(want))
			}
			seen := 0
			for k, p := range m.all() {
				if w, ok := want[k]; !ok || w != p {
					t.Fatalf("seed %d step %d: %v holds %v, want %v (present %v)", seed, step, k.prefix(), p, w, ok)
				}
				seen++
			}
			if seen != len(want) {
				t.Fatalf("seed %d step %d: %d entries iterated, want %d", seed, step, seen, len(want))
			}
			for k, w := range want {
				if p, ok := m.get(k); !ok || p != w {
					t.Fatalf("seed %d step %d: get %v = %v %v, want %v", seed, step, k.prefix(), p, ok, w)
				}
			}
			if m.n > 0 && m.n*maxLoadDen > len(m.slots)*maxLoadNum {
				t.Fatalf("seed %d step %d: %d entries in %d slots", seed, step, m.n, len(m.slots))
			}
		}
		for step := range 4000 {
			switch x := rng.IntN(100); {
			case x < 55:
				k, p := key(), path{srcID(rng.IntN(50)), uint32(rng.IntN(1000))}
				m.set(k, p)
				want[k] = p
			case x < 90:
				k := key()
				_, had := want[k]
				if m.del(k) != had {
					t.Fatalf("seed %d step %d: del %v reports %v, want %v", seed, step, k.prefix(), !had, had)
				}
				delete(want, k)
			case x < 97:
				// A sweep: drop one source's entries.
				src := srcID(rng.IntN(50))
				gone := map[key4]bool{}
				m.deleteIf(func(_ key4, p path) bool { return p.src == src }, func(k key4, p path) {
					if gone[k] || want[k] != p {
						t.Fatalf("seed %d step %d: %v deleted twice or wrongly", seed, step, k.prefix())
					}
					gone[k] = true
				})
				for k, p := range want {
					if p.src == src {
						if !gone[k] {
							t.Fatalf("seed %d step %d: sweep missed %v", seed, step, k.prefix())
						}
						delete(want, k)
					}
				}
			default:
				m.shrink()
			}
			if step%50 == 0 {
				check(step)
			}
		}
		check(-1)
	}
}

// longestRun is the longest stretch of used slots.
func (m *flatMap[K, V]) longestRun() int {
	best, run := 0, 0
	for i := range 2 * len(m.slots) { // twice round: runs wrap
		if m.slots[i%len(m.slots)].used() {
			run++
			best = max(best, min(run, len(m.slots)))
		} else {
			run = 0
		}
	}
	return best
}

// TestFlatMapsDoNotAlign: moving every entry of one table into another in
// slot order (a peer-down sweep turning two-path prefixes into one-path
// ones) leaves the new table with short probe runs. With one hash for both,
// the keys would arrive in the new table's own slot order and pile up in
// one run, each insert slower than the last.
func TestFlatMapsDoNotAlign(t *testing.T) {
	var two flatMap[key4, pair]
	var one flatMap[key4, path]
	for _, n := range hostRoutes(20000) {
		two.set(makeKey4(n.Prefix), pair{{src: 1}, {src: 2}})
	}
	// Half of them, as the other half would be spread again by the last
	// resize.
	moved := 0
	two.deleteIf(func(key4, pair) bool { return moved < 10000 }, func(k key4, pr pair) {
		one.set(k, pr[0])
		moved++
	})
	if one.len() != 10000 || two.len() != 10000 {
		t.Fatalf("%d and %d entries", one.len(), two.len())
	}
	if run := one.longestRun(); run > 500 {
		t.Fatalf("a run of %d used slots in %d", run, len(one.slots))
	}
}
