package bfd

import (
	"context"
	"sync"
	"time"
)

// MaxFarewell bounds how long a session's AdminDown packets are repeated.
// RFC 5880 §6.8.16 asks for them during at least a detection time of the
// peer, so that one lost packet does not leave the peer to its detection
// timer, which would take the path for failed (RFC 5882 §3.2); a slow
// session (a peer's detection time of many seconds) must not hold up a
// stop for as long.
const MaxFarewell = 3 * time.Second

// farewell is how the AdminDown packets of a session that leaves are
// repeated: every interval in use before it left (the peer's detection
// time is DetectMult of them) until span has passed. A zero every sends
// no repeats.
type farewell struct {
	every, span time.Duration
}

// farewellOf is the farewell of a session in state st with transmit
// interval tx and detection multiplier mult: Up and Init sessions repeat
// (the peer of an Init session may be Up already), during the peer's
// detection time, at most MaxFarewell.
func farewellOf(st State, tx time.Duration, mult uint8) farewell {
	if (st != Up && st != Init) || tx <= 0 {
		return farewell{}
	}
	return farewell{every: min(tx, MaxFarewell), span: min(time.Duration(mult)*tx, MaxFarewell)}
}

// sendTimes are the offsets from the first packet at which f repeats it:
// every f.every, and a last one at f.span, so that the packets cover the
// whole span.
func (f farewell) sendTimes() []time.Duration {
	if f.every <= 0 {
		return nil
	}
	var out []time.Duration
	for at := f.every; ; at += f.every {
		if at >= f.span {
			return append(out, f.span)
		}
		out = append(out, at)
	}
}

// Shutdown tells every peer that its session is going down on purpose
// (AdminDown, which the peer must not take for a failure of the path),
// then stops like Close. The peer of an Up or Init session gets the packet
// repeated for its detection time (see farewellOf); the others once.
// Sessions Removed before Shutdown are waited for too; one Removed while
// Shutdown runs gets a single packet. ctx bounds the wait: what is not
// sent when it ends is not sent. Add fails from the start of Shutdown on.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	// From here on Remove counts no farewell in m.farewells: every Add of
	// it happened before, under mu, so the Wait below is a legal one.
	m.shuttingDown = true
	ss := make([]*session, 0, len(m.sessions))
	for k, s := range m.sessions {
		ss = append(ss, s)
		m.forgetLocked(k, s)
	}
	m.mu.Unlock()
	// Shutdown's own farewells are counted apart, in its own WaitGroup:
	// their Adds come before its Wait on this goroutine.
	var mine sync.WaitGroup
	for _, s := range ss {
		if !m.startFarewell(s, m.adminDown(s), &mine) {
			m.end(s)
		}
	}
	done := make(chan struct{})
	// Ends when the farewells do: on their own, or when Close cancels them.
	go func() {
		mine.Wait()
		m.farewells.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return m.Close()
}

// adminDown takes s AdminDown, which sends the first packet before it
// returns, and says how to repeat it.
func (m *Manager) adminDown(s *session) farewell {
	var f farewell
	s.do(func(fsm *Session) Actions {
		// The interval in use before AdminDown, which slows it to a second.
		f = farewellOf(fsm.State(), fsm.TxInterval(), fsm.Config().DetectMult)
		return fsm.SetAdminDown(true)
	})
	return f
}

// startFarewell repeats s's AdminDown in the background as f says, then
// ends s, counted in wg (nil: m.farewells, for Remove); it reports false,
// starting nothing, when there is nothing to repeat or the Manager is
// closing.
func (m *Manager) startFarewell(s *session, f farewell, wg *sync.WaitGroup) bool {
	times := f.sendTimes()
	m.mu.Lock()
	defer m.mu.Unlock()
	// Counted under mu, so that Close's Wait comes after (it sets
	// stopping first), and so is Shutdown's wait for m.farewells (it sets
	// shuttingDown first): a WaitGroup's Add from zero must come before
	// its Wait.
	if len(times) == 0 || m.stopping || wg == nil && m.shuttingDown {
		return false
	}
	if wg == nil {
		wg = &m.farewells
	}
	wg.Add(1)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer wg.Done()
		defer m.end(s)
		start := time.Now()
		t := time.NewTimer(times[0])
		defer t.Stop()
		for i := range times {
			if i > 0 {
				t.Reset(time.Until(start.Add(times[i])))
			}
			select {
			case <-m.ctx.Done():
				return
			case <-t.C:
			}
			if !m.resend(s) {
				return
			}
		}
	}()
	return true
}

// end stops s's goroutine and waits for it.
func (m *Manager) end(s *session) {
	s.cancel()
	<-s.done
}

// resend sends s's AdminDown again, unless a new session has taken its
// addresses: the peer would take the goodbye for the new one's. Under mu,
// so that Add cannot start one in between; the session's goroutine never
// takes mu.
func (m *Manager) resend(s *session) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, taken := m.byAddr[addrKeyOf(s.key)]; taken {
		return false
	}
	s.do(func(*Session) Actions { return Actions{SendNow: true} })
	return true
}
