package v1alpha1

import (
	"math"
	"testing"
)

func TestClampCount(t *testing.T) {
	for n, want := range map[uint64]int64{
		0: 0, 256: 256, math.MaxInt64: math.MaxInt64,
		math.MaxInt64 + 1: math.MaxInt64, math.MaxUint64: math.MaxInt64,
	} {
		if got := ClampCount(n); got != want {
			t.Errorf("ClampCount(%d) = %d, want %d", n, got, want)
		}
	}
}
