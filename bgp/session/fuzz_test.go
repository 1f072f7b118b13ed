package session

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
)

// fsmChecker is a Handler that records every breach of the order the
// Handler contract promises: Established, then Updates and EndOfRIBs, then
// Down, and nothing else.
type fsmChecker struct {
	mu       sync.Mutex
	up       bool
	problems []string
}

func (h *fsmChecker) bad(format string, args ...any) {
	h.problems = append(h.problems, fmt.Sprintf(format, args...))
}

func (h *fsmChecker) Established(p *Peer, _ Negotiated) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.up {
		h.bad("Established twice")
	}
	if s := p.State(); s != Established {
		h.bad("Established reported in state %v", s)
	}
	h.up = true
}

func (h *fsmChecker) Update(*Peer, *wire.Update, wire.Action) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.up {
		h.bad("UPDATE delivered before Established")
	}
	return nil
}

func (h *fsmChecker) EndOfRIB(*Peer, wire.Family) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.up {
		h.bad("End-of-RIB delivered before Established")
	}
}

func (h *fsmChecker) Down(*Peer, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.up {
		h.bad("Down without Established")
	}
	h.up = false
}

// fuzzStep is one thing that happens to a session under fuzzing: a message
// from the peer, time passing, or a local call.
type fuzzStep struct {
	msg   []byte
	wait  time.Duration
	send  []byte // an UPDATE we Send
	close bool   // we Close the peer
}

const maxFuzzInput = 128

// fuzzSteps turns fuzz input into a sequence of steps: each chunk starts
// with a byte choosing a well-formed message, a local event, or, for the
// rest, raw bytes of a chosen type, so the fuzzer reaches every state.
// Only the first maxFuzzInput bytes count: the fuzzer minimises every input
// that finds new coverage, in time quadratic in its length, and it would
// spend its time there rather than fuzzing (the message codec has fuzz
// targets of its own for long bodies).
func fuzzSteps(data []byte) []fuzzStep {
	data = data[:min(len(data), maxFuzzInput)]
	open, _ := wire.AppendOpen(nil, wire.NewOpen(64512, 9, idB, wire.Capabilities{
		Multiprotocol: []wire.Family{wire.IPv4Unicast, wire.IPv6Unicast}, AS4: 64512, RouteRefresh: true}))
	enc := wire.Encoder{Options: wire.Options{AS4: true}}
	arg := func() int {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return int(b)
	}
	var steps []fuzzStep
	for len(data) > 0 && len(steps) < 64 {
		op := arg()
		switch op % 8 {
		case 0:
			steps = append(steps, fuzzStep{msg: open})
		case 1:
			steps = append(steps, fuzzStep{msg: wire.AppendKeepalive(nil)})
		case 2:
			steps = append(steps, fuzzStep{msg: enc.AppendEndOfRIB(nil, wire.IPv6Unicast)})
		case 3:
			steps = append(steps, fuzzStep{msg: wire.AppendNotification(nil, &wire.Notification{Code: wire.ErrCodeCease, Subcode: 2}, nil)})
		case 4: // local: time passes (up to the 4 min OpenSent hold), Send, Close
			switch a := arg(); a % 4 {
			case 0, 1:
				steps = append(steps, fuzzStep{wait: time.Duration(a/4+1) * 4 * time.Second})
			case 2:
				steps = append(steps, fuzzStep{send: enc.AppendEndOfRIB(nil, wire.IPv4Unicast)})
			case 3:
				steps = append(steps, fuzzStep{close: true})
			}
		default: // raw body of type op/8 (1-5 are the real types)
			n := arg()
			n = min(n, len(data))
			m := binary.BigEndian.AppendUint64(nil, ^uint64(0))
			m = binary.BigEndian.AppendUint64(m, ^uint64(0))
			m = binary.BigEndian.AppendUint16(m, uint16(wire.HeaderLen+n))
			m = append(m, byte(op/8%6))
			steps = append(steps, fuzzStep{msg: append(m, data[:n]...)})
			data = data[n:]
		}
	}
	return steps
}

// runFuzzSession plays steps to a passive peer over net.Pipe and checks the
// FSM's invariants: no panic, handler calls in order, the state always one
// of the six and, whenever the session has settled, Established exactly
// when the handler was told so; nothing sent after our NOTIFICATION but
// the close. It runs in a synctest bubble: after each step it waits until
// every goroutine of the session is blocked, so the steps are played in
// lock step, and the timers (hold, linger, the NOTIFICATION's deadline) run
// on the bubble's clock, which jumps ahead when nothing else can run: an
// iteration takes no wall-clock time waiting.
func runFuzzSession(t *testing.T, steps []fuzzStep) {
	synctest.Test(t, func(t *testing.T) { playSession(t, steps) })
}

func playSession(t *testing.T, steps []fuzzStep) {
	h := &fsmChecker{}
	cfg := baseConfig(64512, 64512, idA)
	cfg.Passive = true
	p := New(cfg, h, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- p.Run(ctx) }()
	ours, theirs := net.Pipe()
	p.Accept(ours)
	readDone := make(chan string, 1)
	go func() { readDone <- readUntilClosed(theirs) }()
	settled := func(after string) {
		synctest.Wait()
		s := p.State()
		if s > Established {
			t.Fatalf("after %s: state %d", after, s)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.up != (s == Established) {
			t.Fatalf("after %s: state %v, handler told Established: %v", after, s, h.up)
		}
	}
	for i, s := range steps {
		switch {
		case s.msg != nil:
			if _, err := theirs.Write(s.msg); err != nil {
				break
			}
		case s.wait > 0:
			time.Sleep(s.wait)
		case s.send != nil:
			sctx, scancel := context.WithTimeout(ctx, time.Second)
			_ = p.Send(sctx, s.send)
			scancel()
		case s.close:
			_ = p.Close(ctx, nil)
		}
		settled(fmt.Sprintf("step %d", i))
	}
	theirs.Close()
	settled("the peer closed")
	cancel()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	if problem := <-readDone; problem != "" {
		t.Fatal(problem)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.problems) > 0 {
		t.Fatalf("handler contract broken: %v", h.problems)
	}
	if h.up {
		t.Fatal("Run returned without reporting Down")
	}
}

// readUntilClosed drains what the peer sends and reports a message that
// follows a NOTIFICATION.
func readUntilClosed(nc net.Conn) string {
	hdr := make([]byte, wire.HeaderLen)
	body := make([]byte, wire.MaxExtendedLen)
	notified := false
	for {
		if _, err := io.ReadFull(nc, hdr); err != nil {
			return ""
		}
		h, err := wire.ParseHeader(hdr, &wire.Options{ExtendedMessage: true})
		if err != nil {
			return fmt.Sprintf("peer sent a bad header: %v", err)
		}
		if _, err := io.ReadFull(nc, body[:int(h.Length)-wire.HeaderLen]); err != nil {
			return ""
		}
		if notified {
			return fmt.Sprintf("%s after our NOTIFICATION", wire.MessageTypeString(h.Type))
		}
		notified = h.Type == wire.TypeNotification
	}
}

// fuzzSeeds are sequences that reach each state, and the crashers found.
var fuzzSeeds = [][]byte{
	{},
	{0},                            // OPEN: OpenConfirm
	{0, 1},                         // Established
	{0, 1, 2, 1, 3},                // End-of-RIB, KEEPALIVE, NOTIFICATION
	{0, 0},                         // second OPEN in OpenConfirm
	{1},                            // KEEPALIVE in OpenSent
	{0, 1, 8*2 + 5, 3, 0, 0, 0},    // UPDATE with a bad body
	{0, 1, 8*5 + 5, 4, 0, 1, 0, 1}, // ROUTE-REFRESH once established
	{8*5 + 5, 4, 0, 1, 0, 1},       // ROUTE-REFRESH before
	{0, 1, 8*0 + 5, 0},             // type 0
	{0, 1, 4, 8},                   // silence: the hold timer expires
	{4, 240},                       // no OPEN: the OpenSent hold timer expires
	{0, 1, 4, 2, 4, 2},             // we Send twice
	{0, 4, 3},                      // we Close in OpenConfirm
	{0, 1, 4, 3, 1},                // we Close, the peer goes on
}

func TestFuzzSessionSeeds(t *testing.T) {
	leakCheck(t)
	for i, s := range fuzzSeeds {
		t.Run(fmt.Sprint(i), func(t *testing.T) { runFuzzSession(t, fuzzSteps(s)) })
	}
}

// FuzzSession feeds random message sequences to a session; its seed corpus
// runs with the ordinary tests.
func FuzzSession(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { runFuzzSession(t, fuzzSteps(data)) })
}
