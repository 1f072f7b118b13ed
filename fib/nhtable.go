package fib

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// ErrNoNexthopIDs reports that every id of our nexthop id range is taken.
var ErrNoNexthopIDs = errors.New("fib: nexthop id range exhausted")

// nhMember is one entry of a nexthop group: a single object's id and its
// kernel weight (1..MaxWeight).
type nhMember struct {
	id     uint32
	weight uint32
}

// nhObject is a kernel nexthop object we own: either a single gateway or a
// group of single objects.
type nhObject struct {
	gw      netip.Addr // single: the gateway
	oif     int32      // single: interface the gateway resolved to (set by the shell)
	members []nhMember // group: members, in gateway order
	key     string     // index key, "" when another object holds the key
	refs    int        // routes using the object, plus groups containing it
	// bad is why a single gateway cannot be used (not on link, refused by
	// the kernel), or why a group was refused; nil when usable. Routes are
	// installed with their usable members only.
	bad      error
	resolved bool // single: bad and oif reflect a lookup
	inKernel bool // nexthop mode: the kernel holds the object in its current form
	// unwritten: a group created here that the kernel never took; mpath:
	// the kernel refused it as a resilient group, so it is written as a
	// hash-threshold one (formOf).
	unwritten, mpath bool
}

func (o *nhObject) group() bool { return o.members != nil }

func (o *nhObject) appendOIF(oifs *[]int32) {
	if oifs == nil {
		return
	}
	oif := int32(0)
	if o.gw.Zone() != "" {
		oif = o.oif
	}
	*oifs = append(*oifs, oif)
}

// nhTable is the pure state of our nexthop objects: content-addressed (one
// single object per gateway, one group per distinct weighted gateway set),
// reference counted, with ids allocated from a range we own.
//
// A route whose next hops change moves to the group of its new set
// (re-installed with the new id), and a group is deleted only when no route
// uses it. The kernel replaces a route atomically, so no packet sees a
// half-changed set, and a group's meaning never changes under the routes
// that share it; replacing a group in place needs every one of its routes
// to change the same way at once, which per-prefix changes do not promise.
// The one exception is rekeyTo, for resilient groups, when the shell has
// seen every route of a group move to one new set (groupmove.go).
//
// The table only decides: acquire and release report the ids to create and
// delete, in an order the kernel accepts (members before their group on
// create, groups before their members on delete); the shell sends them.
type nhTable struct {
	first, last uint32
	cursor      uint32
	objs        map[uint32]*nhObject
	index       map[string]uint32
	reserved    map[uint32]struct{} // ids in our range owned by someone else
	groups      int                 // objects that are groups
	// form is how our groups balance; adopted groups of another kind are
	// not indexed, so their routes move to new ones.
	form   groupForm
	keyBuf []byte
}

func newNHTable(first, last uint32) *nhTable {
	return &nhTable{
		first:    first,
		last:     last,
		cursor:   first,
		objs:     make(map[uint32]*nhObject),
		index:    make(map[string]uint32),
		reserved: make(map[uint32]struct{}),
	}
}

// appendKey appends the index key of a canonical hop set: the gateways,
// zones included (fe80::2%eth0 and fe80::2%eth1 are two gateways), with
// their canonical weights. The key is by gateway, not by member id, so that
// adopted objects are found again by what they mean.
func appendKey(b []byte, hops []NextHop) []byte {
	tag := byte('s')
	if len(hops) > 1 {
		tag = 'g'
	}
	b = append(b, tag)
	for _, h := range hops {
		a := h.Addr.As16()
		b = append(b, a[:]...)
		z := h.Addr.Zone()
		b = append(b, byte(len(z)))
		b = append(b, z...)
		if len(hops) > 1 {
			b = append(b, byte(h.Weight>>8), byte(h.Weight))
		}
	}
	return b
}

// lookup returns the id of the object for a canonical hop set, if any.
func (t *nhTable) lookup(hops []NextHop) (uint32, bool) {
	t.keyBuf = appendKey(t.keyBuf[:0], hops)
	id, ok := t.index[string(t.keyBuf)]
	return id, ok
}

// acquire takes a reference on the object for the canonical, non-empty hop
// set, creating it (and its members) when missing. Ids to create are
// appended to created in creation order.
func (t *nhTable) acquire(hops []NextHop, created []uint32) (uint32, []uint32, error) {
	if id, ok := t.lookup(hops); ok {
		t.objs[id].refs++
		return id, created, nil
	}
	if len(hops) == 1 {
		id, err := t.alloc()
		if err != nil {
			return 0, created, err
		}
		key := string(appendKey(nil, hops))
		t.objs[id] = &nhObject{gw: hops[0].Addr, key: key, refs: 1}
		t.index[key] = id
		return id, append(created, id), nil
	}
	members, created, err := t.acquireMembers(hops, created)
	if err != nil {
		return 0, created, err
	}
	id, err := t.alloc()
	if err != nil {
		for _, m := range members {
			created = t.undoCreate(m.id, created)
		}
		return 0, created, err
	}
	key := string(appendKey(nil, hops))
	t.objs[id] = &nhObject{members: members, key: key, refs: 1, unwritten: true}
	t.groups++
	t.index[key] = id
	return id, append(created, id), nil
}

// rekeyTo gives group from the canonical set hops (two or more next
// hops, with no group yet) in place: the kernel changes the group under
// its routes. Members it lacks are acquired (ids to create appended to
// created). Its old members keep their references until the kernel took
// the change: endRekey releases them, undoRekey puts them back. On error
// nothing changed.
func (t *nhTable) rekeyTo(from uint32, hops []NextHop, created []uint32) (rekeyUndo, []uint32, error) {
	members, created, err := t.acquireMembers(hops, created)
	if err != nil {
		return rekeyUndo{}, created, err
	}
	g := t.objs[from]
	u := rekeyUndo{members: g.members, key: g.key, inKernel: g.inKernel}
	if g.key != "" && t.index[g.key] == from {
		delete(t.index, g.key)
	}
	g.members, g.key = members, string(appendKey(nil, hops))
	g.inKernel, g.bad = false, nil
	t.index[g.key] = from
	return u, created, nil
}

// rekeyUndo is what a group had before rekeyTo.
type rekeyUndo struct {
	members  []nhMember
	key      string
	inKernel bool
}

// endRekey releases the old members of a group the kernel changed in
// place (ids nothing uses any more appended to deleted).
func (t *nhTable) endRekey(u rekeyUndo, deleted []uint32) []uint32 {
	for _, m := range u.members {
		deleted = t.release(m.id, deleted)
	}
	return deleted
}

// undoRekey gives group from back what it had before rekeyTo, as the
// kernel kept it when it refused the change, and releases the members
// rekeyTo acquired.
func (t *nhTable) undoRekey(from uint32, u rekeyUndo, deleted []uint32) []uint32 {
	g := t.objs[from]
	if t.index[g.key] == from {
		delete(t.index, g.key)
	}
	added := g.members
	g.members, g.key, g.inKernel, g.bad = u.members, u.key, u.inKernel, nil
	if g.key != "" {
		t.index[g.key] = from
	}
	for _, m := range added {
		deleted = t.release(m.id, deleted)
	}
	return deleted
}

// formOf is the form group o is written in.
func (t *nhTable) formOf(o *nhObject) groupForm {
	if o.mpath {
		return groupForm{}
	}
	return t.form
}

// acquireMembers takes a reference on the single object of every hop, as
// the members of a group.
func (t *nhTable) acquireMembers(hops []NextHop, created []uint32) ([]nhMember, []uint32, error) {
	members := make([]nhMember, 0, len(hops))
	for _, h := range hops {
		mid, c, err := t.acquire([]NextHop{{Addr: h.Addr}}, created)
		created = c
		if err != nil {
			for _, m := range members {
				created = t.undoCreate(m.id, created)
			}
			return nil, created, err
		}
		members = append(members, nhMember{id: mid, weight: kernelWeight(h)})
	}
	return members, created, nil
}

// undoCreate drops a reference taken by a failed acquire; an object that was
// created by it is also taken off the created list, as it was never sent.
func (t *nhTable) undoCreate(id uint32, created []uint32) []uint32 {
	gone := t.release(id, nil)
	for _, g := range gone {
		if i := slices.Index(created, g); i >= 0 {
			created = slices.Delete(created, i, i+1)
		}
	}
	return created
}

// release drops one reference; objects left unused are removed from the table
// and appended to deleted in deletion order.
func (t *nhTable) release(id uint32, deleted []uint32) []uint32 {
	o, ok := t.objs[id]
	if !ok {
		return deleted
	}
	o.refs--
	if o.refs > 0 {
		return deleted
	}
	delete(t.objs, id)
	if o.group() {
		t.groups--
	}
	if o.key != "" && t.index[o.key] == id {
		delete(t.index, o.key)
	}
	deleted = append(deleted, id)
	for _, m := range o.members {
		deleted = t.release(m.id, deleted)
	}
	return deleted
}

// alloc returns a free id of our range, searching on from the last one so
// that a freed id is not reused at once (a late kernel error about it
// cannot be mistaken for its successor).
func (t *nhTable) alloc() (uint32, error) {
	n := uint64(t.last) - uint64(t.first) + 1
	id := t.cursor
	for range n {
		cand := id
		if id == t.last {
			id = t.first
		} else {
			id++
		}
		_, used := t.objs[cand]
		_, res := t.reserved[cand]
		if !used && !res {
			t.cursor = id
			return cand, nil
		}
	}
	return 0, fmt.Errorf("%w: [%d, %d]", ErrNoNexthopIDs, t.first, t.last)
}

func (t *nhTable) inRange(id uint32) bool { return id >= t.first && id <= t.last }

// kernelNexthop is a nexthop object as the kernel reports it.
type kernelNexthop struct {
	id        uint32
	proto     uint8
	gw        netip.Addr
	oif       int32
	group     []nhMember
	form      groupForm // a group's type and, when resilient, parameters
	blackhole bool
}

// groupForm is how a nexthop group balances: hash-threshold (mpath), or
// resilient with a bucket table (timers in clock_t, 1/100 s). The kernel
// cannot change a group's type or bucket count in place; it can change the
// timers.
type groupForm struct {
	resilient  bool
	buckets    uint16
	idle       uint32
	unbalanced uint32
}

// sameKind reports whether a group of form a can be replaced in place by
// one of form b.
func (a groupForm) sameKind(b groupForm) bool {
	return a.resilient == b.resilient && (!a.resilient || a.buckets == b.buckets)
}

// adopt loads the objects a previous run left in the kernel: ours (our
// protocol, in our range) enter the table without references; other ids in
// our range are reserved. Routes then take their references with ref, and
// collect removes what nothing uses. When two objects mean the same thing,
// the first is indexed and the other lives on only until its routes move.
func (t *nhTable) adopt(nhs []kernelNexthop, proto uint8) {
	mine := func(n kernelNexthop) bool {
		return n.proto == proto && t.inRange(n.id) && !n.blackhole
	}
	for _, n := range nhs {
		switch {
		case !t.inRange(n.id):
		case !mine(n) || (n.group == nil && !n.gw.IsValid()):
			t.reserved[n.id] = struct{}{}
		case n.group == nil:
			o := &nhObject{gw: n.gw.Unmap(), oif: n.oif, inKernel: true}
			t.objs[n.id] = o
			t.indexObj(n.id, o, []NextHop{{Addr: o.gw}})
		}
	}
	for _, n := range nhs {
		if !mine(n) || n.group == nil {
			continue
		}
		// A group of the right kind with other timers is replaced in
		// place, which keeps a resilient group's buckets; one of another
		// kind is left as it is until its routes have moved.
		o := &nhObject{members: slices.Clone(n.group), inKernel: n.form == t.form || !n.form.sameKind(t.form)}
		t.objs[n.id] = o
		t.groups++
		hops := make([]NextHop, 0, len(n.group))
		complete := true
		for _, m := range n.group {
			mo, ok := t.objs[m.id]
			if !ok || mo.group() {
				complete = false
				continue
			}
			mo.refs++
			hops = append(hops, NextHop{Addr: mo.gw, Weight: m.weight})
		}
		if complete && len(hops) > 1 && sortedUnique(hops) && n.form.sameKind(t.form) {
			normalizeWeights(hops)
			t.indexObj(n.id, o, hops)
		}
	}
}

func (t *nhTable) indexObj(id uint32, o *nhObject, hops []NextHop) {
	key := string(appendKey(nil, hops))
	if _, dup := t.index[key]; dup {
		return
	}
	o.key = key
	t.index[key] = id
}

// ref takes a reference for an adopted route using id; it reports false
// when the id is not one of our objects.
func (t *nhTable) ref(id uint32) bool {
	o, ok := t.objs[id]
	if ok {
		o.refs++
	}
	return ok
}

// collect removes adopted objects that nothing references and returns their
// ids in deletion order.
func (t *nhTable) collect() []uint32 {
	var ids []uint32
	for id, o := range t.objs {
		if o.group() && o.refs == 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var deleted []uint32
	for _, id := range ids {
		t.objs[id].refs = 1
		deleted = t.release(id, deleted)
	}
	ids = ids[:0]
	for id, o := range t.objs {
		if o.refs == 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		t.objs[id].refs = 1
		deleted = t.release(id, deleted)
	}
	return deleted
}

// hops returns the canonical next hops an object stands for.
func (t *nhTable) hops(id uint32) ([]NextHop, bool) {
	o, ok := t.objs[id]
	if !ok {
		return nil, false
	}
	if !o.group() {
		return []NextHop{{Addr: o.gw}}, true
	}
	hops := make([]NextHop, 0, len(o.members))
	for _, m := range o.members {
		mo, ok := t.objs[m.id]
		if !ok {
			return nil, false
		}
		hops = append(hops, NextHop{Addr: mo.gw, Weight: m.weight})
	}
	return canonicalHops(nil, hops), true
}

// usable reports whether a route through the object can be installed: a
// usable gateway, or a group with at least one.
func (t *nhTable) usable(id uint32) bool {
	o, ok := t.objs[id]
	if !ok || o.bad != nil {
		return false
	}
	if !o.group() {
		return o.resolved
	}
	for _, m := range o.members {
		if t.good(m.id) {
			return true
		}
	}
	return false
}

// good reports whether a single object's gateway is usable.
func (t *nhTable) good(id uint32) bool {
	o, ok := t.objs[id]
	return ok && o.resolved && o.bad == nil
}

// liveMembers appends the members of a group whose gateways are usable.
func (t *nhTable) liveMembers(dst []nhMember, o *nhObject) []nhMember {
	for _, m := range o.members {
		if t.good(m.id) {
			dst = append(dst, m)
		}
	}
	return dst
}

// appendHops appends the next hops a route through the object carries now:
// the usable members with their weights, reduced again when some are left
// out. It appends nothing when no member is usable. With oifs, it also
// appends to *oifs, hop for hop, the interface a zoned gateway resolved to
// (0 for others, whose interface the kernel finds).
func (t *nhTable) appendHops(dst []NextHop, oifs *[]int32, id uint32) []NextHop {
	o, ok := t.objs[id]
	if !ok || o.bad != nil {
		return dst
	}
	if !o.group() {
		if t.good(id) {
			dst = append(dst, NextHop{Addr: o.gw})
			o.appendOIF(oifs)
		}
		return dst
	}
	start := len(dst)
	for _, m := range o.members {
		if t.good(m.id) {
			mo := t.objs[m.id]
			dst = append(dst, NextHop{Addr: mo.gw, Weight: m.weight})
			mo.appendOIF(oifs)
		}
	}
	// Member weights are the kernel's (1 for unweighted); normalizing gives
	// the canonical form, also of a set some members are missing from.
	normalizeWeights(dst[start:])
	return dst
}

// badMembers calls fn for every member of the object (or the single
// itself) whose gateway is not usable.
func (t *nhTable) badMembers(id uint32, fn func(gw netip.Addr, err error)) {
	o, ok := t.objs[id]
	if !ok {
		return
	}
	if !o.group() {
		if o.bad != nil {
			fn(o.gw, o.bad)
		}
		return
	}
	for _, m := range o.members {
		if mo := t.objs[m.id]; mo != nil && mo.bad != nil {
			fn(mo.gw, mo.bad)
		}
	}
}

// hasGroups reports whether any object is a group.
func (t *nhTable) hasGroups() bool { return t.groups > 0 }

// singles returns the ids of the single objects, sorted.
func (t *nhTable) singles() []uint32 {
	var ids []uint32
	for id, o := range t.objs {
		if !o.group() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// ids returns every object's id, singles first, each kind sorted.
func (t *nhTable) ids() []uint32 {
	ids := t.singles()
	n := len(ids)
	for id, o := range t.objs {
		if o.group() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids[n:])
	return ids
}
