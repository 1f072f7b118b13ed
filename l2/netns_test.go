package l2

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/labtest"
)

// The lab: node1, node2 and client on one bridge (in namespace br), and a
// second client, side, on a veth straight to node1's eth1, which is never
// selected. Every host has fixed MACs so the tests can name them.
//
//	client eth0 --- br0 --- node1 eth0        side eth0 --- node1 eth1
//	                  \---- node2 eth0
type testLAN struct {
	ctx                      context.Context
	br, node1, node2, client *lab.Netns
	side                     *lab.Netns
	mac1, mac2, mac1side     MAC
}

var (
	testVIP4 = netip.MustParseAddr("198.51.100.10")
	testVIP6 = netip.MustParseAddr("2001:db8::10")
)

func newTestLAN(t testing.TB) *testLAN {
	t.Helper()
	labtest.RequireBinaries(t, "ip", "ping")
	ctx := labtest.Context(t, time.Minute)
	l := &testLAN{
		ctx: ctx,
		br:  labtest.Netns(t, "l2br"), node1: labtest.Netns(t, "l2n1"), node2: labtest.Netns(t, "l2n2"),
		client: labtest.Netns(t, "l2cl"), side: labtest.Netns(t, "l2sd"),
		mac1: MAC{2, 0, 0, 0, 1, 1}, mac2: MAC{2, 0, 0, 0, 2, 1}, mac1side: MAC{2, 0, 0, 0, 1, 2},
	}
	must(t, l.br.AddBridge(ctx, "br0"))
	port := func(ns *lab.Netns, brPort string, mac MAC, v4, v6 string) {
		must(t, l.br.AddVeth(ctx, brPort, ns, "eth0"))
		must(t, l.br.SetMaster(ctx, brPort, "br0"))
		must(t, l.br.SetUp(ctx, brPort))
		l.host(t, ns, "eth0", mac, v4, v6)
	}
	port(l.node1, "p1", l.mac1, "198.51.100.1/24", "2001:db8::1/64")
	port(l.node2, "p2", l.mac2, "198.51.100.3/24", "2001:db8::3/64")
	port(l.client, "pc", MAC{2, 0, 0, 0, 9, 1}, "198.51.100.2/24", "2001:db8::2/64")
	must(t, l.node1.AddVeth(ctx, "eth1", l.side, "eth0"))
	l.host(t, l.node1, "eth1", l.mac1side, "203.0.113.1/24", "2001:db8:1::1/64")
	// side thinks the service subnet is on its link, so it asks node1's
	// eth1 for the VIPs, which node1 must not answer there.
	l.host(t, l.side, "eth0", MAC{2, 0, 0, 0, 9, 2}, "198.51.100.20/24", "2001:db8::20/64")
	return l
}

func (l *testLAN) host(t testing.TB, ns *lab.Netns, dev string, mac MAC, v4, v6 string) {
	t.Helper()
	must(t, ns.IP(l.ctx, "link", "set", "dev", dev, "address", net.HardwareAddr(mac[:]).String()))
	must(t, ns.AddAddr(l.ctx, dev, netip.MustParsePrefix(v4)))
	must(t, ns.AddAddr(l.ctx, dev, netip.MustParsePrefix(v6)))
	must(t, ns.SetUp(l.ctx, dev))
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// announcer starts an Announcer whose sockets live in ns, with sched for
// both families (cut down to RFC 4861's for IPv6).
func announcer(t testing.TB, ns *lab.Netns, sched Schedule) *Announcer {
	t.Helper()
	return announcerWith(t, ns, Options{Log: testLogger(t), Gratuitous: sched, Unsolicited: sched})
}

func announcerWith(t testing.TB, ns *lab.Netns, o Options) *Announcer {
	t.Helper()
	var a *Announcer
	must(t, ns.Do(func() error {
		a = New(o)
		return nil
	}))
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return a
}

// neigh is the client's neighbour entry for addr on eth0: its MAC (zero if
// none) and state.
func neigh(ctx context.Context, ns *lab.Netns, addr netip.Addr) (MAC, string, error) {
	out, err := ns.IPOutput(ctx, "-j", "neigh", "show", addr.String(), "dev", "eth0")
	if err != nil {
		return MAC{}, "", err
	}
	var es []struct {
		LLAddr string   `json:"lladdr"`
		State  []string `json:"state"`
	}
	if err := json.Unmarshal(out, &es); err != nil {
		return MAC{}, "", fmt.Errorf("parse %q: %w", out, err)
	}
	if len(es) == 0 {
		return MAC{}, "", nil
	}
	var m MAC
	if hw, err := net.ParseMAC(es[0].LLAddr); err == nil && len(hw) == 6 {
		m = MAC(hw)
	}
	return m, strings.Join(es[0].State, ","), nil
}

// ping asks the kernel of ns to resolve addr; the echo itself goes
// unanswered (no node owns the VIP at layer 3), so its failure is ignored.
func ping(ctx context.Context, ns *lab.Netns, addr netip.Addr) {
	_, _ = ns.Run(ctx, "ping", "-c1", "-W1", "-I", "eth0", addr.String())
}

// waitNeigh pings (when ask) and waits until the entry for addr in ns
// satisfies cond.
func waitNeigh(t *testing.T, ctx context.Context, ns *lab.Netns, addr netip.Addr, ask bool, what string, cond func(MAC, string) bool) {
	t.Helper()
	var mac MAC
	var state string
	err := lab.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		if ask {
			ping(ctx, ns, addr)
		}
		var err error
		mac, state, err = neigh(ctx, ns, addr)
		return err == nil && cond(mac, state), err
	})
	if err != nil {
		t.Fatalf("%s: neighbour %s in %s: last %v %q: %v", what, addr, ns.Name, net.HardwareAddr(mac[:]), state, err)
	}
}

func hasMAC(want MAC) func(MAC, string) bool {
	return func(m MAC, state string) bool { return m == want && !strings.Contains(state, "FAILED") }
}

func failed(_ MAC, state string) bool { return strings.Contains(state, "FAILED") }

func TestAnswersOnlyOnSelectedInterface(t *testing.T) {
	t.Parallel()
	l := newTestLAN(t)
	a := announcer(t, l.node1, Schedule{Repeats: -1})
	must(t, a.Set([]Answer{{testVIP4, "eth0"}, {testVIP6, "eth0"}}))
	for _, vip := range []netip.Addr{testVIP4, testVIP6} {
		waitNeigh(t, l.ctx, l.client, vip, true, "client resolves", hasMAC(l.mac1))
		// side's requests reach node1's eth1, where the VIP is not answered.
		ping(l.ctx, l.side, vip)
		waitNeigh(t, l.ctx, l.side, vip, false, "side gets no answer", failed)
	}
	for _, st := range a.Status() {
		if st.Answered == 0 || st.LastError != nil || st.MAC.String() != net.HardwareAddr(l.mac1[:]).String() {
			t.Errorf("status %+v", st)
		}
	}
	// The solicited-node group is joined while answered (MLD snooping),
	// and left when not.
	group := solicitedNode(testVIP6).String()
	waitMaddr(t, l, group, true)
	must(t, a.Set([]Answer{{testVIP4, "eth0"}}))
	waitMaddr(t, l, group, false)
}

func waitMaddrOn(t *testing.T, l *testLAN, dev, group string) {
	t.Helper()
	waitMaddrDev(t, l, dev, group, true)
}

func waitMaddr(t *testing.T, l *testLAN, group string, joined bool) {
	t.Helper()
	waitMaddrDev(t, l, "eth0", group, joined)
}

func waitMaddrDev(t *testing.T, l *testLAN, dev, group string, joined bool) {
	t.Helper()
	err := lab.Poll(l.ctx, 20*time.Millisecond, func() (bool, error) {
		out, err := l.node1.IPOutput(l.ctx, "-6", "maddr", "show", "dev", dev)
		if slices.Contains(strings.Fields(string(out)), group) != joined && err == nil {
			err = fmt.Errorf("maddr: %s", out)
		}
		return err == nil, err
	})
	if err != nil {
		t.Fatalf("group %s joined=%v: %v", group, joined, err)
	}
}

func TestRemoveStopsAnswersBeforeSetReturns(t *testing.T) {
	t.Parallel()
	l := newTestLAN(t)
	a := announcer(t, l.node1, Schedule{Repeats: -1})
	must(t, a.Set([]Answer{{testVIP4, "eth0"}, {testVIP6, "eth0"}}))
	for _, vip := range []netip.Addr{testVIP4, testVIP6} {
		waitNeigh(t, l.ctx, l.client, vip, true, "client resolves", hasMAC(l.mac1))
	}
	must(t, a.Set(nil))
	if st := a.Status(); len(st) != 0 {
		t.Errorf("status after Set(nil): %+v", st)
	}
	for _, vip := range []netip.Addr{testVIP4, testVIP6} {
		must(t, l.client.IP(l.ctx, "neigh", "flush", "to", vip.String(), "dev", "eth0"))
		ping(l.ctx, l.client, vip)
		waitNeigh(t, l.ctx, l.client, vip, false, "no answer after removal", failed)
	}
}

func TestTakeoverUpdatesClientWithoutAsking(t *testing.T) {
	t.Parallel()
	l := newTestLAN(t)
	old := answerBoth(t, l, announcer(t, l.node1, Schedule{}), l.mac1)
	// At once, so the client's entries are younger than locktime (1 s).
	must(t, old.Set(nil))
	next := announcer(t, l.node2, Schedule{})
	must(t, next.Set([]Answer{{testVIP4, "eth0"}, {testVIP6, "eth0"}}))
	for _, vip := range []netip.Addr{testVIP4, testVIP6} {
		waitNeigh(t, l.ctx, l.client, vip, false, "client follows the takeover", hasMAC(l.mac2))
	}
}

// answerBoth has a answer for both VIPs on eth0, and waits until the
// client has resolved them to mac.
func answerBoth(t *testing.T, l *testLAN, a *Announcer, mac MAC) *Announcer {
	t.Helper()
	must(t, a.Set([]Answer{{testVIP4, "eth0"}, {testVIP6, "eth0"}}))
	for _, vip := range []netip.Addr{testVIP4, testVIP6} {
		waitNeigh(t, l.ctx, l.client, vip, true, "client resolves", hasMAC(mac))
	}
	return a
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestInterfacesInNamespace(t *testing.T) {
	t.Parallel()
	l := newTestLAN(t)
	var ifs []Interface
	must(t, l.node1.Do(func() error {
		var err error
		ifs, err = Interfaces()
		return err
	}))
	i := slices.IndexFunc(ifs, func(x Interface) bool { return x.Name == "eth0" })
	if i < 0 || !ifs[i].Up || ifs[i].Loopback || ifs[i].MAC.String() != net.HardwareAddr(l.mac1[:]).String() ||
		!slices.Contains(ifs[i].Prefixes, netip.MustParsePrefix("198.51.100.1/24")) ||
		!slices.Contains(ifs[i].Prefixes, netip.MustParsePrefix("2001:db8::1/64")) {
		t.Fatalf("eth0 in %+v", ifs)
	}
	for addr, want := range map[netip.Addr][]string{
		testVIP4: {"eth0"}, testVIP6: {"eth0"},
		netip.MustParseAddr("203.0.113.9"): {"eth1"},
		netip.MustParseAddr("198.18.0.1"):  nil,
	} {
		if got := Select(ifs, nil, addr); !slices.Equal(got, want) {
			t.Errorf("Select %s: %v, want %v", addr, got, want)
		}
	}
	if got := Select(ifs, []string{"*"}, testVIP4); !slices.Equal(got, []string{"eth0", "eth1"}) {
		t.Errorf("Select * (never lo): %v", got)
	}
}

func pollAddrs(l *testLAN, cond func([]byte) bool) error {
	return lab.Poll(l.ctx, 20*time.Millisecond, func() (bool, error) {
		out, err := l.client.IPOutput(l.ctx, "-6", "addr", "show", "dev", "eth0")
		return err == nil && cond(out), err
	})
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

// Past the fence nothing is sent, though the pair is still set: the
// election's lease ran out before the caller could remove it.
func TestFenceSilencesAnswers(t *testing.T) {
	t.Parallel()
	l := newTestLAN(t)
	a := announcer(t, l.node1, Schedule{Repeats: -1})
	a.SetFence(time.Now().Add(time.Hour))
	must(t, a.Set([]Answer{{testVIP4, "eth0"}, {testVIP6, "eth0"}}))
	for _, vip := range []netip.Addr{testVIP4, testVIP6} {
		waitNeigh(t, l.ctx, l.client, vip, true, "client resolves before the fence", hasMAC(l.mac1))
	}
	a.SetFence(time.Now())
	for _, vip := range []netip.Addr{testVIP4, testVIP6} {
		must(t, l.client.IP(l.ctx, "neigh", "flush", "to", vip.String(), "dev", "eth0"))
		ping(l.ctx, l.client, vip)
		waitNeigh(t, l.ctx, l.client, vip, false, "no answer past the fence", failed)
	}
	fenced := uint64(0)
	for _, st := range a.Status() {
		fenced += st.Fenced
	}
	if fenced == 0 {
		t.Errorf("status counts no fenced frame: %+v", a.Status())
	}
	// A later fence: answered again.
	a.SetFence(time.Now().Add(time.Hour))
	must(t, l.client.IP(l.ctx, "neigh", "flush", "to", testVIP4.String(), "dev", "eth0"))
	waitNeigh(t, l.ctx, l.client, testVIP4, true, "client resolves after the fence moved", hasMAC(l.mac1))
}
