package home_test

import (
	"encoding/json"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/home"
	"github.com/bgplb/bgplb/lab/seed"
)

// TestClusterL2 is issue 16's proof on the real cluster (`bgplb lab up
// --mode l2`): no router sessions; the client on the LAN reaches the
// Pi-hole's address, which one node answers ARP for; that node is cut
// off; the client's next queries are answered through the other node,
// its neighbour table shows the other node's MAC, and the gratuitous ARPs
// that moved it were on its link. IPv6: the client resolves the v6
// address (NDP) to its owner's MAC. Heal, faster lease timings, move and
// down work as in BGP mode.
func TestClusterL2(t *testing.T) {
	c := startClusterWith(t, "labl", func(o *home.Options) { o.Mode = home.ModeL2 })
	ctx, o, r, kubectl, out := c.ctx, c.o, c.r, c.kubectl, c.out
	other := map[string]string{seed.Node1: seed.Node2, seed.Node2: seed.Node1}

	// No router sessions: nothing BGP is configured, no router daemon runs.
	if got := kubectl("get", "bgprouters,bgpannouncementpolicies", "-o", "name"); strings.TrimSpace(got) != "" {
		t.Errorf("BGP objects in L2 mode: %s", got)
	}
	if _, ok := c.st.Procs["router"]; ok {
		t.Error("a router daemon runs in L2 mode")
	}
	if ip := kubectl("get", "svc", "pihole-l2", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}"); ip != home.L2VIP.String() {
		t.Errorf("the L2 Pi-hole Service got %q, want %s", ip, home.L2VIP)
	}

	owner := c.owner(home.L2VIP)
	c.wantL2Answer("after up", owner)
	c.wantNeighbor("after up", home.L2VIP, owner)
	// IPv6: the client's neighbour solicitation is answered by the v6
	// address's owner (nothing serves DNS behind it: pods are IPv4 only).
	c.wantNeighbor("after up", home.L2VIP6, c.owner(home.L2VIP6))
	r.do("status", func() error { return home.Status(ctx, o) })
	for _, want := range [][]string{{home.L2VIP.String(), owner, "ago"}, {home.L2VIP.String(), "lladdr", owner + "'s MAC"},
		{"answered by the Pi-hole on " + owner}, {"L2 ADDRESS"}} {
		if !hasLine(out.String(), want...) {
			t.Errorf("status has no line with %q:\n%s", want, out.String())
		}
	}

	// Cut the owner, with the speakers' default lease timings, then with
	// 600 ms leases.
	for _, tuned := range []bool{false, true} {
		name := "default lease"
		if tuned {
			name = "lease 600ms"
			r.do("lease 600ms 200ms", func() error {
				return home.TuneLease(ctx, o, home.L2Lease{Duration: 600 * time.Millisecond, Renew: 200 * time.Millisecond})
			})
		}
		fo, got := c.failoverOptions()
		r.do("fail owner ("+name+")", func() error { return home.Fail(ctx, fo, home.OwnerNode) })
		// Fail names the owner it cut at the moment it cuts: the other
		// node owns the address now.
		owner = other[c.owner(home.L2VIP)]
		t.Logf("%s: %s cut, the client answered via %s %v after the cut; %d queries lost; %d gratuitous ARPs seen\n%s",
			name, owner, other[owner], got.answered, got.lost, got.garps, out.String())
		// Issue 16's goal is < 2 s (default) and < 1 s (tuned): figures for
		// the benchmark; the bound here is generous, for a busy machine.
		if got.answered <= 0 || got.answered > 10*time.Second {
			t.Errorf("%s: first answer %v after the cut, want > 0 and < 10 s", name, got.answered)
		}
		if got.garps < 1 {
			t.Errorf("%s: no gratuitous ARP from %s seen on the client's link after the cut", name, other[owner])
		}
		c.wantNeighbor("after the failover", home.L2VIP, other[owner])
		c.wantL2Answer("after the failover", other[owner])
		if !strings.Contains(out.String(), "cutting "+owner+", the owner of") {
			t.Errorf("fail did not cut the owner %s:\n%s", owner, out.String())
		}
		r.do("heal", func() error { return home.Heal(ctx, o, owner) })
		c.wantOwnerAnswer("after heal")
	}

	// Move: the owner is cordoned and its pod moves; the address follows.
	var moved time.Duration
	mo := o
	mo.Figure = func(name string, d time.Duration) { moved = d }
	r.do("move", func() error { return home.Move(ctx, mo) })
	t.Logf("move: %s changed hands %v after the cordon\n%s", home.L2VIP, moved, out.String())
	if moved <= 0 {
		t.Errorf("move measured nothing")
	}
	owner = c.wantOwnerAnswer("after move")
	c.wantNeighbor("after move", home.L2VIP, owner)

	// The verbs that act on BGP say so.
	if err := home.TuneBFD(ctx, o, 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), "L2 mode") {
		t.Errorf("bfd in L2 mode: %v", err)
	}

	out.Reset()
	gone := c.down()
	checkGone(t, gone, o.StateDir)
	checkNoCgroups(t, gone.ID)
}

// hasLine says whether a line of out holds every one of words.
func hasLine(out string, words ...string) bool {
	for _, l := range strings.Split(out, "\n") {
		all := true
		for _, w := range words {
			all = all && strings.Contains(l, w)
		}
		if all {
			return true
		}
	}
	return false
}

// failover is what Fail measured in L2 mode.
type failover struct {
	answered    time.Duration
	lost, garps int
}

// failoverOptions are the lab's options with Fail's figures going to the
// returned failover.
func (c *cluster) failoverOptions() (home.Options, *failover) {
	f := &failover{}
	o := c.o
	o.Figure = func(name string, d time.Duration) {
		if name == "l2-answered" {
			f.answered = d
		}
	}
	o.Count = func(name string, n int) {
		switch name {
		case "l2-lost":
			f.lost = n
		case "l2-announcements":
			f.garps = n
		}
	}
	return o, f
}

// owner is the node that owns addr now; the test fails without one.
func (c *cluster) owner(addr netip.Addr) string {
	c.r.t.Helper()
	var node string
	if err := lab.Poll(c.ctx, 100*time.Millisecond, func() (bool, error) {
		owners, err := home.Owners(c.ctx, c.o)
		if err != nil {
			return false, err
		}
		node = owners[addr]
		return node != "", nil
	}); err != nil {
		c.r.t.Fatalf("no owner of %s: %v", addr, err)
	}
	return node
}

// wantL2Answer checks that the client's query of the L2 address is
// answered by node's Pi-hole (ETP Local: the owner's own pod).
func (c *cluster) wantL2Answer(when, node string) {
	c.r.t.Helper()
	var last string
	if err := lab.Poll(c.ctx, 100*time.Millisecond, func() (bool, error) {
		a, err := c.s.Query(c.ctx, seed.Client, home.L2VIP, "pihole.lab.", false)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = "answered by " + a.Node
		return a.Node == node, nil
	}); err != nil {
		c.r.t.Errorf("%s: no answer at %s from %s's Pi-hole (last: %s): %v", when, home.L2VIP, node, last, err)
	}
}

// wantOwnerAnswer checks that the client's query of the L2 address is
// answered by the Pi-hole of the node that owns it, reading the owner
// again on each try (an address still changing hands must not make it
// wait for the wrong node), and returns that node.
func (c *cluster) wantOwnerAnswer(when string) string {
	c.r.t.Helper()
	var last, owner string
	if err := lab.Poll(c.ctx, 100*time.Millisecond, func() (bool, error) {
		owners, err := home.Owners(c.ctx, c.o)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		owner = owners[home.L2VIP]
		a, err := c.s.Query(c.ctx, seed.Client, home.L2VIP, "pihole.lab.", false)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = "answered by " + a.Node
		return owner != "" && a.Node == owner, nil
	}); err != nil {
		c.r.t.Errorf("%s: no answer at %s from its owner %q's Pi-hole (last: %s): %v", when, home.L2VIP, owner, last, err)
	}
	return owner
}

// wantNeighbor checks that the client's neighbour entry for addr names
// node's LAN MAC, asking addr until it does (a new entry is made on
// demand).
func (c *cluster) wantNeighbor(when string, addr netip.Addr, node string) {
	c.r.t.Helper()
	mac := macOf(c.r.t, c.s, node)
	var last string
	if err := lab.Poll(c.ctx, 100*time.Millisecond, func() (bool, error) {
		b, err := c.s.Host(seed.Client).IPOutput(c.ctx, "-j", "neigh", "show", "to", addr.String())
		if err != nil {
			return false, err
		}
		var ns []home.Neighbor
		if err := json.Unmarshal(b, &ns); err != nil {
			return false, err
		}
		last = string(b)
		for _, n := range ns {
			if n.Dst == addr && strings.EqualFold(n.LLAddr, mac.String()) {
				return true, nil
			}
		}
		_, _ = c.s.Query(c.ctx, seed.Client, addr, "pihole.lab.", false) // resolve it
		return false, nil
	}); err != nil {
		c.r.t.Errorf("%s: the client's neighbour entry for %s never named %s's MAC %s (last: %s): %v", when, addr, node, mac, last, err)
	}
}

// macOf is node's MAC on the LAN.
func macOf(t testing.TB, s *seed.Seed, node string) net.HardwareAddr {
	t.Helper()
	var mac net.HardwareAddr
	if err := s.Host(node).Do(func() error {
		ifi, err := net.InterfaceByName(lab.DefaultIfname)
		if err == nil {
			mac = ifi.HardwareAddr
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return mac
}

// BenchmarkL2Failover measures issue 16's failover as the LAN's client
// sees it, asking the Pi-hole's L2 address every 20 ms (one try each,
// 500 ms to answer): the owner is cut off (LAN and API links), and
// answered-ms is the time from the cut to the first query the other
// node's Pi-hole answers; lost/op counts the queries lost, garps/op the
// gratuitous ARPs from the new owner the client's link carried after the
// cut. Default runs the speakers' default lease timings (1.5 s, renewed
// every 500 ms; goal < 2 s), Tuned600ms 600 ms leases renewed every
// 200 ms (goal < 1 s).
//
//	make bench-lab LAB_BENCH=L2Failover   (go test -run '^$' -bench L2Failover -benchtime 3x ./lab/home)
func BenchmarkL2Failover(b *testing.B) {
	c := startClusterWith(b, "labm", func(o *home.Options) { o.Mode = home.ModeL2 })
	other := map[string]string{seed.Node1: seed.Node2, seed.Node2: seed.Node1}
	for _, p := range []struct {
		name  string
		lease home.L2Lease
	}{
		{"Default", home.L2Lease{Duration: 1500 * time.Millisecond, Renew: 500 * time.Millisecond}},
		{"Tuned600ms", home.L2Lease{Duration: 600 * time.Millisecond, Renew: 200 * time.Millisecond}},
	} {
		b.Run(p.name, func(b *testing.B) {
			c.r.t = b
			c.r.do("lease "+p.lease.String(), func() error { return home.TuneLease(c.ctx, c.o, p.lease) })
			var total, most time.Duration
			var lost, garps int
			for b.Loop() {
				o, got := c.failoverOptions()
				c.r.do("fail owner", func() error { return home.Fail(c.ctx, o, home.OwnerNode) })
				if got.answered <= 0 {
					b.Fatalf("fail owner measured nothing:\n%s", c.out.String())
				}
				cut := other[c.owner(home.L2VIP)]
				c.r.do("heal "+cut, func() error { return home.Heal(c.ctx, c.o, cut) })
				total, most = total+got.answered, max(most, got.answered)
				lost, garps = lost+got.lost, garps+got.garps
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "answered-ms")
			b.ReportMetric(float64(most.Milliseconds()), "max-answered-ms")
			b.ReportMetric(float64(lost)/float64(b.N), "lost/op")
			b.ReportMetric(float64(garps)/float64(b.N), "garps/op")
		})
	}
}
