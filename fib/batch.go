package fib

import (
	"context"
	"errors"

	"golang.org/x/sys/unix"
)

// sendBatch sends up to n requests, encoded into f.buf by enc (which returns
// false to skip item i), in datagrams of at most BatchSize messages and
// maxDatagram bytes. Only the last message of a datagram asks for an ACK:
// the kernel answers the others only when they fail, and answers them in
// order, so the ACK tells that every answer of the datagram has arrived.
// result is called once for every message sent, errno 0 for success.
func (f *FIB) sendBatch(ctx context.Context, n int, enc func(i int, seq uint32) bool, result func(i int, errno unix.Errno, msg string)) error {
	p := &f.plan
	for i := 0; i < n; {
		f.buf.reset()
		p.items, p.offs = p.items[:0], p.offs[:0]
		first := f.c.seq + 1
		// A message is at most maxMessage long, so stopping below the
		// limit by that much keeps the datagram within the send buffer.
		limit := min(maxDatagram, f.c.maxSend-maxMessage)
		for ; i < n && (len(p.items) == 0 || len(p.items) < f.cfg.BatchSize && len(f.buf.b) < limit); i++ {
			off := len(f.buf.b)
			if enc(i, f.c.nextSeq(1)) {
				p.items = append(p.items, int32(i))
				p.offs = append(p.offs, off)
			} else {
				f.c.seq-- // skipped: its number is not used
			}
		}
		if len(p.items) == 0 {
			continue
		}
		if err := f.sendDatagram(ctx, first, result); err != nil {
			return err
		}
	}
	return nil
}

// sendDatagram sends the messages in f.buf, numbered from first, and hands
// every message's outcome to result once all of them are known.
func (f *FIB) sendDatagram(ctx context.Context, first uint32, result func(i int, errno unix.Errno, msg string)) error {
	p := &f.plan
	last := first + uint32(len(p.items)) - 1
	setAck(f.buf.b, p.offs[len(p.offs)-1])
	p.replies = append(p.replies[:0], make([]reply, len(p.items))...)
	record := func(r reply) { p.replies[r.seq-first] = r }
	err := f.c.exchange(ctx, f.buf.b, first, last, record)
	if errors.Is(err, errOverrun) {
		f.overruns++
		f.log.Warn("fib: netlink receive buffer overrun, replaying the batch with per-message acks",
			"messages", len(p.items), "receive_buffer", f.cfg.ReceiveBuffer)
		err = f.replay(ctx, first, 0, len(p.items), replayFirstChunk, record)
	}
	if err != nil {
		return err
	}
	for k, r := range p.replies {
		result(int(p.items[k]), r.errno, r.msg)
	}
	return nil
}

// replay resends messages k0..k1-1 of the datagram in f.buf, each asking for
// an ACK, in pieces of size messages, halving the piece whenever the
// receive buffer overruns again; a piece of one message cannot overrun.
// Every request is idempotent (routes and objects are created with
// NLM_F_REPLACE; a second delete finds nothing, which is not a failure), so
// sending one twice is harmless.
func (f *FIB) replay(ctx context.Context, first uint32, k0, k1, size int, deliver func(reply)) error {
	p := &f.plan
	for k := k0; k < k1; k += size {
		end := min(k+size, k1)
		stop := len(f.buf.b)
		if end < len(p.offs) {
			stop = p.offs[end]
		}
		for j := k; j < end; j++ {
			setAck(f.buf.b, p.offs[j])
		}
		err := f.c.exchange(ctx, f.buf.b[p.offs[k]:stop], first+uint32(k), first+uint32(end-1), deliver)
		if errors.Is(err, errOverrun) && size > 1 {
			err = f.replay(ctx, first, k, end, size/2, deliver)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
