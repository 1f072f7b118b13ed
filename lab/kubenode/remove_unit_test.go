package kubenode

import (
	"errors"
	"testing"
)

func TestSweepMountNS(t *testing.T) {
	rec := nsID{Dev: 4, Ino: 4026532500}
	live := holderFacts{Recorded: true, Started: true, Alive: true, MountNS: rec}
	for _, tc := range []struct {
		name     string
		recorded nsID
		h        func(h *holderFacts)
		want     bool
	}{
		{"the holder runs in the recorded namespace", rec, func(*holderFacts) {}, true},
		{"no namespace recorded", nsID{}, func(*holderFacts) {}, false},
		{"no holder recorded", rec, func(h *holderFacts) { h.Recorded = false }, false},
		{"holder without start time", rec, func(h *holderFacts) { h.Started = false }, false},
		{"holder gone (crash, reboot)", rec, func(h *holderFacts) { h.Alive = false }, false},
		{"inode reused by another namespace", rec, func(h *holderFacts) { h.MountNS = nsID{Dev: 4, Ino: 4026532501} }, false},
		{"same inode, other device", rec, func(h *holderFacts) { h.MountNS.Dev = 5 }, false},
		{"namespace unreadable", rec, func(h *holderFacts) { h.MountNS, h.Err = nsID{}, errors.New("EACCES") }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := live
			tc.h(&h)
			if got := sweepMountNS(tc.recorded, h); got != tc.want {
				t.Errorf("sweepMountNS(%v, %+v) = %v, want %v", tc.recorded, h, got, tc.want)
			}
		})
	}
}
