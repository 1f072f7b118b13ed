package allocator

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

func TestRangeSize(t *testing.T) {
	max := uint64(math.MaxUint64)
	for _, tc := range []struct {
		r     string
		avoid bool
		want  uint64
	}{
		{"203.0.113.0/24", false, 256},
		{"203.0.113.0/24", true, 254},
		{"203.0.113.255", true, 0},
		{"203.0.113.0-203.0.113.0", true, 0},
		{"203.0.113.254-203.0.114.1", true, 2},
		{"0.0.0.0/0", false, 1 << 32},
		{"0.0.0.0/0", true, 1<<32 - 2*(1<<24)},
		{"2001:db8::/128", true, 1},
		{"2001:db8::/120", true, 256},
		{"2001:db8::/65", false, 1 << 63},
		{"2001:db8::1-2001:db8::ffff:ffff:ffff:ffff", false, max}, // exactly 2^64-1
		{"2001:db8::/64", false, max},                             // 2^64: saturated
		{"2001:db8::/32", false, max},
		{"2001:db8::ffff:ffff:ffff:fff0-2001:db8:0:1::f", false, 32}, // borrow across the halves
		{"2001:db8::ffff:ffff:ffff:ffff-2001:db8:0:1::", false, 2},
		{"2001:db8::8-2001:db8:0:1::7", false, max}, // 2^64 across the halves
		{"2001:db8::8-2001:db8:0:1::6", false, max},
		{"::/0", false, max},
	} {
		if got := size(rng(t, tc.r), tc.avoid); got != tc.want {
			t.Errorf("%s avoid=%v: %d, want %d", tc.r, tc.avoid, got, tc.want)
		}
	}
}

// The buggy-address arithmetic against counting one by one.
func TestRangeSizeAgainstCounting(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		lo := r.Uint32N(1 << 20)
		hi := lo + r.Uint32N(1200)
		if r.IntN(10) == 0 {
			lo, hi = math.MaxUint32-r.Uint32N(600), math.MaxUint32
		}
		rg := lbmodel.Range{First: addr4(lo), Last: addr4(hi)}
		var n uint64
		for x := rg.First; ; x = x.Next() {
			if !buggy(x) {
				n++
			}
			if x == rg.Last {
				break
			}
		}
		if got := size(rg, true); got != n {
			t.Fatalf("%v: %d, counted %d", rg, got, n)
		}
	}
}

func addr4(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
