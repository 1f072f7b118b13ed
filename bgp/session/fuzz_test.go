package session

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
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

// fuzzMessages turns fuzz input into a sequence of BGP messages: each chunk
// starts with a byte choosing a well-formed message or, for the rest, raw
// bytes of a chosen type, so the fuzzer reaches every state.
func fuzzMessages(data []byte) [][]byte {
	open, _ := wire.AppendOpen(nil, wire.NewOpen(64512, 9, idB, wire.Capabilities{
		Multiprotocol: []wire.Family{wire.IPv4Unicast, wire.IPv6Unicast}, AS4: 64512, RouteRefresh: true}))
	enc := wire.Encoder{Options: wire.Options{AS4: true}}
	var msgs [][]byte
	for len(data) > 0 && len(msgs) < 64 {
		op := data[0]
		data = data[1:]
		switch op % 8 {
		case 0:
			msgs = append(msgs, open)
		case 1:
			msgs = append(msgs, wire.AppendKeepalive(nil))
		case 2:
			msgs = append(msgs, enc.AppendEndOfRIB(nil, wire.IPv6Unicast))
		case 3:
			msgs = append(msgs, wire.AppendNotification(nil, &wire.Notification{Code: wire.ErrCodeCease, Subcode: 2}, nil))
		default: // raw body of type op/8 (1-5 are the real types)
			n := 0
			if len(data) > 0 {
				n, data = int(data[0]), data[1:]
			}
			n = min(n, len(data))
			m := binary.BigEndian.AppendUint64(nil, ^uint64(0))
			m = binary.BigEndian.AppendUint64(m, ^uint64(0))
			m = binary.BigEndian.AppendUint16(m, uint16(wire.HeaderLen+n))
			m = append(m, op/8%6)
			msgs = append(msgs, append(m, data[:n]...))
			data = data[n:]
		}
	}
	return msgs
}

// runFuzzSession plays msgs to a passive peer over net.Pipe and checks the
// FSM's invariants: no panic, handler calls in order, the state always one
// of the six, and nothing sent after our NOTIFICATION but the close.
func runFuzzSession(t *testing.T, msgs [][]byte) {
	h := &fsmChecker{}
	cfg := baseConfig(64512, 64512, idA)
	cfg.Passive = true
	p := New(cfg, h, nil)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- p.Run(ctx) }()
	ours, theirs := net.Pipe()
	p.Accept(ours)

	readDone := make(chan string, 1)
	go func() { readDone <- readUntilClosed(theirs) }()
	for _, m := range msgs {
		_ = theirs.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := theirs.Write(m); err != nil {
			break
		}
		if s := p.State(); s > Established {
			t.Fatalf("state %d", s)
		}
	}
	theirs.Close()
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
		_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
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
	{0, 1, 8*2 + 4, 3, 0, 0, 0},    // UPDATE with a bad body
	{0, 1, 8*5 + 4, 4, 0, 1, 0, 1}, // ROUTE-REFRESH once established
	{8*5 + 4, 4, 0, 1, 0, 1},       // ROUTE-REFRESH before
	{0, 1, 8*0 + 5, 0},             // type 0
}

func TestFuzzSessionSeeds(t *testing.T) {
	leakCheck(t)
	for i, s := range fuzzSeeds {
		t.Run(fmt.Sprint(i), func(t *testing.T) { runFuzzSession(t, fuzzMessages(s)) })
	}
}

// FuzzSession feeds random message sequences to a session; its seed corpus
// runs with the ordinary tests.
func FuzzSession(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { runFuzzSession(t, fuzzMessages(data)) })
}
