// Package healthcheck probes, for the speaker, the health check that
// kube-proxy serves for every Service with externalTrafficPolicy Local on
// the Service's healthCheckNodePort: the one cloud load balancers use to
// follow the data plane. A node whose kube-proxy says it has no local
// endpoint, or is not healthy, drops the Service's traffic whatever the
// EndpointSlices say; the speaker then withholds the Service's addresses
// from that node's announcements (speaker/plan takes the verdict as an
// input).
//
// # What kube-proxy answers
//
// kube-proxy (pkg/proxy/healthcheck, service_health.go) listens on the
// port on every node address of the family of its proxier (one server per
// family on a dual-stack node) and answers any GET with a JSON body
// {"service": {...}, "localEndpoints": n, "serviceProxyHealthy": b}:
// 200 when n > 0 and kube-proxy is healthy, 503 otherwise. A Service it no
// longer knows gets an empty 200.
//
// # Verdicts
//
// One target is one Service's port on one of this node's addresses (one
// per family the Service has endpoints of here). Every Interval a GET with
// a Timeout; [Classify] turns the answer into an [Outcome]:
//
//   - 200: pass.
//   - Connection refused: pass. Nothing listens, so this node has no health
//     check server for the Service (a service proxy that serves none, or
//     kube-proxy restarting, which leaves its rules in place); the
//     endpoints decide, as they did before there was a probe.
//   - 503, any other status, a timeout, any other error: fail.
//
// A target's state follows its outcomes with thresholds, as HAProxy's and
// cloud load balancers' checks do: Fall consecutive failures take an up
// target down, Rise consecutive passes bring a down one up ([Track.Next]).
//
// A target that has not passed yet is pending. A target present when the
// prober started (the speaker's first plan) passes while pending, and its
// first outcome decides alone: a restarted speaker keeps announcing what
// it announced, rather than withdrawing every Local Service for one probe
// (and, with graceful restart, inside the router's stale-path time). A
// target that appears later (a Service's first local endpoint on this
// node) fails while pending, and its first pass brings it up: the endpoint
// and kube-proxy's rules for it arrive at about the same time, so the
// first probe is sent at once and, until one passes, probes come four
// times as often, to announce as soon as kube-proxy has caught up and not
// before. Rise is for a target that failed after it served.
package healthcheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// Outcome is what one probe found.
type Outcome struct {
	// Pass is true when the probe does not object to the node serving.
	Pass bool
	// Refused is true when nothing listened (a pass: no server, no
	// opinion).
	Refused bool
	// Detail says what was found, completing "kube-proxy health check on
	// 198.51.100.2:31234 ...": "says 0 local endpoints (503)".
	Detail string
}

// answer is the body kube-proxy's health check server writes.
type answer struct {
	LocalEndpoints      *int  `json:"localEndpoints"`
	ServiceProxyHealthy *bool `json:"serviceProxyHealthy"`
}

// Classify turns one probe's answer (status and body), or its error, into
// an Outcome; timeout is the probe's, for the message.
func Classify(status int, body []byte, err error, timeout time.Duration) Outcome {
	if err != nil {
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			return Outcome{Pass: true, Refused: true, Detail: "is refused: nothing listens"}
		case errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err):
			return Outcome{Detail: fmt.Sprintf("has no answer within %v", timeout)}
		}
		var errno syscall.Errno
		if errors.As(err, &errno) {
			return Outcome{Detail: "fails: " + errno.Error()}
		}
		return Outcome{Detail: "fails: " + err.Error()}
	}
	if status == http.StatusOK {
		return Outcome{Pass: true, Detail: "passes (200)"}
	}
	var a answer
	if status == http.StatusServiceUnavailable && json.Unmarshal(body, &a) == nil {
		switch {
		case a.ServiceProxyHealthy != nil && !*a.ServiceProxyHealthy:
			return Outcome{Detail: "says kube-proxy is not healthy (503)"}
		case a.LocalEndpoints != nil:
			return Outcome{Detail: fmt.Sprintf("says %d local endpoints (503)", *a.LocalEndpoints)}
		}
	}
	return Outcome{Detail: fmt.Sprintf("answers %d", status)}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// State is a target's state.
type State uint8

const (
	// Pending: no outcome yet.
	Pending State = iota
	// Up: the data plane serves (as far as the probe can tell).
	Up
	// Down: the probe says this node does not serve the Service.
	Down
)

func (s State) String() string {
	switch s {
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return "pending"
}

// Thresholds are the consecutive outcomes that change an established
// state: Fall failures take a target down, Rise passes bring it up.
type Thresholds struct{ Rise, Fall int }

// Track is one target's state and the outcomes that lead to it.
type Track struct {
	State State
	// Trusted: passes while pending (present when the prober started).
	Trusted bool
	// Streak counts the consecutive outcomes that disagree with State.
	Streak int
	// Last is the latest outcome; while Down, the failure that is the
	// reason (kept while passes accumulate towards Rise).
	Last Outcome
}

// Next is the track after one more outcome.
func (t Track) Next(o Outcome, th Thresholds) Track {
	switch {
	case t.State == Pending:
		t.Streak, t.Last = 0, o
		switch {
		case o.Pass:
			t.State = Up
		case t.Trusted:
			t.State = Down
		}
		return t
	case o.Pass == (t.State == Up):
		t.Streak, t.Last = 0, o
		return t
	}
	t.Streak++
	need := th.Fall
	if t.State == Down {
		need = th.Rise
	}
	if t.Streak < max(need, 1) {
		if t.State == Up {
			t.Last = o
		}
		return t
	}
	t.Streak, t.Last = 0, o
	t.State = Up
	if !o.Pass {
		t.State = Down
	}
	return t
}

// Passes reports whether the track lets the node announce.
func (t Track) Passes() bool {
	return t.State == Up || t.State == Pending && t.Trusted
}

// Reason says why the track keeps the node from announcing the target's
// Service, naming the probed address; "" when it passes.
func (t Track) Reason(addr netip.AddrPort) string {
	switch {
	case t.Passes():
		return ""
	case t.State == Pending && t.Last.Detail == "":
		return "waiting for the first kube-proxy health check on " + addr.String()
	}
	return "kube-proxy health check on " + addr.String() + " " + t.Last.Detail
}
