package bfd

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"
)

// rxPacket is a validated packet on its way to its session; raw is kept
// for the digest check.
type rxPacket struct {
	pkt Packet
	n   uint8
	raw [maxPacketLen]byte
}

type command struct {
	fn   func(*Session) Actions
	done chan struct{}
}

// session is the shell around one Session: its socket, timers and
// subscribers. Only run touches fsm.
type session struct {
	key    Key
	minTTL uint8
	disc   uint32
	conn   *net.UDPConn
	dst    netip.AddrPort
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}
	in     chan rxPacket
	cmds   chan command
	fsm    Session

	mu      sync.Mutex // guards status, subs, nextSub
	status  Status
	subs    map[int]chan Event
	nextSub int
}

// ttlOK is the GTSM check: 255 for single hop (RFC 5881 §5), at least
// the configured minimum for multihop (RFC 5883 §2).
func (s *session) ttlOK(ttl int) bool {
	if s.key.Multihop {
		return ttl >= int(s.minTTL)
	}
	return ttl == gtsmTTL
}

func (s *session) count(fn func(*Status)) {
	s.mu.Lock()
	fn(&s.status)
	s.mu.Unlock()
}

// do runs fn on the session's goroutine and waits until its actions have
// been carried out (or the session ended).
func (s *session) do(fn func(*Session) Actions) {
	done := make(chan struct{})
	select {
	case s.cmds <- command{fn: fn, done: done}:
	case <-s.done:
		return
	}
	select {
	case <-done:
	case <-s.done:
	}
}

func (s *session) subscribe() (<-chan Event, func(), error) {
	ch := make(chan Event, 64)
	s.mu.Lock()
	id := s.nextSub
	s.nextSub++
	s.subs[id] = ch
	ch <- Event{Key: s.key, From: s.status.State, To: s.status.State, Diag: s.status.LocalDiag,
		RemoteState: s.status.RemoteState, At: time.Now()}
	s.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.subs, id)
			s.mu.Unlock()
		})
	}, nil
}

// timers are the session's two clocks. The detection timer is a plain
// runtime timer: the Go scheduler fires it within microseconds on an idle
// box, and BenchmarkDetect measures it under load.
type timers struct {
	tx, detect *time.Timer
}

func newTimers() timers {
	t := timers{tx: time.NewTimer(time.Hour), detect: time.NewTimer(time.Hour)}
	t.tx.Stop()
	t.detect.Stop()
	return t
}

func (s *session) run(ctx context.Context) {
	defer close(s.done)
	defer s.conn.Close()
	t := newTimers()
	defer t.tx.Stop()
	defer t.detect.Stop()
	var buf [maxPacketLen]byte
	send := func() {
		p := s.fsm.Packet()
		b := p.Append(buf[:0], s.fsm.Config().Auth)
		_, err := s.conn.WriteToUDPAddrPort(b, s.dst)
		s.count(func(st *Status) {
			if err != nil {
				st.SendErrors++
			} else {
				st.PacketsOut++
			}
		})
	}
	schedTx := func() {
		if iv := s.fsm.TxInterval(); iv > 0 {
			t.tx.Reset(Jitter(iv, s.fsm.Config().DetectMult, rand.Uint64()))
		} else {
			t.tx.Stop()
		}
	}
	// The first packet goes at once (unless passive): a session starting
	// against an Up peer need not wait a second.
	if s.fsm.TxInterval() > 0 {
		send()
	}
	schedTx()
	for {
		var (
			a    Actions
			done chan struct{}
		)
		select {
		case <-ctx.Done():
			return
		case r := <-s.in:
			a = s.fsm.Receive(r.raw[:r.n], &r.pkt)
			now := time.Now()
			s.count(func(st *Status) {
				st.PacketsIn++
				if a.Dropped != DropNone {
					st.Dropped++
				} else {
					st.LastRx = now
				}
			})
		case c := <-s.cmds:
			a, done = c.fn(&s.fsm), c.done
		case <-t.tx.C:
			send()
			schedTx()
			continue
		case <-t.detect.C:
			a = s.fsm.DetectExpired()
		}
		s.apply(a, &t, send, schedTx)
		if done != nil {
			close(done)
		}
	}
}

func (s *session) apply(a Actions, t *timers, send, schedTx func()) {
	if a.Dropped != DropNone {
		return
	}
	if a.RestartDetect || a.TimersChanged {
		if d := s.fsm.DetectTime(); d > 0 {
			t.detect.Reset(d)
		} else {
			t.detect.Stop()
		}
	}
	if a.SendNow {
		send()
	}
	if a.SendNow || a.TimersChanged {
		schedTx()
	}
	now := time.Now()
	if a.Changed {
		s.log.Info("bfd session state", "from", a.From, "to", a.To, "diag", a.Diag)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snapshotLocked()
	if !a.Changed {
		return
	}
	switch {
	case a.To == Up:
		s.status.LastUp = now
	case a.From == Up:
		s.status.LastDown, s.status.LastDownDiag, s.status.LastDownRemoteState = now, a.Diag, s.fsm.RemoteState()
	}
	ev := Event{Key: s.key, From: a.From, To: a.To, Diag: a.Diag, RemoteState: s.fsm.RemoteState(), At: now}
	for _, ch := range s.subs {
		select {
		case ch <- ev:
		default:
			s.status.EventsLost++
		}
	}
}

func (s *session) snapshot() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snapshotLocked()
}

// snapshotLocked copies the state machine's view into status, keeping the
// counters and times.
func (s *session) snapshotLocked() {
	f := &s.fsm
	st := &s.status
	st.Key = s.key
	st.State, st.RemoteState = f.State(), f.RemoteState()
	st.LocalDiag, st.RemoteDiag = f.LocalDiag(), f.RemoteDiag()
	st.LocalDisc, st.RemoteDisc = f.LocalDisc(), f.RemoteDisc()
	st.TxInterval, st.DetectTime = f.TxInterval(), f.DetectTime()
	st.RemoteMinTx, st.RemoteMinRx, st.RemoteMult = f.RemoteMinTx(), f.RemoteMinRx(), f.RemoteMult()
	st.Polling = f.Polling()
}
