package l2owner

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/client-go/rest"
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
