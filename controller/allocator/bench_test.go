package allocator

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

// The benchmarks use IPv6 documentation space: the IPv4 documentation
// ranges hold 768 addresses, too few for 10,000 Services. The code path is
// the same for both families.

func benchKeys(n int) []lbmodel.Key {
	keys := make([]lbmodel.Key, n)
	for i := range keys {
		keys[i] = lbmodel.Key{Namespace: fmt.Sprintf("ns%d", i%50), Name: fmt.Sprintf("svc%d", i)}
	}
	return keys
}

func benchAlloc(b *testing.B, hold time.Duration, existing int) (*Allocator, []lbmodel.Key, time.Time) {
	b.Helper()
	a := newAlloc(b, Config{HoldDown: hold},
		prio(1, mkPool("small", "2001:db8:1::/120")), // full after the first 256
		mkPool("big", "2001:db8::/64"),
	)
	keys := benchKeys(existing + b.N)
	now := t0
	for _, k := range keys[:existing] {
		if _, err := a.Allocate(Request{Key: k, Families: []Family{IPv6}}, now); err != nil {
			b.Fatal(err)
		}
	}
	return a, keys, now
}

// BenchmarkAllocate: one new Service per iteration; the state grows with b.N.
func BenchmarkAllocate(b *testing.B) {
	for _, existing := range []int{0, 10_000, 100_000} {
		b.Run(fmt.Sprintf("existing=%d", existing), func(b *testing.B) {
			a, keys, now := benchAlloc(b, time.Minute, existing)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if _, err := a.Allocate(Request{Key: keys[existing+i], Families: []Family{IPv6}}, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkChurn: 10,000 Services; each iteration deletes a random one and
// creates another, so released addresses come back through the hold-down
// queue and the heap below the watermark.
func BenchmarkChurn(b *testing.B) {
	const existing = 10_000
	for _, hold := range []time.Duration{0, time.Minute} {
		b.Run(fmt.Sprintf("holdDown=%v", hold), func(b *testing.B) {
			a, keys, now := benchAlloc(b, hold, existing)
			live := keys[:existing:existing]
			r := rand.New(rand.NewPCG(1, 2))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				now = now.Add(10 * time.Millisecond) // 6,000 hold-downs in flight
				j := r.IntN(len(live))
				a.Release(live[j], now)
				live[j] = keys[existing+i]
				if _, err := a.Allocate(Request{Key: live[j], Families: []Family{IPv6}}, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReconfirm: Allocate for a Service that already holds its address,
// what every resync of an unchanged Service costs.
func BenchmarkReconfirm(b *testing.B) {
	const existing = 10_000
	a, keys, now := benchAlloc(b, time.Minute, existing)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := a.Allocate(Request{Key: keys[i%existing], Families: []Family{IPv6}}, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTwin is the slow twin at 1,000 Services, for scale.
func BenchmarkTwin(b *testing.B) {
	const existing = 1000
	tw := newTwin(Config{}, []lbmodel.Pool{mkPool("big", "2001:db8::/64")})
	keys := benchKeys(existing + b.N)
	for _, k := range keys[:existing] {
		if _, err := tw.allocate(Request{Key: k, Families: []Family{IPv6}}, t0); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		tw.release(keys[i%existing], t0)
		if _, err := tw.allocate(Request{Key: keys[i%existing], Families: []Family{IPv6}}, t0); err != nil {
			b.Fatal(err)
		}
	}
}
