package l2owner

import (
	"context"
	"net/netip"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// margin is the generous slack on timed assertions: the machine runs
// etcd, the API server and the tests on two cores.
const margin = 3 * time.Second

func threeNodes(t *testing.T, n int, duration, interval time.Duration) (*cluster, []Want) {
	c := newCluster(t, duration, interval)
	want := wants(n, "p")
	for _, node := range []string{"node1", "node2", "node3"} {
		c.start(node, want, "p")
	}
	c.waitOwners(30*time.Second, want, bestFn("node1", "node2", "node3"))
	return c, want
}

// TestOneOwnerEach: every address has exactly one owner, the best ranked,
// and each node owns some; the leases say the same; unwanted addresses'
// leases go.
func TestOneOwnerEach(t *testing.T) {
	c, want := threeNodes(t, 30, 0, 0)
	per := map[string]int{}
	for _, nodes := range c.rec.owners() {
		per[nodes[0]]++
	}
	for _, node := range []string{"node1", "node2", "node3"} {
		if per[node] == 0 {
			t.Errorf("%s owns nothing of 30 addresses: %v", node, per)
		}
	}
	ctx := context.Background()
	leases := c.env.Client.CoordinationV1().Leases(c.ns)
	for _, w := range want {
		l, err := leases.Get(ctx, AddressLeaseName(w.Addr), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if h := holderOf(l); h != bestOf(w.Addr, "node1", "node2", "node3") {
			t.Errorf("%s: lease holder %q", w.Addr, h)
		}
	}
	c.rec.mu.Lock()
	last := map[netip.Addr]Transition{}
	for _, tr := range c.rec.trans {
		last[tr.Addr] = tr
	}
	c.rec.mu.Unlock()
	for _, w := range want {
		tr := last[w.Addr]
		if tr.To != bestOf(w.Addr, "node1", "node2", "node3") || len(tr.Services) != 1 {
			t.Errorf("%s: last transition seen %+v", w.Addr, tr)
		}
	}
	st := c.members["node1"].e.Status()
	if len(st) != 30 || len(st[0].Candidates) != 3 || st[0].Holder == "" {
		t.Errorf("status: %+v", st[:min(len(st), 1)])
	}
	// Half the addresses go: their holders delete their leases.
	c.setAll(want[:15])
	c.waitOwners(10*time.Second, want[:15], bestFn("node1", "node2", "node3"))
	err := c.env.Poll(ctx, "unwanted leases to go", func(ctx context.Context) error {
		for _, w := range want[15:] {
			if _, err := leases.Get(ctx, AddressLeaseName(w.Addr), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCrash: a node cut off stops answering by its fence, before anyone
// else starts, and its addresses move to the next ranked within about
// LeaseDuration; also when its requests hang instead of failing, which
// holds its loop in writes (a partition).
func TestCrash(t *testing.T) {
	for _, c := range []struct {
		name string
		cut  func(*member)
	}{
		{"requests fail", func(m *member) { m.frozen.Store(true) }},
		{"requests hang", func(m *member) { m.hung.Store(true) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl, want := threeNodes(t, 30, 0, 0)
			since := time.Now()
			c.cut(cl.members["node1"])
			took := cl.waitOwners(DefaultLeaseDuration+margin, want, bestFn("node2", "node3"))
			t.Logf("failover in %v (lease duration %v)", took, DefaultLeaseDuration)
			cl.checkSafety(want, "node1", bestFn("node2", "node3"), since)
			cl.checkFence(want, "node1", bestFn("node2", "node3"), since)
		})
	}
}

// TestStalledWatch: a node whose watch stalls sees every other heartbeat
// expire, but takes nothing from nodes that still renew.
func TestStalledWatch(t *testing.T) {
	c, want := threeNodes(t, 30, 0, 0)
	c.members["node3"].stalled.Store(true)
	// Nothing may change, so this watches for a while rather than for a
	// condition: three lease durations, past node3's view of the others
	// expiring (one).
	expect := bestFn("node1", "node2", "node3")
	for end := time.Now().Add(3 * DefaultLeaseDuration); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if diff := c.ownersDiff(want, expect); diff != "" {
			t.Fatal(diff)
		}
	}
}

// TestStop: a graceful stop hands over in well under LeaseDuration.
func TestStop(t *testing.T) {
	c, want := threeNodes(t, 30, 0, 0)
	since := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.members["node1"].e.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	c.waitOwners(DefaultLeaseDuration/2, want, bestFn("node2", "node3"))
	t.Logf("graceful handover in %v from calling Stop", time.Since(since))
	c.checkSafety(want, "node1", bestFn("node2", "node3"), since)
}

// TestComeBack: a node that comes back gets its addresses back.
func TestComeBack(t *testing.T) {
	c, want := threeNodes(t, 30, 0, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.members["node1"].e.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	c.waitOwners(10*time.Second, want, bestFn("node2", "node3"))
	since := time.Now()
	c.start("node1", want, "p")
	c.waitOwners(10*time.Second, want, bestFn("node1", "node2", "node3"))
	// Handing back is stop-first too.
	for _, w := range want {
		from := bestOf(w.Addr, "node2", "node3")
		if bestOf(w.Addr, "node1", "node2", "node3") != "node1" {
			continue
		}
		dropped, ok1 := c.rec.dropped(from, w.Addr, since)
		added, ok2 := c.rec.added("node1", w.Addr, since)
		if !ok1 || !ok2 || !dropped.Before(added) {
			t.Errorf("%s: %s dropped at %v (%v), node1 added at %v (%v)", w.Addr, from, dropped, ok1, added, ok2)
		}
	}
}

// TestEndpointsLeave: when the owner no longer has endpoints (Want.Nodes),
// it drops the address before the new owner takes it.
func TestEndpointsLeave(t *testing.T) {
	c, want := threeNodes(t, 30, 0, 0)
	var moved []Want
	for i, w := range want {
		if bestOf(w.Addr, "node1", "node2", "node3") == "node1" {
			want[i].Nodes = map[string]bool{"node2": true, "node3": true}
			moved = append(moved, want[i])
		}
	}
	since := time.Now()
	c.setAll(want)
	c.waitOwners(10*time.Second, want, func(a netip.Addr) string {
		for _, w := range moved {
			if w.Addr == a {
				return bestOf(a, "node2", "node3")
			}
		}
		return bestOf(a, "node1", "node2", "node3")
	})
	c.checkSafety(moved, "node1", bestFn("node2", "node3"), since)
	// No endpoints anywhere: nobody answers.
	for i := range want {
		want[i].Nodes = map[string]bool{}
	}
	c.setAll(want)
	c.waitOwners(10*time.Second, want, func(netip.Addr) string { return "" })
}

// TestPolicies: a node whose candidacy lacks the address's policy never
// owns it.
func TestPolicies(t *testing.T) {
	c := newCluster(t, 0, 0)
	want := wants(30, "p")
	c.start("node1", want, "p")
	c.start("node2", want, "p", "q")
	c.start("node3", want, "q")
	c.waitOwners(30*time.Second, want, bestFn("node1", "node2"))
	if n := len(c.rec.cur["node3"]); n != 0 {
		t.Errorf("node3 answers for %d addresses", n)
	}
}

// TestOrphans: a lease held by a node that is gone is taken over when its
// address is wanted, and deleted when nobody wants it.
func TestOrphans(t *testing.T) {
	c := newCluster(t, 0, 0)
	want := wants(2, "p")
	ctx := context.Background()
	leases := c.env.Client.CoordinationV1().Leases(c.ns)
	ghost := "ghost"
	for _, a := range []netip.Addr{want[0].Addr, netip.MustParseAddr("2001:db8::")} {
		l := &coordinationv1.Lease{}
		l.Name = AddressLeaseName(a)
		l.Labels = map[string]string{labelKind: kindAddress}
		l.Annotations = map[string]string{annAddress: a.String()}
		l.Spec.HolderIdentity = &ghost
		if _, err := leases.Create(ctx, l, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c.start("node1", want, "p")
	c.start("node2", want, "p")
	c.waitOwners(10*time.Second, want, bestFn("node1", "node2"))
	c.waitGone(ctx, AddressLeaseName(netip.MustParseAddr("2001:db8::")))
}

var errStill = apierrors.NewConflict(coordinationv1.Resource("leases"), "orphan", nil)

// waitGone waits until the lease name no longer exists.
func (c *cluster) waitGone(ctx context.Context, name string) {
	c.t.Helper()
	leases := c.env.Client.CoordinationV1().Leases(c.ns)
	err := c.env.Poll(ctx, name+" to go", func(ctx context.Context) error {
		_, err := leases.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err == nil {
			return errStill
		}
		return err
	})
	if err != nil {
		c.t.Fatal(err)
	}
}

// TestSteadyWrites: once settled, the API writes are one heartbeat per
// node per interval, whatever the number of addresses.
func TestSteadyWrites(t *testing.T) {
	const window = 3 * time.Second
	count := func(n int) int64 {
		c := newCluster(t, 0, 0)
		want := wants(n, "p")
		for _, node := range []string{"node1", "node2", "node3"} {
			c.start(node, want, "p")
		}
		c.waitOwners(30*time.Second, want, bestFn("node1", "node2", "node3"))
		time.Sleep(DefaultLeaseDuration) // past the last rate-limited retries, if any
		var before int64
		for _, m := range c.members {
			before += m.writes.Load()
		}
		time.Sleep(window) // a measuring window, not a wait for a condition
		var after int64
		for _, m := range c.members {
			after += m.writes.Load()
		}
		for _, m := range c.members {
			c.kill(m)
		}
		return after - before
	}
	w10, w100 := count(10), count(100)
	perNode := int64(window / DefaultRenewInterval)
	t.Logf("writes in %v: %d with 10 addresses, %d with 100 (3 nodes, expect about %d)", window, w10, w100, 3*perNode)
	for _, w := range []int64{w10, w100} {
		if w < 3*(perNode-2) || w > 3*(perNode+2) {
			t.Errorf("%d writes in %v; want about %d", w, window, 3*perNode)
		}
	}
}

// TestSlowAPIServer: with every request of every node delayed (a home
// lab's etcd on an SD card), a killed node's addresses still move within
// about LeaseDuration plus a few latencies, and a node cut off briefly
// becomes live again and gets its addresses back.
func TestSlowAPIServer(t *testing.T) {
	for _, latency := range []time.Duration{40 * time.Millisecond, 140 * time.Millisecond} {
		t.Run(latency.String(), func(t *testing.T) {
			c := newCluster(t, 0, 0)
			want := wants(30, "p")
			nodes := []string{"node1", "node2", "node3"}
			for _, node := range nodes {
				c.startSlow(node, latency, want, "p")
			}
			c.waitOwners(30*time.Second, want, bestFn(nodes...))
			// A short outage: node1 must come back, not stay out for good.
			c.members["node1"].frozen.Store(true)
			time.Sleep(200 * time.Millisecond) // the outage's length, not a wait for a condition
			c.members["node1"].frozen.Store(false)
			c.waitOwners(10*time.Second, want, bestFn(nodes...))
			// Cut node1 off for good.
			since := time.Now()
			c.members["node1"].frozen.Store(true)
			took := c.waitOwners(DefaultLeaseDuration+10*latency+margin, want, bestFn("node2", "node3"))
			t.Logf("failover in %v at %v per request (lease duration %v)", took, latency, DefaultLeaseDuration)
			c.checkSafety(want, "node1", bestFn("node2", "node3"), since)
		})
	}
}
