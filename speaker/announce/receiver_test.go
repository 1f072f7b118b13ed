package announce

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/bgp/wire"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// testLog logs to the test output with -v, else nowhere.
func testLog(t testing.TB, side string) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})).With("side", side)
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// receiver is a real BGP session on 127.0.0.1 that keeps an Adj-RIB-In of
// what it receives, decoded by bgp/wire: a router reduced to its receive
// path. It is passive behind its own Listener; restart replaces its Peer
// (the Listener, and so the port, stay).
type receiver struct {
	t      testing.TB
	as     uint32
	id     netip.Addr
	l      *session.Listener
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	peer     *session.Peer
	rib      map[netip.Prefix]rxPath
	eor      []string
	updates  int
	ups      int
	downs    []error
	ribAtEnd []int // rib size when each session ended
	// gr makes the receiver an RFC 4724 helper: a session that ends
	// without a NOTIFICATION leaves its routes, stale, until the next
	// session's End-of-RIB. restarts records each session's R bit.
	gr       bool
	neg      *session.Negotiated
	stale    map[netip.Prefix]bool
	restarts []bool

	// countOnly makes Update only count, for benchmarks: decoding every
	// path into a map would measure the receiver, not the announcer.
	countOnly           bool
	announced, withdrew atomic.Int64
}

// newReceiver listens on listen (a 127/8 address), port 0.
func newReceiver(t testing.TB, as uint32, id string, listen netip.Addr) *receiver {
	return newReceiverGR(t, as, id, listen, false)
}

// newReceiverGR is newReceiver, a graceful restart helper when gr is set.
func newReceiverGR(t testing.TB, as uint32, id string, listen netip.Addr, gr bool) *receiver {
	r := &receiver{t: t, as: as, id: addr(id), rib: map[netip.Prefix]rxPath{}, gr: gr, stale: map[netip.Prefix]bool{}}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	var err error
	r.l, err = session.Listen([]netip.AddrPort{netip.AddrPortFrom(listen, 0)}, r.dispatch, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.wg.Go(func() { _ = r.l.Run(r.ctx) })
	r.start()
	t.Cleanup(func() {
		r.cancel()
		r.wg.Wait()
	})
	return r
}

func (r *receiver) port() uint16     { return r.l.Addrs()[0].Port() }
func (r *receiver) addr() netip.Addr { return r.l.Addrs()[0].Addr() }

// start runs a new passive Peer. Its PeerAddr only names it: dispatch
// hands it every connection.
func (r *receiver) start() {
	cfg := session.Config{LocalAS: r.as, RouterID: r.id, PeerAddr: loopback, Passive: true, HoldTime: 9 * time.Second}
	if r.gr {
		// A helper only: restart time 0, as a route server announces.
		cfg.GracefulRestart = &session.GracefulRestart{}
	}
	p := session.New(cfg, r, testLog(r.t, "receiver"))
	r.mu.Lock()
	r.peer = p
	r.mu.Unlock()
	r.wg.Go(func() { _ = p.Run(r.ctx) })
}

// restart closes the session with a message and starts a fresh one: the
// announcer must send everything again.
func (r *receiver) restart(msg string) {
	r.mu.Lock()
	p := r.peer
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx, msg); err != nil {
		r.t.Fatal(err)
	}
	r.start()
}

func (r *receiver) dispatch(netip.AddrPort, netip.AddrPort) (*session.Peer, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peer, r.peer != nil
}

func (r *receiver) Established(_ *session.Peer, n session.Negotiated) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ups++
	r.neg = &n
	r.restarts = append(r.restarts, n.GracefulRestart != nil && n.GracefulRestart.Restarting)
}

func (r *receiver) Down(_ *session.Peer, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.downs = append(r.downs, err)
	r.ribAtEnd = append(r.ribAtEnd, len(r.rib))
	r.eor = nil
	if r.gr && r.neg.KeepsRoutes(err) {
		for p := range r.rib {
			r.stale[p] = true
		}
		return
	}
	clear(r.rib) // the session's routes go with it
}

func (r *receiver) EndOfRIB(_ *session.Peer, f wire.Family) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.eor = append(r.eor, f.String())
	// The restarted peer sent all it has of f: what it did not send again
	// is gone (RFC 4724 §4.2).
	for p := range r.stale {
		if family(p) == f {
			delete(r.rib, p)
			delete(r.stale, p)
		}
	}
}

func (r *receiver) Update(_ *session.Peer, u *wire.Update, action wire.Action) error {
	if action != wire.ActionNone {
		return errors.New("the announcer sent a malformed UPDATE")
	}
	if r.countOnly {
		r.announced.Add(int64(u.NLRI.Len() + u.Attrs.MPReach.NLRI.Len()))
		r.withdrew.Add(int64(u.Withdrawn.Len() + u.Attrs.MPUnreach.Withdrawn.Len()))
		return nil
	}
	m := rxFromUpdate(u)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.updates++
	for _, w := range m.Withdraw {
		delete(r.rib, w)
		delete(r.stale, w)
	}
	for p := range m.Announce {
		delete(r.stale, p)
	}
	maps.Copy(r.rib, m.Announce)
	return nil
}

// snapshot returns a copy of the Adj-RIB-In.
func (r *receiver) snapshot() map[netip.Prefix]rxPath {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.rib)
}

// waitFor polls cond (under the receiver's lock) until it holds.
func (r *receiver) waitFor(t testing.TB, what string, cond func(r *receiver) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		ok := cond(r)
		r.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("waiting for %s: receiver has %d routes, EoR %v, %d ups, downs %v", what, len(r.rib), r.eor, r.ups, r.downs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
