package l2owner

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

func offlineElector(t testing.TB) *Elector {
	e, err := New(&rest.Config{Host: "http://127.0.0.1:1"}, Config{Namespace: "ns", Node: "self"})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func lease(name, kind, holder, rv string, ann map[string]string) *coordinationv1.Lease {
	l := &coordinationv1.Lease{}
	l.Name, l.ResourceVersion = name, rv
	l.Labels = map[string]string{labelKind: kind}
	l.Annotations = ann
	if holder != "" {
		l.Spec.HolderIdentity = &holder
	}
	return l
}

func TestObserve(t *testing.T) {
	e := offlineElector(t)
	a := netip.MustParseAddr("2001:db8::")
	for _, l := range []*coordinationv1.Lease{
		lease(NodeLeaseName("n1"), kindNode, "n1", "5", map[string]string{annPolicies: "p, q", annDuration: "1s"}),
		lease(NodeLeaseName("n1"), kindNode, "n1", "4", map[string]string{annPolicies: "old"}), // older: ignored
		lease(NodeLeaseName("self"), kindNode, "self", "6", nil),                               // own: its fence decides
		lease(NodeLeaseName("n2"), kindNode, "n3", "7", nil),                                   // holder not its name
		lease(NodeLeaseName("n4"), kindNode, "", "8", nil),
		lease(AddressLeaseName(a), kindAddress, "n1", "9", map[string]string{annAddress: a.String()}),
		lease("l2-addr-x", kindAddress, "n1", "10", map[string]string{annAddress: "198.51.100.1"}), // name mismatch
		lease(AddressLeaseName(a), kindAddress, "n2", "x", map[string]string{annAddress: "not an address"}),
		lease("other", "", "n1", "11", nil),
	} {
		e.observe(l, obs{})
	}
	e.observe("not a lease", obs{})
	if len(e.st.nodes) != 1 || e.st.nodes["n1"] == nil {
		t.Fatalf("nodes %v", e.st.nodes)
	}
	n1 := e.st.nodes["n1"]
	if n1.duration != time.Second || strings.Join(n1.policies, ",") != "p,q" {
		t.Errorf("n1 seen as %+v", n1)
	}
	if len(e.st.leases) != 1 || e.st.leases[a].holder != "n1" {
		t.Errorf("leases %v", e.st.leases)
	}
	if len(e.st.transitions) != 1 || e.st.transitions[0].Addr != a || e.st.transitions[0].To != "n1" || e.st.transitions[0].From != "" {
		t.Errorf("transitions %+v", e.st.transitions)
	}
	e.observe(lease(NodeLeaseName("n1"), kindNode, "n1", "12", nil), obs{deleted: true})
	if len(e.st.nodes) != 0 {
		t.Errorf("a deleted heartbeat is still seen: %v", e.st.nodes)
	}
}

// TestObserveDeletions: a deletion found by a relist (a tombstone) or
// reported by the API server is applied even over this node's own newer
// write; a late watch deletion of an older version is not.
func TestObserveDeletions(t *testing.T) {
	a := netip.MustParseAddr("198.51.100.7")
	ann := map[string]string{annAddress: a.String()}
	own := lease(AddressLeaseName(a), kindAddress, "self", "20", ann)
	for _, tc := range []struct {
		name string
		o    obs
		rv   string
		gone bool
	}{
		{"watch delete of an older version", obs{deleted: true}, "10", false},
		{"watch delete of the current version", obs{deleted: true}, "21", true},
		{"tombstone of an older version", obs{deleted: true, forced: true}, "10", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := offlineElector(t)
			e.observe(own, obs{})
			e.observe(lease(AddressLeaseName(a), kindAddress, "n1", tc.rv, ann), tc.o)
			if gone := e.st.leases[a] == nil; gone != tc.gone {
				t.Errorf("gone %v, want %v", gone, tc.gone)
			}
		})
	}
	// Through the informer's handler, as a relist delivers it.
	e := offlineElector(t)
	e.observe(own, obs{})
	handler{e}.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/" + own.Name, Obj: lease(own.Name, kindAddress, "n1", "10", ann)})
	if e.st.leases[a] != nil {
		t.Error("a tombstone was ignored")
	}
	// NotFound on a write against version 20 forgets it; a newer stored
	// version stays.
	e.observe(own, obs{})
	e.forget(a, "19")
	if e.st.leases[a] == nil {
		t.Error("forgot a newer version")
	}
	e.forget(a, "20")
	if e.st.leases[a] != nil {
		t.Error("kept a lease the API server says is gone")
	}
}

// TestObserveInitial: the informer's first list is no ownership change;
// a LIST drops what it lacks unless newer than itself.
func TestObserveInitial(t *testing.T) {
	e := offlineElector(t)
	a, b, c := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("198.51.100.3")
	l := func(a netip.Addr, holder, rv string) *coordinationv1.Lease {
		return lease(AddressLeaseName(a), kindAddress, holder, rv, map[string]string{annAddress: a.String()})
	}
	handler{e}.OnAdd(l(a, "self", "5"), true)
	handler{e}.OnAdd(l(b, "n1", "6"), true)
	handler{e}.OnAdd(l(c, "n1", "40"), false)
	if len(e.st.leases) != 3 || len(e.st.transitions) != 1 || e.st.transitions[0].Addr != c {
		t.Fatalf("leases %v, transitions %+v", e.st.leases, e.st.transitions)
	}
	start := time.Now()
	e.observeList([]coordinationv1.Lease{*l(a, "n2", "30")}, "30", start)
	if e.st.leases[a] == nil || e.st.leases[a].holder != "n2" || e.st.leases[b] != nil || e.st.leases[c] == nil {
		t.Errorf("after the list: %v", e.st.leases)
	}
	if !e.freshAt.Equal(start) {
		t.Errorf("fresh at %v, want %v", e.freshAt, start)
	}
}

// FuzzObserve: whatever the API server returns, observing and deciding
// never panic.
func FuzzObserve(f *testing.F) {
	f.Add("n1", "p,q", "1.5s", "198.51.100.1", "3", true)
	f.Add("", ",,", "-1s", "2001:db8::%zone", "x", false)
	f.Fuzz(func(t *testing.T, holder, policies, duration, addr, rv string, node bool) {
		e := offlineElector(t)
		ann := map[string]string{annPolicies: policies, annDuration: duration, annAddress: addr, annServices: policies}
		kind, name := kindAddress, "l2-addr-x"
		if a, err := netip.ParseAddr(addr); err == nil {
			name = AddressLeaseName(a)
		}
		if node {
			kind, name = kindNode, NodeLeaseName(holder)
		}
		e.observe(lease(name, kind, holder, rv, ann), obs{})
		v := e.snapshot(time.Now())
		e.plan(&v)
		e.observe(lease(name, kind, holder, rv, ann), obs{deleted: true})
	})
}
