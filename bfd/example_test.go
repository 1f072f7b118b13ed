package bfd_test

import (
	"context"
	"log"
	"net/netip"
	"time"

	"github.com/bgplb/bgplb/bfd"
)

// A BGP session's owner runs one BFD session per neighbour and tears the
// BGP session down when BFD leaves Up.
func ExampleManager() {
	ctx := context.Background()
	m := bfd.NewManager(ctx, bfd.Options{})
	defer m.Close()
	k := bfd.Key{Peer: netip.MustParseAddr("198.51.100.1"), Local: netip.MustParseAddr("198.51.100.11")}
	cfg := bfd.Config{DesiredMinTx: 50 * time.Millisecond, RequiredMinRx: 50 * time.Millisecond, DetectMult: 3}
	if err := m.Add(bfd.SessionConfig{Key: k, Config: cfg}); err != nil {
		log.Fatal(err)
	}
	events, cancel, err := m.Subscribe(k)
	if err != nil {
		log.Fatal(err)
	}
	defer cancel()
	for ev := range events {
		if ev.From == bfd.Up && ev.To != bfd.Up && ev.RemoteState != bfd.AdminDown {
			log.Printf("BFD %s down (%v): reset the BGP session", ev.Key, ev.Diag)
		}
	}
}
