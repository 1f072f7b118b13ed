package fib

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestResilientDefaults(t *testing.T) {
	tests := []struct {
		name    string
		in      Resilient
		want    groupForm
		wantErr string
	}{
		{name: "defaults", want: groupForm{resilient: true, buckets: 256, idle: 12000}},
		{name: "set", in: Resilient{Buckets: 64, IdleTimer: 5 * time.Second, UnbalancedTimer: time.Minute},
			want: groupForm{resilient: true, buckets: 64, idle: 500, unbalanced: 6000}},
		{name: "fraction of a second", in: Resilient{IdleTimer: 1500 * time.Millisecond}, wantErr: "idle timer"},
		{name: "negative", in: Resilient{UnbalancedTimer: -time.Second}, wantErr: "unbalanced timer"},
		{name: "too long", in: Resilient{IdleTimer: 500 * 24 * time.Hour}, wantErr: "idle timer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := tt.in.withDefaults()
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want one about %q", err, tt.wantErr)
				}
			case err != nil:
				t.Errorf("err = %v", err)
			case r.form() != tt.want:
				t.Errorf("form = %+v, want %+v", r.form(), tt.want)
			}
		})
	}
}

func TestGroupFormSameKind(t *testing.T) {
	res := groupForm{resilient: true, buckets: 256, idle: 12000}
	tests := []struct {
		a, b groupForm
		want bool
	}{
		{groupForm{}, groupForm{}, true},
		{res, groupForm{}, false},
		{res, groupForm{resilient: true, buckets: 128, idle: 12000}, false},
		{res, groupForm{resilient: true, buckets: 256, idle: 100, unbalanced: 100}, true},
	}
	for _, tt := range tests {
		if got := tt.a.sameKind(tt.b); got != tt.want {
			t.Errorf("%+v.sameKind(%+v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// rekeyFixture is a table with routes through group {a,b,c}: n routes,
// named by index, and the ops of a chunk that moves some of them.
type rekeyFixture struct {
	tab     *nhTable
	from    uint32
	created []uint32
	ops     []op
}

func newRekeyFixture(t *testing.T, routes int, moves map[int]string) rekeyFixture {
	t.Helper()
	tab := newNHTable(100, 199)
	sets := map[string][]NextHop{
		"abc": canonicalHops(nil, hops("198.51.100.2", "198.51.100.3", "198.51.100.4")),
		"ab":  canonicalHops(nil, hops("198.51.100.2", "198.51.100.3")),
		"abd": canonicalHops(nil, hops("198.51.100.2", "198.51.100.3", "198.51.100.5")),
		"a":   canonicalHops(nil, hops("198.51.100.2")),
	}
	var from uint32
	for range routes {
		id, _, err := tab.acquire(sets["abc"], nil)
		if err != nil {
			t.Fatal(err)
		}
		from = id
	}
	f := rekeyFixture{tab: tab, from: from}
	for i := range routes {
		to, ok := moves[i]
		if !ok {
			continue
		}
		o := op{old: from}
		if to != "" {
			var err error
			if o.set, f.created, err = tab.acquire(sets[to], f.created); err != nil {
				t.Fatal(err)
			}
		}
		f.ops = append(f.ops, o)
	}
	return f
}

func TestRekeys(t *testing.T) {
	tests := []struct {
		name   string
		routes int
		moves  map[int]string // route index -> new set ("" deletes)
		want   bool           // the group changes in place
	}{
		{"every route leaves for one new set", 3, map[int]string{0: "ab", 1: "ab", 2: "ab"}, true},
		{"a member replaced by another", 2, map[int]string{0: "abd", 1: "abd"}, true},
		{"one route stays", 3, map[int]string{0: "ab", 1: "ab"}, false},
		{"two new sets", 2, map[int]string{0: "ab", 1: "abd"}, false},
		{"one route deleted", 2, map[int]string{0: "ab", 1: ""}, false},
		{"to a single: nothing to keep", 2, map[int]string{0: "a", 1: "a"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newRekeyFixture(t, tt.routes, tt.moves)
			got := rekeys(f.ops, f.created, f.tab)
			if (len(got) == 1) != tt.want {
				t.Fatalf("rekeys = %v, want a change in place: %v", got, tt.want)
			}
			for _, from := range got {
				if from != f.from {
					t.Errorf("kept group %d, want %d", from, f.from)
				}
			}
		})
	}
}

// TestRekeyExistingSet: a new set that already has a group is not fresh,
// so routes move to that group as usual.
func TestRekeyExistingSet(t *testing.T) {
	f := newRekeyFixture(t, 2, map[int]string{0: "ab", 1: "ab"})
	if len(f.created) == 0 {
		t.Fatal("fixture created nothing")
	}
	if got := rekeys(f.ops, nil, f.tab); got != nil {
		t.Errorf("rekeys with no new group = %v, want nil", got)
	}
}

// TestNHTableRekey checks the table after a change in place: the kept
// group has the new members and key, the dropped one is gone, references
// add up, and the member that left is deleted.
func TestNHTableRekey(t *testing.T) {
	f := newRekeyFixture(t, 3, map[int]string{0: "ab", 1: "ab", 2: "ab"})
	to := f.created[len(f.created)-1]
	leaver, _ := f.tab.lookup(canonicalHops(nil, hops("198.51.100.4")))
	deleted := f.tab.rekey(f.from, to, nil)
	// The chunk then releases each route's old set, as releaseSets does.
	for range f.ops {
		deleted = f.tab.release(f.from, deleted)
	}
	if !slices.Equal(deleted, []uint32{leaver}) {
		t.Errorf("deleted %v, want [%d] (the member that left)", deleted, leaver)
	}
	if _, ok := f.tab.objs[to]; ok {
		t.Errorf("the new group %d is still in the table", to)
	}
	o := f.tab.objs[f.from]
	if o == nil || o.refs != 3 || o.inKernel || len(o.members) != 2 {
		t.Fatalf("kept group = %+v, want 3 references, 2 members, to be written", o)
	}
	if id, ok := f.tab.lookup(canonicalHops(nil, hops("198.51.100.2", "198.51.100.3"))); !ok || id != f.from {
		t.Errorf("lookup of the new set = %d, %v; want %d", id, ok, f.from)
	}
	if _, ok := f.tab.lookup(canonicalHops(nil, hops("198.51.100.2", "198.51.100.3", "198.51.100.4"))); ok {
		t.Errorf("the old set is still indexed")
	}
	for _, m := range o.members {
		if mo := f.tab.objs[m.id]; mo == nil || mo.refs != 1 {
			t.Errorf("member %d: %+v, want one reference (the group)", m.id, mo)
		}
	}
}

// TestNHTableAdoptForm: an adopted group of another kind is not indexed
// (its routes move to a new group) and left alone until then; one of the
// same kind with other timers is indexed and to be replaced in place.
func TestNHTableAdoptForm(t *testing.T) {
	res := groupForm{resilient: true, buckets: 256, idle: 12000}
	nhs := []kernelNexthop{
		{id: 100, proto: ProtoBGP, gw: mustAddr("198.51.100.2")},
		{id: 101, proto: ProtoBGP, gw: mustAddr("198.51.100.3")},
		{id: 102, proto: ProtoBGP, gw: mustAddr("198.51.100.4")},
		{id: 110, proto: ProtoBGP, group: []nhMember{{100, 1}, {101, 1}}},                                                            // mpath
		{id: 111, proto: ProtoBGP, group: []nhMember{{100, 1}, {102, 1}}, form: res},                                                 // as wanted
		{id: 112, proto: ProtoBGP, group: []nhMember{{101, 1}, {102, 1}}, form: groupForm{resilient: true, buckets: 256, idle: 100}}, // other timer
	}
	tab := newNHTable(100, 199)
	tab.form = res
	tab.adopt(nhs, ProtoBGP)
	tests := []struct {
		id       uint32
		gws      []string
		indexed  bool
		inKernel bool
	}{
		{110, []string{"198.51.100.2", "198.51.100.3"}, false, true},
		{111, []string{"198.51.100.2", "198.51.100.4"}, true, true},
		{112, []string{"198.51.100.3", "198.51.100.4"}, true, false},
	}
	for _, tt := range tests {
		id, ok := tab.lookup(canonicalHops(nil, hops(tt.gws...)))
		if indexed := ok && id == tt.id; indexed != tt.indexed {
			t.Errorf("group %d indexed: %v, want %v", tt.id, indexed, tt.indexed)
		}
		if got := tab.objs[tt.id].inKernel; got != tt.inKernel {
			t.Errorf("group %d inKernel = %v, want %v", tt.id, got, tt.inKernel)
		}
	}
}
