package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bgplb/bgplb/fib"
)

// TestStopIsBounded: whatever still runs when the daemon stops (here a
// goroutine that never returns on its own), stop returns within the
// shutdown timeout, with ErrShutdownTimeout.
func TestStopIsBounded(t *testing.T) {
	cfg := mustParse(t, "asn: 64512\nrouterID: 198.51.100.1\nimport: {prefixes: [203.0.113.0/24]}\n")
	d := New(cfg, Options{Log: slog.New(slog.DiscardHandler), ShutdownTimeout: 50 * time.Millisecond})
	stuck := make(chan struct{})
	d.spawn(func() { <-stuck })
	defer close(stuck)
	if err := d.stop(); !errors.Is(err, ErrShutdownTimeout) {
		t.Fatalf("stop = %v, want ErrShutdownTimeout", err)
	}
}

func TestAdmit(t *testing.T) {
	r := DynamicNeighbor{MaxPeers: 2}
	l := Limits{MaxSessions: 10}
	tests := []struct {
		name              string
		sessions, inRange int
		want              string
	}{
		{"room everywhere", 5, 1, ""},
		{"range full", 5, 2, "the range's maxPeers reached"},
		{"all sessions taken", 10, 0, "limits.maxSessions reached"},
		{"both: the global cap is named", 10, 2, "limits.maxSessions reached"},
	}
	for _, tc := range tests {
		if got := admit(tc.sessions, tc.inRange, r, l); got != tc.want {
			t.Errorf("%s: admit = %q, want %q", tc.name, got, tc.want)
		}
	}
	// The defaults cap a range that sets nothing.
	cfg := mustParse(t, "asn: 1\nrouterID: 198.51.100.1\nimport: {prefixes: [203.0.113.0/24]}\ndynamicNeighbors: [{prefix: 198.51.0.0/16, peerASN: 1}]\n")
	if admit(0, DefaultMaxPeers, cfg.DynamicNeighbors[0], cfg.Limits) == "" || admit(DefaultMaxSessions, 0, cfg.DynamicNeighbors[0], cfg.Limits) == "" {
		t.Error("the default maxPeers or maxSessions does not cap")
	}
}

// TestSplitFailures: changes a shutdown abandoned are not the kernel's
// refusals, whichever way the cancellation is wrapped.
func TestSplitFailures(t *testing.T) {
	p := netip.MustParsePrefix("203.0.113.1/32")
	refusal := &fib.Error{Op: "add", Prefix: p, Errno: unix.ENETUNREACH}
	fs := []fib.Failure{
		{Change: fib.Change{Prefix: p}, Err: fmt.Errorf("fib: outcome unknown: %w", context.Canceled)},
		{Change: fib.Change{Prefix: p}, Err: refusal},
		{Change: fib.Change{Prefix: p}, Err: context.DeadlineExceeded},
		{Change: fib.Change{Prefix: p}, Err: fib.ErrClosed},
	}
	refused, unsent := splitFailures(fs)
	if len(refused) != 1 || refused[0].Err != refusal || unsent != 3 {
		t.Fatalf("refused %v, unsent %d", refused, unsent)
	}
}

// TestListenOptions: GTSM goes on the listening sockets only when every
// peer that may connect asks for it and is directly connected; the pending
// connections are bounded by the session cap.
func TestListenOptions(t *testing.T) {
	nb := func(gtsm bool, hops uint8) Neighbor {
		return Neighbor{Address: netip.MustParseAddr("198.51.100.11"), TTLSecurity: gtsm, Multihop: hops}
	}
	rng := func(gtsm bool) DynamicNeighbor {
		return DynamicNeighbor{Prefix: netip.MustParsePrefix("198.51.100.0/24"), TTLSecurity: gtsm}
	}
	for _, c := range []struct {
		name   string
		cfg    Config
		minTTL uint8
	}{
		{"nobody", Config{}, 0},
		{"all static", Config{Neighbors: []Neighbor{nb(true, 0), nb(true, 1)}}, 255},
		{"all dynamic", Config{DynamicNeighbors: []DynamicNeighbor{rng(true)}}, 255},
		{"both", Config{Neighbors: []Neighbor{nb(true, 0)}, DynamicNeighbors: []DynamicNeighbor{rng(true)}}, 255},
		{"one static without", Config{Neighbors: []Neighbor{nb(true, 0), nb(false, 0)}}, 0},
		{"one range without", Config{Neighbors: []Neighbor{nb(true, 0)}, DynamicNeighbors: []DynamicNeighbor{rng(false)}}, 0},
		{"multihop", Config{Neighbors: []Neighbor{nb(true, 3)}}, 0},
	} {
		c.cfg.Limits.MaxSessions = 5000
		o := listenOptions(&c.cfg)
		if o.MinTTL != c.minTTL || o.MaxPending != 5000 {
			t.Errorf("%s: MinTTL %d, MaxPending %d; want %d, 5000", c.name, o.MinTTL, o.MaxPending, c.minTTL)
		}
	}
}
