package announce

import (
	"net/netip"
	"sync"
	"testing"
)

// TestLoopbackReset: Reset (BFD's word that the path is gone) ends the
// session and starts it again; OnSession follows the session up, down and
// up, with the local address the session runs from.
func TestLoopbackReset(t *testing.T) {
	r := newReceiver(t, 64512, "198.51.100.1", loopback)
	type ev struct {
		up    bool
		local netip.Addr
	}
	var mu sync.Mutex
	var evs []ev
	a := New(Options{RouterID: speakerID, Log: testLog(t, "announcer"), OnSession: func(name string, up bool, local netip.Addr) {
		if name != "r1" {
			t.Errorf("OnSession for %q", name)
		}
		mu.Lock()
		evs = append(evs, ev{up, local})
		mu.Unlock()
	}})
	if err := a.SetPeers([]PeerConfig{loopPeer("r1", r, 64512)}); err != nil {
		t.Fatal(err)
	}
	runAnnouncer(t, a)
	a.Announce("r1", hostRoutes(20, 0))
	r.waitFor(t, "the full set", func(r *receiver) bool { return len(r.rib) == 20 })
	a.Reset("nobody") // not a peer: nothing happens
	a.Reset("r1")
	r.waitFor(t, "the full set again", func(r *receiver) bool { return r.ups == 2 && len(r.rib) == 20 })
	statusOf(t, a, "r1", synced)
	mu.Lock()
	defer mu.Unlock()
	want := []ev{{true, loopback}, {false, netip.Addr{}}, {true, loopback}}
	if len(evs) != len(want) {
		t.Fatalf("OnSession calls %+v, want %+v", evs, want)
	}
	for i := range want {
		if evs[i] != want[i] {
			t.Errorf("OnSession call %d: %+v, want %+v", i, evs[i], want[i])
		}
	}
}
