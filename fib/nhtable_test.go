package fib

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// kernelSim plays the kernel's part for nhTable's decisions: it refuses to
// create an object twice, a group before its members, and to delete a
// member before its group.
type kernelSim struct {
	live   map[uint32]*nhObject
	groups map[uint32][]uint32
}

func newKernelSim() *kernelSim {
	return &kernelSim{live: map[uint32]*nhObject{}, groups: map[uint32][]uint32{}}
}

func (k *kernelSim) create(t *testing.T, tab *nhTable, ids []uint32) {
	t.Helper()
	for _, id := range ids {
		if k.live[id] != nil {
			t.Fatalf("create %d: already exists", id)
		}
		o := tab.objs[id]
		if o == nil {
			t.Fatalf("create %d: not in the table", id)
		}
		for _, m := range o.members {
			if k.live[m.id] == nil || k.live[m.id].group() {
				t.Fatalf("create group %d: member %d not a live single", id, m.id)
			}
			k.groups[id] = append(k.groups[id], m.id)
		}
		k.live[id] = o
	}
}

func (k *kernelSim) remove(t *testing.T, ids []uint32) {
	t.Helper()
	for _, id := range ids {
		if k.live[id] == nil {
			t.Fatalf("delete %d: does not exist", id)
		}
		for g, ms := range k.groups {
			if slices.Contains(ms, id) {
				t.Fatalf("delete %d: still a member of group %d", id, g)
			}
		}
		delete(k.live, id)
		delete(k.groups, id)
	}
}

// checkModel compares the table with what the routes' sets imply,
// recomputed from scratch: one single per gateway in use, one group per
// distinct multi-hop set, and reference counts that add up.
func checkModel(t *testing.T, tab *nhTable, routes map[int][]NextHop, k *kernelSim) {
	t.Helper()
	groups := 0
	for _, o := range tab.objs {
		if o.group() {
			groups++
		}
	}
	if groups != tab.groups {
		t.Fatalf("table counts %d groups, has %d", tab.groups, groups)
	}
	wantRefs := map[string]int{} // key -> refs
	groupsWith := map[string]map[string]bool{}
	for _, h := range routes {
		key := string(appendKey(nil, h))
		wantRefs[key]++
		if len(h) > 1 {
			for _, m := range h {
				sk := string(appendKey(nil, []NextHop{{Addr: m.Addr}}))
				if groupsWith[sk] == nil {
					groupsWith[sk] = map[string]bool{}
				}
				groupsWith[sk][key] = true
			}
		}
	}
	for sk, gs := range groupsWith {
		wantRefs[sk] += len(gs)
	}
	if len(tab.objs) != len(wantRefs) || len(tab.index) != len(wantRefs) {
		t.Fatalf("table has %d objects (%d indexed), model %d", len(tab.objs), len(tab.index), len(wantRefs))
	}
	for id, o := range tab.objs {
		if id < tab.first || id > tab.last {
			t.Fatalf("id %d outside [%d, %d]", id, tab.first, tab.last)
		}
		if tab.index[o.key] != id {
			t.Fatalf("object %d key not indexed to it", id)
		}
		if want := wantRefs[o.key]; o.refs != want {
			t.Fatalf("object %d (%q): refs %d, model %d", id, o.key, o.refs, want)
		}
		hs, ok := tab.hops(id)
		if !ok || string(appendKey(nil, hs)) != o.key {
			t.Fatalf("object %d: hops %v do not match its key", id, hs)
		}
	}
	if len(k.live) != len(tab.objs) {
		t.Fatalf("kernel has %d objects, table %d", len(k.live), len(tab.objs))
	}
	for id := range k.live {
		if tab.objs[id] == nil {
			t.Fatalf("kernel keeps %d the table forgot", id)
		}
	}
}

func TestNHTableMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	gws := hops("198.51.100.2", "198.51.100.3", "198.51.100.4", "198.51.100.5", "2001:db8::2")
	for round := range 50 {
		tab := newNHTable(1000, 1000+uint32(64+rng.IntN(200)))
		k := newKernelSim()
		routes := map[int][]NextHop{}
		ids := map[int]uint32{}
		for step := range 400 {
			r := rng.IntN(30)
			var created, deleted []uint32
			if rng.IntN(4) == 0 {
				if id, ok := ids[r]; ok {
					deleted = tab.release(id, nil)
					delete(ids, r)
					delete(routes, r)
				}
			} else {
				var hs []NextHop
				for range 1 + rng.IntN(4) {
					h := gws[rng.IntN(len(gws))]
					h.Weight = uint32(rng.IntN(3))
					hs = append(hs, h)
				}
				hs = canonicalHops(nil, hs)
				id, c, err := tab.acquire(hs, nil)
				if err != nil {
					t.Fatalf("round %d step %d: acquire: %v", round, step, err)
				}
				created = c
				if old, ok := ids[r]; ok {
					deleted = tab.release(old, nil)
				}
				ids[r], routes[r] = id, hs
			}
			k.create(t, tab, created)
			k.remove(t, deleted)
			checkModel(t, tab, routes, k)
		}
		for r, id := range ids {
			k.remove(t, tab.release(id, nil))
			delete(routes, r)
		}
		checkModel(t, tab, routes, k)
		if len(tab.objs) != 0 || tab.groups != 0 {
			t.Fatalf("round %d: %d objects (%d groups) left after releasing everything", round, len(tab.objs), tab.groups)
		}
	}
}

func TestNHTableSharing(t *testing.T) {
	tab := newNHTable(1, 100)
	a, c1, _ := tab.acquire(canonicalHops(nil, hops("198.51.100.2")), nil)
	g, c2, _ := tab.acquire(canonicalHops(nil, hops("198.51.100.3", "198.51.100.2")), nil)
	g2, c3, _ := tab.acquire(canonicalHops(nil, hops("198.51.100.2*10", "198.51.100.3*20")), nil)
	g3, c4, _ := tab.acquire(canonicalHops(nil, hops("198.51.100.2*1", "198.51.100.3*2")), nil)
	if !slices.Equal(c1, []uint32{a}) {
		t.Errorf("first single created %v, want [%d]", c1, a)
	}
	if len(c2) != 2 || c2[1] != g {
		t.Errorf("group created %v: want the new member, then the group %d", c2, g)
	}
	if len(c3) != 1 || c3[0] != g2 || g2 == g {
		t.Errorf("weighted group created %v (id %d): want one new group besides %d", c3, g2, g)
	}
	if len(c4) != 0 || g3 != g2 {
		t.Errorf("same ratio on another scale got %d (created %v), want group %d", g3, c4, g2)
	}
	if got := tab.release(g, nil); !slices.Equal(got, []uint32{g}) {
		t.Errorf("releasing the unweighted group deleted %v, want just it", got)
	}
	tab.release(g2, nil)
	if got := tab.release(g2, nil); len(got) != 2 || got[0] != g2 {
		t.Errorf("releasing the last weighted group deleted %v, want it then its unshared member", got)
	}
	if got := tab.release(a, nil); !slices.Equal(got, []uint32{a}) {
		t.Errorf("releasing the single deleted %v", got)
	}
	if len(tab.objs) != 0 || len(tab.index) != 0 {
		t.Errorf("table not empty: %v %v", tab.objs, tab.index)
	}
}

func TestNHTableAlloc(t *testing.T) {
	tab := newNHTable(10, 13)
	tab.reserved[11] = struct{}{}
	var got []uint32
	for i := range 3 {
		id, _, err := tab.acquire([]NextHop{{Addr: withWeights(0, 0, 0, 0)[i].Addr}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	if !slices.Equal(got, []uint32{10, 12, 13}) {
		t.Errorf("allocated %v, want [10 12 13] (11 reserved)", got)
	}
	_, created, err := tab.acquire(canonicalHops(nil, hops("203.0.113.1")), nil)
	if !errors.Is(err, ErrNoNexthopIDs) || len(created) != 0 {
		t.Errorf("full range: err %v, created %v", err, created)
	}
	// A failed group leaves nothing behind: the members it created are
	// released and dropped from the created list.
	tab.release(13, nil)
	_, created, err = tab.acquire(canonicalHops(nil, hops("203.0.113.1", "203.0.113.2")), nil)
	if !errors.Is(err, ErrNoNexthopIDs) || len(created) != 0 || len(tab.objs) != 2 {
		t.Errorf("group in a full range: err %v, created %v, %d objects", err, created, len(tab.objs))
	}
	// Freed ids are not reused at once.
	tab = newNHTable(1, 1000)
	a, _, _ := tab.acquire(canonicalHops(nil, hops("198.51.100.2")), nil)
	tab.release(a, nil)
	b, _, _ := tab.acquire(canonicalHops(nil, hops("198.51.100.2")), nil)
	if a == b {
		t.Errorf("id %d reused at once", a)
	}
}

func TestNHTableAdopt(t *testing.T) {
	const proto = ProtoBGP
	nhs := []kernelNexthop{
		{id: 100, proto: proto, gw: mustAddr("198.51.100.2"), oif: 2},
		{id: 101, proto: proto, gw: mustAddr("198.51.100.3"), oif: 2},
		{id: 102, proto: proto, group: []nhMember{{100, 1}, {101, 3}}},
		{id: 103, proto: proto, gw: mustAddr("198.51.100.2"), oif: 2},  // duplicate of 100
		{id: 104, proto: 4, gw: mustAddr("198.51.100.9"), oif: 2},      // someone else's, in our range
		{id: 105, proto: proto, gw: mustAddr("198.51.100.4"), oif: 2},  // unused
		{id: 106, proto: proto, group: []nhMember{{100, 1}, {105, 1}}}, // unused group
		{id: 5, proto: proto, gw: mustAddr("198.51.100.5"), oif: 2},    // outside our range
	}
	tab := newNHTable(100, 199)
	tab.adopt(nhs, proto)
	for _, id := range []uint32{102, 103} { // routes use the group and the duplicate
		if !tab.ref(id) {
			t.Fatalf("ref(%d) = false", id)
		}
	}
	if tab.ref(104) || tab.ref(5) {
		t.Errorf("ref accepted an object that is not ours")
	}
	garbage := tab.collect()
	if !slices.Equal(garbage, []uint32{106, 105}) {
		t.Errorf("collect = %v, want [106 105] (group before member)", garbage)
	}
	// Acquiring what the adopted objects mean finds them again.
	if id, created, _ := tab.acquire(canonicalHops(nil, hops("198.51.100.2*2", "198.51.100.3*6")), nil); id != 102 || len(created) != 0 {
		t.Errorf("acquire of the adopted group = %d, created %v", id, created)
	}
	if id, _, _ := tab.acquire(canonicalHops(nil, hops("198.51.100.2")), nil); id != 100 {
		t.Errorf("acquire of the adopted single = %d, want 100 (the indexed one)", id)
	}
	id, _, _ := tab.acquire(canonicalHops(nil, hops("198.51.100.9")), nil)
	if id == 104 {
		t.Errorf("allocated the reserved id 104")
	}
	if got := tab.release(103, nil); !slices.Equal(got, []uint32{103}) {
		t.Errorf("releasing the duplicate deleted %v, want [103]", got)
	}
	if _, ok := tab.index[string(appendKey(nil, hops("198.51.100.2")))]; !ok {
		t.Errorf("releasing the duplicate dropped the key of the indexed single")
	}
}

func TestAppendKeyDistinct(t *testing.T) {
	sets := [][]NextHop{
		hops("198.51.100.2"),
		hops("2001:db8::2"),
		canonicalHops(nil, hops("198.51.100.2", "198.51.100.3")),
		canonicalHops(nil, hops("198.51.100.2*1", "198.51.100.3*2")),
		canonicalHops(nil, hops("198.51.100.2*2", "198.51.100.3*1")),
		canonicalHops(nil, hops("198.51.100.2*1", "198.51.100.3*256")),
		// The zone is part of a link-local gateway.
		hops("fe80::2%d0"),
		hops("fe80::2%e0"),
		hops("fe80::2%d"),
		canonicalHops(nil, hops("fe80::2%d0", "fe80::2%e0")),
		canonicalHops(nil, hops("fe80::2%d0", "fe80::3%e0")),
		canonicalHops(nil, hops("fe80::2%e0", "fe80::3%d0")),
	}
	seen := map[string]string{}
	for _, s := range sets {
		k := string(appendKey(nil, s))
		if prev, dup := seen[k]; dup {
			t.Errorf("%v and %s share a key", s, prev)
		}
		seen[k] = fmt.Sprint(s)
	}
}

func TestNHTableLookupNoAllocs(t *testing.T) {
	tab := newNHTable(1, 100)
	hs := canonicalHops(nil, hops("198.51.100.2", "198.51.100.3"))
	id, _, _ := tab.acquire(hs, nil)
	n := testing.AllocsPerRun(100, func() {
		got, _, _ := tab.acquire(hs, nil)
		tab.release(got, nil)
	})
	if n != 0 {
		t.Errorf("acquiring an existing group allocates %v times", n)
	}
	tab.release(id, nil)
}
