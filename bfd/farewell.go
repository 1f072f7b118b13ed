package bfd

import (
	"context"
	"time"
)

// farewellPackets is how many AdminDown packets the peer of an Up session
// gets when the session is removed or the Manager shut down, at most
// farewellSpacing apart: one lost packet must not leave the peer to its
// detection timer, which would take the path for failed (RFC 5882 §3.2),
// and a slow session must not hold up a stop.
const (
	farewellPackets = 3
	farewellSpacing = 250 * time.Millisecond
)

// Shutdown tells every peer that its session is going down on purpose
// (AdminDown, which the peer must not take for a failure of the path),
// then stops like Close. An Up session's peer gets farewellPackets of
// them, spaced by the session's transmit interval (at most farewellSpacing)
// so that all fall within the peer's detection time; the others one.
// Sessions Removed just before are waited for too. ctx bounds the wait:
// what is not sent when it ends is not sent. Add fails from the start of
// Shutdown on.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	ss := make([]*session, 0, len(m.sessions))
	for k, s := range m.sessions {
		ss = append(ss, s)
		delete(m.sessions, k)
		delete(m.byDisc, s.disc)
		delete(m.byAddr, addrKeyOf(k))
	}
	m.mu.Unlock()
	for _, s := range ss {
		m.bye(s)
	}
	done := make(chan struct{})
	// Ends when the farewells do: on their own, or when Close cancels them.
	go func() {
		m.farewells.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return m.Close()
}

// bye ends a session that is no longer in the maps: AdminDown at once
// (one packet before bye returns), then, for a session that was Up, the
// same packet again in the background while nothing took its addresses,
// and the session's end.
func (m *Manager) bye(s *session) {
	var every time.Duration
	s.do(func(f *Session) Actions {
		if f.State() == Up {
			// The interval in use before AdminDown slows it to a second.
			every = min(f.TxInterval(), farewellSpacing)
		}
		return f.SetAdminDown(true)
	})
	m.mu.Lock()
	if every <= 0 || m.stopping {
		m.mu.Unlock()
		s.cancel()
		<-s.done
		return
	}
	// Counted under mu, so that Close's Wait comes after (it sets
	// stopping first).
	m.farewells.Add(1)
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		defer m.farewells.Done()
		defer func() {
			s.cancel()
			<-s.done
		}()
		t := time.NewTimer(every)
		defer t.Stop()
		for range farewellPackets - 1 {
			select {
			case <-m.ctx.Done():
				return
			case <-t.C:
			}
			if !m.resend(s) {
				return
			}
			t.Reset(every)
		}
	}()
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
