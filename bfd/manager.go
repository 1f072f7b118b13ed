package bfd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Key identifies a session: one per peer, local address, interface and
// hop mode.
type Key struct {
	Peer      netip.Addr
	Local     netip.Addr
	Interface string
	Multihop  bool
}

func (k Key) String() string {
	s := k.Local.String() + "->" + k.Peer.String()
	if k.Interface != "" && k.Peer.Zone() == "" {
		s += " dev " + k.Interface
	}
	if k.Multihop {
		s += " multihop"
	}
	return s
}

// normal unmaps addresses and scopes a link-local peer to the interface,
// as received packets name it.
func (k Key) normal() Key {
	k.Peer, k.Local = scoped(k.Peer.Unmap(), k.Interface), scoped(k.Local.Unmap(), k.Interface)
	return k
}

// scoped gives a link-local address the zone of its interface.
func scoped(a netip.Addr, ifname string) netip.Addr {
	if ifname != "" && a.Is6() && a.IsLinkLocalUnicast() && a.Zone() == "" {
		return a.WithZone(ifname)
	}
	return a
}

// SessionConfig is one session to run.
type SessionConfig struct {
	Key
	Config
	// MinTTL is the least TTL (hop limit) a multihop session accepts;
	// default 254, one router away. Single hop always demands 255.
	MinTTL uint8
}

// Event is a state change of a session.
type Event struct {
	Key      Key
	From, To State
	Diag     Diag
	// RemoteState is the peer's last reported state: AdminDown means the
	// peer took the session down on purpose, which must not tear down
	// the protocols that use it (RFC 5882 §3.2).
	RemoteState State
	At          time.Time
}

// PathDown reports whether the change says the forwarding path failed, so
// that a client protocol (a BGP session) must go down: Up lost, unless
// either side took BFD down on purpose (AdminDown, RFC 5882 §3.2), which
// says nothing about the path.
func (e Event) PathDown() bool {
	return e.From == Up && e.To != Up && e.To != AdminDown && e.RemoteState != AdminDown
}

// Status is a session's state and counters, for views.
type Status struct {
	Key                      Key
	State, RemoteState       State
	LocalDiag, RemoteDiag    Diag
	LocalDisc, RemoteDisc    uint32
	TxInterval, DetectTime   time.Duration
	RemoteMinTx, RemoteMinRx time.Duration
	RemoteMult               uint8
	Polling                  bool
	LastUp, LastDown         time.Time
	// LastDownDiag is why the session last left Up (this end's
	// diagnostic then): LocalDiag is cleared when it comes back.
	// LastDownRemoteState is the peer's state then: with DiagNeighborDown,
	// AdminDown says the peer stopped on purpose, Down that it detected a
	// failure itself.
	LastDownDiag        Diag
	LastDownRemoteState State
	// LastRx is when the last packet was accepted: the detection timer
	// fires DetectTime after it.
	LastRx                time.Time
	PacketsIn, PacketsOut uint64
	Dropped, SendErrors   uint64
	DroppedTTL            uint64 // failed the GTSM check
	EventsLost            uint64
}

// Options configure a Manager.
type Options struct {
	Logger *slog.Logger
	// Do runs fn where sockets must be created, e.g. in a network
	// namespace (lab.Netns.Do). Default: in the caller's namespace.
	Do func(fn func() error) error
	// SingleHopPort and MultihopPort replace 3784 and 4784 (tests only).
	SingleHopPort, MultihopPort int
}

// Manager runs BFD sessions: one receive socket per address family and hop
// mode, one send socket and one goroutine per session. It lives until its
// context ends, Close, or Shutdown (Close after telling the peers).
type Manager struct {
	ctx    context.Context
	cancel context.CancelFunc
	log    *slog.Logger
	opts   Options
	wg     sync.WaitGroup

	mu       sync.Mutex // guards the maps, closed, shuttingDown and stopping
	closed   bool       // set by Shutdown and Close: no session starts after
	stopping bool       // set by Close before it waits: no goroutine starts after
	// shuttingDown is set by Shutdown before it waits for farewells, the
	// AdminDown repeats of Removed sessions; Remove starts none after.
	shuttingDown bool
	farewells    sync.WaitGroup
	sessions     map[Key]*session
	byDisc       map[uint32]*session
	byAddr       map[addrKey]*session
	listeners    map[listenKey]*net.UDPConn
}

type listenKey struct{ v6, multihop bool }

// NewManager returns a Manager bound to ctx.
func NewManager(ctx context.Context, opts Options) *Manager {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Do == nil {
		opts.Do = func(fn func() error) error { return fn() }
	}
	if opts.SingleHopPort == 0 {
		opts.SingleHopPort = PortSingleHop
	}
	if opts.MultihopPort == 0 {
		opts.MultihopPort = PortMultihop
	}
	ctx, cancel := context.WithCancel(ctx)
	m := &Manager{ctx: ctx, cancel: cancel, log: opts.Logger.With("component", "bfd"), opts: opts,
		sessions: map[Key]*session{}, byDisc: map[uint32]*session{}, byAddr: map[addrKey]*session{}, listeners: map[listenKey]*net.UDPConn{}}
	// Closing the sockets is what unblocks the readers.
	context.AfterFunc(ctx, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, c := range m.listeners {
			c.Close()
		}
	})
	return m
}

// Close stops every session and socket and waits for them. The peers are
// not told: they see the sessions fail when their detection timers run out;
// Shutdown tells them first.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed, m.stopping = true, true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	return nil
}

// ErrExists and ErrNotFound are returned by Add and the per-session calls.
var (
	ErrExists   = errors.New("bfd: session exists")
	ErrNotFound = errors.New("bfd: no such session")
)

// Add starts a session.
func (m *Manager) Add(sc SessionConfig) error {
	if err := sc.Config.Validate(); err != nil {
		return err
	}
	sc.Key = sc.Key.normal()
	if !sc.Peer.IsValid() || !sc.Local.IsValid() || sc.Peer.Is4() != sc.Local.Is4() {
		return fmt.Errorf("bfd: session %s: peer and local must be addresses of one family", sc.Key)
	}
	if sc.MinTTL == 0 {
		sc.MinTTL = gtsmTTL - 1
	}
	if err := m.ctx.Err(); err != nil {
		return err
	}
	if err := m.ensureListener(listenKey{v6: sc.Peer.Is6(), multihop: sc.Multihop}); err != nil {
		return err
	}
	var conn *net.UDPConn
	if err := m.opts.Do(func() error {
		var err error
		conn, err = dial(m.ctx, sc.Local, sc.Interface)
		return err
	}); err != nil {
		return err
	}
	port := m.opts.SingleHopPort
	if sc.Multihop {
		port = m.opts.MultihopPort
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		conn.Close()
		return fmt.Errorf("bfd: manager closed")
	}
	if _, ok := m.byAddr[addrKeyOf(sc.Key)]; ok {
		conn.Close()
		return fmt.Errorf("%w: %s", ErrExists, sc.Key)
	}
	disc := m.newDisc()
	ctx, cancel := context.WithCancel(m.ctx)
	s := &session{
		key: sc.Key, minTTL: sc.MinTTL, conn: conn, dst: netip.AddrPortFrom(sc.Peer, uint16(port)),
		log: m.log.With("session", sc.Key.String()), cancel: cancel, done: make(chan struct{}),
		in: make(chan rxPacket, 16), cmds: make(chan command), subs: map[int]chan Event{},
		disc: disc, fsm: NewSession(sc.Config, disc, rand.Uint32()),
	}
	s.snapshot()
	m.sessions[sc.Key] = s
	m.byDisc[disc] = s
	m.byAddr[addrKeyOf(sc.Key)] = s
	m.wg.Go(func() { s.run(ctx) })
	return nil
}

// newDisc picks an unused random non-zero discriminator. Random, not
// sequential, so a restarted bgplb does not reuse the last one (§6.8.1).
func (m *Manager) newDisc() uint32 {
	for {
		d := rand.Uint32()
		if _, used := m.byDisc[d]; d != 0 && !used {
			return d
		}
	}
}

// Remove stops a session after telling the peer it is AdminDown, which
// the peer must not take for a failure of the path (RFC 5882 §3.2): one
// packet before Remove returns and, if the session was Up or Init, the
// same again for the peer's detection time (see farewellOf), while no new
// session has its addresses.
func (m *Manager) Remove(k Key) error {
	k = k.normal()
	var f farewell
	m.mu.Lock()
	s, ok := m.sessions[k]
	if ok {
		m.forgetLocked(k, s)
		// Under mu: an Add of the same addresses cannot get its first
		// packet out before this goodbye, which the peer would then take
		// for the new session's. The session's goroutine never takes mu.
		f = m.adminDown(s)
	}
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, k)
	}
	if !m.startFarewell(s, f, nil) {
		m.end(s)
	}
	return nil
}

// Reconfigure changes a session's intervals, multiplier, passive role or
// authentication; interval changes on an Up session run a poll sequence.
func (m *Manager) Reconfigure(k Key, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	return m.with(k, func(f *Session) Actions { return f.Reconfigure(c) })
}

// SetAdminDown takes a session administratively down or back.
func (m *Manager) SetAdminDown(k Key, down bool) error {
	return m.with(k, func(f *Session) Actions { return f.SetAdminDown(down) })
}

func (m *Manager) with(k Key, fn func(*Session) Actions) error {
	s := m.lookup(k)
	if s == nil {
		return fmt.Errorf("%w: %s", ErrNotFound, k)
	}
	s.do(fn)
	return nil
}

func (m *Manager) lookup(k Key) *session {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sessions[k.normal()]
}

// Subscribe returns the state changes of a session, starting with its
// current state, and a function that ends the subscription. The channel
// holds 64 events; if the subscriber falls further behind, later events
// are lost (counted in Status.EventsLost) but Status stays current.
func (m *Manager) Subscribe(k Key) (<-chan Event, func(), error) {
	s := m.lookup(k)
	if s == nil {
		return nil, nil, fmt.Errorf("%w: %s", ErrNotFound, k)
	}
	return s.subscribe()
}

// Status returns one session's state and counters.
func (m *Manager) Status(k Key) (Status, bool) {
	s := m.lookup(k)
	if s == nil {
		return Status{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status, true
}

// Sessions returns every session's status.
func (m *Manager) Sessions() []Status {
	m.mu.Lock()
	ss := make([]*session, 0, len(m.sessions))
	for _, s := range m.sessions {
		ss = append(ss, s)
	}
	m.mu.Unlock()
	out := make([]Status, 0, len(ss))
	for _, s := range ss {
		s.mu.Lock()
		out = append(out, s.status)
		s.mu.Unlock()
	}
	return out
}

func (m *Manager) ensureListener(lk listenKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || m.ctx.Err() != nil {
		return fmt.Errorf("bfd: manager closed")
	}
	if _, ok := m.listeners[lk]; ok {
		return nil
	}
	port := m.opts.SingleHopPort
	if lk.multihop {
		port = m.opts.MultihopPort
	}
	var c *net.UDPConn
	if err := m.opts.Do(func() error {
		var err error
		c, err = listen(m.ctx, lk.v6, port)
		return err
	}); err != nil {
		return err
	}
	m.listeners[lk] = c
	m.wg.Go(func() { m.read(c, lk.multihop) })
	return nil
}

// read receives on one listener until it is closed, validating and
// dispatching each packet to its session without allocating.
func (m *Manager) read(c *net.UDPConn, multihop bool) {
	defer c.Close()
	var (
		buf [1500]byte
		oob [128]byte
		p   Packet
	)
	for {
		n, oobn, _, src, err := c.ReadMsgUDPAddrPort(buf[:], oob[:])
		if err != nil {
			if m.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			m.log.Warn("bfd receive", "err", err)
			continue
		}
		meta := parseControl(oob[:oobn])
		if p.Decode(buf[:n]) != nil || int(p.Length) > maxPacketLen {
			continue
		}
		s := m.dispatch(&p, src.Addr().Unmap(), meta.dst.Unmap(), multihop)
		if s == nil {
			continue
		}
		if !s.ttlOK(meta.ttl) {
			s.count(func(st *Status) { st.Dropped++; st.DroppedTTL++ })
			continue
		}
		r := rxPacket{pkt: p, n: p.Length}
		copy(r.raw[:], buf[:r.n])
		select {
		case s.in <- r:
		default:
			s.count(func(st *Status) { st.Dropped++ })
		}
	}
}

// dispatch finds the session of a packet: by our discriminator when the
// peer knows it, else by addresses (§6.8.6).
func (m *Manager) dispatch(p *Packet, src, dst netip.Addr, multihop bool) *session {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p.YourDisc != 0 {
		s := m.byDisc[p.YourDisc]
		if s == nil || s.key.Peer != src || s.key.Multihop != multihop {
			return nil
		}
		return s
	}
	// IPV6_PKTINFO gives the destination without a zone; it is the
	// interface the source's zone names.
	return m.byAddr[addrKey{peer: src, local: scoped(dst, src.Zone()), multihop: multihop}]
}

// addrKey finds a session from a packet's addresses; the interface is
// implied by a link-local peer's zone.
type addrKey struct {
	peer, local netip.Addr
	multihop    bool
}

func addrKeyOf(k Key) addrKey { return addrKey{peer: k.Peer, local: k.Local, multihop: k.Multihop} }

// forgetLocked drops session s of key k from every index; m.mu is held.
func (m *Manager) forgetLocked(k Key, s *session) {
	delete(m.sessions, k)
	delete(m.byDisc, s.disc)
	delete(m.byAddr, addrKeyOf(k))
}
