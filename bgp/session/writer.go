package session

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
)

// outQueue holds what waits to be written on a connection. Its writer
// goroutine runs only while there is something to write, so an idle
// session has none and its queue holds no memory: with thousands of
// dynamic neighbours that send a KEEPALIVE a minute, that is most of the
// time.
type outQueue struct {
	mu    sync.Mutex
	msgs  [][]byte // in order; nil while idle
	final []byte   // the last message (a NOTIFICATION), written after msgs
	// writing: a writer goroutine runs; ended: no writer may start again
	// (the final message was written, a write failed, or the connection
	// is closing).
	writing, ended bool
	// room, when not nil, is closed when the writer takes the queued
	// messages, for the Send calls waiting on a full queue.
	room chan struct{}
	// finished is closed once the final message is written, or can no
	// longer be (ended).
	finished chan struct{}
	writers  sync.WaitGroup
}

// push queues msg and makes sure a writer runs. When the queue is full it
// returns a channel closed once there is room, and nil when the connection
// is closing.
func (p *Peer) push(c *conn, msg []byte) (ok bool, room <-chan struct{}) {
	q := &c.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ended || q.final != nil {
		return false, nil
	}
	if len(q.msgs) >= outQueueLen {
		if q.room == nil {
			q.room = make(chan struct{})
		}
		return false, q.room
	}
	q.msgs = append(q.msgs, msg)
	p.startWriter(c)
	return true, nil
}

// queue hands msg to the writer without blocking the FSM worker; a
// full queue means the writer is stuck, which the send hold timer handles.
func (p *Peer) queue(c *conn, msg []byte) bool {
	ok, _ := p.push(c, msg)
	return ok
}

// sendFinal queues the connection's last message, a NOTIFICATION: the
// messages queued before it go first, then the writer half-closes. The
// channel it returns is closed once msg is written or cannot be; nil if it
// cannot be at all (the writer already ended).
func (p *Peer) sendFinal(c *conn, msg []byte) <-chan struct{} {
	q := &c.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ended || q.final != nil {
		return nil
	}
	q.final = msg
	q.finished = make(chan struct{})
	p.startWriter(c)
	return q.finished
}

// endWriter stops writers from starting and waits for the one running,
// which closing the connection unblocks.
func (c *conn) endWriter() {
	q := &c.q
	q.mu.Lock()
	q.end()
	q.mu.Unlock()
	q.writers.Wait()
}

// end marks the queue ended; q.mu is held.
func (q *outQueue) end() {
	if !q.ended {
		q.ended = true
		if q.finished != nil {
			close(q.finished)
		}
	}
}

// startWriter starts the writer goroutine unless one runs; q.mu is held.
func (p *Peer) startWriter(c *conn) {
	q := &c.q
	if q.writing || q.ended {
		return
	}
	q.writing = true
	q.writers.Add(1)
	go p.writeLoop(c)
}

// writeLoop writes what is queued, coalescing it into one flush, until the
// queue is empty. A write that makes no progress for SendHoldTime fails
// with a deadline error: that is the RFC 9687 send hold timer.
func (p *Peer) writeLoop(c *conn) {
	q := &c.q
	defer q.writers.Done()
	var spare [][]byte // the slice written last, reused while busy
	for {
		q.mu.Lock()
		msgs, final := q.msgs, q.final
		if len(msgs) == 0 && final == nil || q.ended {
			q.msgs, q.writing = nil, false
			q.mu.Unlock()
			return
		}
		q.msgs, q.final = spare[:0], nil
		if q.room != nil {
			close(q.room)
			q.room = nil
		}
		q.mu.Unlock()

		deadline := time.Time{}
		if final != nil {
			// All of it within notifyTimeout, which closeConn waits
			// for; after a failed write the NOTIFICATION could only go
			// out garbled.
			deadline = time.Now().Add(notifyTimeout)
		} else if sh := p.cfg.SendHoldTime; sh > 0 {
			deadline = time.Now().Add(sh)
		}
		_ = c.nc.SetWriteDeadline(deadline)
		err := p.flush(c, msgs, final)
		clear(msgs)
		spare = msgs
		if final != nil || err != nil {
			if final != nil {
				if tc, ok := c.nc.(interface{ CloseWrite() error }); ok {
					_ = tc.CloseWrite()
				}
			}
			q.mu.Lock()
			q.end()
			q.mu.Unlock()
			if err != nil && final == nil {
				p.writeFailed(c, err)
			}
			return
		}
	}
}

// flush writes msgs, then final unless nil, with one flush of a pooled
// buffer (so idle costs nothing), and counts them once written.
func (p *Peer) flush(c *conn, msgs [][]byte, final []byte) error {
	bw := writeBufs.Get().(*bufio.Writer)
	bw.Reset(c.nc)
	defer func() {
		bw.Reset(nil)
		writeBufs.Put(bw)
	}()
	var n, updates uint64
	var err error
	for _, m := range msgs {
		n, updates = countMessages(m, n, updates)
		if _, err = bw.Write(m); err != nil {
			return err
		}
	}
	if final != nil {
		n++
		if _, err = bw.Write(final); err != nil {
			return err
		}
	}
	if err = bw.Flush(); err != nil {
		return err
	}
	p.msgsOut.Add(n)
	p.updatesOut.Add(updates)
	return nil
}

func (p *Peer) writeFailed(c *conn, err error) {
	if c.stopping() {
		return
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		p.post(c, input{kind: inEvent, ev: evSendHoldExpired, err: ErrSendHoldTimerExpired})
		return
	}
	p.post(c, input{kind: inEvent, ev: evTCPFailed, err: fmt.Errorf("%w: %w", ErrConnectionClosed, err)})
}

// countMessages walks the headers of the messages in b.
func countMessages(b []byte, msgs, updates uint64) (uint64, uint64) {
	for len(b) >= wire.HeaderLen {
		l := int(b[16])<<8 | int(b[17])
		if l < wire.HeaderLen || l > len(b) {
			break
		}
		msgs++
		if b[18] == wire.TypeUpdate {
			updates++
		}
		b = b[l:]
	}
	return msgs, updates
}
