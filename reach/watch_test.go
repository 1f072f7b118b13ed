package reach

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/labtest"
)

// watcher runs Watch in a namespace for the test and keeps its newest
// State.
type watcher struct {
	mu      sync.Mutex
	st      *State
	changed chan struct{} // closed and replaced at each new State
}

func startWatch(t *testing.T, ctx context.Context, opt Options) *watcher {
	t.Helper()
	w := &watcher{changed: make(chan struct{})}
	ctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		errc <- Watch(ctx, opt, func(s *State) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.st = s
			close(w.changed)
			w.changed = make(chan struct{})
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
	return w
}

// await waits until the newest State gives nh the verdict want.
func (w *watcher) await(t *testing.T, ctx context.Context, what, nh string, multihop bool, want Reason) {
	t.Helper()
	a := netip.MustParseAddr(nh)
	for {
		w.mu.Lock()
		st, changed := w.st, w.changed
		w.mu.Unlock()
		var got Reason = 255
		if st != nil {
			if got = st.Check(a, multihop); got == want {
				return
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("%s: %s (multihop %v) is %v, want %v", what, nh, multihop, got, want)
		}
	}
}

// TestWatch: addresses added and removed and links going down and up in a
// namespace change the verdicts of a Watch running there.
func TestWatch(t *testing.T) {
	ns := labtest.Netns(t, "reach")
	ctx := labtest.Context(t, 30*time.Second)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(ns.IP(ctx, "link", "add", "rc0", "type", "veth", "peer", "name", "rc1"))
	must(ns.SetUp(ctx, "rc0"))
	must(ns.SetUp(ctx, "rc1"))
	must(ns.AddAddr(ctx, "rc0", netip.MustParsePrefix("198.51.100.1/24")))
	must(ns.AddAddr(ctx, "rc0", netip.MustParsePrefix("2001:db8:5::1/64")))

	w := startWatch(t, ctx, Options{Netns: ns.Path(), Routes: true, Settle: 20 * time.Millisecond})
	w.await(t, ctx, "start", "198.51.100.2", false, Usable)
	w.await(t, ctx, "start", "2001:db8:5::2", false, Usable)
	w.await(t, ctx, "start", "198.51.100.1", false, OwnAddress)
	w.await(t, ctx, "start", "127.0.0.1", false, Loopback)
	w.await(t, ctx, "start", "203.0.113.5", false, Unreachable)
	w.await(t, ctx, "start", "fe80::99%rc0", false, Usable)
	w.await(t, ctx, "start", "fe80::99", false, LinkLocalNoZone)

	must(ns.SetDown(ctx, "rc1")) // the far end: carrier lost
	w.await(t, ctx, "peer link down", "198.51.100.2", false, LinkDown)
	must(ns.SetUp(ctx, "rc1"))
	w.await(t, ctx, "peer link up", "198.51.100.2", false, Usable)
	must(ns.SetDown(ctx, "rc0"))
	w.await(t, ctx, "link down", "198.51.100.2", false, LinkDown)
	// The kernel drops IPv6 addresses with the link (keep_addr_on_down 0).
	w.await(t, ctx, "link down", "2001:db8:5::2", false, Unreachable)
	must(ns.SetUp(ctx, "rc0"))
	w.await(t, ctx, "link up", "198.51.100.2", false, Usable)
	must(ns.AddAddr(ctx, "rc0", netip.MustParsePrefix("2001:db8:5::1/64")))
	w.await(t, ctx, "link up", "2001:db8:5::2", false, Usable)

	must(ns.DelAddr(ctx, "rc0", netip.MustParsePrefix("198.51.100.1/24")))
	w.await(t, ctx, "address removed", "198.51.100.2", false, Unreachable)
	w.await(t, ctx, "address removed", "198.51.100.1", false, Unreachable)
	must(ns.AddAddr(ctx, "rc0", netip.MustParsePrefix("198.51.100.1/24")))
	w.await(t, ctx, "address added", "198.51.100.2", false, Usable)
	must(ns.AddAddr(ctx, "lo", netip.MustParsePrefix("203.0.113.1/32")))
	w.await(t, ctx, "loopback address", "203.0.113.1", false, OwnAddress)

	// Multihop: a static route makes a next hop reachable, a route of
	// the router's own protocol does not.
	must(ns.IP(ctx, "route", "add", "203.0.113.0/25", "via", "198.51.100.2", "proto", "static"))
	must(ns.IP(ctx, "route", "add", "198.18.0.0/24", "via", "198.51.100.2", "proto", "bgp"))
	w.await(t, ctx, "static route", "203.0.113.5", true, Usable)
	w.await(t, ctx, "static route, not multihop", "203.0.113.5", false, Unreachable)
	if got := snapshotIn(t, ns).Check(netip.MustParseAddr("198.18.0.5"), true); got != Unreachable {
		t.Fatalf("via a route of our own protocol: %v, want unreachable", got)
	}
	must(ns.IP(ctx, "route", "del", "203.0.113.0/25"))
	w.await(t, ctx, "static route removed", "203.0.113.5", true, Unreachable)
}

func snapshotIn(t *testing.T, ns *lab.Netns) *State {
	t.Helper()
	st, err := Snapshot(Options{Netns: ns.Path(), Routes: true})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestWatchStops: Watch returns soon after its context ends, and fails
// clearly for a namespace that does not exist.
func TestWatchStops(t *testing.T) {
	ns := labtest.Netns(t, "reach")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		errc <- Watch(ctx, Options{Netns: ns.Path()}, func(*State) {
			select {
			case <-started:
			default:
				close(started)
			}
		})
	}()
	<-started
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Watch after cancel: %v", err)
	}
	if err := Watch(context.Background(), Options{Netns: "/run/netns/bgplb-no-such-ns"}, func(*State) {}); err == nil {
		t.Fatal("Watch in a missing namespace: no error")
	}
}
