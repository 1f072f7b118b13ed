package bfd

import (
	"context"
	"sync"
	"time"
)

// WatchPathDown follows session k for the protocol it guards (a BGP
// session): the returned run calls pathDown once, on run's goroutine, when
// an event says the forwarding path failed (Event.PathDown), and returns
// then or when ctx ends. The caller runs it on a goroutine it owns and
// ends it with ctx. An event read after ctx ended is ignored: select picks
// at random between a queued event and the cancel, and a stopped watcher
// must not act on a late event. The error is Subscribe's.
func (m *Manager) WatchPathDown(ctx context.Context, k Key, pathDown func(Event)) (run func(), err error) {
	events, unsubscribe, err := m.Subscribe(k)
	if err != nil {
		return nil, err
	}
	return func() {
		defer unsubscribe()
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-events:
				if ctx.Err() != nil {
					return
				}
				if ev.PathDown() {
					pathDown(ev)
					return
				}
			}
		}
	}, nil
}

// farewellPackets is how many AdminDown packets Shutdown sends an Up
// session's peer: one lost packet must not leave the peer to its detection
// timer, which would take the path for failed.
const farewellPackets = 3

// Shutdown tells every peer that its session is going down on purpose
// (AdminDown, which the peer must not take for a failure of the path, RFC
// 5882 §3.2), then stops like Close. An Up or Init session's peer gets
// farewellPackets of them, spaced by the session's transmit interval so
// that all fall within the peer's detection time; the others one. ctx
// bounds the wait: what is not sent when it ends is not sent. Add fails
// from the start of Shutdown on.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	ss := make([]*session, 0, len(m.sessions))
	for _, s := range m.sessions {
		ss = append(ss, s)
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range ss {
		wg.Go(func() { s.farewell(ctx) })
	}
	wg.Wait()
	return m.Close()
}

// farewell takes the session AdminDown and repeats the AdminDown packet
// while the peer may still rely on the session.
func (s *session) farewell(ctx context.Context) {
	var (
		every time.Duration
		n     int
	)
	s.do(func(f *Session) Actions {
		if st := f.State(); st == Up || st == Init {
			// The interval in use before AdminDown slows it to a second.
			every, n = f.TxInterval(), farewellPackets
		}
		return f.SetAdminDown(true)
	})
	if every <= 0 {
		return
	}
	t := time.NewTimer(every)
	defer t.Stop()
	for i := 1; i < n; i++ {
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case <-t.C:
		}
		s.do(func(*Session) Actions { return Actions{SendNow: true} })
		t.Reset(every)
	}
}
