package session

import (
	"fmt"
	"strings"
)

// State is a state of the RFC 4271 §8 finite state machine.
type State uint8

// The six states of RFC 4271 §8.2.2.
const (
	Idle State = iota
	Connect
	Active
	OpenSent
	OpenConfirm
	Established
)

func (s State) String() string {
	switch s {
	case Idle:
		return "Idle"
	case Connect:
		return "Connect"
	case Active:
		return "Active"
	case OpenSent:
		return "OpenSent"
	case OpenConfirm:
		return "OpenConfirm"
	case Established:
		return "Established"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// event is an input of the FSM. The names follow RFC 4271 §8.1, folded where
// the RFC distinguishes cases this implementation does not (no DelayOpen, no
// automatic stop). Peer oscillation damping lengthens the automatic restart
// in the runner (idleHold), outside this table.
type event uint8

const (
	evStart               event = iota // ManualStart / AutomaticStart (Events 1, 3)
	evStop                             // ManualStop (Event 2): Cease with the administrator's message
	evConnectRetryExpired              // Event 9; in Idle it is the automatic restart
	evHoldExpired                      // Event 10
	evKeepaliveExpired                 // Event 11
	evSendHoldExpired                  // RFC 9687
	evTCPConnected                     // Events 16, 17: our connect succeeded or we accepted one
	evTCPFailed                        // Event 18: connect failed, or the connection closed/reset
	evOpen                             // Event 19: a valid OPEN that passed our checks
	evMsgErr                           // Events 21, 22, 28: malformed message; the event carries the NOTIFICATION
	evCollisionDump                    // Event 23: this connection lost the collision (§6.8)
	evNotification                     // Events 24, 25: the peer sent a NOTIFICATION
	evKeepalive                        // Event 26
	evUpdate                           // Event 27
	evRouteRefresh                     // RFC 2918 ROUTE-REFRESH
	evLocalErr                         // our side resets the session (handler error, panic); carries the NOTIFICATION
	numEvents
)

var eventNames = [numEvents]string{
	"Start", "Stop", "ConnectRetryExpired", "HoldExpired", "KeepaliveExpired", "SendHoldExpired",
	"TCPConnected", "TCPFailed", "Open", "MsgErr", "CollisionDump", "Notification", "Keepalive",
	"Update", "RouteRefresh", "LocalErr",
}

func (e event) String() string {
	if e < numEvents {
		return eventNames[e]
	}
	return fmt.Sprintf("event(%d)", uint8(e))
}

// actions is the set of things the shell does after a transition, in the
// order of the constants: notifications go out before the connection closes,
// and Down is reported after it closed.
type actions uint16

const (
	aConnect        actions = 1 << iota // start a TCP connection to the peer
	aSendOpen                           // send our OPEN
	aSendKeepalive                      // send a KEEPALIVE (and re-arm the keepalive timer)
	aHoldLarge                          // arm the hold timer with the large OpenSent value (§8: 4 minutes)
	aStartTimers                        // arm hold and keepalive timers with the negotiated values
	aNotifyFSM                          // send an FSM Error NOTIFICATION, subcode by state (RFC 6608)
	aNotifyHold                         // send Hold Timer Expired
	aNotifySendHold                     // try to send Send Hold Timer Expired (RFC 9687)
	aNotifyCarried                      // send the NOTIFICATION the event carries
	aClose                              // drop the TCP connection and its timers
	aStartRetry                         // arm the ConnectRetry timer (jittered)
	aStopRetry                          // stop the ConnectRetry timer
	aAutoRestart                        // arm the timer that restarts the session from Idle
	aEstablished                        // report Established to the handler
	aDown                               // report Down to the handler (the session was Established)
)

var actionNames = [...]string{
	"Connect", "SendOpen", "SendKeepalive", "HoldLarge", "StartTimers", "NotifyFSM", "NotifyHold",
	"NotifySendHold", "NotifyCarried", "Close", "StartRetry", "StopRetry", "AutoRestart", "Established", "Down",
}

func (a actions) String() string {
	var parts []string
	for i, n := range actionNames {
		if a&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// transition is the FSM of one connection (RFC 4271 §8.2.2): from state s on
// event e it returns the next state and what to do. It is a pure function;
// the peer's goroutine executes the actions. passive peers never connect out.
//
// Deviations from the RFC, on purpose:
//   - Idle accepts an incoming connection (evTCPConnected) instead of refusing
//     it, so a peer that reconnects right after a reset is not turned away
//     while our restart timer runs; the administratively stopped peer refuses
//     connections before they reach the FSM.
//   - A second connection of the same peer (collision) runs its own FSM
//     instance, as §8 describes, so states that own a connection ignore
//     evTCPConnected: the shell never feeds it to them.
func transition(s State, e event, passive bool) (State, actions) {
	switch s {
	case Idle:
		return idle(e, passive)
	case Connect, Active:
		return connecting(s, e, passive)
	case OpenSent, OpenConfirm, Established:
		return connected(s, e, passive)
	}
	return s, 0
}

func idle(e event, passive bool) (State, actions) {
	switch e {
	case evStart, evConnectRetryExpired:
		if passive {
			return Active, aStopRetry
		}
		return Connect, aStartRetry | aConnect
	case evTCPConnected:
		return OpenSent, aStopRetry | aSendOpen | aHoldLarge
	case evStop:
		return Idle, aStopRetry
	}
	// RFC 4271: every other event is ignored in Idle.
	return Idle, 0
}

func connecting(s State, e event, passive bool) (State, actions) {
	switch e {
	case evStart, evKeepalive, evUpdate, evRouteRefresh:
		return s, 0
	case evStop:
		return Idle, aClose | aStopRetry
	case evConnectRetryExpired:
		if passive {
			return Active, 0
		}
		// Connect: give up the attempt in flight and try again.
		return Connect, aClose | aStartRetry | aConnect
	case evTCPConnected:
		return OpenSent, aStopRetry | aSendOpen | aHoldLarge
	case evTCPFailed:
		if passive {
			return Active, 0
		}
		return Active, aStartRetry
	}
	// Events that need a connection cannot happen here; RFC 4271 sends
	// the FSM back to Idle on them.
	return Idle, aClose | aStopRetry | aAutoRestart
}

// connected handles the states that own a TCP connection.
func connected(s State, e event, passive bool) (State, actions) {
	var down actions
	if s == Established {
		down = aDown
	}
	reset := aClose | aStopRetry | aAutoRestart | down
	switch e {
	case evStart, evTCPConnected:
		return s, 0
	case evStop:
		return Idle, aNotifyCarried | aClose | aStopRetry | down
	case evHoldExpired:
		return Idle, aNotifyHold | reset
	case evSendHoldExpired:
		return Idle, aNotifySendHold | reset
	case evMsgErr, evLocalErr:
		return Idle, aNotifyCarried | reset
	case evCollisionDump:
		// The connection that wins the collision carries on; this one's
		// FSM instance ends here without restarting anything.
		return Idle, aNotifyCarried | aClose | down
	case evNotification:
		return Idle, reset
	case evTCPFailed:
		if s == OpenSent {
			// §8.2.2: OpenSent goes back to Active to listen for the peer.
			if passive {
				return Active, aClose
			}
			return Active, aClose | aStartRetry
		}
		return Idle, reset
	case evKeepaliveExpired:
		if s == OpenSent {
			break // no keepalive timer runs before the OPEN exchange
		}
		return s, aSendKeepalive
	case evOpen:
		if s == OpenSent {
			return OpenConfirm, aSendKeepalive | aStartTimers
		}
	case evKeepalive:
		switch s {
		case OpenConfirm:
			return Established, aEstablished
		case Established:
			return s, 0
		}
	case evUpdate, evRouteRefresh:
		if s == Established {
			return s, 0
		}
	}
	return Idle, aNotifyFSM | reset
}

// fsmErrorSubcode is the RFC 6608 subcode for an unexpected message in s.
func fsmErrorSubcode(s State) uint8 {
	switch s {
	case OpenSent:
		return 1
	case OpenConfirm:
		return 2
	case Established:
		return 3
	}
	return 0
}
