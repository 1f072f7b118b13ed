package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
)

var (
	loopback = netip.MustParseAddr("127.0.0.1")
	idA      = netip.MustParseAddr("198.51.100.1")
	idB      = netip.MustParseAddr("198.51.100.2")
)

// testLog logs to the test output when -v is given.
func testLog(t *testing.T, name string) *slog.Logger {
	if !testing.Verbose() {
		return nil
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})).With("side", name)
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// received is one UPDATE as the recorder saw it.
type received struct {
	action    wire.Action
	nlri      []wire.NLRI // classic and MP_REACH
	withdrawn []wire.NLRI // classic and MP_UNREACH
	nextHop   netip.Addr
}

// recorder is a Handler that reports everything on channels.
type recorder struct {
	established chan Negotiated
	updates     chan received
	eor         chan wire.Family
	down        chan error
	// onUpdate, when set, decides Update's result (and may panic).
	onUpdate func(u *wire.Update, a wire.Action) error
}

func newRecorder() *recorder {
	return &recorder{
		established: make(chan Negotiated, 16), updates: make(chan received, 4096),
		eor: make(chan wire.Family, 16), down: make(chan error, 16),
	}
}

func (r *recorder) Established(_ *Peer, n Negotiated) { r.established <- n }
func (r *recorder) EndOfRIB(_ *Peer, f wire.Family)   { r.eor <- f }
func (r *recorder) Down(_ *Peer, err error)           { r.down <- err }

func (r *recorder) Update(_ *Peer, u *wire.Update, a wire.Action) error {
	if r.onUpdate != nil {
		if err := r.onUpdate(u, a); err != nil {
			return err
		}
	}
	rec := received{action: a, nextHop: u.Attrs.NextHop}
	rec.nlri = u.NLRI.AppendTo(rec.nlri)
	rec.nlri = u.Attrs.MPReach.NLRI.AppendTo(rec.nlri)
	rec.withdrawn = u.Withdrawn.AppendTo(rec.withdrawn)
	rec.withdrawn = u.Attrs.MPUnreach.Withdrawn.AppendTo(rec.withdrawn)
	if u.Attrs.MPReach.NextHop.IsValid() {
		rec.nextHop = u.Attrs.MPReach.NextHop
	}
	select {
	case r.updates <- rec:
	default:
		panic("recorder: too many updates")
	}
	return nil
}

func wait[T any](t *testing.T, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("timed out after %v waiting for %s", d, what)
		panic("unreachable")
	}
}

func expectNone[T any](t *testing.T, ch <-chan T, d time.Duration, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected %s: %v", what, v)
	case <-time.After(d):
	}
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runPeer runs p until the test ends and checks that Run returned.
func runPeer(t *testing.T, p *Peer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return")
		}
	})
}

// listen runs a Listener on an ephemeral loopback port with a dispatch table.
func listen(t *testing.T, peers map[netip.Addr]*Peer) *Listener {
	t.Helper()
	return listenFunc(t, func(remote, _ netip.AddrPort) (*Peer, bool) {
		p, ok := peers[remote.Addr()]
		return p, ok
	})
}

// listenFunc runs a Listener on an ephemeral loopback port.
func listenFunc(t *testing.T, dispatch Dispatch) *Listener {
	t.Helper()
	l, err := Listen([]netip.AddrPort{netip.AddrPortFrom(loopback, 0)}, dispatch, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("listener: %v", err)
		}
	})
	return l
}

func port(l *Listener) uint16 { return l.Addrs()[0].Port() }

// baseConfig is a peer on loopback with short timers.
func baseConfig(as, peerAS uint32, id netip.Addr) Config {
	return Config{
		LocalAS: as, PeerAS: peerAS, RouterID: id, PeerAddr: loopback,
		HoldTime: 9 * time.Second, ConnectRetry: 300 * time.Millisecond,
	}
}

// leakCheck fails the test if goroutines of this package outlive it.
func leakCheck(t *testing.T) {
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for {
			stacks := sessionGoroutines()
			if stacks == "" {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("goroutines left behind:\n%s", stacks)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func sessionGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "bgp/session.(*") && !strings.Contains(g, "testing.tRunner") &&
			!strings.Contains(g, "sessionGoroutines") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// fake is a hand-driven BGP speaker on a raw TCP connection, for the cases
// a well-behaved Peer never produces.
type fake struct {
	t  *testing.T
	nc net.Conn
	o  *wire.Options
}

func newFake(t *testing.T, nc net.Conn) *fake {
	t.Cleanup(func() { nc.Close() })
	return &fake{t: t, nc: nc}
}

func dialFake(t *testing.T, to netip.AddrPort) *fake {
	t.Helper()
	nc, err := net.DialTimeout("tcp4", to.String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return newFake(t, nc)
}

func (f *fake) write(b []byte) {
	f.t.Helper()
	_ = f.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := f.nc.Write(b); err != nil {
		f.t.Fatalf("fake write: %v", err)
	}
}

func (f *fake) sendOpen(as uint32, hold uint16, id netip.Addr) {
	f.t.Helper()
	o := wire.NewOpen(as, hold, id, wire.Capabilities{
		Multiprotocol: []wire.Family{wire.IPv4Unicast, wire.IPv6Unicast}})
	b, err := wire.AppendOpen(nil, o)
	if err != nil {
		f.t.Fatal(err)
	}
	f.write(b)
}

func (f *fake) sendKeepalive() { f.write(wire.AppendKeepalive(nil)) }

// read returns the next message, or an error (io.EOF when closed).
func (f *fake) read(d time.Duration) (wire.Message, error) {
	_ = f.nc.SetReadDeadline(time.Now().Add(d))
	hdr := make([]byte, wire.HeaderLen)
	if _, err := io.ReadFull(f.nc, hdr); err != nil {
		return nil, err
	}
	h, err := wire.ParseHeader(hdr, &wire.Options{ExtendedMessage: true})
	if err != nil {
		return nil, err
	}
	msg := make([]byte, h.Length)
	copy(msg, hdr)
	if _, err := io.ReadFull(f.nc, msg[wire.HeaderLen:]); err != nil {
		return nil, err
	}
	return wire.DecodeMessage(msg, f.o)
}

// expect reads until a message of type typ arrives and returns it.
func (f *fake) expect(typ uint8, d time.Duration) wire.Message {
	f.t.Helper()
	deadline := time.Now().Add(d)
	for {
		m, err := f.read(time.Until(deadline))
		if err != nil {
			f.t.Fatalf("fake waiting for %s: %v", wire.MessageTypeString(typ), err)
		}
		if wire.MessageType(m) == typ {
			return m
		}
		if n, ok := m.(*wire.Notification); ok {
			f.t.Fatalf("fake waiting for %s got NOTIFICATION %v", wire.MessageTypeString(typ), n)
		}
	}
}

// expectNotification reads until a NOTIFICATION and checks its codes.
func (f *fake) expectNotification(code, sub uint8, d time.Duration) *wire.Notification {
	f.t.Helper()
	deadline := time.Now().Add(d)
	for {
		m, err := f.read(time.Until(deadline))
		if err != nil {
			f.t.Fatalf("fake waiting for NOTIFICATION %s: %v", wire.CodeString(code, sub), err)
		}
		if n, ok := m.(*wire.Notification); ok {
			if n.Code != code || n.Subcode != sub {
				f.t.Fatalf("NOTIFICATION %v, want %s", n, wire.CodeString(code, sub))
			}
			return n
		}
	}
}

// expectClosed reads until the peer closes the connection.
func (f *fake) expectClosed(d time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(d)
	for {
		_, err := f.read(time.Until(deadline))
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			f.t.Fatalf("connection still open after %v", d)
		}
		return
	}
}

// establish runs the OPEN exchange from the fake's side.
func (f *fake) establish(as uint32, hold uint16, id netip.Addr) {
	f.t.Helper()
	f.sendOpen(as, hold, id)
	f.expect(wire.TypeOpen, 5*time.Second)
	f.sendKeepalive()
	f.expect(wire.TypeKeepalive, 5*time.Second)
	f.o = &wire.Options{AS4: true}
}

// updates encodes announcements of n IPv4 host routes in 203.0.113.0/24
// (wrapping past 256) and returns the messages.
func updates(t *testing.T, n int, o wire.Options) []byte {
	t.Helper()
	var nlri []wire.NLRI
	for i := range n {
		nlri = append(nlri, wire.NLRI{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), 32)})
	}
	a := &wire.Attrs{Origin: wire.OriginIGP, ASPath: wire.ASPath{}, LocalPref: 100}
	a.Set(wire.AttrOrigin)
	a.Set(wire.AttrASPath)
	a.Set(wire.AttrLocalPref)
	e := wire.Encoder{Options: o}
	b, _, err := e.AppendReach(nil, wire.IPv4Unicast, netip.MustParseAddr("198.51.100.11"), netip.Addr{}, a, nlri)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (r received) String() string {
	return fmt.Sprintf("%v nlri=%v withdrawn=%v nh=%v", r.action, r.nlri, r.withdrawn, r.nextHop)
}
