package dnsserver

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// A stream against a server that goes away half-way counts the queries
// answered before and lost after, by node, and the outage.
func TestStream(t *testing.T) {
	const interval = 10 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, err := Listen(ctx, Config{Listen: "127.0.0.1:0", Node: "n1", Answer: netip.MustParseAddr("203.0.113.53")})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan []Result)
	var mu sync.Mutex
	sent := map[int]time.Time{} // OnSend's, checked against the results
	onSend := func(seq int, at time.Time) { mu.Lock(); sent[seq] = at; mu.Unlock() }
	go func() {
		rs, _ := Stream(sctx, StreamOptions{Server: srv.UDPAddr(), Name: "pihole.lab.", Interval: interval, Timeout: 200 * time.Millisecond,
			OnSend: onSend})
		done <- rs
	}()
	// Twenty answered, then the server goes; the stream runs on until
	// twenty more were sent (and lost).
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			select {
			case <-ctx.Done():
				t.Fatalf("%s: %v", what, ctx.Err())
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	waitFor("20 queries answered", func() bool { return srv.Queries() >= 20 })
	closed := time.Now()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	// The outage lasts as long as the scenario says: 300 ms of queries to
	// nobody, however long the machine takes to run them.
	waitFor("300 ms without the server", func() bool { return time.Since(closed) >= 300*time.Millisecond })
	stopped := time.Now()
	stop()
	rs := <-done
	s := Summarize(rs)
	t.Log(s)
	if s.ByNode["n1"] < 20 || s.Lost == 0 || s.Sent != s.Lost+s.ByNode["n1"] {
		t.Errorf("summary %v: want ≥20 answered by n1, some lost, and every query counted", s)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, r := range rs {
		if r.Seq != i || !sent[i].Equal(r.Sent) {
			t.Errorf("result %d: Seq %d, Sent %v; OnSend said %v", i, r.Seq, r.Sent, sent[i])
		}
		if !r.Lost() && (r.Arrived.Before(r.Sent.Add(r.RTT)) || r.Arrived.After(stopped)) {
			t.Errorf("result %d: arrived %v after it was sent, RTT %v", i, r.Arrived.Sub(r.Sent), r.RTT)
		}
		if !r.Lost() && r.Sent.After(closed.Add(10*time.Millisecond)) {
			t.Errorf("a query sent %v after the server closed was answered", r.Sent.Sub(closed))
		}
	}
	// From the first query lost (at most one interval before the close)
	// to the last one sent (at most one interval before the stop).
	if gone := stopped.Sub(closed); s.Outage < gone-2*interval {
		t.Errorf("outage %v, want about the %v the server was gone", s.Outage, gone)
	}
}

func TestSummarize(t *testing.T) {
	t0 := time.Unix(0, 0)
	at := func(ms int, rtt time.Duration, node string) Result {
		return Result{Sent: t0.Add(time.Duration(ms) * time.Millisecond), RTT: rtt, Node: node}
	}
	for _, tc := range []struct {
		name   string
		rs     []Result
		lost   int
		outage time.Duration
	}{
		{"none", nil, 0, 0},
		{"all answered", []Result{at(0, 1, "a"), at(20, 1, "b")}, 0, 0},
		{"a gap", []Result{at(0, 1, "a"), at(20, 0, ""), at(40, 0, ""), at(60, 1, "b")}, 2, 40 * time.Millisecond},
		{"lost to the end", []Result{at(0, 1, "a"), at(20, 0, ""), at(80, 0, "")}, 2, 60 * time.Millisecond},
		{"the longest of two", []Result{at(0, 0, ""), at(20, 1, "a"), at(40, 0, ""), at(100, 1, "a")}, 2, 60 * time.Millisecond},
	} {
		s := Summarize(tc.rs)
		if s.Lost != tc.lost || s.Outage != tc.outage || s.Sent != len(tc.rs) {
			t.Errorf("%s: %v, want %d lost, outage %v", tc.name, s, tc.lost, tc.outage)
		}
	}
}
