package l2

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

func TestPlan(t *testing.T) {
	a := Answer{vip4, "eth0"}
	b := Answer{vip6, "eth0"}
	c := Answer{vip4, "eth1"}
	mapped := Answer{netip.AddrFrom16(vip4.As16()), "eth0"}
	for _, tc := range []struct {
		name        string
		have, want  []Answer
		add, remove []Answer
	}{
		{"nothing", nil, nil, nil, nil},
		{"first", nil, []Answer{b, a}, []Answer{a, b}, nil},
		{"same again", []Answer{a, b}, []Answer{b, a}, nil, nil},
		{"duplicates", nil, []Answer{a, a, mapped}, []Answer{a}, nil},
		{"mapped is v4", []Answer{a}, []Answer{mapped}, nil, nil},
		{"move interface", []Answer{a}, []Answer{c}, []Answer{c}, []Answer{a}},
		{"all gone", []Answer{c, a, b}, nil, nil, []Answer{a, c, b}},
	} {
		add, remove := plan(tc.have, tc.want)
		if !slices.Equal(add, tc.add) || !slices.Equal(remove, tc.remove) {
			t.Errorf("%s: add %v remove %v, want %v %v", tc.name, add, remove, tc.add, tc.remove)
		}
	}
}

// TestSetSequences drives one Announcer through random wanted sets on
// real interfaces, some missing, and checks after each Set that Status
// lists exactly the wanted pairs, errors exactly on the missing interface,
// and the sockets are those of the wanted links.
func TestSetSequences(t *testing.T) {
	t.Parallel()
	l := newTestLAN(t)
	a := announcer(t, l.node1, Schedule{Repeats: 1, Interval: 1})
	ifaces := []string{"eth0", "eth1", "none0"}
	addrs := []netip.Addr{testVIP4, testVIP6, netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("2001:db8::11")}
	var all []Answer
	for _, i := range ifaces {
		for _, ad := range addrs {
			all = append(all, Answer{ad, i})
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for step := range 40 {
		var want []Answer
		for _, x := range all {
			if rng.IntN(3) == 0 {
				want = append(want, x)
			}
		}
		err := a.Set(want)
		add, _ := plan(nil, want)
		st := a.Status()
		var got []Answer
		missing := false
		for _, s := range st {
			got = append(got, s.Answer)
			if (s.Interface == "none0") != (s.LastError != nil) {
				t.Fatalf("step %d: status %+v", step, s)
			}
			missing = missing || s.Interface == "none0"
		}
		if !slices.Equal(got, add) || missing != (err != nil) {
			t.Fatalf("step %d: want %v, status %v, err %v", step, add, got, err)
		}
		a.mu.Lock()
		links := len(a.links)
		a.mu.Unlock()
		if want := countLinks(add); links != want {
			t.Fatalf("step %d: %d links open, want %d", step, links, want)
		}
	}
}

func countLinks(as []Answer) int {
	keys := map[linkKey]bool{}
	for _, x := range as {
		if x.Interface != "none0" {
			keys[linkKey{x.Interface, x.Addr.Is6()}] = true
		}
	}
	return len(keys)
}
