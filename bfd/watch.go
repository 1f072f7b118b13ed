package bfd

import "context"

// WatchPathDown follows session k for the protocol it guards (a BGP
// session): the returned run calls pathDown once, on run's goroutine, when
// an event says the forwarding path failed (Event.PathDown), and returns
// then or when ctx ends. The caller runs it on a goroutine it owns and
// ends it with ctx. An event read after ctx ended is ignored: select picks
// at random between a queued event and the cancel, and a stopped watcher
// must not act on a late event. The error is Subscribe's.
//
// The subscription starts here, so that no event between this call and
// run is missed; it ends when run returns, or when ctx ends for a run
// that is never called.
func (m *Manager) WatchPathDown(ctx context.Context, k Key, pathDown func(Event)) (run func(), err error) {
	events, unsubscribe, err := m.Subscribe(k)
	if err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, unsubscribe)
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
