package router

import (
	"errors"
	"log/slog"
	"testing"
	"time"
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
