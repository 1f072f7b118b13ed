package session

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// TestFrameSizes: whatever the sizes of the messages and of the reads that
// bring them, take returns the stream as it was, moving from no buffer to a
// small one and on to a large one as needed.
func TestFrameSizes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var stream []byte
	var sizes []int
	for range 300 {
		n := 19 + rng.IntN(200)
		switch rng.IntN(5) {
		case 0:
			n = 19 + rng.IntN(ioBufSize-19)
		case 1:
			n = smallBufSize - 10 + rng.IntN(20)
		}
		msg := make([]byte, n)
		for i := range msg {
			msg[i] = byte(rng.Uint32())
		}
		stream = append(stream, msg...)
		sizes = append(sizes, n)
	}
	for _, src := range []io.Reader{bytes.NewReader(stream), iotest.HalfReader(bytes.NewReader(stream)), iotest.OneByteReader(bytes.NewReader(stream))} {
		f := frame{src: src}
		off := 0
		for i, n := range sizes {
			// As the reader does: a header, then the body.
			h, err := f.take(19)
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			got := append([]byte(nil), h...)
			body, err := f.take(n - 19)
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			got = append(got, body...)
			if !bytes.Equal(got, stream[off:off+n]) {
				t.Fatalf("message %d of %d bytes differs", i, n)
			}
			off += n
		}
		f.release()
		if f.buf != nil {
			t.Error("a buffer is kept at the end of the stream")
		}
	}
}
