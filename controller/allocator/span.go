package allocator

import (
	"net/netip"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

// span finds the lowest free address of one pool range without scanning the
// range: addresses from next upwards have never been looked at (a watermark
// that only moves up), and every free address below next is in the heap
// free. So the lowest free address is the smaller of the heap's top and the
// first free address at or above next.
//
// The invariant, kept by lowest and unblock: every address below next that
// may be handed out and is not blocked is in free. Entries in free may have
// become blocked since they were pushed; lowest drops them as it meets them
// (lazy deletion), and unblock pushes them again when they come free.
// Blocked means held by a Service or held down: the caller's predicate says.
//
// Cost: the watermark passes each address once, the heap is O(log n) per
// operation, so an allocation is amortised O(log n) in the number of
// addresses ever freed below the watermark, however large the range.
type span struct {
	lbmodel.Range
	pool *poolState

	next   netip.Addr // the watermark; meaningless once done
	done   bool       // next has passed Last
	free   addrHeap
	queued map[netip.Addr]struct{} // what free holds, so it holds each address once
}

func newSpan(r lbmodel.Range, p *poolState) *span {
	return &span{Range: r, pool: p, next: r.First, queued: map[netip.Addr]struct{}{}}
}

// usable reports whether the pool may hand out a at all.
func (s *span) usable(a netip.Addr) bool { return !(s.pool.AvoidBuggyIPs && buggy(a)) }

// lowest returns the lowest usable address of the span that is not blocked.
// It moves the watermark and trims the heap but changes nothing the caller
// can observe: it may be called and its answer not taken.
func (s *span) lowest(blocked func(netip.Addr) bool) (netip.Addr, bool) {
	for len(s.free) > 0 {
		a := s.free[0]
		if !blocked(a) {
			return a, true
		}
		s.free.pop()
		delete(s.queued, a)
	}
	for !s.done {
		a := s.next
		if s.usable(a) && !blocked(a) {
			return a, true
		}
		s.advance()
	}
	return netip.Addr{}, false
}

func (s *span) advance() {
	if s.next == s.Last {
		s.done = true
		return
	}
	s.next = s.next.Next()
}

// unblock is told that a (inside the span) came free.
func (s *span) unblock(a netip.Addr) {
	if !s.usable(a) || !s.done && !a.Less(s.next) {
		return // not for hand-out, or the watermark will still meet it
	}
	if _, ok := s.queued[a]; ok {
		return
	}
	s.queued[a] = struct{}{}
	s.free.push(a)
}

// addrHeap is a min-heap of addresses of one family.
type addrHeap []netip.Addr

func (h *addrHeap) push(a netip.Addr) {
	*h = append(*h, a)
	x := *h
	for i := len(x) - 1; i > 0; {
		p := (i - 1) / 2
		if !x[i].Less(x[p]) {
			break
		}
		x[i], x[p] = x[p], x[i]
		i = p
	}
}

func (h *addrHeap) pop() {
	x := *h
	n := len(x) - 1
	x[0] = x[n]
	x = x[:n]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < n && x[l].Less(x[m]) {
			m = l
		}
		if r := l + 1; r < n && x[r].Less(x[m]) {
			m = r
		}
		if m == i {
			break
		}
		x[i], x[m] = x[m], x[i]
		i = m
	}
	*h = x
}
