package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"
)

// StreamOptions shape Stream.
type StreamOptions struct {
	// In runs each dial where the socket must be made (a lab.Netns's Do);
	// nil dials in the calling thread's namespace.
	In func(func() error) error
	// Server and Name are asked, over UDP.
	Server netip.AddrPort
	Name   string
	// Interval is the time between two queries (default 20 ms).
	Interval time.Duration
	// Timeout is how long a query may wait for its answer before it counts
	// as lost (default 500 ms). Each query is a single try: a client that
	// retries hides the loss this measures.
	Timeout time.Duration
	// OnResult, if set, gets each query's result as soon as it is known
	// (answered, or lost at its timeout), from the query's goroutine:
	// several calls may run at once. A failover's first answer is timed
	// by it while the stream goes on.
	OnResult func(Result)
	// OnSend, if set, gets each query's Seq and Sent as it is sent, from
	// Stream's goroutine, before its OnResult: a caller that must know
	// which queries are still unanswered (a lost one shows only at its
	// timeout) keeps count with it.
	OnSend func(seq int, sent time.Time)
}

// Result is one query of a Stream.
type Result struct {
	// Seq numbers the queries of a Stream from 0, in the order sent.
	Seq  int
	Sent time.Time
	// RTT is zero for a lost query.
	RTT time.Duration
	// Arrived is when the answer was read (zero for a lost query). Sent
	// is stamped before the query's socket is made in its namespace, so
	// Sent+RTT comes earlier than the answer did.
	Arrived time.Time
	Node    string
	Err     error
}

// Lost says whether the query went unanswered.
func (r Result) Lost() bool { return r.RTT == 0 }

// Stream asks the server continuously, as a busy client does, until ctx
// ends, then waits for the last answers and returns every query's result
// in the order sent. Each query comes from a new socket (a new source
// port, as resolvers pick them), so that one connection-tracking entry
// does not decide the fate of all of them.
func Stream(ctx context.Context, o StreamOptions) ([]Result, error) {
	if o.Interval <= 0 {
		o.Interval = 20 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = 500 * time.Millisecond
	}
	if o.In == nil {
		o.In = func(f func() error) error { return f() }
	}
	qtype := uint16(typeA)
	if o.Server.Addr().Is6() {
		qtype = typeAAAA
	}
	var (
		mu  sync.Mutex
		out []Result
		wg  sync.WaitGroup
	)
	t := time.NewTicker(o.Interval)
	defer t.Stop()
	for i := 0; ; i++ {
		sent := time.Now()
		mu.Lock()
		out = append(out, Result{Seq: i, Sent: sent})
		mu.Unlock()
		if o.OnSend != nil {
			o.OnSend(i, sent)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := once(o, qtype)
			mu.Lock()
			r.Seq, r.Sent = i, sent
			out[i] = r
			mu.Unlock()
			if o.OnResult != nil {
				o.OnResult(r)
			}
		}()
		select {
		case <-ctx.Done():
			wg.Wait()
			return out, nil
		case <-t.C:
		}
	}
}

// once sends one query and waits for its answer.
func once(o StreamOptions, qtype uint16) Result {
	id := uint16(rand.Uint32())
	q, err := buildQuery(id, o.Name, qtype)
	if err != nil {
		return Result{Err: err}
	}
	var c net.Conn
	start := time.Now()
	if err := o.In(func() error {
		var err error
		c, err = net.Dial("udp", o.Server.String())
		return err
	}); err != nil {
		return Result{Err: err}
	}
	defer c.Close()
	_ = c.SetDeadline(start.Add(o.Timeout))
	if _, err := c.Write(q); err != nil {
		return Result{Err: err}
	}
	buf := make([]byte, 1500)
	for {
		n, err := c.Read(buf)
		arrived := time.Now()
		if err != nil {
			return Result{Err: err}
		}
		a, err := parseResponse(buf[:n], id, o.Name)
		if errors.Is(err, errWrongID) {
			continue
		}
		if err != nil {
			return Result{Err: err}
		}
		return Result{RTT: max(arrived.Sub(start), time.Nanosecond), Arrived: arrived, Node: a.Node}
	}
}

// Summary is what a Stream's results add up to.
type Summary struct {
	Sent, Lost int
	// ByNode counts the answers by the node that gave them.
	ByNode map[string]int
	// Outage is the longest stretch from a lost query to the next one
	// answered (zero when none was lost).
	Outage time.Duration
}

// Summarize adds up a Stream's results.
func Summarize(rs []Result) Summary {
	s := Summary{Sent: len(rs), ByNode: map[string]int{}}
	var lostSince time.Time
	for _, r := range rs {
		if r.Lost() {
			s.Lost++
			if lostSince.IsZero() {
				lostSince = r.Sent
			}
			continue
		}
		s.ByNode[r.Node]++
		if !lostSince.IsZero() {
			s.Outage = max(s.Outage, r.Sent.Sub(lostSince))
			lostSince = time.Time{}
		}
	}
	if !lostSince.IsZero() && len(rs) > 0 {
		s.Outage = max(s.Outage, rs[len(rs)-1].Sent.Sub(lostSince))
	}
	return s
}

// String renders the summary for a log line or a report.
func (s Summary) String() string {
	return fmt.Sprintf("%d queries, %d lost, longest outage %v, answered by %v", s.Sent, s.Lost, s.Outage.Round(time.Millisecond), s.ByNode)
}
