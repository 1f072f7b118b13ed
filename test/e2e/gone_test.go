package e2e

import (
	"net"
	"testing"
)

// TestRouterPeerGone: when a node's session drops, its routes leave the
// kernel with its gateway's nexthop object, not one delete at a time: the
// router counts them as flushed, and nothing of ours is left, IPv4 or IPv6.
func TestRouterPeerGone(t *testing.T) {
	const n = 140_000 // 131,072 /32s, then 8,928 /128s (scaleRoutes)
	s := newShutdownLab(t, n)
	s.ingest(t)
	if got := s.kernelRoutes(t); got != n {
		t.Fatalf("%d routes in the kernel after the ingest, want %d", got, n)
	}
	// A reset, as when a node dies, rather than a Cease.
	if tc, ok := s.in.conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	s.in.conn.Close()
	s.metrics.waitGauge(t, s.ctx, "bgplb_router_fib_routes", func(v float64) bool { return v == 0 })
	flushed := s.metrics.waitGauge(t, s.ctx, "bgplb_router_fib_flushed_routes_total", func(v float64) bool { return v > 0 })
	if int(flushed) != n {
		t.Errorf("%.0f routes went with their nexthop object, want all %d", flushed, n)
	}
	if got := s.kernelRoutes(t); got != 0 {
		t.Errorf("%d routes of ours left in the kernel after the peer went", got)
	}
}
