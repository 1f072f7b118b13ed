package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/bgp/wire"
	"github.com/bgplb/bgplb/lab"
)

// feeder is our own session package playing the node that announces.
type feeder struct {
	up   chan session.Negotiated
	down chan error
}

func newFeeder() *feeder {
	return &feeder{up: make(chan session.Negotiated, 1), down: make(chan error, 1)}
}

func (f *feeder) Established(_ *session.Peer, n session.Negotiated)     { f.up <- n }
func (f *feeder) Update(*session.Peer, *wire.Update, wire.Action) error { return nil }
func (f *feeder) EndOfRIB(*session.Peer, wire.Family)                   {}
func (f *feeder) Down(_ *session.Peer, err error) {
	select {
	case f.down <- err:
	default:
	}
}

// injector is one BGP session from a node namespace to the daemon under
// test, on a TCP connection it dialled itself so that it can drop it the
// way a crashed node would.
type injector struct {
	conn   *net.TCPConn
	peer   *session.Peer
	neg    session.Negotiated
	local  netip.Addr
	localA uint32
	cancel context.CancelFunc
	done   chan struct{} // closed when the session's Run has returned
}

// injectorConfig says who the injector is and whom it dials.
type injectorConfig struct {
	Local, Remote   netip.Addr
	LocalAS, PeerAS uint32
	Families        []wire.Family // default IPv4 unicast
}

// dialInjector connects from ns to cfg.Remote:179, retrying until the
// daemon listens, and waits until the session is Established.
func dialInjector(ctx context.Context, ns *lab.Netns, cfg injectorConfig) (*injector, error) {
	var conn net.Conn
	err := lab.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		derr := ns.Do(func() error {
			d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: cfg.Local.AsSlice()}}
			var err error
			conn, err = d.Dial("tcp", netip.AddrPortFrom(cfg.Remote, 179).String())
			return err
		})
		return derr == nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("bench: %v never accepted a connection: %w", cfg.Remote, err)
	}
	return startInjector(ctx, conn.(*net.TCPConn), cfg)
}

// startInjector runs a passive session on an established connection.
func startInjector(ctx context.Context, conn *net.TCPConn, cfg injectorConfig) (*injector, error) {
	fams := cfg.Families
	if fams == nil {
		fams = []wire.Family{wire.IPv4Unicast}
	}
	f := newFeeder()
	peer := session.New(session.Config{LocalAS: cfg.LocalAS, PeerAS: cfg.PeerAS, RouterID: cfg.Local,
		PeerAddr: cfg.Remote, Passive: true, ExtendedMessage: true, HoldTime: 90 * time.Second, Families: fams},
		f, slog.New(slog.DiscardHandler))
	pctx, cancel := context.WithCancel(context.Background())
	inj := &injector{conn: conn, peer: peer, local: cfg.Local, localA: cfg.LocalAS, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(inj.done)
		_ = peer.Run(pctx)
	}()
	peer.Accept(conn)
	select {
	case inj.neg = <-f.up:
		return inj, nil
	case err := <-f.down:
		inj.drop()
		return nil, fmt.Errorf("bench: session from %v went down before Established: %w", cfg.Local, err)
	case <-ctx.Done():
		inj.drop()
		return nil, fmt.Errorf("bench: session from %v never came up: %w", cfg.Local, ctx.Err())
	}
}

// attrs are the path attributes of every announcement: ORIGIN IGP and an
// AS_PATH of the injector's AS (eBGP receivers check the first AS), plus
// LOCAL_PREF on iBGP.
func (i *injector) attrs() *wire.Attrs {
	var a wire.Attrs
	a.Origin = wire.OriginIGP
	a.ASPath = wire.ASPath{}
	a.Set(wire.AttrOrigin)
	a.Set(wire.AttrASPath)
	if i.neg.External {
		a.ASPath = wire.ASPath{{Type: wire.ASSequence, ASNs: []uint32{i.localA}}}
	} else {
		a.LocalPref = 100
		a.Set(wire.AttrLocalPref)
	}
	return &a
}

// encodeReach encodes UPDATEs announcing nlri with the injector's address
// as next hop. Encoding is done before any clock starts.
func (i *injector) encodeReach(nlri []wire.NLRI) ([]byte, error) {
	enc := wire.Encoder{Options: i.neg.Tx}
	msgs, _, err := enc.AppendReach(nil, wire.IPv4Unicast, i.local, netip.Addr{}, i.attrs(), nlri)
	return msgs, err
}

// encodeWithdraw encodes UPDATEs withdrawing nlri.
func (i *injector) encodeWithdraw(nlri []wire.NLRI) ([]byte, error) {
	enc := wire.Encoder{Options: i.neg.Tx}
	msgs, _, err := enc.AppendWithdraw(nil, wire.IPv4Unicast, nlri)
	return msgs, err
}

// send queues whole UPDATE messages in chunks of about 64 KiB.
func (i *injector) send(ctx context.Context, msgs []byte) error {
	for len(msgs) > 0 {
		n := 0
		for n < len(msgs) && n < 64<<10 {
			n += int(msgs[n+16])<<8 | int(msgs[n+17])
		}
		if err := i.peer.Send(ctx, msgs[:n]); err != nil {
			return err
		}
		msgs = msgs[n:]
	}
	return nil
}

// drop ends the session as a crashed node or a cut cable would: the
// connection is reset (SO_LINGER 0), no NOTIFICATION, no withdrawal. It
// returns once the session's goroutine has stopped; it is safe to call
// twice.
func (i *injector) drop() {
	_ = i.conn.SetLinger(0)
	_ = i.conn.Close()
	i.cancel()
	<-i.done
}

// established reports whether the session is still up.
func (i *injector) established() bool { return i.peer.State() == session.Established }

// injectors drops a set of sessions together.
type injectors struct {
	mu  sync.Mutex
	all []*injector
}

func (s *injectors) add(i *injector) {
	s.mu.Lock()
	s.all = append(s.all, i)
	s.mu.Unlock()
}

func (s *injectors) dropAll() {
	s.mu.Lock()
	all := s.all
	s.all = nil
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, i := range all {
		wg.Go(i.drop)
	}
	wg.Wait()
}

// errStopped marks a wait that ended because a process under test died.
var errStopped = errors.New("bench: process under test exited")
