package announce

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/bgp/wire"
	"github.com/bgplb/bgplb/view"
)

// These tests run the announcer against receivers on 127.0.0.1: real TCP
// and real sessions, no root needed.

var speakerID = netip.MustParseAddr("198.51.100.11")

// runAnnouncer runs a until the test ends and checks Run's result. The
// returned channel is closed when Run has returned.
func runAnnouncer(t *testing.T, a *Announcer) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		err = a.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	})
	return done
}

// loopPeer is a peer config for a receiver.
func loopPeer(name string, r *receiver, localAS uint32) PeerConfig {
	return PeerConfig{Name: name, NextHop6: addr("2001:db8::11"), Session: session.Config{
		LocalAS: localAS, PeerAS: r.as, PeerAddr: r.addr(), PeerPort: r.port(),
		HoldTime: 9 * time.Second, ConnectRetry: 100 * time.Millisecond}}
}

// statusOf waits until the named peer's status satisfies cond.
func statusOf(t *testing.T, a *Announcer, name string, cond func(PeerStatus) bool) PeerStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last []PeerStatus
	for time.Now().Before(deadline) {
		last = a.Status()
		for _, s := range last {
			if s.Name == name && cond(s) {
				return s
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("status of %s: %+v", name, last)
	return PeerStatus{}
}

func synced(s PeerStatus) bool { return s.Synced }

func hostRoutes(n4, n6 int) []Route {
	var rs []Route
	for i := range n4 {
		rs = append(rs, Route{Prefix: host4(i)})
	}
	for i := range n6 {
		rs = append(rs, Route{Prefix: host6(i)})
	}
	return rs
}

// TestLoopbackAnnounce: routes given before the session exists arrive on
// it with End-of-RIB; attribute changes and withdrawals send only the
// difference, packed one UPDATE per group; bad routes are reported.
func TestLoopbackAnnounce(t *testing.T) {
	r := newReceiver(t, 64512, "198.51.100.1", loopback)
	a := New(Options{RouterID: speakerID, Log: testLog(t, "announcer")})
	rs := hostRoutes(100, 10)
	bad := []Route{{Prefix: prefix("203.0.113.77/24")}, {}}
	a.Announce("r1", append(slices.Clone(rs), bad...))
	if err := a.SetPeers([]PeerConfig{loopPeer("r1", r, 64512)}); err != nil {
		t.Fatal(err)
	}
	runAnnouncer(t, a)
	r.waitFor(t, "the full set and End-of-RIB", func(r *receiver) bool { return len(r.rib) == 110 && len(r.eor) == 2 })
	st := statusOf(t, a, "r1", synced)
	if st.Announced != 110 || st.Desired != 112 || st.SkippedCount != 2 || len(st.Skipped) != 2 ||
		st.State != session.Established || st.Addr != loopback || st.PeerAS != 64512 || st.Uptime <= 0 {
		t.Errorf("status %+v", st)
	}
	rib := r.snapshot()
	want4 := rxPath{NextHop: loopback, LocalPref: 100, HasLP: true}
	want6 := rxPath{NextHop: addr("2001:db8::11"), LocalPref: 100, HasLP: true}
	if !reflect.DeepEqual(rib[host4(5)], want4) || !reflect.DeepEqual(rib[host6(5)], want6) {
		t.Errorf("paths %+v / %+v", rib[host4(5)], rib[host6(5)])
	}

	// Change attributes: one route gets a community, nine a bandwidth,
	// the rest stay. Two groups, two UPDATEs.
	before := r.updates
	rs[0].Communities = []wire.Community{wire.NewCommunity(64512, 42)}
	for i := 1; i < 10; i++ {
		rs[i].Bandwidth = 2
	}
	a.Announce("r1", rs)
	r.waitFor(t, "changed attributes", func(r *receiver) bool {
		return len(r.rib[host4(0)].Communities) == 1 && r.rib[host4(9)].Bandwidth == 2
	})
	statusOf(t, a, "r1", synced)
	if d := r.updates - before; d != 2 {
		t.Errorf("%d UPDATEs for two changed groups", d)
	}
	if got := r.snapshot()[host4(10)]; !reflect.DeepEqual(got, want4) {
		t.Errorf("unchanged route now %+v", got)
	}

	// Withdraw 50 IPv4 and 5 IPv6 routes: one UPDATE per family.
	before = r.updates
	keep := append(slices.Clone(rs[50:100]), rs[105:]...)
	a.Announce("r1", keep)
	r.waitFor(t, "withdrawals", func(r *receiver) bool { return len(r.rib) == 55 })
	if st := statusOf(t, a, "r1", synced); st.Announced != 55 || st.SkippedCount != 0 {
		t.Errorf("status %+v", st)
	}
	if d := r.updates - before; d != 2 {
		t.Errorf("%d UPDATEs for withdrawals in two families", d)
	}

	a.Announce("r1", nil)
	r.waitFor(t, "everything withdrawn", func(r *receiver) bool { return len(r.rib) == 0 })
	if st := statusOf(t, a, "r1", synced); st.Announced != 0 {
		t.Errorf("status %+v", st)
	}
}

// TestLoopbackSessionReset: when the peer resets the session, the
// announcer reconnects and sends everything again, followed by End-of-RIB.
func TestLoopbackSessionReset(t *testing.T) {
	r := newReceiver(t, 64512, "198.51.100.1", loopback)
	a := New(Options{RouterID: speakerID, Log: testLog(t, "announcer")})
	if err := a.SetPeers([]PeerConfig{loopPeer("r1", r, 64512)}); err != nil {
		t.Fatal(err)
	}
	runAnnouncer(t, a)
	a.Announce("r1", hostRoutes(200, 20))
	r.waitFor(t, "the full set", func(r *receiver) bool { return len(r.rib) == 220 && len(r.eor) == 2 })
	r.restart("router maintenance")
	r.waitFor(t, "the full set again", func(r *receiver) bool { return r.ups == 2 && len(r.rib) == 220 && len(r.eor) == 2 })
	st := statusOf(t, a, "r1", synced)
	if st.Flaps != 1 || !strings.Contains(st.LastError, "router maintenance") || st.Announced != 220 {
		t.Errorf("status %+v", st)
	}
}

// TestLoopbackShutdown: Shutdown withdraws everything from every peer,
// and the peers read the withdrawals before the Cease, which carries the
// message. Run returns; later calls do nothing.
func TestLoopbackShutdown(t *testing.T) {
	r1, r2 := newReceiver(t, 64512, "198.51.100.1", loopback), newReceiver(t, 64999, "198.51.100.2", addr("127.0.0.2"))
	a := New(Options{RouterID: speakerID, Log: testLog(t, "announcer")})
	if err := a.SetPeers([]PeerConfig{loopPeer("r1", r1, 64512), loopPeer("r2", r2, 64512)}); err != nil {
		t.Fatal(err)
	}
	done := runAnnouncer(t, a)
	routes := hostRoutes(3000, 100)
	a.Announce("r1", routes)
	a.Announce("r2", routes)
	for _, r := range []*receiver{r1, r2} {
		r.waitFor(t, "the full set", func(r *receiver) bool { return len(r.rib) == 3100 })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx, "node drained for maintenance"); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*receiver{r1, r2} {
		r.waitFor(t, "the session's end", func(r *receiver) bool { return len(r.downs) == 1 })
		r.mu.Lock()
		var ne *session.NotificationError
		if !errors.As(r.downs[0], &ne) || ne.Sent || ne.Notification.Subcode != wire.CeaseAdminShutdown {
			t.Errorf("down: %v", r.downs[0])
		} else if msg, _ := ne.Notification.ShutdownMessage(); msg != "node drained for maintenance" {
			t.Errorf("shutdown message %q", msg)
		}
		if r.ribAtEnd[0] != 0 {
			t.Errorf("%d routes not withdrawn before the Cease", r.ribAtEnd[0])
		}
		r.mu.Unlock()
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Shutdown")
	}
	a.Announce("r1", routes) // no effect, no panic
	if err := a.Shutdown(ctx, "again"); err != nil {
		t.Error(err)
	}
}

// TestLoopbackSetPeers: adding a peer leaves the others alone; a next-hop
// change re-announces without a reset; a session change restarts the
// session (Cease / Other Configuration Change) and resends; removal closes
// with Cease / Peer De-configured; bad configs are refused and reported
// without disturbing the good ones.
func TestLoopbackSetPeers(t *testing.T) {
	r1, r2 := newReceiver(t, 64512, "198.51.100.1", loopback), newReceiver(t, 64512, "198.51.100.2", addr("127.0.0.2"))
	a := New(Options{RouterID: speakerID, Log: testLog(t, "announcer")})
	p1, p2 := loopPeer("r1", r1, 64512), loopPeer("r2", r2, 64512)
	runAnnouncer(t, a)
	a.Announce("r1", hostRoutes(10, 0))
	a.Announce("r2", hostRoutes(20, 0))
	if err := a.SetPeers([]PeerConfig{p1}); err != nil {
		t.Fatal(err)
	}
	r1.waitFor(t, "r1's routes", func(r *receiver) bool { return len(r.rib) == 10 })
	if err := a.SetPeers([]PeerConfig{p1, p2}); err != nil {
		t.Fatal(err)
	}
	r2.waitFor(t, "r2's routes", func(r *receiver) bool { return len(r.rib) == 20 })

	p1.NextHop4 = addr("198.51.100.99")
	if err := a.SetPeers([]PeerConfig{p1, p2}); err != nil {
		t.Fatal(err)
	}
	r1.waitFor(t, "the new next hop", func(r *receiver) bool { return r.rib[host4(9)].NextHop == p1.NextHop4 })

	p1.Session.HoldTime = 30 * time.Second
	if err := a.SetPeers([]PeerConfig{p1, p2}); err != nil {
		t.Fatal(err)
	}
	r1.waitFor(t, "a new session with every route", func(r *receiver) bool { return r.ups == 2 && len(r.rib) == 10 && len(r.eor) == 2 })
	r1.mu.Lock()
	if len(r1.downs) != 1 || !receivedCease(r1.downs[0], wire.CeaseOtherConfigChange) {
		t.Errorf("r1 downs %v, want a received Cease / Other Configuration Change", r1.downs)
	}
	r1.mu.Unlock()

	bad := []PeerConfig{p2, {Name: "nowhere", Session: session.Config{LocalAS: 64512}}, {Name: "r2", Session: p1.Session},
		{Name: "nh", Session: session.Config{LocalAS: 64512, PeerAddr: addr("127.0.0.9")}, NextHop4: addr("2001:db8::1")}}
	err := a.SetPeers(bad)
	for _, want := range []string{`"nowhere"`, `"r2": name used twice`, `"nh": NextHop4`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("SetPeers error %v, want %s", err, want)
		}
	}
	r1.waitFor(t, "r1 removed", func(r *receiver) bool { return len(r.downs) == 2 && len(r.rib) == 0 })
	if !receivedCease(r1.downs[1], wire.CeasePeerDeconfigured) {
		t.Errorf("r1 removal: %v, want a received Cease / Peer De-configured", r1.downs[1])
	}
	var names []string
	for _, s := range a.Status() {
		names = append(names, s.Name)
		if s.Name != "r2" && s.LastError == "" {
			t.Errorf("refused peer without an error: %+v", s)
		}
	}
	if !slices.Equal(names, []string{"nh", "nowhere", "r2"}) {
		t.Errorf("status names %v", names)
	}
	r2.mu.Lock()
	if r2.ups != 1 || len(r2.downs) != 0 {
		t.Errorf("r2 was disturbed: %d ups, downs %v", r2.ups, r2.downs)
	}
	r2.mu.Unlock()
}

// receivedCease reports whether a session ended on a Cease with subcode
// sub from the other side.
func receivedCease(err error, sub uint8) bool {
	var ne *session.NotificationError
	return errors.As(err, &ne) && !ne.Sent && ne.Notification.Code == wire.ErrCodeCease && ne.Notification.Subcode == sub
}

// TestLoopbackEBGPAndFamilies: an external peer gets AS_PATH [LocalAS] and
// no LOCAL_PREF; IPv6 routes without NextHop6 over an IPv4 session, or to a
// peer without the IPv6 family, are skipped with a reason.
func TestLoopbackEBGPAndFamilies(t *testing.T) {
	r := newReceiver(t, 64512, "198.51.100.1", loopback)
	a := New(Options{RouterID: speakerID, Log: testLog(t, "announcer")})
	p := loopPeer("r1", r, 64513)
	p.NextHop6 = netip.Addr{}
	if err := a.SetPeers([]PeerConfig{p}); err != nil {
		t.Fatal(err)
	}
	runAnnouncer(t, a)
	a.Announce("r1", []Route{{Prefix: host4(1), LocalPref: u32(500)}, {Prefix: host6(1)}})
	r.waitFor(t, "the IPv4 route", func(r *receiver) bool { return len(r.rib) == 1 })
	st := statusOf(t, a, "r1", synced)
	if got := r.snapshot()[host4(1)]; !reflect.DeepEqual(got, rxPath{NextHop: loopback, ASPath: []uint32{64513}}) {
		t.Errorf("path %+v", got)
	}
	if st.SkippedCount != 1 || st.Skipped[0].Prefix != host6(1) || !strings.Contains(st.Skipped[0].Reason, "needs NextHop6") {
		t.Errorf("skipped %+v", st)
	}

	p.NextHop6 = addr("2001:db8::11")
	p.Session.Families = []wire.Family{wire.IPv4Unicast}
	if err := a.SetPeers([]PeerConfig{p}); err != nil {
		t.Fatal(err)
	}
	// A family change restarts the session; the new one lacks IPv6.
	statusOf(t, a, "r1", func(s PeerStatus) bool {
		return s.Synced && s.Announced == 1 && s.SkippedCount == 1 && strings.Contains(s.Skipped[0].Reason, "ipv6-unicast not negotiated")
	})
}

// TestViewSource serves the announcer's view on a unix socket and reads it
// with the client `bgplb neighbor` and `bgplb rib` use.
func TestViewSource(t *testing.T) {
	r := newReceiver(t, 64512, "198.51.100.1", loopback)
	a := New(Options{RouterID: speakerID, Log: testLog(t, "announcer")})
	if err := a.SetPeers([]PeerConfig{loopPeer("r1", r, 64512)}); err != nil {
		t.Fatal(err)
	}
	runAnnouncer(t, a)
	a.Announce("r1", []Route{{Prefix: host4(1), Bandwidth: 3, Communities: []wire.Community{wire.NewCommunity(64512, 5)}},
		{Prefix: prefix("203.0.113.128/25")}, {Prefix: host6(1)}})
	statusOf(t, a, "r1", synced)

	sock := filepath.Join(t.TempDir(), "speaker.sock")
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- view.Serve(ctx, sock, view.Handler(a), testLog(t, "api")) }()
	t.Cleanup(func() { cancel(); <-served })
	c := view.NewClient(sock)
	var ns []view.Neighbor
	deadline := time.Now().Add(5 * time.Second)
	var err error
	for ns, err = c.Neighbors(ctx); err != nil && time.Now().Before(deadline); ns, err = c.Neighbors(ctx) {
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil || len(ns) != 1 || ns[0].Description != "r1" || ns[0].State != "Established" || ns[0].ASN != 64512 ||
		ns[0].Port != r.port() || ns[0].UpdatesOut == 0 || ns[0].Advertised != 3 {
		t.Fatalf("neighbors %+v, %v", ns, err)
	}
	var table bytes.Buffer
	if err := view.WriteNeighbors(&table, ns, time.Now()); err != nil || !strings.Contains(table.String(), "Advertised") {
		t.Errorf("bgplb neighbor output (%v):\n%s", err, table.String())
	}
	es, err := c.RIB(ctx, "", netip.Prefix{})
	if err != nil || len(es) != 3 || es[0].Prefix != host4(1) || es[1].Prefix != prefix("203.0.113.128/25") {
		t.Fatalf("rib %+v, %v", es, err)
	}
	p := es[0].Paths[0]
	if !p.Best || p.Peer != loopback || p.NextHop != loopback || *p.LocalPref != 100 || p.Origin != wire.OriginIGP.String() ||
		!slices.Equal(p.Communities, []string{"64512:5"}) || *p.LinkBandwidth != 3 {
		t.Errorf("path %+v", p)
	}
	if es, _ := c.RIB(ctx, "ipv6", netip.Prefix{}); len(es) != 1 || es[0].Prefix != host6(1) {
		t.Errorf("ipv6 rib %+v", es)
	}
	if es, _ := c.RIB(ctx, "", prefix("203.0.113.200/32")); len(es) != 1 || es[0].Prefix != prefix("203.0.113.128/25") {
		t.Errorf("longest match %+v", es)
	}
	if es, _ := c.RIB(ctx, "", prefix("198.51.100.1/32")); len(es) != 0 {
		t.Errorf("no match %+v", es)
	}
	if _, err := c.FIB(ctx); err == nil || !strings.Contains(err.Error(), "speaker") {
		t.Errorf("fib: %v", err)
	}
	var out bytes.Buffer
	if err := view.WriteRIB(&out, es, time.Now()); err != nil || !strings.Contains(out.String(), "LinkBandwidth: 3") {
		t.Errorf("bgplb rib output (%v):\n%s", err, out.String())
	}
}

// TestConcurrentAnnounce: Announce, SetPeers, Status and the view from many
// goroutines while the session is up (run with -race); the peer ends up
// with exactly the last set.
func TestConcurrentAnnounce(t *testing.T) {
	r := newReceiver(t, 64512, "198.51.100.1", loopback)
	a := New(Options{RouterID: speakerID, Log: testLog(t, "announcer")})
	p := loopPeer("r1", r, 64512)
	if err := a.SetPeers([]PeerConfig{p}); err != nil {
		t.Fatal(err)
	}
	runAnnouncer(t, a)
	all := hostRoutes(300, 30)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for i := range 200 {
				var rs []Route
				for _, rt := range all {
					if rng.IntN(3) == 0 {
						rt.Bandwidth = float32(rng.IntN(3))
						rs = append(rs, rt)
					}
				}
				a.Announce("r1", rs)
				switch i % 20 {
				case 0:
					_ = a.SetPeers([]PeerConfig{p})
				case 1:
					_ = a.Status()
				case 2:
					_ = a.RIB(context.Background(), "", netip.Prefix{})
					_ = a.Neighbors(context.Background())
				}
			}
		})
	}
	wg.Wait()
	final := all[:123]
	a.Announce("r1", final)
	statusOf(t, a, "r1", synced)
	r.waitFor(t, "the last set", func(r *receiver) bool {
		if len(r.rib) != len(final) {
			return false
		}
		for _, rt := range final {
			if p, ok := r.rib[rt.Prefix]; !ok || p.Bandwidth != 0 {
				return false
			}
		}
		return true
	})
}

// TestRunOwnsGoroutines: when Run returns, none of the goroutines it
// started (workers, sessions, dialers, the listener) is left: it waited
// for all of them.
func TestRunOwnsGoroutines(t *testing.T) {
	r := newReceiver(t, 64512, "198.51.100.1", loopback)
	a := New(Options{RouterID: speakerID, ListenAddrs: []netip.AddrPort{netip.AddrPortFrom(addr("127.0.0.3"), 0)}})
	unreachable := loopPeer("nowhere", r, 64512)
	unreachable.Session.PeerAddr, unreachable.Session.PeerPort = addr("127.0.0.4"), 1 // keeps dialling
	if err := a.SetPeers([]PeerConfig{loopPeer("r1", r, 64512), unreachable}); err != nil {
		t.Fatal(err)
	}
	listeners := func() int { return countStacks("session.(*Listener).serve") }
	for listeners() != 1 { // the receiver's listener is up
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	a.Announce("r1", hostRoutes(100, 0))
	statusOf(t, a, "r1", synced)
	if n := listeners(); n != 2 {
		t.Fatalf("%d listeners", n)
	}
	sessions := countStacks("session.(*Peer).Run")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// (Connections are their session's: session.Peer.Run waits for them.)
	ours := countStacks("speaker/announce.(*peer)", "speaker/announce.(*worker)", "speaker/announce.(*Announcer)",
		"session.(*runner).dial")
	// The receiver's own session and listener remain.
	if ours != 0 || countStacks("session.(*Peer).Run") != sessions-2 || listeners() != 1 {
		buf := make([]byte, 1<<20)
		t.Fatalf("after Run: %d goroutines of the announcer, %d sessions (of %d)\n%s",
			ours, countStacks("session.(*Peer).Run"), sessions, buf[:runtime.Stack(buf, true)])
	}
}

// countStacks counts the goroutines whose stack mentions any of the frames.
func countStacks(frames ...string) int {
	buf := make([]byte, 1<<20)
	n := 0
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if slices.ContainsFunc(frames, func(f string) bool { return strings.Contains(g, f) }) {
			n++
		}
	}
	return n
}
