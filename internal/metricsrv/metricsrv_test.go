package metricsrv

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestEndpoints: every role's address answers /metrics, /healthz and
// /readyz, and /readyz tells what is not ready.
func TestEndpoints(t *testing.T) {
	var notReady atomic.Bool
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "bgplb_test_total", Help: "A test."}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ln, reg, slog.New(slog.DiscardHandler), func() error {
			if notReady.Load() {
				return errors.New("caches not synced")
			}
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		path, want string
		code       int
	}{{"/metrics", "bgplb_test_total 0", 200}, {"/healthz", "ok", 200}, {"/readyz", "ok", 200}} {
		if code, body := get(tc.path); code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s = %d %q, want %d with %q", tc.path, code, body, tc.code, tc.want)
		}
	}
	notReady.Store(true)
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "caches not synced") {
		t.Errorf("GET /readyz while not ready = %d %q", code, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("GET /healthz while not ready = %d, want 200", code)
	}
}
