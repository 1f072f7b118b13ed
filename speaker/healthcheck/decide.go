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
// longer knows gets an empty 200. n counts ready local endpoints only:
// while a Service's endpoints are the serving-terminating fallback
// (lbmodel.Fallback: a single replica's rolling update), kube-proxy still
// forwards to them but answers 503 with n = 0.
//
// # Outcomes
//
// One target is one Service's port on one of this node's addresses, one
// per family the Service is announced in from here. Every Interval a GET
// with a Timeout; [Classify] turns the answer into an [Outcome]:
//
//   - 200: pass.
//   - 503 saying 0 local endpoints from a healthy kube-proxy: fail, but a
//     pass for a target whose endpoints are the fallback
//     ([Outcome.Under]): kube-proxy serves the terminating pods then.
//     "Not healthy" and timeouts stay failures under the fallback: they
//     say the rules may be stale or kube-proxy is gone.
//   - Connection refused: neither (see below).
//   - 503 otherwise, any other status, a timeout, any other error: fail.
//
// # States
//
// A target's state follows its outcomes with thresholds, as HAProxy's and
// cloud load balancers' checks do: Fall consecutive failures take an up
// target down, Rise consecutive passes bring a down one up ([Track.Next]).
//
// A target that appears while the speaker runs (a Service's first local
// endpoint on this node) is pending: withheld until its first pass, which
// brings it up; the endpoint and kube-proxy's rules for it arrive at about
// the same time, so its first probe is sent at once and, for its first
// probes, four times as often. Its objection is not published as a
// failure until it has an answer ([Verdict.Waiting]).
//
// The targets present when the prober starts (the speaker's first plan)
// start up, so Fall applies: a restarted speaker keeps announcing what it
// announced rather than withdrawing on one failed probe (with graceful
// restart, inside the router's stale-path time). Those of Services the
// previous run withheld ([Prober.Withheld]) start down and need Rise
// passes: a restart announces nothing that was withheld.
//
// Connection refused means nothing listens: kube-proxy restarting (its
// rules stay in place), or a service proxy that serves no health check.
// It keeps an up target up (as a pass) and is neutral otherwise: a down
// target gets no Rise credit from it, a pending one stays pending. A
// pending target refused NoServer times in a row (about ten seconds at
// the default pace) is taken to be on a node with no health check server
// and goes up: the endpoints decide, as they did before there was a
// probe. The prober logs that once per target.
//
// While a target is down its reason stays the failure that took it down,
// so that a node alternating between kinds of failure does not rewrite
// its ServiceAnnouncement at every probe.
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
	// Refused is true when nothing listened (neither pass nor failure).
	Refused bool
	// NoReadyLocal is true for a 503 from a healthy kube-proxy that counts
	// no ready local endpoint: a pass under the fallback ([Outcome.Under]).
	NoReadyLocal bool
	// Detail says what was found, completing "kube-proxy health check on
	// 198.51.100.2:31234 ...": "says 0 local endpoints (503)".
	Detail string
}

// Under is the outcome for a target whose endpoints are (fallback) or are
// not the serving-terminating fallback: under it, kube-proxy's "0 local
// endpoints" is what a serving node answers, and passes.
func (o Outcome) Under(fallback bool) Outcome {
	if fallback && o.NoReadyLocal {
		o.Pass = true
	}
	return o
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
			return Outcome{Refused: true, Detail: "is refused: nothing listens"}
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
			return Outcome{NoReadyLocal: *a.LocalEndpoints == 0, Detail: fmt.Sprintf("says %d local endpoints (503)", *a.LocalEndpoints)}
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
	// Pending: a new target with no pass yet.
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

// Thresholds are the consecutive outcomes that change a state: Fall
// failures take a target down, Rise passes bring it up, NoServer refusals
// take a pending target for one on a node without a health check server
// (0: never).
type Thresholds struct{ Rise, Fall, NoServer int }

// Track is one target's state and the outcomes that lead to it.
type Track struct {
	State State
	// Streak counts the consecutive outcomes that disagree with State
	// (while pending: refusals).
	Streak int
	// Last is the outcome that is the reason: while down, the failure that
	// took the target down; while pending, the latest outcome; while up,
	// the latest failure or pass. A down target restored from an earlier
	// run ([Restored]) has none until its first failure.
	Last Outcome
	// Latest is the latest outcome.
	Latest Outcome
	// Probes counts the outcomes while pending, for the pace.
	Probes int
}

// Restored is the track of a target whose Service an earlier run of the
// speaker withheld: down until Rise passes.
func Restored() Track { return Track{State: Down} }

// Next is the track after one more outcome.
func (t Track) Next(o Outcome, th Thresholds) Track {
	t.Latest = o
	switch t.State {
	case Pending:
		t.Probes++
		t.Last = o
		switch {
		case o.Pass:
			t.State, t.Streak = Up, 0
		case o.Refused:
			t.Streak++
			if th.NoServer > 0 && t.Streak >= th.NoServer {
				t.State, t.Streak = Up, 0
			}
		default:
			t.Streak = 0
		}
		return t
	case Up:
		if o.Pass || o.Refused {
			t.Streak, t.Last = 0, o
			return t
		}
		t.Streak++
		t.Last = o
		if t.Streak >= max(th.Fall, 1) {
			t.State, t.Streak = Down, 0
		}
		return t
	}
	// Down.
	switch {
	case o.Refused:
		t.Streak = 0
	case !o.Pass:
		t.Streak = 0
		if t.Last.Detail == "" {
			t.Last = o
		}
	default:
		t.Streak++
		if t.Streak >= max(th.Rise, 1) {
			t.State, t.Streak, t.Last = Up, 0, o
		}
	}
	return t
}

// Verdict is what a track says of announcing its target's Service.
type Verdict struct {
	// Reason says why the node should not announce, naming the probed
	// address; "" when it may.
	Reason string
	// Waiting is true when the only objection is that a new target has no
	// answer yet: the node withholds, but nothing failed.
	Waiting bool
	// NoReadyLocal is true when the latest answer is a healthy
	// kube-proxy's "0 local endpoints": no objection while the Service's
	// endpoints are the serving-terminating fallback.
	NoReadyLocal bool
}

// Verdict is the track's verdict on the target at addr.
func (t Track) Verdict(addr netip.AddrPort) Verdict {
	v := Verdict{NoReadyLocal: t.Latest.NoReadyLocal}
	switch {
	case t.State == Up:
		return Verdict{}
	case t.State == Pending && t.Last.Detail == "":
		v.Reason, v.Waiting = "waiting for the first kube-proxy health check on "+addr.String(), true
	case t.State == Down && t.Last.Detail == "":
		v.Reason = "kube-proxy health check on " + addr.String() + " failed before the speaker restarted"
	default:
		v.Reason = "kube-proxy health check on " + addr.String() + " " + t.Last.Detail
	}
	return v
}
