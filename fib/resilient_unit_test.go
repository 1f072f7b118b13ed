package fib

import (
	"errors"
	"fmt"
	"net/netip"
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
		{name: "set", in: Resilient{Buckets: 512, IdleTimer: 5 * time.Second, UnbalancedTimer: time.Minute},
			want: groupForm{resilient: true, buckets: 512, idle: 500, unbalanced: 6000}},
		{name: "fewest buckets", in: Resilient{Buckets: MaxNextHops}, want: groupForm{resilient: true, buckets: 256, idle: 12000}},
		{name: "most buckets", in: Resilient{Buckets: MaxBuckets}, want: groupForm{resilient: true, buckets: MaxBuckets, idle: 12000}},
		{name: "one bucket", in: Resilient{Buckets: 1}, wantErr: "Resilient.Buckets 1"},
		{name: "fewer buckets than members", in: Resilient{Buckets: MaxNextHops - 1}, wantErr: "Resilient.Buckets 255"},
		{name: "too many buckets", in: Resilient{Buckets: MaxBuckets + 1}, wantErr: "Resilient.Buckets 8193"},
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

var rekeySets = map[string][]string{
	"abc":  {"198.51.100.2", "198.51.100.3", "198.51.100.4"},
	"ab":   {"198.51.100.2", "198.51.100.3"},
	"abd":  {"198.51.100.2", "198.51.100.3", "198.51.100.5"},
	"a":    {"198.51.100.2"},
	"abcd": {"198.51.100.2", "198.51.100.3", "198.51.100.4", "198.51.100.5"},
	"abc*": {"198.51.100.2*2", "198.51.100.3*1", "198.51.100.4*1"},
}

// rekeyFixture is a table with routes 203.0.113.i/32 through group abc,
// and a current function over them that reports a repeat as not first.
func rekeyFixture(t *testing.T, routes int) (*nhTable, uint32, func(netip.Prefix) (uint32, bool, bool)) {
	t.Helper()
	tab := newNHTable(100, 199)
	var from uint32
	for range routes {
		id, _, err := tab.acquire(canonicalHops(nil, hops(rekeySets["abc"]...)), nil)
		if err != nil {
			t.Fatal(err)
		}
		from = id
	}
	seen := map[netip.Prefix]bool{}
	current := func(p netip.Prefix) (uint32, bool, bool) {
		i := int(p.Addr().As4()[3])
		if i >= routes {
			return 0, false, false
		}
		first := !seen[p]
		seen[p] = true
		// Route 9, when there is one, has a change held back already.
		return from, first, i == 9
	}
	return tab, from, current
}

func rekeyChange(i int, set string) Change {
	return change(fmt.Sprintf("203.0.113.%d/32", i), rekeySets[set]...)
}

func TestPlanMoves(t *testing.T) {
	tests := []struct {
		name    string
		routes  int
		changes []Change
		want    string // the one new set all changes move the group's routes to; "" mixed
		n       int    // changes of the group's routes
		keeps   bool   // the new set keeps every gateway of the group
	}{
		{"a member joins", 2, []Change{rekeyChange(0, "abcd"), rekeyChange(1, "abcd")}, "abcd", 2, true},
		{"a weight changes", 2, []Change{rekeyChange(0, "abc*")}, "abc*", 1, true},
		{"every route leaves for one new set", 3, []Change{rekeyChange(0, "ab"), rekeyChange(1, "ab"), rekeyChange(2, "ab")}, "ab", 3, false},
		{"a member replaced by another", 2, []Change{rekeyChange(0, "abd"), rekeyChange(1, "abd")}, "abd", 2, false},
		{"a new prefix too", 2, []Change{rekeyChange(0, "ab"), rekeyChange(5, "ab"), rekeyChange(1, "ab")}, "ab", 2, false},
		{"part of the routes", 3, []Change{rekeyChange(0, "ab"), rekeyChange(1, "ab")}, "ab", 2, false},
		{"one route set again as it is", 2, []Change{rekeyChange(0, "ab"), rekeyChange(1, "abc")}, "", 2, false},
		{"two new sets", 2, []Change{rekeyChange(0, "ab"), rekeyChange(1, "abd")}, "", 2, false},
		{"one route deleted", 2, []Change{rekeyChange(0, "ab"), {Prefix: mustPrefix("203.0.113.1/32")}}, "", 2, false},
		{"a prefix twice", 2, []Change{rekeyChange(0, "ab"), rekeyChange(0, "ab")}, "", 2, false},
		{"a prefix held back already", 10, []Change{rekeyChange(9, "ab")}, "", 1, false},
		{"to a single: nothing to keep", 2, []Change{rekeyChange(0, "a"), rekeyChange(1, "a")}, "", 2, false},
		{"an invalid prefix is skipped", 1, []Change{{NextHops: hops("198.51.100.2")}, rekeyChange(0, "ab")}, "ab", 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, from, current := rekeyFixture(t, tt.routes)
			plans := planMoves(tt.changes, current, tab)
			pl := plans[from]
			if len(plans) != 1 || pl == nil {
				t.Fatalf("plans = %v, want one for group %d", plans, from)
			}
			if pl.n != tt.n {
				t.Errorf("n = %d, want %d", pl.n, tt.n)
			}
			if tt.want == "" {
				if !pl.mixed {
					t.Errorf("plan %+v, want mixed", pl)
				}
				return
			}
			want := canonicalHops(nil, hops(rekeySets[tt.want]...))
			if pl.mixed || !hopsEqual(pl.hops, want) || pl.drops == tt.keeps {
				t.Errorf("plan %+v, want a move to %v, dropping a gateway: %v", pl, want, !tt.keeps)
			}
		})
	}
}

// TestPlanMovesExistingSet: a new set that already has a group is not
// taken in place: routes move to that group as usual.
func TestPlanMovesExistingSet(t *testing.T) {
	tab, from, current := rekeyFixture(t, 2)
	if _, _, err := tab.acquire(canonicalHops(nil, hops(rekeySets["ab"]...)), nil); err != nil {
		t.Fatal(err)
	}
	if pl := planMoves([]Change{rekeyChange(0, "ab"), rekeyChange(1, "ab")}, current, tab)[from]; pl == nil || !pl.mixed {
		t.Errorf("plan = %+v, want mixed", pl)
	}
}

// TestNHTableRekeyTo checks the table after a change in place: the group
// has the new members and key, references add up, and once the kernel
// took it the member that left is deleted while a new one is created;
// undone, the table is as before.
func TestNHTableRekeyTo(t *testing.T) {
	for _, undo := range []bool{false, true} {
		t.Run(fmt.Sprintf("undo=%v", undo), func(t *testing.T) {
			tab, from, _ := rekeyFixture(t, 3)
			leaver, _ := tab.lookup(canonicalHops(nil, hops("198.51.100.4")))
			u, created, err := tab.rekeyTo(from, canonicalHops(nil, hops(rekeySets["abd"]...)), nil)
			if err != nil {
				t.Fatal(err)
			}
			joiner, _ := tab.lookup(canonicalHops(nil, hops("198.51.100.5")))
			if !slices.Equal(created, []uint32{joiner}) {
				t.Errorf("created %v, want [%d]", created, joiner)
			}
			if undo {
				checkUndone(t, tab, from, tab.undoRekey(from, u, nil), joiner)
				return
			}
			if deleted := tab.endRekey(u, nil); !slices.Equal(deleted, []uint32{leaver}) {
				t.Errorf("deleted %v, want [%d]", deleted, leaver)
			}
			checkRekeyed(t, tab, from)
		})
	}
}

func checkRekeyed(t *testing.T, tab *nhTable, from uint32) {
	t.Helper()
	o := tab.objs[from]
	if o.refs != 3 || o.inKernel || len(o.members) != 3 {
		t.Fatalf("group = %+v, want 3 references, 3 members, to be written", o)
	}
	if id, ok := tab.lookup(canonicalHops(nil, hops(rekeySets["abd"]...))); !ok || id != from {
		t.Errorf("lookup of the new set = %d, %v; want %d", id, ok, from)
	}
	if _, ok := tab.lookup(canonicalHops(nil, hops(rekeySets["abc"]...))); ok {
		t.Errorf("the old set is still indexed")
	}
	for _, m := range o.members {
		if mo := tab.objs[m.id]; mo == nil || mo.refs != 1 {
			t.Errorf("member %d: %+v, want one reference (the group)", m.id, mo)
		}
	}
}

func checkUndone(t *testing.T, tab *nhTable, from uint32, deleted []uint32, joiner uint32) {
	t.Helper()
	if !slices.Equal(deleted, []uint32{joiner}) {
		t.Errorf("deleted %v, want [%d]", deleted, joiner)
	}
	if id, ok := tab.lookup(canonicalHops(nil, hops(rekeySets["abc"]...))); !ok || id != from {
		t.Errorf("lookup of the old set = %d, %v; want %d", id, ok, from)
	}
	if _, ok := tab.lookup(canonicalHops(nil, hops(rekeySets["abd"]...))); ok {
		t.Errorf("the new set is still indexed")
	}
	if o := tab.objs[from]; o.refs != 3 || len(o.members) != 3 {
		t.Errorf("group = %+v, want 3 references, 3 members", o)
	}
	for id, o := range tab.objs {
		if !o.group() && o.refs != 1 {
			t.Errorf("member %d: %+v, want one reference (the group)", id, o)
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

// TestPlanMovesRefused: a change Apply refuses (too many next hops) makes
// its group's move mixed, even when every route moves to that set: the
// group must not take members its routes were refused.
func TestPlanMovesRefused(t *testing.T) {
	tab, from, current := rekeyFixture(t, 2)
	var many []string
	for i := range MaxNextHops + 1 {
		many = append(many, fmt.Sprintf("2001:db8::%x", i+1))
	}
	changes := []Change{change("203.0.113.0/32", many...), change("203.0.113.1/32", many...)}
	if err := (&FIB{sets: tab, routes: newPrefixMap()}).desire(changes[0], 0); !errors.Is(err, ErrInvalidRoute) {
		t.Fatalf("desire = %v, want it refused", err)
	}
	if pl := planMoves(changes, current, tab)[from]; pl == nil || !pl.mixed {
		t.Errorf("plan = %+v, want mixed", pl)
	}
}
