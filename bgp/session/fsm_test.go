package session

import (
	"math/bits"
	"testing"
)

func TestTransitionTable(t *testing.T) {
	type row struct {
		from    State
		ev      event
		passive bool
		to      State
		acts    actions
	}
	reset := aClose | aStopRetry | aAutoRestart
	rows := []row{
		// Starting.
		{Idle, evStart, false, Connect, aStartRetry | aConnect},
		{Idle, evStart, true, Active, aStopRetry},
		{Idle, evConnectRetryExpired, false, Connect, aStartRetry | aConnect}, // automatic restart
		{Idle, evConnectRetryExpired, true, Active, aStopRetry},
		{Idle, evStop, false, Idle, aStopRetry},
		{Idle, evTCPConnected, false, OpenSent, aStopRetry | aSendOpen | aHoldLarge},
		{Idle, evKeepalive, false, Idle, 0},
		{Idle, evHoldExpired, true, Idle, 0},
		// Connecting.
		{Connect, evTCPConnected, false, OpenSent, aStopRetry | aSendOpen | aHoldLarge},
		{Connect, evTCPFailed, false, Active, aStartRetry},
		{Connect, evConnectRetryExpired, false, Connect, aClose | aStartRetry | aConnect},
		{Connect, evStop, false, Idle, aClose | aStopRetry},
		{Active, evConnectRetryExpired, false, Connect, aClose | aStartRetry | aConnect},
		{Active, evConnectRetryExpired, true, Active, 0},
		{Active, evTCPConnected, true, OpenSent, aStopRetry | aSendOpen | aHoldLarge},
		{Active, evTCPFailed, true, Active, 0},
		{Active, evStop, true, Idle, aClose | aStopRetry},
		{Active, evHoldExpired, true, Idle, reset},
		// OpenSent.
		{OpenSent, evOpen, false, OpenConfirm, aSendKeepalive | aStartTimers},
		{OpenSent, evTCPFailed, false, Active, aClose | aStartRetry},
		{OpenSent, evTCPFailed, true, Active, aClose},
		{OpenSent, evHoldExpired, false, Idle, aNotifyHold | reset},
		{OpenSent, evMsgErr, false, Idle, aNotifyCarried | reset},
		{OpenSent, evKeepalive, false, Idle, aNotifyFSM | reset},
		{OpenSent, evUpdate, false, Idle, aNotifyFSM | reset},
		{OpenSent, evKeepaliveExpired, false, Idle, aNotifyFSM | reset},
		{OpenSent, evNotification, false, Idle, reset},
		{OpenSent, evCollisionDump, false, Idle, aNotifyCarried | aClose},
		{OpenSent, evStop, false, Idle, aNotifyCarried | aClose | aStopRetry},
		{OpenSent, evSendHoldExpired, false, Idle, aNotifySendHold | reset},
		// OpenConfirm.
		{OpenConfirm, evKeepalive, false, Established, aEstablished},
		{OpenConfirm, evKeepaliveExpired, false, OpenConfirm, aSendKeepalive},
		{OpenConfirm, evOpen, false, Idle, aNotifyFSM | reset},
		{OpenConfirm, evUpdate, false, Idle, aNotifyFSM | reset},
		{OpenConfirm, evTCPFailed, false, Idle, reset},
		{OpenConfirm, evHoldExpired, false, Idle, aNotifyHold | reset},
		{OpenConfirm, evCollisionDump, false, Idle, aNotifyCarried | aClose},
		// Established.
		{Established, evKeepalive, false, Established, 0},
		{Established, evUpdate, false, Established, 0},
		{Established, evRouteRefresh, false, Established, 0},
		{Established, evKeepaliveExpired, false, Established, aSendKeepalive},
		{Established, evTCPConnected, false, Established, 0},
		{Established, evOpen, false, Idle, aNotifyFSM | reset | aDown},
		{Established, evHoldExpired, false, Idle, aNotifyHold | reset | aDown},
		{Established, evSendHoldExpired, false, Idle, aNotifySendHold | reset | aDown},
		{Established, evMsgErr, false, Idle, aNotifyCarried | reset | aDown},
		{Established, evLocalErr, true, Idle, aNotifyCarried | reset | aDown},
		{Established, evNotification, false, Idle, reset | aDown},
		{Established, evTCPFailed, false, Idle, reset | aDown},
		{Established, evStop, false, Idle, aNotifyCarried | aClose | aStopRetry | aDown},
		{Established, evCollisionDump, false, Idle, aNotifyCarried | aClose | aDown},
	}
	for _, r := range rows {
		to, acts := transition(r.from, r.ev, r.passive)
		if to != r.to || acts != r.acts {
			t.Errorf("%v + %v (passive %v) = %v %v, want %v %v", r.from, r.ev, r.passive, to, acts, r.to, r.acts)
		}
	}
}

// TestTransitionInvariants checks properties every (state, event) pair must
// keep, so a row added to the FSM cannot break the shell's assumptions.
func TestTransitionInvariants(t *testing.T) {
	connected := func(s State) bool { return s >= OpenSent }
	notify := aNotifyFSM | aNotifyHold | aNotifySendHold | aNotifyCarried
	n := 0
	for s := Idle; s <= Established; s++ {
		for e := event(0); e < numEvents; e++ {
			for _, passive := range []bool{false, true} {
				n++
				to, acts := transition(s, e, passive)
				where := func() string { return s.String() + " + " + e.String() }
				if connected(s) && !connected(to) && acts&aClose == 0 {
					t.Errorf("%s leaves the connection open: %v", where(), acts)
				}
				if (acts&aDown != 0) != (s == Established && to != Established) {
					t.Errorf("%s: Down %v from %v to %v", where(), acts&aDown != 0, s, to)
				}
				if (acts&aEstablished != 0) != (s == OpenConfirm && to == Established) {
					t.Errorf("%s: Established %v from %v to %v", where(), acts&aEstablished != 0, s, to)
				}
				if bits.OnesCount16(uint16(acts&notify)) > 1 {
					t.Errorf("%s sends two NOTIFICATIONs: %v", where(), acts)
				}
				if acts&notify != 0 && (!connected(s) || acts&aClose == 0) {
					t.Errorf("%s notifies without a connection to close: %v", where(), acts)
				}
				if passive && acts&aConnect != 0 {
					t.Errorf("%s: a passive peer connects", where())
				}
				if acts&aConnect != 0 && acts&aStartRetry == 0 {
					t.Errorf("%s connects without bounding the attempt", where())
				}
				if acts&aStartRetry != 0 && acts&aStopRetry != 0 {
					t.Errorf("%s starts and stops the retry timer", where())
				}
				if to == Idle && connected(s) && e != evStop && e != evCollisionDump && acts&aAutoRestart == 0 {
					t.Errorf("%s goes Idle for good", where())
				}
				if e == evStop && acts&(aAutoRestart|aConnect|aStartRetry) != 0 {
					t.Errorf("%s restarts after a stop: %v", where(), acts)
				}
				if connected(to) && !connected(s) && acts&aSendOpen == 0 {
					t.Errorf("%s reaches %v without sending OPEN", where(), to)
				}
			}
		}
	}
	if n != 6*int(numEvents)*2 {
		t.Fatalf("checked %d cases", n)
	}
}

func TestFSMErrorSubcode(t *testing.T) {
	for s, want := range map[State]uint8{Idle: 0, Connect: 0, Active: 0, OpenSent: 1, OpenConfirm: 2, Established: 3} {
		if got := fsmErrorSubcode(s); got != want {
			t.Errorf("%v: %d, want %d", s, got, want)
		}
	}
}

func TestNames(t *testing.T) {
	if s := (aSendOpen | aClose).String(); s != "{SendOpen,Close}" {
		t.Errorf("actions %s", s)
	}
	if len(actionNames) != bits.Len16(uint16(aDown)) {
		t.Errorf("%d action names for %d actions", len(actionNames), bits.Len16(uint16(aDown)))
	}
	for e := event(0); e < numEvents; e++ {
		if eventNames[e] == "" {
			t.Errorf("event %d has no name", e)
		}
	}
	if Established.String() != "Established" || State(9).String() != "State(9)" {
		t.Error("state names")
	}
}
