package view

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// Source is what a daemon exposes to the API.
type Source interface {
	Neighbors(ctx context.Context) []Neighbor
	// RIB lists the entries of family ("ipv4", "ipv6" or "" for both);
	// with a valid prefix, only the entry that matches it best.
	RIB(ctx context.Context, family string, prefix netip.Prefix) []RIBEntry
	FIB(ctx context.Context) ([]FIBRoute, error)
}

// FIBChecker is a Source that compares its kernel routes with its RIB.
type FIBChecker interface {
	FIBCheck(ctx context.Context) (FIBCheck, error)
}

// Handler serves the API for src.
func Handler(src Source) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/neighbors", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, src.Neighbors(r.Context()))
	})
	mux.HandleFunc("GET /v1/rib", func(w http.ResponseWriter, r *http.Request) {
		fam := r.URL.Query().Get("family")
		if fam != "" && fam != "ipv4" && fam != "ipv6" {
			writeError(w, http.StatusBadRequest, fmt.Errorf("family %q: want ipv4 or ipv6", fam))
			return
		}
		var p netip.Prefix
		if s := r.URL.Query().Get("prefix"); s != "" {
			var err error
			if p, err = ParsePrefixOrAddr(s); err != nil {
				writeError(w, http.StatusBadRequest, err)
				return
			}
		}
		writeJSON(w, http.StatusOK, src.RIB(r.Context(), fam, p))
	})
	mux.HandleFunc("GET /v1/fib", func(w http.ResponseWriter, r *http.Request) {
		routes, err := src.FIB(r.Context())
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, http.StatusOK, routes)
	})
	mux.HandleFunc("GET /v1/fib/check", func(w http.ResponseWriter, r *http.Request) {
		c, ok := src.(FIBChecker)
		if !ok {
			writeError(w, http.StatusNotImplemented, errors.New("this daemon does not compare its kernel routes with its RIB"))
			return
		}
		check, err := c.FIBCheck(r.Context())
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, http.StatusOK, check)
	})
	handleL2(mux, src)
	return mux
}

// ParsePrefixOrAddr accepts a prefix (masked) or a bare address (as a host
// route); the API and the CLI both read prefixes this way.
func ParsePrefixOrAddr(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither a prefix nor an address", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// writeJSON answers v with status, or 500 with the error when v cannot be
// encoded: it is encoded in full before the status is sent, so a client
// never takes a truncated or empty body for an answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		buf.Reset()
		status = http.StatusInternalServerError
		_ = enc.Encode(map[string]string{"error": fmt.Sprintf("encoding the answer: %v", err)})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// Serve serves h on a unix socket at path until ctx ends. A stale socket
// file from a previous run is replaced; a live one is an error, so two
// daemons never share a socket.
func Serve(ctx context.Context, path string, h http.Handler, log *slog.Logger) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("api socket: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("api socket %s is in use by another process", path)
	}
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("api socket: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return fmt.Errorf("api socket: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("api listening", "socket", path)
	err = srv.Serve(ln)
	<-done
	_ = os.Remove(path)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
