package l2owner

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/client-go/tools/cache"
)

// nodeSeen is another node's heartbeat as this node observed it.
type nodeSeen struct {
	policies []string
	duration time.Duration
	rv       string
	observed time.Time // this node's clock when it saw the current rv
}

// addrSeen is an address lease as this node last saw it.
type addrSeen struct {
	lease   *coordinationv1.Lease
	holder  string
	changed time.Time // this node's clock when it saw the current rv
}

// store is what the watch saw, guarded by Elector.mu.
type store struct {
	nodes       map[string]*nodeSeen
	leases      map[netip.Addr]*addrSeen
	transitions []Transition
}

func newStore() store {
	return store{nodes: map[string]*nodeSeen{}, leases: map[netip.Addr]*addrSeen{}}
}

// obs says where an observed lease comes from.
type obs struct {
	deleted bool
	// forced: a deletion the informer found by relisting (a tombstone) or
	// the API server reported (NotFound). It is applied whatever version
	// the store holds: that version may be this node's own write, newer
	// than the tombstone's last known state, yet the lease is gone.
	forced bool
	// initial: from the informer's first list; not an ownership change.
	initial bool
}

// handler feeds the informer's events to observe.
type handler struct{ e *Elector }

func (h handler) OnAdd(obj any, initial bool) { h.e.observe(obj, obs{initial: initial}) }
func (h handler) OnUpdate(_, obj any)         { h.e.observe(obj, obs{}) }
func (h handler) OnDelete(obj any) {
	o := obs{deleted: true}
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj, o.forced = d.Obj, true
	}
	h.e.observe(obj, o)
}

// observe records a lease from the watch or from this node's own write.
func (e *Elector) observe(obj any, o obs) {
	l, ok := obj.(*coordinationv1.Lease)
	if !ok {
		return
	}
	now := time.Now()
	changed := true
	e.mu.Lock()
	switch l.Labels[labelKind] {
	case kindNode:
		changed = e.observeNode(l, o, now)
	case kindAddress:
		e.observeAddress(l, o, now)
	}
	e.mu.Unlock()
	if changed {
		e.kick()
	}
}

// observeList records a LIST of the address leases begun at start: every
// lease it holds, and the deletion of every stored lease it lacks that is
// not newer than the list. The store is then fresh as of start.
func (e *Elector) observeList(items []coordinationv1.Lease, listRV string, start time.Time) {
	now := time.Now()
	e.mu.Lock()
	in := map[netip.Addr]bool{}
	for i := range items {
		l := &items[i]
		if l.Labels[labelKind] != kindAddress {
			continue
		}
		if a, err := netip.ParseAddr(l.Annotations[annAddress]); err == nil {
			in[a] = true
		}
		e.observeAddress(l, obs{}, now)
	}
	for a, s := range e.st.leases {
		if !in[a] && !olderRV(listRV, s.lease.ResourceVersion) {
			e.observeAddress(s.lease, obs{deleted: true, forced: true}, now)
		}
	}
	if start.After(e.freshAt) {
		e.freshAt = start
	}
	e.mu.Unlock()
	e.kick()
}

// observeNode records a heartbeat, and says whether the view changed: a
// renewal of a node already live with the same policies changes nothing
// the loop must decide again (expiry is the loop's timer), which keeps the
// loop idle in the steady state however many nodes heartbeat.
func (e *Elector) observeNode(l *coordinationv1.Lease, o obs, now time.Time) bool {
	node := holderOf(l)
	if node == "" || node == e.c.Node || l.Name != NodeLeaseName(node) {
		// Not a heartbeat as written by an elector; and this node's own
		// liveness is its fence, not what it observes.
		return false
	}
	old := e.st.nodes[node]
	if old != nil && !o.forced && olderRV(l.ResourceVersion, old.rv) {
		return false
	}
	if o.deleted {
		delete(e.st.nodes, node)
		return old != nil
	}
	if old != nil && old.rv == l.ResourceVersion {
		return false
	}
	seen := &nodeSeen{
		policies: splitList(l.Annotations[annPolicies]),
		duration: leaseDuration(l),
		rv:       l.ResourceVersion,
		observed: now,
	}
	e.st.nodes[node] = seen
	return old == nil || !now.Before(old.observed.Add(old.duration)) ||
		!slices.Equal(old.policies, seen.policies) || seen.duration < old.duration
}

func (e *Elector) observeAddress(l *coordinationv1.Lease, o obs, now time.Time) {
	addr, err := netip.ParseAddr(l.Annotations[annAddress])
	if err != nil || AddressLeaseName(addr) != l.Name {
		return // not one of ours, or edited by hand: never act on it
	}
	old := e.st.leases[addr]
	if old != nil && !o.forced && olderRV(l.ResourceVersion, old.lease.ResourceVersion) {
		return
	}
	from := ""
	if old != nil {
		from = old.holder
	}
	to := ""
	if o.deleted {
		delete(e.st.leases, addr)
	} else {
		to = holderOf(l)
		if old != nil && old.lease.ResourceVersion == l.ResourceVersion {
			return
		}
		e.st.leases[addr] = &addrSeen{lease: l.DeepCopy(), holder: to, changed: now}
	}
	if from != to && !o.initial {
		e.st.transitions = append(e.st.transitions, Transition{
			Addr: addr, From: from, To: to, Services: splitList(l.Annotations[annServices]),
		})
	}
}

func holderOf(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// leaseDuration is the exact duration a heartbeat publishes, else its
// whole seconds.
func leaseDuration(l *coordinationv1.Lease) time.Duration {
	if d, err := time.ParseDuration(l.Annotations[annDuration]); err == nil && d > 0 {
		return d
	}
	if s := l.Spec.LeaseDurationSeconds; s != nil && *s > 0 {
		return time.Duration(*s) * time.Second
	}
	return DefaultLeaseDuration
}

// olderRV: a is an older resourceVersion than b. They are opaque to
// clients, but etcd's are increasing integers; when either is not one,
// the newer arrival wins.
func olderRV(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	return err1 == nil && err2 == nil && x < y
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func joinList(s []string) string {
	s = slices.Clone(s)
	slices.Sort(s)
	return strings.Join(slices.Compact(s), ",")
}
