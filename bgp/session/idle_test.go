package session

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
)

// inUse is the heap and goroutine stack memory in use after a collection.
func inUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// idleSessions establishes n sessions with passive peers behind one
// listener, as dynamic neighbours are, from raw client connections that do
// no more than the OPEN exchange, and returns the memory the peers hold per
// idle session. The client side's few hundred bytes per connection are
// counted too.
func idleSessions(tb testing.TB, n int) float64 {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		peers []*Peer
	)
	defer wg.Wait()
	defer func() {
		cancel()
		mu.Lock()
		defer mu.Unlock()
		for _, p := range peers {
			<-p.Done()
		}
	}()
	est := &counter{est: make(chan Negotiated, n)}
	l, err := Listen([]netip.AddrPort{netip.AddrPortFrom(loopback, 0)}, func(remote, _ netip.AddrPort) (*Peer, bool) {
		cfg := baseConfig(64512, 64512, idA)
		cfg.Passive, cfg.PeerAddr, cfg.HoldTime = true, remote.Addr(), 90*time.Second
		p := New(cfg, est, nil)
		// Start, not Run in a goroutine: an idle peer has no goroutine
		// but its reader, and the figure would hide one more.
		if err := p.Start(ctx); err != nil {
			tb.Error(err)
			return nil, false
		}
		mu.Lock()
		peers = append(peers, p)
		mu.Unlock()
		return p, true
	}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	wg.Go(func() { _ = l.Run(ctx) })
	open, err := wire.AppendOpen(nil, wire.NewOpen(64512, 90, idB, wire.Capabilities{
		Multiprotocol: []wire.Family{wire.IPv4Unicast, wire.IPv6Unicast}, AS4: 64512, ExtendedMessage: true}))
	if err != nil {
		tb.Fatal(err)
	}
	hello := wire.AppendKeepalive(open)
	buf := make([]byte, 4096)
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	before := inUse()
	for range n {
		c, err := net.Dial("tcp4", l.Addrs()[0].String())
		if err != nil {
			tb.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := c.Write(hello); err != nil {
			tb.Fatal(err)
		}
		// Our OPEN, then our KEEPALIVE once the peer took ours.
		for range 2 {
			if _, err := io.ReadFull(c, buf[:wire.HeaderLen]); err != nil {
				tb.Fatal(err)
			}
			h, err := wire.ParseHeader(buf[:wire.HeaderLen], nil)
			if err != nil {
				tb.Fatal(err)
			}
			if _, err := io.ReadFull(c, buf[:int(h.Length)-wire.HeaderLen]); err != nil {
				tb.Fatal(err)
			}
		}
		<-est.est
	}
	after := inUse()
	// The writers ended once our KEEPALIVE was out, and the FSM workers
	// once they had nothing left to do: an idle session has no goroutine
	// but its reader.
	for deadline := time.Now().Add(2 * time.Second); ; {
		stacks := allStacks()
		w, fsm := strings.Count(stacks, "session.(*Peer).writeLoop"), strings.Count(stacks, "session.(*Peer).work(")
		if w+fsm == 0 {
			break
		}
		if time.Now().After(deadline) {
			tb.Errorf("%d writer and %d FSM goroutines for %d idle sessions, want none", w, fsm, len(conns))
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if lg, ok := tb.(interface{ Logf(string, ...any) }); ok {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		lg.Logf("stack in use %d, heap in use %d, goroutines %d", ms.StackInuse, ms.HeapInuse, runtime.NumGoroutine())
	}
	return (float64(after) - float64(before)) / float64(n)
}

func allStacks() string {
	buf := make([]byte, 1<<20)
	for {
		if n := runtime.Stack(buf, true); n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}

// BenchmarkIdleSessions reports the memory one idle Established session
// costs its peer, heap and goroutine stacks, at several numbers of sessions.
func BenchmarkIdleSessions(b *testing.B) {
	for _, n := range []int{200, 1000, 5000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			var per float64
			for b.Loop() {
				per = idleSessions(b, n)
			}
			b.ReportMetric(per, "B/session")
		})
	}
}

// TestIdleSessionMemory fails if idle sessions hold what they need only
// while busy: the read and write buffers (64 KiB each, and a third for
// extended messages: 176 KB a session when they were kept), a writer
// goroutine (one a session: 33 KB a session with it), a goroutine running
// the FSM (4 to 8 KiB of stack each: 17 KB a session with it), or the
// stacks that the handshake grew (the idle waits are shallow, so the
// runtime shrinks them back). What remains is some 10 KB: the reader's
// goroutine with its 4 KiB stack, and the peer's state.
func TestIdleSessionMemory(t *testing.T) {
	const limit = 14 << 10
	if per := idleSessions(t, 200); per > limit && !raceEnabled {
		t.Errorf("%.0f bytes per idle session, want at most %d", per, limit)
	} else {
		t.Logf("%.0f bytes per idle session", per)
	}
}
