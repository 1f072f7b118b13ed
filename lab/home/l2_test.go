package home

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/bgplb/bgplb/lab/labtest"
)

func TestWithLease(t *testing.T) {
	l := L2Lease{Duration: 600 * time.Millisecond, Renew: 200 * time.Millisecond}
	want := []string{"--node-name=$(NODE_NAME)", "--l2-lease-duration=600ms", "--l2-renew-interval=200ms"}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"none set", []string{"--node-name=$(NODE_NAME)"}},
		{"set with =", []string{"--l2-lease-duration=1.5s", "--node-name=$(NODE_NAME)", "--l2-renew-interval=500ms"}},
		{"set as two arguments", []string{"--l2-renew-interval", "500ms", "--node-name=$(NODE_NAME)", "--l2-lease-duration", "1.5s"}},
		{"set twice", []string{"--node-name=$(NODE_NAME)", "--l2-lease-duration=1s", "--l2-lease-duration=2s"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := withLease(c.args, l); !slices.Equal(got, want) {
				t.Errorf("withLease(%q) = %q, want %q", c.args, got, want)
			}
		})
	}
}

func TestL2LeaseCheck(t *testing.T) {
	for _, c := range []struct {
		l  L2Lease
		ok bool
	}{
		{L2Lease{600 * time.Millisecond, 200 * time.Millisecond}, true},
		{L2Lease{1500 * time.Millisecond, 500 * time.Millisecond}, true},
		{L2Lease{600 * time.Millisecond, 300 * time.Millisecond}, false}, // a renewal must fit twice
		{L2Lease{0, 200 * time.Millisecond}, false},
		{L2Lease{time.Second, 0}, false},
		{L2Lease{time.Second, -time.Millisecond}, false},
	} {
		if err := c.l.check(); (err == nil) != c.ok {
			t.Errorf("%v: %v, want ok %t", c.l, err, c.ok)
		}
	}
}

func TestLeaseOwners(t *testing.T) {
	lease := func(kind, addr string, holder *string, acquired time.Time) coordinationv1.Lease {
		l := coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{
			Labels:      map[string]string{addressLeaseLabel: kind},
			Annotations: map[string]string{addressLeaseAddr: addr},
		}}
		l.Spec.HolderIdentity = holder
		if !acquired.IsZero() {
			l.Spec.AcquireTime = &metav1.MicroTime{Time: acquired}
		}
		return l
	}
	node1, node2, none := "node1", "node2", ""
	at := time.Date(2026, 12, 7, 21, 0, 0, 0, time.UTC)
	got := leaseOwners([]coordinationv1.Lease{
		lease("address", "198.51.100.153", &node1, at),
		lease("address", "2001:db8:51::153", &node2, time.Time{}),
		lease("address", "198.51.100.154", &none, at), // handed over to no one
		lease("address", "198.51.100.155", nil, at),
		lease("node", "198.51.100.156", &node1, at), // a heartbeat
		lease("address", "not an address", &node1, at),
	})
	want := map[netip.Addr]owner{
		netip.MustParseAddr("198.51.100.153"):   {Node: "node1", Since: at},
		netip.MustParseAddr("2001:db8:51::153"): {Node: "node2"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for a, w := range want {
		if g := got[a]; g.Node != w.Node || !g.Since.Equal(w.Since) {
			t.Errorf("%s: got %+v, want %+v", a, g, w)
		}
	}
}

func TestSpreadMove(t *testing.T) {
	nodes := []string{"node1", "node2"}
	pod := func(name, node string, ready, deleting bool) corev1.Pod {
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{NodeName: node}}
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
		if deleting {
			p.DeletionTimestamp = &metav1.Time{Time: time.Now()}
		}
		return p
	}
	for _, c := range []struct {
		name   string
		pods   []corev1.Pod
		done   bool
		victim string
	}{
		{"one on each", []corev1.Pod{pod("a", "node1", true, false), pod("b", "node2", true, false)}, true, ""},
		{"both on node1", []corev1.Pod{pod("a", "node1", true, false), pod("b", "node1", true, false)}, false, "a"},
		{"one coming up", []corev1.Pod{pod("a", "node1", true, false), pod("b", "node1", true, false), pod("c", "node2", false, false)}, false, ""},
		{"one unscheduled", []corev1.Pod{pod("a", "node1", true, false), pod("c", "", false, false)}, false, ""},
		{"one terminating, two Ready on node2", []corev1.Pod{pod("a", "node1", true, true), pod("b", "node2", true, false), pod("c", "node2", true, false)}, false, "b"},
		{"only one pod", []corev1.Pod{pod("a", "node1", true, false)}, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			done, victim := spreadMove(readyByNode(c.pods), c.pods, nodes)
			name := ""
			if victim != nil {
				name = victim.Name
			}
			if done != c.done || name != c.victim {
				t.Errorf("got done %t, victim %q; want %t, %q", done, name, c.done, c.victim)
			}
		})
	}
}

func TestParseNeighbors(t *testing.T) {
	b := []byte(`[{"dst":"198.51.100.153","dev":"eth0","lladdr":"02:00:00:00:00:0b","state":["REACHABLE"]},
		{"dst":"2001:db8:51::153","dev":"eth0","state":["FAILED"]}]`)
	ns, err := parseNeighbors(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 2 || ns[0].Dst != L2VIP || ns[0].LLAddr != "02:00:00:00:00:0b" || ns[1].Dst != L2VIP6 || ns[1].LLAddr != "" {
		t.Fatalf("got %+v", ns)
	}
	if s := ns[1].String(); !strings.Contains(s, "(none) FAILED") {
		t.Errorf("String: %q", s)
	}
	if _, err := parseNeighbors([]byte("garbage")); err == nil {
		t.Error("garbage parsed")
	}
}

// The L2 Pi-hole is the BGP lab's Deployment with two replicas that
// prefer different nodes; nothing else changes.
func TestSpreadOut(t *testing.T) {
	var d, orig appsv1.Deployment
	if err := yaml.UnmarshalStrict([]byte(piholeDeployment), &d); err != nil {
		t.Fatal(err)
	}
	orig = *d.DeepCopy()
	spreadOut(&d)
	if *d.Spec.Replicas != 2 {
		t.Errorf("replicas %d", *d.Spec.Replicas)
	}
	terms := d.Spec.Template.Spec.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution
	if len(terms) != 1 || terms[0].PodAffinityTerm.TopologyKey != corev1.LabelHostname ||
		terms[0].PodAffinityTerm.LabelSelector.MatchLabels["k8s-app"] != "pi-hole" {
		t.Errorf("anti-affinity %+v", terms)
	}
	d.Spec.Replicas, d.Spec.Template.Spec.Affinity = orig.Spec.Replicas, nil
	a, _ := yaml.Marshal(d)
	b, _ := yaml.Marshal(orig)
	if string(a) != string(b) {
		t.Errorf("spreadOut changed more than replicas and affinity:\n%s\nwas\n%s", a, b)
	}
}

// The L2 variant needs the real cluster, and the mode is one of two: Up
// says so before building anything.
func TestUpModes(t *testing.T) {
	labtest.Require(t) // Up's own preflight (root, iproute2) comes first
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Mode: ModeL2, Cluster: false}, "real cluster"},
		{Options{Mode: "arp"}, `--mode "arp"`},
	} {
		c.o.StateDir = t.TempDir()
		err := Up(t.Context(), c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Up(%+v): %v, want an error saying %q", c.o, err, c.want)
		}
		if _, err := LoadState(c.o.StateDir); err == nil {
			t.Errorf("Up(%+v) recorded a lab", c.o)
		}
	}
}

func TestSteadyRun(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms ...int) []time.Time {
		var out []time.Time
		for _, m := range ms {
			out = append(out, t0.Add(time.Duration(m)*time.Millisecond))
		}
		return out
	}
	for _, c := range []struct {
		name    string
		answers []time.Time
		loss    time.Time
		pending []time.Time
		want    bool
	}{
		{"three in a row", at(20, 40, 60), time.Time{}, nil, true},
		{"two", at(20, 40), time.Time{}, nil, false},
		{"one before the loss", at(20, 60, 80), at(40)[0], nil, false},
		{"three after the loss", at(20, 60, 80, 100), at(40)[0], nil, true},
		{"a query in the run still out", at(20, 60, 80), time.Time{}, at(40), false},
		{"a query after the run still out", at(20, 40, 60), time.Time{}, at(80), true},
		{"a query before the loss still out", at(60, 80, 100), at(40)[0], at(20), true},
		{"out of order", at(60, 20, 40), time.Time{}, nil, true},
	} {
		if got := steadyRun(c.answers, c.loss, c.pending, 3); got != c.want {
			t.Errorf("%s: steadyRun = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestHeldFor(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC)
	hold := 3 * time.Second
	for _, c := range []struct {
		name string
		o    owner
		seen time.Time
		want bool
	}{
		{"no owner", owner{}, now.Add(-time.Minute), false},
		{"held long, seen long", owner{"node1", now.Add(-time.Minute)}, now.Add(-time.Minute), true},
		// The hand-back case: held since long before the wait began, but
		// the wait began just now.
		{"held long, seen just now", owner{"node1", now.Add(-time.Minute)}, now.Add(-time.Second), false},
		{"taken just now, seen long", owner{"node1", now.Add(-time.Second)}, now.Add(-time.Minute), false},
		{"no acquire time, seen long", owner{Node: "node1"}, now.Add(-hold), true},
		{"no acquire time, seen just now", owner{Node: "node1"}, now, false},
	} {
		if got := heldFor(c.o, c.seen, now, hold); got != c.want {
			t.Errorf("%s: heldFor = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestReadyEndpointOn(t *testing.T) {
	yes, no := true, false
	n1, n2 := "node1", "node2"
	ep := func(node *string, ready *bool) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{NodeName: node, Conditions: discoveryv1.EndpointConditions{Ready: ready}}
	}
	slices := func(es ...discoveryv1.Endpoint) []discoveryv1.EndpointSlice {
		return []discoveryv1.EndpointSlice{{}, {Endpoints: es}}
	}
	for _, c := range []struct {
		name string
		es   []discoveryv1.EndpointSlice
		want bool
	}{
		{"none", nil, false},
		{"ready there", slices(ep(&n2, &yes), ep(&n1, &yes)), true},
		{"ready unset means ready", slices(ep(&n1, nil)), true},
		{"not ready there", slices(ep(&n1, &no), ep(&n2, &yes)), false},
		{"no node name", slices(ep(nil, &yes)), false},
	} {
		if got := readyEndpointOn(c.es, n1); got != c.want {
			t.Errorf("%s: readyEndpointOn = %v, want %v", c.name, got, c.want)
		}
	}
}
