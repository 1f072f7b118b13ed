// Package metricsrv serves Prometheus metrics and Go profiles on one
// address, for every bgplb role.
package metricsrv

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Listen binds addr, so that a bad address fails the caller at start-up
// rather than in a goroutine.
func Listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

// Serve serves /metrics from g, /healthz, /readyz and /debug/pprof/ on ln
// until ctx ends. Profiles share the (local by default) address: they are
// the first thing to ask for when a daemon uses more memory or CPU than it
// should. A role starts serving once it runs, so /healthz answers ok while
// the process serves at all, and /readyz asks ready, when given.
func Serve(ctx context.Context, ln net.Listener, g prometheus.Gatherer, log *slog.Logger, ready func() error) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ready != nil {
			if err := ready(); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("metrics listening", "address", ln.Addr().String())
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		<-stopped
		return nil
	}
	return err
}
