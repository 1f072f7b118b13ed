package view

import (
	"net/netip"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bfd"
)

func TestBFDOf(t *testing.T) {
	k := bfd.Key{Peer: netip.MustParseAddr("198.51.100.1"), Local: netip.MustParseAddr("198.51.100.11"), Multihop: true}
	st := bfd.Status{Key: k, State: bfd.Up, RemoteState: bfd.Up, TxInterval: 300 * time.Millisecond,
		DetectTime: 900 * time.Millisecond, RemoteMult: 3, LastDownDiag: bfd.DiagNone}
	b := BFDOf(st)
	if b.Session != "198.51.100.11->198.51.100.1 multihop" || b.State != "Up" || b.TxIntervalUs != 300_000 ||
		b.DetectTimeUs != 900_000 || b.RemoteMult != 3 || b.LastDownDiag != "" {
		t.Errorf("never down: %+v", b)
	}
	st.LastDown, st.LastDownDiag = time.Now(), bfd.DiagDetectionExpired
	if b := BFDOf(st); b.LastDownDiag != "DetectionTimeExpired" || b.LastDown.IsZero() {
		t.Errorf("after a detection: %+v", b)
	}
}
