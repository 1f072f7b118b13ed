package announce

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/bgplb/bgplb/router"
	"github.com/bgplb/bgplb/view"
)

// The namespace tests need the announcer (and the router daemon) running
// inside a network namespace. Goroutines hop between OS threads, and only
// a whole process can be put in a namespace, so the test binary re-executes
// itself there (`ip netns exec NS announce.test`) in one of two roles,
// chosen by helperRoleEnv:
//
//   - "speaker": an Announcer configured by the JSON file helperConfigEnv
//     names, serving the view API (what `bgplb neighbor/rib --socket`
//     read) and a small control API for the test on a unix socket;
//   - "router": the router package's daemon, as `bgplb router` runs it, on
//     the YAML config helperConfigEnv names.
const (
	helperRoleEnv   = "BGPLB_ANNOUNCE_TEST_ROLE"
	helperConfigEnv = "BGPLB_ANNOUNCE_TEST_CONFIG"
)

func TestMain(m *testing.M) {
	switch os.Getenv(helperRoleEnv) {
	case "speaker":
		os.Exit(runSpeakerHelper(os.Getenv(helperConfigEnv)))
	case "router":
		os.Exit(runRouterHelper(os.Getenv(helperConfigEnv)))
	}
	os.Exit(m.Run())
}

// speakerConfig configures the speaker helper.
type speakerConfig struct {
	RouterID netip.Addr       `json:"routerID"`
	Listen   []netip.AddrPort `json:"listen,omitempty"`
	Socket   string           `json:"socket"`
	Peers    []PeerConfig     `json:"peers"`
}

func helperLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// runSpeakerHelper runs an Announcer until SIGTERM. Shutdown through the
// control API ends Run but not the process, so the test can still look.
func runSpeakerHelper(path string) int {
	log := helperLog()
	var cfg speakerConfig
	b, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(b, &cfg)
	}
	if err != nil {
		log.Error("speaker helper config", "err", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	a := New(Options{RouterID: cfg.RouterID, Log: log, ListenAddrs: cfg.Listen})
	if err := a.SetPeers(cfg.Peers); err != nil {
		log.Error("peers", "err", err)
	}
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx) }()
	mux := http.NewServeMux()
	mux.Handle("/v1/", view.Handler(a))
	mux.HandleFunc("POST /test/announce", func(w http.ResponseWriter, r *http.Request) {
		var rs []Route
		if !decode(w, r, &rs) {
			return
		}
		a.Announce(r.URL.Query().Get("peer"), rs)
	})
	mux.HandleFunc("POST /test/peers", func(w http.ResponseWriter, r *http.Request) {
		var ps []PeerConfig
		if decode(w, r, &ps) {
			reply(w, errString(a.SetPeers(ps)))
		}
	})
	mux.HandleFunc("POST /test/shutdown", func(w http.ResponseWriter, r *http.Request) {
		sctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
		defer cancel()
		reply(w, errString(a.Shutdown(sctx, r.URL.Query().Get("msg"))))
	})
	mux.HandleFunc("GET /test/status", func(w http.ResponseWriter, _ *http.Request) { reply(w, a.Status()) })
	if err := view.Serve(ctx, cfg.Socket, mux, log); err != nil {
		log.Error("api", "err", err)
		return 1
	}
	if err := <-ran; err != nil {
		log.Error("run", "err", err)
		return 1
	}
	return 0
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// runRouterHelper is `bgplb router --config path` without the CLI around it.
func runRouterHelper(path string) int {
	log := helperLog()
	cfg, err := router.LoadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := router.New(cfg, router.Options{Log: log}).Run(ctx); err != nil {
		log.Error("router", "err", err)
		return 1
	}
	return 0
}
