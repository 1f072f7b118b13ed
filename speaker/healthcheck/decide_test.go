package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	refused := &url.Error{Op: "Get", URL: "http://198.51.100.2:31234/", Err: &net.OpError{Op: "dial", Net: "tcp",
		Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	unreachable := &url.Error{Op: "Get", URL: "http://198.51.100.2:31234/", Err: &net.OpError{Op: "dial", Net: "tcp",
		Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}}
	timeout := &url.Error{Op: "Get", URL: "http://198.51.100.2:31234/", Err: context.DeadlineExceeded}
	cases := []struct {
		name   string
		status int
		body   string
		err    error
		want   Outcome
	}{
		{"200 with endpoints", 200, `{"service":{"namespace":"default","name":"pihole"},"localEndpoints":1,"serviceProxyHealthy":true}`, nil,
			Outcome{Pass: true, Detail: "passes (200)"}},
		// kube-proxy's answer for a Service it no longer knows.
		{"empty 200", 200, "", nil, Outcome{Pass: true, Detail: "passes (200)"}},
		{"503 no endpoints", 503, `{"service":{"namespace":"default","name":"pihole"},"localEndpoints":0,"serviceProxyHealthy":true}`, nil,
			Outcome{NoReadyLocal: true, Detail: "says 0 local endpoints (503)"}},
		{"503 old kube-proxy (no serviceProxyHealthy)", 503, `{"localEndpoints":0}`, nil,
			Outcome{NoReadyLocal: true, Detail: "says 0 local endpoints (503)"}},
		{"503 proxy unhealthy, no endpoints", 503, `{"localEndpoints":0,"serviceProxyHealthy":false}`, nil,
			Outcome{Detail: "says kube-proxy is not healthy (503)"}},
		{"503 proxy unhealthy", 503, `{"service":{"namespace":"default","name":"pihole"},"localEndpoints":2,"serviceProxyHealthy":false}`, nil,
			Outcome{Detail: "says kube-proxy is not healthy (503)"}},
		{"503 not JSON", 503, "Service Unavailable", nil, Outcome{Detail: "answers 503"}},
		{"503 other JSON", 503, `{"healthy":false}`, nil, Outcome{Detail: "answers 503"}},
		{"500", 500, "", nil, Outcome{Detail: "answers 500"}},
		{"404", 404, "", nil, Outcome{Detail: "answers 404"}},
		{"refused", 0, "", refused, Outcome{Refused: true, Detail: "is refused: nothing listens"}},
		{"timeout", 0, "", timeout, Outcome{Detail: "has no answer within 1s"}},
		{"deadline", 0, "", os.ErrDeadlineExceeded, Outcome{Detail: "has no answer within 1s"}},
		{"unreachable", 0, "", unreachable, Outcome{Detail: "fails: network is unreachable"}},
		{"other", 0, "", errors.New("malformed HTTP response"), Outcome{Detail: "fails: malformed HTTP response"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Classify(c.status, []byte(c.body), c.err, time.Second); got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

var (
	pass    = Outcome{Pass: true, Detail: "passes (200)"}
	none    = Outcome{Refused: true, Detail: "is refused: nothing listens"}
	zero    = Outcome{NoReadyLocal: true, Detail: "says 0 local endpoints (503)"}
	silent  = Outcome{Detail: "has no answer within 1s"}
	th22    = Thresholds{Rise: 2, Fall: 2}
	probed  = netip.MustParseAddrPort("198.51.100.2:31234")
	reasonZ = "kube-proxy health check on 198.51.100.2:31234 says 0 local endpoints (503)"
	reasonS = "kube-proxy health check on 198.51.100.2:31234 has no answer within 1s"
	reasonN = "kube-proxy health check on 198.51.100.2:31234 is refused: nothing listens"
	waiting = "waiting for the first kube-proxy health check on 198.51.100.2:31234"
	before  = "kube-proxy health check on 198.51.100.2:31234 failed before the speaker restarted"
)

// A sequence of outcomes and the verdict after each: "+" passes, else the
// reason.
func TestTrack(t *testing.T) {
	up, down := Track{State: Up}, Restored()
	cases := []struct {
		name  string
		start Track
		th    Thresholds
		seq   []Outcome
		want  []string
	}{
		{name: "pending: the first pass decides", th: th22, seq: []Outcome{pass, zero, pass, pass},
			want: []string{"+", "+", "+", "+"}},
		{name: "pending: failures keep it pending, the first pass brings it up", th: th22, seq: []Outcome{zero, silent, pass, zero, zero},
			want: []string{reasonZ, reasonS, "+", "+", reasonZ}},
		// A restarted speaker's targets start up: one failure withdraws nothing.
		{name: "started up: Fall applies", start: up, th: th22, seq: []Outcome{zero, pass, zero, zero},
			want: []string{"+", "+", "+", reasonZ}},
		{name: "refused keeps an up target up", start: up, th: th22, seq: []Outcome{none, zero, none, zero, zero},
			want: []string{"+", "+", "+", "+", reasonZ}},
		{name: "refused gives a down target no rise credit", start: up, th: th22,
			seq:  []Outcome{zero, zero, none, none, pass, none, pass, pass},
			want: []string{"+", reasonZ, reasonZ, reasonZ, reasonZ, reasonZ, reasonZ, "+"}},
		{name: "refused keeps a pending target pending", th: Thresholds{Rise: 2, Fall: 2, NoServer: 3}, seq: []Outcome{none, none, zero, none, none, none},
			want: []string{reasonN, reasonN, reasonZ, reasonN, reasonN, "+"}},
		{name: "NoServer below 1: pending for ever", th: th22, seq: []Outcome{none, none, none, none},
			want: []string{reasonN, reasonN, reasonN, reasonN}},
		{name: "down keeps the reason it fell for", start: up, th: th22, seq: []Outcome{silent, silent, zero, silent, zero},
			want: []string{"+", reasonS, reasonS, reasonS, reasonS}},
		{name: "restored down: the first failure is the reason, Rise applies", start: down, th: th22, seq: []Outcome{zero, silent, pass, pass},
			want: []string{reasonZ, reasonZ, reasonZ, "+"}},
		{name: "rise keeps the failure as reason", th: Thresholds{Rise: 3, Fall: 1}, seq: []Outcome{pass, zero, pass, pass, pass},
			want: []string{"+", reasonZ, reasonZ, reasonZ, "+"}},
		{name: "zero thresholds act as one", th: Thresholds{}, seq: []Outcome{pass, zero, pass},
			want: []string{"+", reasonZ, "+"}},
		// A single replica's rolling update: kube-proxy counts no ready
		// local endpoint but serves the terminating one.
		{name: "0 local endpoints under the fallback pass", start: up, th: th22, seq: []Outcome{zero.Under(true), zero.Under(true), pass},
			want: []string{"+", "+", "+"}},
		{name: "not healthy under the fallback fails", start: up, th: th22,
			seq:  []Outcome{Outcome{Detail: "says kube-proxy is not healthy (503)"}.Under(true), silent.Under(true)},
			want: []string{"+", reasonS}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := c.start
			for i, o := range c.seq {
				tr = tr.Next(o, c.th)
				got := tr.Verdict(probed).Reason
				if got == "" {
					got = "+"
				}
				if got != c.want[i] {
					t.Fatalf("after %d outcomes (%+v): %q, want %q; track %+v", i+1, o, got, c.want[i], tr)
				}
			}
		})
	}
}

func TestVerdict(t *testing.T) {
	cases := []struct {
		name string
		tr   Track
		want Verdict
	}{
		{"new: waiting, not a failure", Track{}, Verdict{Reason: waiting, Waiting: true}},
		{"new, answered", Track{}.Next(silent, th22), Verdict{Reason: reasonS}},
		{"started up", Track{State: Up}, Verdict{}},
		{"restored", Restored(), Verdict{Reason: before}},
		{"down, latest says 0 local endpoints", Track{State: Up}.Next(silent, th22).Next(silent, th22).Next(zero, th22),
			Verdict{Reason: reasonS, NoReadyLocal: true}},
		{"down, latest is not 0 local endpoints", Track{State: Up}.Next(zero, th22).Next(zero, th22).Next(silent, th22),
			Verdict{Reason: reasonZ}},
	}
	for _, c := range cases {
		if got := c.tr.Verdict(probed); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

func ExampleTrack_Verdict() {
	tr := Track{}.Next(Outcome{Detail: "says 0 local endpoints (503)"}, Thresholds{Rise: 2, Fall: 2})
	fmt.Println(tr.Verdict(netip.MustParseAddrPort("198.51.100.2:31234")).Reason)
	// Output: kube-proxy health check on 198.51.100.2:31234 says 0 local endpoints (503)
}
