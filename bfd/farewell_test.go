package bfd

import (
	"slices"
	"testing"
	"time"
)

func TestFarewellOf(t *testing.T) {
	const ms = time.Millisecond
	for _, tc := range []struct {
		name  string
		st    State
		tx    time.Duration
		mult  uint8
		times []time.Duration
	}{
		{"up fast", Up, 50 * ms, 3, []time.Duration{50 * ms, 100 * ms, 150 * ms}},
		{"up default", Up, 300 * ms, 3, []time.Duration{300 * ms, 600 * ms, 900 * ms}},
		{"up multiplier 1", Up, 100 * ms, 1, []time.Duration{100 * ms}},
		// The peer of an Init session may be Up: its detection time is
		// our multiplier times the slow interval, capped.
		{"init", Init, time.Second, 3, []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}},
		{"capped span", Up, 900 * ms, 5, []time.Duration{900 * ms, 1800 * ms, 2700 * ms, MaxFarewell}},
		{"capped interval", Up, 10 * time.Second, 3, []time.Duration{MaxFarewell}},
		{"down", Down, time.Second, 3, nil},
		{"admin down", AdminDown, time.Second, 3, nil},
		{"not sending", Up, 0, 3, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := farewellOf(tc.st, tc.tx, tc.mult).sendTimes(); !slices.Equal(got, tc.times) {
				t.Errorf("repeats at %v, want %v", got, tc.times)
			}
		})
	}
}
