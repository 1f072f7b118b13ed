package l2owner

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var all3 = []string{"node1", "node2", "node3"}

// waitHolders waits until every address lease of want names expect's node.
func (c *cluster) waitHolders(timeout time.Duration, want []Want, expect func(netip.Addr) string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	leases := c.env.Client.CoordinationV1().Leases(c.ns)
	err := c.env.Poll(ctx, "the address leases to move", func(ctx context.Context) error {
		for _, w := range want {
			l, err := leases.Get(ctx, AddressLeaseName(w.Addr), metav1.GetOptions{})
			if err != nil {
				return err
			}
			if h := holderOf(l); h != expect(w.Addr) {
				return fmt.Errorf("%s held by %q, want %q", w.Addr, h, expect(w.Addr))
			}
		}
		return nil
	})
	if err != nil {
		c.t.Fatal(err)
	}
}

// stepped waits for m's loop to have made its first step.
func stepped(t *testing.T, m *member) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		m.e.mu.Lock()
		ok := m.e.status != nil
		m.e.mu.Unlock()
		if ok {
			return
		}
	}
	t.Fatalf("%s: no step in 30s", m.node)
}

// TestRestartBeforeSet: a holder that restarts (its heartbeat still live)
// writes nothing before it has been told what is wanted and whether it is
// a candidate, then answers for its addresses again without moving them:
// no transition at all, not even from its first list of the leases.
func TestRestartBeforeSet(t *testing.T) {
	// A long lease duration: the restart must fit in it on a slow machine.
	c, want := threeNodes(t, 30, 6*time.Second, time.Second)
	c.kill(c.members["node1"])
	c.rec.mu.Lock()
	before := len(c.rec.trans)
	c.rec.mu.Unlock()
	m := c.newMember("node1", 0)
	c.run(m)
	stepped(t, m)
	m.e.SetCandidacy(true, []string{"p"})
	m.e.Set(want)
	c.waitOwners(10*time.Second, want, bestFn(all3...))
	c.rec.mu.Lock()
	after := c.rec.trans[before:]
	c.rec.mu.Unlock()
	if len(after) != 0 {
		t.Errorf("%d transitions after a restart, first %+v", len(after), after[0])
	}
}

// TestStopBeforeSync: Stop called while the API server is unreachable
// gives up with ctx; when the API server comes back the elector neither
// heartbeats nor acquires (its responder is closed by then), and Run ends.
func TestStopBeforeSync(t *testing.T) {
	c := newCluster(t, 0, 0)
	want := wants(10, "p")
	c.start("node2", want, "p")
	m := c.newMember("node1", 0)
	m.frozen.Store(true)
	m.e.Set(want)
	m.e.SetCandidacy(true, []string{"p"})
	c.run(m)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := m.e.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop before the sync: %v", err)
	}
	m.frozen.Store(false)
	select {
	case <-m.done:
		m.done <- nil
	case <-time.After(time.Minute):
		t.Fatal("Run did not end once the API server came back")
	}
	c.waitOwners(10*time.Second, want, bestFn("node2"))
	leases := c.env.Client.CoordinationV1().Leases(c.ns)
	if _, err := leases.Get(context.Background(), NodeLeaseName("node1"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("node1's heartbeat after Stop: %v", err)
	}
	c.waitHolders(10*time.Second, want, bestFn("node2"))
}

// TestCandidacyLostSlowResponder: a node that stops being a candidate
// deletes its heartbeat only once its responder stopped answering (here,
// slowly), or peers would take its addresses while it still answers.
func TestCandidacyLostSlowResponder(t *testing.T) {
	c, want := threeNodes(t, 30, 0, 0)
	m := c.members["node1"]
	m.changeDelay.Store(int64(300 * time.Millisecond))
	since := time.Now()
	m.e.SetCandidacy(false, nil)
	c.waitOwners(DefaultLeaseDuration+margin, want, bestFn("node2", "node3"))
	c.checkSafety(want, "node1", bestFn("node2", "node3"), since)
}

// TestStuckLoop: a node whose deciding loop is stuck in a callback stops
// renewing its heartbeat, so that the others take its addresses rather
// than leave them with a node that cannot act.
func TestStuckLoop(t *testing.T) {
	c, _ := threeNodes(t, 30, 0, 0)
	m := c.members["node1"]
	m.blockTrans.Store(true)
	defer m.unblock()
	more := wants(31, "p") // the new address's transition blocks node1's loop
	c.setAll(more)
	c.waitHolders(DefaultLeaseDuration+margin, more, bestFn("node2", "node3"))
}

// TestHealedCut: a node cut off long enough to lose its addresses
// answers, once it is back, only for leases it has read since: never for
// its stale copy, while the new holder still answers.
func TestHealedCut(t *testing.T) {
	c, want := threeNodes(t, 30, 0, 0)
	m := c.members["node1"]
	m.frozen.Store(true)
	c.waitOwners(DefaultLeaseDuration+margin, want, bestFn("node2", "node3"))
	// The cut heals, but node1's informer takes its time to relist; the
	// others' responders take theirs to stop, so that node1 answering
	// from its stale copy would overlap.
	for _, n := range []string{"node2", "node3"} {
		c.members[n].changeDelay.Store(int64(100 * time.Millisecond))
	}
	m.held.Store(true)
	m.frozen.Store(false)
	since := time.Now()
	time.Sleep(2 * DefaultLeaseDuration) // the relist's delay, not a wait for a condition
	m.held.Store(false)
	c.waitOwners(30*time.Second, want, bestFn(all3...))
	if a, nodes := c.rec.overlap(since); len(nodes) > 0 {
		t.Errorf("%s answered by %v at once", a, nodes)
	}
}

// overlap replays every OnChange after since and finds an address two
// nodes answered for at the same time.
func (r *recorder) overlap(since time.Time) (netip.Addr, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := map[string][]netip.Addr{}
	for _, c := range r.changes {
		cur[c.node] = c.owned
		if c.at.Before(since) {
			continue
		}
		by := map[netip.Addr][]string{}
		for node, owned := range cur {
			for _, a := range owned {
				by[a] = append(by[a], node)
				if len(by[a]) > 1 {
					return a, by[a]
				}
			}
		}
	}
	return netip.Addr{}, nil
}

// TestReapStaleHeartbeat: the heartbeat of a node that vanished is
// deleted once it has been unchanged long enough; the live ones stay.
func TestReapStaleHeartbeat(t *testing.T) {
	c := newCluster(t, 0, 0)
	ctx := context.Background()
	leases := c.env.Client.CoordinationV1().Leases(c.ns)
	ghost := "ghost"
	l := &coordinationv1.Lease{}
	l.Name = NodeLeaseName(ghost)
	l.Labels = map[string]string{labelKind: kindNode}
	l.Spec.HolderIdentity = &ghost
	if _, err := leases.Create(ctx, l, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := wants(3, "p")
	m := c.newMember("node1", 0)
	m.e.reapAfter = 2 * time.Second
	m.e.Set(want)
	m.e.SetCandidacy(true, []string{"p"})
	c.run(m)
	c.waitOwners(10*time.Second, want, bestFn("node1"))
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c.waitGone(pctx, NodeLeaseName(ghost))
	if _, err := leases.Get(ctx, NodeLeaseName("node1"), metav1.GetOptions{}); err != nil {
		t.Errorf("node1's own heartbeat: %v", err)
	}
}

// TestOwnFenceLapses: a holder whose renewals are so slow that its own
// fence lapses between them, while the others still see it live, hands
// nothing over: the addresses would only bounce back and forth.
func TestOwnFenceLapses(t *testing.T) {
	c, _ := threeNodes(t, 30, 0, 0)
	c.rec.mu.Lock()
	before := len(c.rec.trans)
	c.rec.mu.Unlock()
	c.members["node1"].delay.Store(int64(700 * time.Millisecond))
	// Nothing may change, so this watches for a while rather than for a
	// condition: three lease durations, several lapses of node1's fence.
	time.Sleep(3 * DefaultLeaseDuration)
	c.rec.mu.Lock()
	var moved []Transition
	for _, tr := range c.rec.trans[before:] {
		// A late echo of the settling among the others is not the point.
		if tr.From == "node1" || tr.To == "node1" {
			moved = append(moved, tr)
		}
	}
	c.rec.mu.Unlock()
	if len(moved) != 0 {
		t.Errorf("%d changes of node1's addresses, first %+v", len(moved), moved[0])
	}
}
