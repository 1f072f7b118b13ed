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
			Outcome{Detail: "says 0 local endpoints (503)"}},
		{"503 proxy unhealthy", 503, `{"service":{"namespace":"default","name":"pihole"},"localEndpoints":2,"serviceProxyHealthy":false}`, nil,
			Outcome{Detail: "says kube-proxy is not healthy (503)"}},
		{"503 not JSON", 503, "Service Unavailable", nil, Outcome{Detail: "answers 503"}},
		{"503 other JSON", 503, `{"healthy":false}`, nil, Outcome{Detail: "answers 503"}},
		{"500", 500, "", nil, Outcome{Detail: "answers 500"}},
		{"404", 404, "", nil, Outcome{Detail: "answers 404"}},
		{"refused", 0, "", refused, Outcome{Pass: true, Refused: true, Detail: "is refused: nothing listens"}},
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
	none    = Outcome{Pass: true, Refused: true, Detail: "is refused: nothing listens"}
	zero    = Outcome{Detail: "says 0 local endpoints (503)"}
	silent  = Outcome{Detail: "has no answer within 1s"}
	th22    = Thresholds{Rise: 2, Fall: 2}
	probed  = netip.MustParseAddrPort("198.51.100.2:31234")
	reasonZ = "kube-proxy health check on 198.51.100.2:31234 says 0 local endpoints (503)"
)

// A sequence of outcomes and the verdict after each: "+" passes, else the
// reason.
func TestTrack(t *testing.T) {
	cases := []struct {
		name    string
		trusted bool
		th      Thresholds
		seq     []Outcome
		want    []string
	}{
		{name: "untrusted pending fails, first pass decides", th: th22, seq: []Outcome{pass, zero, pass, pass},
			want: []string{"+", "+", "+", "+"}},
		{name: "untrusted: failures keep it pending, the first pass brings it up", th: th22, seq: []Outcome{zero, silent, pass, zero, zero},
			want: []string{reasonZ, "kube-proxy health check on 198.51.100.2:31234 has no answer within 1s", "+", "+", reasonZ}},
		{name: "trusted first failure decides", trusted: true, th: th22, seq: []Outcome{zero, pass, pass},
			want: []string{reasonZ, reasonZ, "+"}},
		{name: "fall after two", trusted: true, th: th22, seq: []Outcome{pass, zero, pass, zero, zero, zero},
			want: []string{"+", "+", "+", "+", reasonZ, reasonZ}},
		{name: "refused passes", trusted: true, th: th22, seq: []Outcome{none, zero, zero, none, none},
			want: []string{"+", "+", reasonZ, reasonZ, "+"}},
		{name: "reason follows the latest failure", trusted: true, th: th22, seq: []Outcome{zero, silent, pass, zero},
			want: []string{reasonZ, "kube-proxy health check on 198.51.100.2:31234 has no answer within 1s",
				"kube-proxy health check on 198.51.100.2:31234 has no answer within 1s", reasonZ}},
		{name: "rise keeps the failure as reason", th: Thresholds{Rise: 3, Fall: 1}, seq: []Outcome{pass, zero, pass, pass, pass},
			want: []string{"+", reasonZ, reasonZ, reasonZ, "+"}},
		{name: "zero thresholds act as one", th: Thresholds{}, seq: []Outcome{pass, zero, pass},
			want: []string{"+", reasonZ, "+"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := Track{Trusted: c.trusted}
			if got, want := tr.Passes(), c.trusted; got != want {
				t.Fatalf("pending passes %v, want %v", got, want)
			}
			if !c.trusted {
				if got := tr.Reason(probed); got != "waiting for the first kube-proxy health check on 198.51.100.2:31234" {
					t.Fatalf("pending reason %q", got)
				}
			}
			for i, o := range c.seq {
				tr = tr.Next(o, c.th)
				got := tr.Reason(probed)
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

func ExampleTrack_Reason() {
	tr := Track{}.Next(Outcome{Detail: "says 0 local endpoints (503)"}, Thresholds{Rise: 2, Fall: 2})
	fmt.Println(tr.Reason(netip.MustParseAddrPort("198.51.100.2:31234")))
	// Output: kube-proxy health check on 198.51.100.2:31234 says 0 local endpoints (503)
}
