package bfd

import (
	"fmt"
	"time"
)

// slowTx is the least DesiredMinTx a session advertises while not Up
// (RFC 5880 §6.8.3), so that sessions that are down cost little.
const slowTx = time.Second

// Config is a session's tunable parameters (RFC 5880 §6.8.1).
type Config struct {
	// DesiredMinTx is the fastest this end wants to send.
	DesiredMinTx time.Duration
	// RequiredMinRx is the fastest this end accepts packets; zero asks the
	// peer not to send at all.
	RequiredMinRx time.Duration
	// DetectMult is the number of missed packets that declare the session
	// down at the peer.
	DetectMult uint8
	// Passive waits for the peer's first packet before sending (§6.1).
	Passive bool
	// Auth, if Type is not AuthNone, is required on every received packet
	// and used on every sent one.
	Auth Auth
}

// DefaultConfig is 300 ms × 3, FRR's and BIRD's default.
func DefaultConfig() Config {
	return Config{DesiredMinTx: 300 * time.Millisecond, RequiredMinRx: 300 * time.Millisecond, DetectMult: 3}
}

// Validate reports a configuration the wire format cannot carry.
func (c Config) Validate() error {
	const maxUS = time.Duration(1<<32-1) * time.Microsecond
	switch {
	case c.DesiredMinTx <= 0 || c.DesiredMinTx > maxUS:
		return fmt.Errorf("bfd: desired min tx %v out of range", c.DesiredMinTx)
	case c.RequiredMinRx < 0 || c.RequiredMinRx > maxUS:
		return fmt.Errorf("bfd: required min rx %v out of range", c.RequiredMinRx)
	case c.DetectMult == 0:
		return fmt.Errorf("bfd: detect multiplier must be at least 1")
	}
	return c.Auth.Validate()
}

// Drop says why a received packet was discarded; DropNone means accepted.
type Drop uint8

const (
	DropNone      Drop = iota
	DropAuth           // A bit, type, key or digest mismatch
	DropAuthSeq        // sequence number outside the window
	DropYourDisc       // your discriminator is not ours
	DropAdminDown      // we are AdminDown
)

// Actions are what the shell must do after an input.
type Actions struct {
	// SendNow asks for a packet at once (a Final answering a Poll, or a
	// state change to announce), besides the periodic ones.
	SendNow bool
	// TimersChanged: re-read TxInterval and DetectTime.
	TimersChanged bool
	// RestartDetect: a valid packet arrived; restart the detection timer.
	RestartDetect bool
	// Changed reports a transition From → To with the local diagnostic.
	Changed  bool
	From, To State
	Diag     Diag
	Dropped  Drop
}

// Session is one BFD session's state machine (RFC 5880 §6.8) as a plain
// value: the shell feeds it inputs and performs the returned actions. It
// does no I/O and reads no clock.
type Session struct {
	cfg Config

	state       State
	remoteState State
	localDiag   Diag
	remoteDiag  Diag
	localDisc   uint32
	remoteDisc  uint32

	remoteMinRx   time.Duration
	remoteMinTx   time.Duration
	remoteMult    uint8
	remoteDemand  bool
	heardFromPeer bool

	// txUsed and rxUsed are the intervals timers follow; they lag the
	// advertised ones while a poll sequence runs (§6.8.3).
	txUsed, rxUsed time.Duration
	polling        bool
	finalPending   bool

	xmitSeq      uint32
	rcvSeq       uint32
	rcvSeqKnown  bool
	lastAdvertTx time.Duration
	lastAdvertRx time.Duration
}

// NewSession starts a session in Down with a local discriminator (unique
// and non-zero, chosen by the shell) and an initial auth sequence number.
func NewSession(cfg Config, localDisc, seq uint32) Session {
	s := Session{cfg: cfg, state: Down, remoteState: Down, localDisc: localDisc, xmitSeq: seq,
		// §6.8.1: RemoteMinRxInterval starts at 1 µs, so the first
		// packets go at our own pace.
		remoteMinRx: time.Microsecond}
	s.txUsed, s.rxUsed = s.advertTx(), cfg.RequiredMinRx
	s.lastAdvertTx, s.lastAdvertRx = s.txUsed, s.rxUsed
	return s
}

// State, RemoteState and friends are for views.
func (s *Session) State() State               { return s.state }
func (s *Session) RemoteState() State         { return s.remoteState }
func (s *Session) LocalDiag() Diag            { return s.localDiag }
func (s *Session) RemoteDiag() Diag           { return s.remoteDiag }
func (s *Session) LocalDisc() uint32          { return s.localDisc }
func (s *Session) RemoteDisc() uint32         { return s.remoteDisc }
func (s *Session) Config() Config             { return s.cfg }
func (s *Session) Polling() bool              { return s.polling }
func (s *Session) RemoteMult() uint8          { return s.remoteMult }
func (s *Session) RemoteMinRx() time.Duration { return s.remoteMinRx }
func (s *Session) RemoteMinTx() time.Duration { return s.remoteMinTx }

// advertTx is the DesiredMinTx to put on the wire: at least a second
// while not Up.
func (s *Session) advertTx() time.Duration {
	if s.state != Up {
		return max(s.cfg.DesiredMinTx, slowTx)
	}
	return s.cfg.DesiredMinTx
}

// TxInterval is the periodic transmit interval before jitter, or 0 when
// the session must not send periodically: passive and not yet heard from
// the peer, the peer asks for no packets, or the peer runs demand mode.
func (s *Session) TxInterval() time.Duration {
	switch {
	case s.cfg.Passive && s.remoteDisc == 0:
		return 0
	case s.remoteMinRx == 0:
		return 0
	case s.remoteDemand && s.state == Up && s.remoteState == Up:
		return 0
	}
	return max(s.txUsed, s.remoteMinRx)
}

// DetectTime is the asynchronous-mode detection time (§6.8.4), or 0 when
// no detection timer runs (nothing heard yet, or AdminDown).
func (s *Session) DetectTime() time.Duration {
	if !s.heardFromPeer || s.state == AdminDown {
		return 0
	}
	return time.Duration(s.remoteMult) * max(s.rxUsed, s.remoteMinTx)
}

// Jitter applies §6.8.7: the interval reduced by 0-25%, or by 10-25% when
// the detect multiplier is 1. r is a uniform random number.
func Jitter(interval time.Duration, mult uint8, r uint64) time.Duration {
	lo, span := int64(75), uint64(26) // 75..100 %
	if mult == 1 {
		span = 16 // 75..90 %
	}
	return time.Duration(int64(interval) / 100 * (lo + int64(r%span)))
}

// Packet builds the next control packet to send and advances the auth
// sequence number. A Final answers a pending Poll; a Poll is set while a
// poll sequence runs and no Final is due (never both, §6.8.7).
func (s *Session) Packet() Packet {
	p := Packet{
		Version:       1,
		Diag:          s.localDiag,
		State:         s.state,
		DetectMult:    s.cfg.DetectMult,
		MyDisc:        s.localDisc,
		YourDisc:      s.remoteDisc,
		DesiredMinTx:  micros(s.advertTx()),
		RequiredMinRx: micros(s.cfg.RequiredMinRx),
		Final:         s.finalPending,
		Poll:          s.polling && !s.finalPending,
	}
	s.finalPending = false
	if s.cfg.Auth.Type != AuthNone {
		p.Auth.Type = s.cfg.Auth.Type
		p.Auth.Seq = s.xmitSeq
		// Non-meticulous types may keep the number; bumping it every
		// packet satisfies both kinds of receiver.
		s.xmitSeq++
	}
	return p
}

func micros(d time.Duration) uint32 { return uint32(d / time.Microsecond) }

func fromMicros(us uint32) time.Duration { return time.Duration(us) * time.Microsecond }

// Receive processes a decoded packet (raw is the UDP payload it came from,
// for the digest) per RFC 5880 §6.8.6 after the codec's checks.
func (s *Session) Receive(raw []byte, p *Packet) Actions {
	if p.YourDisc != 0 && p.YourDisc != s.localDisc {
		return Actions{Dropped: DropYourDisc}
	}
	if !CheckAuth(raw, p, s.cfg.Auth) {
		return Actions{Dropped: DropAuth}
	}
	if !s.acceptSeq(p) {
		return Actions{Dropped: DropAuthSeq}
	}
	var a Actions
	s.remoteDisc = p.MyDisc
	s.remoteState = p.State
	s.remoteDiag = p.Diag
	s.remoteDemand = p.Demand
	oldTx, oldDetect := s.TxInterval(), s.DetectTime()
	s.remoteMinTx = fromMicros(p.DesiredMinTx)
	s.remoteMinRx = fromMicros(p.RequiredMinRx)
	s.remoteMult = p.DetectMult
	s.heardFromPeer = true
	if p.Final && s.polling {
		s.polling = false
		s.txUsed, s.rxUsed = s.advertTx(), s.cfg.RequiredMinRx
	}
	a.RestartDetect = true
	if s.state == AdminDown {
		return Actions{Dropped: DropAdminDown}
	}
	switch {
	case p.State == AdminDown:
		if s.state != Down {
			s.transition(&a, Down, DiagNeighborDown)
		}
	case s.state == Down && p.State == Down:
		s.transition(&a, Init, DiagNone)
	case s.state == Down && p.State == Init, s.state == Init && (p.State == Init || p.State == Up):
		s.transition(&a, Up, DiagNone)
	case s.state == Up && p.State == Down:
		s.transition(&a, Down, DiagNeighborDown)
	}
	if p.Poll {
		s.finalPending = true
		a.SendNow = true
	}
	if s.TxInterval() != oldTx || s.DetectTime() != oldDetect {
		a.TimersChanged = true
	}
	return a
}

// acceptSeq applies the sequence number rules of §6.7.3/§6.7.4 and
// records the number.
func (s *Session) acceptSeq(p *Packet) bool {
	t := s.cfg.Auth.Type
	if t.sectionLen() == 0 {
		return true
	}
	seq := p.Auth.Seq
	if s.rcvSeqKnown {
		window := 3 * uint32(max(s.cfg.DetectMult, p.DetectMult))
		lo := s.rcvSeq
		if t.Meticulous() {
			lo++
		}
		if seq-lo > s.rcvSeq+window-lo {
			return false
		}
	}
	s.rcvSeq, s.rcvSeqKnown = seq, true
	return true
}

// transition moves to state to, recording it in a, and adjusts the
// advertised intervals that depend on being Up.
func (s *Session) transition(a *Actions, to State, diag Diag) {
	a.Changed, a.From, a.To, a.Diag = true, s.state, to, diag
	a.SendNow = true
	a.TimersChanged = true
	s.state = to
	s.localDiag = diag
	if to != Up && to != Init {
		s.polling = false
	}
	s.paramsChanged()
}

// paramsChanged reacts to a change of the advertised intervals (§6.8.3):
// while Up a poll sequence tells the peer; a faster tx or a slower rx is
// safe at once, the opposite waits for the Final.
func (s *Session) paramsChanged() {
	tx, rx := s.advertTx(), s.cfg.RequiredMinRx
	if tx == s.lastAdvertTx && rx == s.lastAdvertRx {
		return
	}
	s.lastAdvertTx, s.lastAdvertRx = tx, rx
	if s.state != Up || s.remoteDisc == 0 {
		s.txUsed, s.rxUsed = tx, rx
		return
	}
	s.polling = true
	if tx < s.txUsed {
		s.txUsed = tx
	}
	if rx > s.rxUsed {
		s.rxUsed = rx
	}
}

// DetectExpired handles the detection timer (§6.8.4): the session goes
// Down and forgets the peer.
func (s *Session) DetectExpired() Actions {
	var a Actions
	if s.state == Init || s.state == Up {
		s.transition(&a, Down, DiagDetectionExpired)
	}
	s.remoteDisc = 0
	s.remoteState = Down
	s.remoteDemand = false
	s.heardFromPeer = false
	s.rcvSeqKnown = false
	s.polling = false
	s.finalPending = false
	s.txUsed, s.rxUsed = s.advertTx(), s.cfg.RequiredMinRx
	a.TimersChanged = true
	return a
}

// SetAdminDown takes the session administratively down (§6.8.16) or
// back to Down.
func (s *Session) SetAdminDown(down bool) Actions {
	var a Actions
	switch {
	case down && s.state != AdminDown:
		s.transition(&a, AdminDown, DiagAdminDown)
	case !down && s.state == AdminDown:
		s.transition(&a, Down, DiagNone)
	}
	return a
}

// Reconfigure applies new parameters, starting a poll sequence if the
// session is Up and the advertised intervals change.
func (s *Session) Reconfigure(cfg Config) Actions {
	oldTx, oldDetect := s.TxInterval(), s.DetectTime()
	wasPolling := s.polling
	if cfg.Auth.Type != s.cfg.Auth.Type {
		s.rcvSeqKnown = false
	}
	s.cfg = cfg
	s.paramsChanged()
	var a Actions
	a.SendNow = s.polling && !wasPolling
	a.TimersChanged = s.TxInterval() != oldTx || s.DetectTime() != oldDetect || a.SendNow
	return a
}
