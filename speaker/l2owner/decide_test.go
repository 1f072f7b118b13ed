package l2owner

import (
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"slices"
	"testing"
)

// bestOf returns, of nodes, the one ranked first for addr: the test's own
// reading of the rendezvous rule.
func bestOf(addr netip.Addr, nodes ...string) string {
	best, score := "", uint64(0)
	for _, n := range nodes {
		if s := Score(n, addr); best == "" || s > score || (s == score && n < best) {
			best, score = n, s
		}
	}
	return best
}

// addrLedBy finds an address of 198.51.100.0/24 for which the nodes rank in
// the given order (first best).
func addrLedBy(t *testing.T, order ...string) netip.Addr {
	t.Helper()
	for i := 1; i < 255; i++ {
		a := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
		if slices.Equal(Candidates(Want{Addr: a, Policies: []string{"p"}}, liveAll(order...)), order) {
			return a
		}
	}
	t.Fatalf("no address ranks %v", order)
	return netip.Addr{}
}

func liveAll(nodes ...string) map[string][]string {
	m := map[string][]string{}
	for _, n := range nodes {
		m[n] = []string{"p"}
	}
	return m
}

func TestDecide(t *testing.T) {
	a := addrLedBy(t, "n1", "n2", "n3") // n1 best, then n2, then n3
	w := Want{Addr: a, Policies: []string{"p"}}
	only := func(nodes ...string) Want {
		w := w
		w.Nodes = map[string]bool{}
		for _, n := range nodes {
			w.Nodes[n] = true
		}
		return w
	}
	all := liveAll("n1", "n2", "n3")
	for _, tc := range []struct {
		name string
		in   Input
		want Decision
	}{
		{"no lease, best acquires", Input{Self: "n1", Want: w, Live: all},
			Decision{Action: Acquire}},
		{"no lease, others wait", Input{Self: "n2", Want: w, Live: all},
			Decision{}},
		{"holder best answers", Input{Self: "n1", Want: w, Live: all, Holder: "n1"},
			Decision{Answer: true}},
		{"holder, better node came: stop and hand over", Input{Self: "n2", Want: w, Live: all, Holder: "n2"},
			Decision{Action: Handover, To: "n1"}},
		{"holder no longer live (fenced): hand over", Input{Self: "n1", Want: w, Live: liveAll("n2", "n3"), Holder: "n1"},
			Decision{Action: Handover, To: "n2"}},
		{"holder fenced, would still be best: write nothing", Input{Self: "n1", Want: w, Live: liveAll("n2", "n3"), Holder: "n1",
			Fenced: true, SelfPolicies: []string{"p"}},
			Decision{Ranked: []string{"n2", "n3"}}},
		{"holder fenced, not best even if live: hand over", Input{Self: "n2", Want: w, Live: liveAll("n1", "n3"), Holder: "n2",
			Fenced: true, SelfPolicies: []string{"p"}},
			Decision{Action: Handover, To: "n1"}},
		{"holder fenced, lost endpoints: hand over", Input{Self: "n1", Want: only("n3"), Live: liveAll("n2", "n3"), Holder: "n1",
			Fenced: true, SelfPolicies: []string{"p"}},
			Decision{Action: Handover, To: "n3"}},
		{"holder lost endpoints: hand over", Input{Self: "n1", Want: only("n3"), Live: all, Holder: "n1"},
			Decision{Action: Handover, To: "n3"}},
		{"holder, no candidate left: clear", Input{Self: "n1", Want: only(), Live: all, Holder: "n1"},
			Decision{Action: Handover}},
		{"holder lacks the policy: hand over", Input{Self: "n1", Want: w, Holder: "n1",
			Live: map[string][]string{"n1": {"other"}, "n2": {"p"}}},
			Decision{Action: Handover, To: "n2"}},
		{"other holder live candidate: wait", Input{Self: "n1", Want: w, Live: all, Holder: "n2"},
			Decision{}},
		{"other holder dead, best takes it", Input{Self: "n1", Want: w, Live: liveAll("n1", "n3"), Holder: "n2"},
			Decision{Action: Acquire}},
		{"other holder dead, not best: wait", Input{Self: "n3", Want: w, Live: liveAll("n1", "n3"), Holder: "n2"},
			Decision{}},
		{"holder dead, next best takes it", Input{Self: "n2", Want: w, Live: liveAll("n2", "n3"), Holder: "n1"},
			Decision{Action: Acquire}},
		{"live holder lost endpoints in my view: wait for its handover",
			Input{Self: "n1", Want: only("n1"), Live: all, Holder: "n2"},
			Decision{}},
		{"live holder lost endpoints long ago: take it",
			Input{Self: "n1", Want: only("n1"), Live: all, Holder: "n2", Overdue: true},
			Decision{Action: Acquire}},
		{"overdue but the holder is a candidate in my view: wait",
			Input{Self: "n1", Want: w, Live: all, Holder: "n2", Overdue: true},
			Decision{}},
		{"not live myself: never acquire", Input{Self: "n1", Want: w, Live: liveAll("n2"), Holder: ""},
			Decision{}},
		{"disagreeing views: n2 thinks n1 is dead, n1 holds and answers",
			Input{Self: "n1", Want: w, Live: all, Holder: "n1"},
			Decision{Answer: true}},
		{"disagreeing views: n2's side, n1 dead to it, takes over",
			Input{Self: "n2", Want: w, Live: liveAll("n2", "n3"), Holder: "n1"},
			Decision{Action: Acquire}},
		{"disagreeing views: n1 then sees n2 hold, n1 live and best: waits for n2",
			Input{Self: "n1", Want: w, Live: all, Holder: "n2"},
			Decision{}},
		{"disagreeing views: n2 sees n1 live again, hands back",
			Input{Self: "n2", Want: w, Live: all, Holder: "n2"},
			Decision{Action: Handover, To: "n1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Decide(tc.in)
			if got.Answer != tc.want.Answer || got.Action != tc.want.Action || got.To != tc.want.To {
				t.Errorf("Decide = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestCandidates(t *testing.T) {
	a := netip.MustParseAddr("2001:db8::7")
	live := map[string][]string{"n1": {"a", "b"}, "n2": {"b"}, "n3": {"c"}, "n4": nil}
	for _, tc := range []struct {
		policies []string
		nodes    map[string]bool
		want     []string
	}{
		{[]string{"b"}, nil, []string{"n1", "n2"}},
		{[]string{"c", "a"}, nil, []string{"n1", "n3"}},
		{[]string{"b"}, map[string]bool{"n2": true, "n3": true}, []string{"n2"}},
		{[]string{"b"}, map[string]bool{}, nil},
		{nil, nil, nil},
	} {
		got := Candidates(Want{Addr: a, Policies: tc.policies, Nodes: tc.nodes}, live)
		want := slices.Clone(tc.want)
		slices.SortFunc(want, func(x, y string) int {
			if Score(x, a) > Score(y, a) {
				return -1
			}
			return 1
		})
		if !slices.Equal(got, want) {
			t.Errorf("Candidates(%v, %v) = %v, want %v", tc.policies, tc.nodes, got, want)
		}
		if len(got) > 0 && got[0] != bestOf(a, tc.want...) {
			t.Errorf("best %s, want %s", got[0], bestOf(a, tc.want...))
		}
	}
}

// TestScoreFixed pins the hash: speakers of different versions must rank
// alike, so a change here is a breaking change.
func TestScoreFixed(t *testing.T) {
	got := fmt.Sprintf("%016x %016x", Score("node1", netip.MustParseAddr("198.51.100.1")),
		Score("node1", netip.MustParseAddr("2001:db8::1")))
	if got != scorePinned {
		t.Errorf("Score changed: %s, pinned %s", got, scorePinned)
	}
	if Score("n", netip.MustParseAddr("::ffff:198.51.100.1")) != Score("n", netip.MustParseAddr("198.51.100.1")) {
		t.Error("a v4-mapped address scores unlike its v4 form")
	}
}

// TestSpread: 3 nodes share 3000 addresses evenly, and removing one moves
// only its own addresses.
func TestSpread(t *testing.T) {
	nodes := []string{"node1", "node2", "node3"}
	count := map[string]int{}
	moved := 0
	const n = 3000
	for i := range n {
		a := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		w := Want{Addr: a, Policies: []string{"p"}}
		before := Candidates(w, liveAll(nodes...))[0]
		after := Candidates(w, liveAll("node1", "node2"))[0]
		count[before]++
		if before != after && before != "node3" {
			moved++
		}
	}
	for _, node := range nodes {
		if math.Abs(float64(count[node])-n/3) > n/3*0.1 {
			t.Errorf("%s leads %d of %d addresses; want about a third", node, count[node], n)
		}
	}
	if moved != 0 {
		t.Errorf("%d addresses of the remaining nodes moved", moved)
	}
}

var dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

func TestAddressLeaseName(t *testing.T) {
	seen := map[string]string{}
	for _, s := range []string{
		"198.51.100.1", "203.0.113.255", "::ffff:198.51.100.1",
		"2001:db8::", "2001:db8::1", "::", "::1", "2001:db8:0:0:1::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
		"fe80::1%eth0",
	} {
		a := netip.MustParseAddr(s)
		name := AddressLeaseName(a)
		if len(name) > 253 || !dnsSubdomain.MatchString(name) {
			t.Errorf("AddressLeaseName(%s) = %q, not a DNS subdomain", s, name)
		}
		key := a.Unmap().WithZone("").String()
		if prev, ok := seen[name]; ok && prev != key {
			t.Errorf("%s and %s share the name %q", prev, key, name)
		}
		seen[name] = key
	}
	if got := AddressLeaseName(netip.MustParseAddr("2001:db8::")); got != "l2-addr-2001-0db8-0000-0000-0000-0000-0000-0000" {
		t.Errorf("name %q", got)
	}
	if got := AddressLeaseName(netip.MustParseAddr("198.51.100.7")); got != "l2-addr-198-51-100-7" {
		t.Errorf("name %q", got)
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := Config{Namespace: "ns", Node: "n"}.withDefaults()
	if err != nil || c.LeaseDuration != DefaultLeaseDuration || c.RenewInterval != DefaultRenewInterval {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	for _, bad := range []Config{
		{Namespace: "ns", Node: "n", LeaseDuration: 1000e6, RenewInterval: 500e6},
		{Namespace: "ns", Node: "n", LeaseDuration: -1},
		{Node: "n"},
		{Namespace: "ns"},
	} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

func BenchmarkDecide1000(b *testing.B) {
	live := liveAll("node1", "node2", "node3", "node4", "node5")
	wants := make([]Want, 1000)
	for i := range wants {
		wants[i] = Want{Addr: netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), Policies: []string{"p"}}
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, w := range wants {
			Decide(Input{Self: "node1", Want: w, Live: live, Holder: "node2"})
		}
	}
}

const scorePinned = "859900e12e4100ec cda5a6de1ded13b8"
