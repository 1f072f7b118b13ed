// Package hctest answers health checks as kube-proxy's health check server
// does (k8s.io/kubernetes pkg/proxy/healthcheck, service_health.go), for
// the tests of the speaker's probe: the same status, headers and body, with
// a local endpoint count the test sets.
package hctest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// Server is one Service's health check on one listener.
type Server struct {
	// Addr is where it listens.
	Addr netip.AddrPort
	// Endpoints is the local endpoint count it reports: 200 above 0, else
	// 503.
	Endpoints atomic.Int32
	// Delay (nanoseconds) holds each answer back, to play a slow node.
	Delay atomic.Int64
	// Conns and Requests count the connections accepted and the requests
	// answered.
	Conns, Requests atomic.Int64
}

// Start serves on ln, with one local endpoint, until the test ends.
func Start(t testing.TB, ln net.Listener) *Server {
	t.Helper()
	s := &Server{Addr: netip.MustParseAddrPort(ln.Addr().String())}
	s.Endpoints.Store(1)
	srv := &http.Server{Handler: s, ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.Conns.Add(1)
		}
	}}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("health check server on %s: %v", s.Addr, err)
		}
	})
	return s
}

// Listen starts a Server on addr (port 0: any free one).
func Listen(t testing.TB, addr string) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("health check server on %s: %v", addr, err)
	}
	return Start(t, ln)
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if d := time.Duration(s.Delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	s.Requests.Add(1)
	n := s.Endpoints.Load()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Load-Balancing-Endpoint-Weight", fmt.Sprint(n))
	if n == 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprintf(w, "{\n\t\"service\": {\n\t\t\"namespace\": %q,\n\t\t\"name\": %q\n\t},\n\t\"localEndpoints\": %d,\n\t\"serviceProxyHealthy\": true\n}",
		"default", "svc", n)
}
