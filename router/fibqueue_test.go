package router

import (
	"context"
	"math"
	"net/netip"
	"reflect"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/rib"
	"github.com/bgplb/bgplb/fib"
)

func TestToFIB(t *testing.T) {
	a := netip.MustParseAddr
	p := netip.MustParsePrefix("203.0.113.10/32")
	path := func(nh string, bw float32) rib.PathView { return rib.PathView{NextHop: a(nh), LinkBandwidth: bw} }
	tests := []struct {
		name  string
		paths []rib.PathView
		ecmp  bool
		want  []fib.NextHop
	}{
		{"gone", nil, true, nil},
		{"single", []rib.PathView{path("198.51.100.11", 0)}, true, []fib.NextHop{{Addr: a("198.51.100.11"), Weight: 0}}},
		{"ecmp sorted by address", []rib.PathView{path("198.51.100.12", 0), path("198.51.100.11", 0)}, true,
			[]fib.NextHop{{Addr: a("198.51.100.11"), Weight: 0}, {Addr: a("198.51.100.12"), Weight: 0}}},
		{"ecmp off keeps the best", []rib.PathView{path("198.51.100.12", 3), path("198.51.100.11", 1)}, false,
			[]fib.NextHop{{Addr: a("198.51.100.12"), Weight: 0}}},
		{"weighted by link bandwidth", []rib.PathView{path("198.51.100.12", 3), path("198.51.100.11", 1)}, true,
			[]fib.NextHop{{Addr: a("198.51.100.11"), Weight: 1 << 18}, {Addr: a("198.51.100.12"), Weight: 3 << 18}}},
		{"one member without bandwidth: unweighted", []rib.PathView{path("198.51.100.12", 3), path("198.51.100.11", 0)}, true,
			[]fib.NextHop{{Addr: a("198.51.100.11"), Weight: 0}, {Addr: a("198.51.100.12"), Weight: 0}}},
		{"same next hop twice adds up", []rib.PathView{path("198.51.100.11", 2), path("198.51.100.12", 1), path("198.51.100.11", 2)}, true,
			[]fib.NextHop{{Addr: a("198.51.100.11"), Weight: 1 << 20}, {Addr: a("198.51.100.12"), Weight: 1 << 18}}},
		{"fractions keep their ratio", []rib.PathView{path("198.51.100.11", 0.25), path("198.51.100.12", 0.5)}, true,
			[]fib.NextHop{{Addr: a("198.51.100.11"), Weight: 1 << 18}, {Addr: a("198.51.100.12"), Weight: 1 << 19}}},
		{"terabits keep their ratio", []rib.PathView{path("198.51.100.11", 1<<43), path("198.51.100.12", 3<<41)}, true,
			[]fib.NextHop{{Addr: a("198.51.100.11"), Weight: 1 << 19}, {Addr: a("198.51.100.12"), Weight: 3 << 17}}},
		{"a tiny share is still 1", []rib.PathView{path("198.51.100.11", 1), path("198.51.100.12", 1<<40)}, true,
			[]fib.NextHop{{Addr: a("198.51.100.11"), Weight: 1}, {Addr: a("198.51.100.12"), Weight: 1 << 19}}},
		{"the largest float32", []rib.PathView{path("198.51.100.11", math.MaxFloat32), path("198.51.100.12", math.MaxFloat32/4)}, true,
			[]fib.NextHop{{Addr: a("198.51.100.11"), Weight: 1 << 20}, {Addr: a("198.51.100.12"), Weight: 1 << 18}}},
		{"+Inf: unweighted", []rib.PathView{path("198.51.100.11", float32(math.Inf(1))), path("198.51.100.12", 1)}, true,
			[]fib.NextHop{{Addr: a("198.51.100.11")}, {Addr: a("198.51.100.12")}}},
		{"NaN: unweighted", []rib.PathView{path("198.51.100.11", float32(math.NaN())), path("198.51.100.12", 1)}, true,
			[]fib.NextHop{{Addr: a("198.51.100.11")}, {Addr: a("198.51.100.12")}}},
		{"negative: unweighted", []rib.PathView{path("198.51.100.11", -5), path("198.51.100.12", 1)}, true,
			[]fib.NextHop{{Addr: a("198.51.100.11")}, {Addr: a("198.51.100.12")}}},
		{"many paths through one next hop saturate, never wrap", append(slices.Repeat([]rib.PathView{path("198.51.100.11", 1<<30)}, 10000), path("198.51.100.12", 1<<30)), true,
			[]fib.NextHop{{Addr: a("198.51.100.11"), Weight: math.MaxUint32}, {Addr: a("198.51.100.12"), Weight: 1 << 19}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := toFIB(nil, rib.Change{Prefix: p, Paths: tc.paths}, tc.ecmp)
			if got.Prefix != p || !reflect.DeepEqual(got.NextHops, tc.want) {
				t.Fatalf("got %+v, want %+v", got.NextHops, tc.want)
			}
		})
	}
}

func TestSatAdd(t *testing.T) {
	for _, tc := range []struct{ a, b, want uint32 }{
		{1, 2, 3}, {math.MaxUint32 - 1, 1, math.MaxUint32}, {math.MaxUint32, 1, math.MaxUint32}, {1 << 31, 1 << 31, math.MaxUint32},
	} {
		if got := satAdd(tc.a, tc.b); got != tc.want {
			t.Errorf("satAdd(%d, %d) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestFIBQueueCoalescesAndBounds(t *testing.T) {
	q := newFIBQueue(2)
	ctx := context.Background()
	p1, p2, p3 := netip.MustParsePrefix("203.0.113.1/32"), netip.MustParsePrefix("203.0.113.2/32"), netip.MustParsePrefix("203.0.113.3/32")
	nh := func(s string) []rib.PathView { return []rib.PathView{{NextHop: netip.MustParseAddr(s)}} }
	q.push(ctx, []rib.Change{{Prefix: p1, Seq: 2, Paths: nh("198.51.100.12")}, {Prefix: p1, Seq: 1, Paths: nh("198.51.100.11")}, {Prefix: p2, Seq: 1}}, true)
	if q.len() != 2 {
		t.Fatalf("len %d", q.len())
	}
	// A third prefix must wait for room.
	done := make(chan bool)
	go func() { done <- q.push(ctx, []rib.Change{{Prefix: p3, Seq: 1}}, true) }()
	select {
	case <-done:
		t.Fatal("push did not block on a full queue")
	case <-time.After(50 * time.Millisecond):
	}
	b := q.take(nil)
	got := b.changes
	if len(got) != 2 {
		t.Fatalf("took %d", len(got))
	}
	for _, c := range got {
		if c.Prefix == p1 && c.NextHops[0].Addr != netip.MustParseAddr("198.51.100.12") {
			t.Fatalf("older change won: %+v", c)
		}
	}
	if !<-done {
		t.Fatal("push failed")
	}
	if got := q.take(b).changes; len(got) != 1 || got[0].Prefix != p3 {
		t.Fatalf("got %+v", got)
	}
	// A blocked push gives up when its context ends.
	q.push(ctx, []rib.Change{{Prefix: p1, Seq: 5}, {Prefix: p2, Seq: 5}}, true)
	cctx, cancel := context.WithCancel(ctx)
	go func() { done <- q.push(cctx, []rib.Change{{Prefix: p3, Seq: 6}}, true) }()
	cancel()
	if <-done {
		t.Fatal("push succeeded after cancel")
	}
}

// TestFIBQueueClose: once the queue is closed (the daemon stops, the writer
// is gone), a push waiting for room and every later one fail at once, even
// with a context that never ends: the shutdown hang of issue 11, where the
// sessions' down path pushed more than the queue holds after the writer
// returned.
func TestFIBQueueClose(t *testing.T) {
	q := newFIBQueue(4)
	cs := make([]rib.Change, 10)
	for i := range cs {
		cs[i] = rib.Change{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), 32), Seq: uint64(i + 1)}
	}
	done := make(chan bool)
	go func() { done <- q.push(context.Background(), cs, true) }()
	// Wait for the push to fill the queue and block: then close.
	for q.len() < 4 {
		runtime.Gosched()
	}
	q.close()
	if <-done {
		t.Fatal("a push blocked on a full queue succeeded after close")
	}
	if q.push(context.Background(), []rib.Change{{Prefix: netip.MustParsePrefix("203.0.113.100/32"), Seq: 20}}, true) {
		t.Fatal("a push after close succeeded")
	}
}

// TestFIBQueueArena: changes whose next hops share the queue's arena (which
// grows and moves as it fills) each keep their own next hops, across turns
// of the two batches.
func TestFIBQueueArena(t *testing.T) {
	q := newFIBQueue(1 << 20)
	var b *fibBatch
	for round := range 3 {
		var cs []rib.Change
		for i := range 2000 {
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, byte(i >> 8), byte(i)}), 32)
			cs = append(cs, rib.Change{Prefix: p, Seq: uint64(round + 1), Paths: []rib.PathView{
				{NextHop: netip.AddrFrom4([4]byte{198, 51, 100, byte(i%200 + 1)})},
				{NextHop: netip.AddrFrom4([4]byte{198, 51, 100, byte(round + 201)})},
			}})
		}
		q.push(context.Background(), cs, true)
		b = q.take(b)
		if len(b.changes) != 2000 {
			t.Fatalf("round %d: %d changes", round, len(b.changes))
		}
		for i, c := range b.changes {
			want := []fib.NextHop{{Addr: netip.AddrFrom4([4]byte{198, 51, 100, byte(i%200 + 1)})}, {Addr: netip.AddrFrom4([4]byte{198, 51, 100, byte(round + 201)})}}
			if !reflect.DeepEqual(c.NextHops, want) {
				t.Fatalf("round %d change %d (%v): next hops %v, want %v", round, i, c.Prefix, c.NextHops, want)
			}
		}
	}
}

// TestFIBQueueAfter: a func queued with after comes with the batch that
// holds every change pushed before it, and runs at once on a closed queue.
func TestFIBQueueAfter(t *testing.T) {
	q := newFIBQueue(100)
	pfx := func(i int) rib.Change {
		return rib.Change{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), 32), Seq: uint64(i + 1)}
	}
	ran := 0
	q.push(context.Background(), []rib.Change{pfx(1), pfx(2)}, true)
	q.after(func() { ran++ })
	b := q.take(nil)
	if len(b.changes) != 2 || len(b.after) != 1 || ran != 0 {
		t.Fatalf("batch: %d changes, %d after funcs, ran %d; want 2, 1, 0", len(b.changes), len(b.after), ran)
	}
	b.finish()
	if ran != 1 {
		t.Fatalf("after ran %d times", ran)
	}
	if b = q.take(b); len(b.after) != 0 {
		t.Fatalf("the next batch kept %d after funcs", len(b.after))
	}
	q.close()
	q.after(func() { ran++ })
	if ran != 2 {
		t.Fatal("after on a closed queue did not run at once")
	}
}
