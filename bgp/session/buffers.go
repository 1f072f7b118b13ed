package session

import (
	"bufio"
	"io"
	"sync"

	"github.com/bgplb/bgplb/bgp/wire"
)

// An idle session holds no I/O buffer: the reader waits for a message
// header in a buffer of 19 bytes, and takes one only to read the
// body and whatever follows it; the writer takes one to coalesce what is
// queued and gives it back after the flush. With thousands of mostly idle
// sessions (dynamic neighbours), the buffers are shared by the few that are
// busy. The pools are caches of memory, not state: what a buffer held is
// never read again once it is back.
var (
	readBufs   = sync.Pool{New: func() any { b := make([]byte, ioBufSize); return &b }}
	smallBufs  = sync.Pool{New: func() any { b := make([]byte, smallBufSize); return &b }}
	writeBufs  = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, ioBufSize) }}
	updatePool = sync.Pool{New: func() any { return new(wire.Update) }}
)

// smallBufSize is the read buffer a session takes first when it wakes up:
// the largest standard message fits, and a KEEPALIVE or the few routes of
// a node's UPDATE need no more. When thousands of sessions come up at
// once, that is what most of them hold for a moment. A session whose
// peer sends more than fits moves on to a large buffer (see take).
const smallBufSize = 4096

// frame reads whole BGP messages from a stream, a buffer in hand only
// while data is waiting.
type frame struct {
	src  io.Reader
	hdr  [wire.HeaderLen]byte
	buf  *[]byte // from smallBufs or readBufs, nil while idle
	r, w int     // unread bytes are (*buf)[r:w]
	// full: the last read filled the buffer, so more is likely waiting.
	full bool
}

// take returns the next n bytes of the stream, valid until the next call.
// n is at most ioBufSize (a message of at most 65535 bytes fits).
func (f *frame) take(n int) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	if f.w-f.r >= n {
		b := (*f.buf)[f.r : f.r+n]
		f.r += n
		return b, nil
	}
	if f.r == f.w && n == wire.HeaderLen {
		// Nothing buffered: wait for the next message without a buffer.
		f.release()
		if _, err := io.ReadFull(f.src, f.hdr[:]); err != nil {
			return nil, err
		}
		return f.hdr[:], nil
	}
	f.reserve(n)
	buf := *f.buf
	f.w = copy(buf, buf[f.r:f.w])
	f.r = 0
	// Read ahead as much as the stream has: a burst of UPDATEs is read in
	// few system calls.
	m, err := io.ReadAtLeast(f.src, buf[f.w:], n-f.w)
	f.w += m
	f.full = f.w == len(buf)
	if err != nil {
		return nil, err
	}
	f.r = n
	return buf[:n], nil
}

// reserve makes sure the buffer can take n bytes with what is unread: a
// small one while the messages are small and few, else a large one.
func (f *frame) reserve(n int) {
	small := f.buf != nil && len(*f.buf) == smallBufSize
	if f.buf != nil && !(small && (n > smallBufSize || f.full)) {
		return
	}
	var nb *[]byte
	if f.buf == nil && n <= smallBufSize {
		nb = smallBufs.Get().(*[]byte)
	} else {
		nb = readBufs.Get().(*[]byte)
	}
	if f.buf != nil {
		f.w = copy(*nb, (*f.buf)[f.r:f.w])
		f.r = 0
		smallBufs.Put(f.buf)
	}
	f.buf, f.full = nb, false
}

// release gives the buffer back if nothing in it is unread.
func (f *frame) release() {
	if f.buf != nil && f.r == f.w {
		if len(*f.buf) == smallBufSize {
			smallBufs.Put(f.buf)
		} else {
			readBufs.Put(f.buf)
		}
		f.buf, f.r, f.w, f.full = nil, 0, 0, false
	}
}
