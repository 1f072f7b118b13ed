package session

import (
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/bgplb/bgplb/bgp/wire"
)

// Reasons a session ends, for Handler.Down and Info.LastError; match them
// with errors.Is.
var (
	ErrHoldTimerExpired     = errors.New("hold timer expired")
	ErrSendHoldTimerExpired = errors.New("send hold timer expired (RFC 9687)")
	ErrConnectionClosed     = errors.New("connection closed")
	ErrShutdown             = errors.New("administrative shutdown")
	ErrCollision            = errors.New("connection collision")
	// ErrPeerRestarted ends an established session when the peer, which
	// negotiated graceful restart, opens a new one: its old connection
	// died without our noticing, so it restarted (RFC 4724 §4.2).
	ErrPeerRestarted  = errors.New("peer restarted: a new OPEN while the session was established")
	ErrNotEstablished = errors.New("session not established")
	ErrAlreadyRunning = errors.New("peer is already running")
	// ErrSessionChanged is SendTo's refusal: the session it was given is
	// not the current one.
	ErrSessionChanged = errors.New("not the session the message was built for")
)

// NotificationError is a NOTIFICATION that ended a session: one the peer
// sent (Sent false), or one we sent. A Handler returns one from Update to
// reset the session with that NOTIFICATION, e.g. Cease / Maximum Number of
// Prefixes Reached when a limit is exceeded.
type NotificationError struct {
	Notification wire.Notification
	Sent         bool
	// Err is what made us send it, if known.
	Err error
}

func (e *NotificationError) Error() string {
	dir := "received"
	if e.Sent {
		dir = "sent"
	}
	s := fmt.Sprintf("NOTIFICATION %s: %s", dir, describe(&e.Notification))
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *NotificationError) Unwrap() error { return e.Err }

// describe names a NOTIFICATION for logs. A shutdown communication that is
// not valid UTF-8 (or overruns its length) is shown as hex, as RFC 9003 §5
// asks, never as text.
func describe(n *wire.Notification) string {
	s := n.String()
	if _, ok := n.ShutdownMessage(); !ok && n.Code == wire.ErrCodeCease &&
		(n.Subcode == wire.CeaseAdminShutdown || n.Subcode == wire.CeaseAdminReset) && len(n.Data) > 1 {
		s += " (malformed shutdown communication " + hex.EncodeToString(n.Data) + ")"
	}
	return s
}

// notificationFor is the NOTIFICATION that resets a session because of err:
// the one err carries, or Cease / Administrative Reset with err's text as
// the shutdown communication, so the peer's operator sees why.
func notificationFor(err error) wire.Notification {
	var ne *NotificationError
	if errors.As(err, &ne) {
		return ne.Notification
	}
	if we, ok := wire.AsError(err); ok && we.Action == wire.SessionReset {
		return we.Notification()
	}
	return *wire.NewShutdown(wire.CeaseAdminReset, err.Error())
}
