package bench

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/bgplb/bgplb/view"
)

func TestFlat(t *testing.T) {
	ramp := func(from, step float64, n int) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = from + step*float64(i)
		}
		return out
	}
	for _, c := range []struct {
		name     string
		samples  []float64
		rel, abs float64
		want     bool
	}{
		{"steady", ramp(100, 0, 30), 0.1, 0, true},
		{"warm-up spike ignored", append([]float64{1000, 1000}, ramp(100, 0, 28)...), 0.1, 0, true},
		{"leak", ramp(100, 2, 30), 0.1, 0, false},
		{"slow leak within tolerance", ramp(100, 0.1, 30), 0.1, 0, true},
		{"falling is not a leak", ramp(200, -3, 30), 0.1, 0, true},
		{"absolute slack for small counts", ramp(10, 0.3, 30), 0.1, 10, true},
		{"too few samples", ramp(100, 0, 5), 0.1, 0, false},
	} {
		if got := Flat(c.samples, 0.2, c.rel, c.abs); got.Flat != c.want {
			t.Errorf("%s: %v, want flat=%v", c.name, got, c.want)
		}
	}
}

func TestUnexpectedLogLines(t *testing.T) {
	log := strings.Join([]string{
		`time=1 level=INFO msg=state peer=198.51.100.130 from=Idle to=Active`,
		`time=2 level=WARN msg="NOTIFICATION received" peer=198.51.100.130 notification="Cease / Administrative Shutdown: \"soak\""`,
		`time=3 level=WARN msg="NOTIFICATION received" peer=198.51.100.130 notification="Hold Timer Expired"`,
		`time=4 level=ERROR msg="kernel refused routes" err="context canceled"`,
		`time=5 level=INFO msg=state peer=198.51.100.131 peer=198.51.100.131 from=Active to=Idle`,
		`panic: runtime error: index out of range`,
	}, "\n")
	got := UnexpectedLogLines(log, soakAllowed)
	if len(got) != 4 || !strings.HasPrefix(got[0], "time=3") || !strings.HasPrefix(got[1], "time=4") ||
		!strings.HasPrefix(got[2], "time=5") || !strings.HasPrefix(got[3], "panic:") {
		t.Fatalf("got %q", got)
	}
	if got := UnexpectedLogLines(log, []*regexp.Regexp{regexp.MustCompile(`.`)}); len(got) != 1 {
		t.Fatalf("a repeated peer= is never allowed: got %q", got)
	}
}

func TestFIBDiff(t *testing.T) {
	p1, p2, p3 := netip.MustParsePrefix("198.18.0.1/32"), netip.MustParsePrefix("198.18.0.2/32"), netip.MustParsePrefix("198.18.0.3/32")
	a, b := netip.MustParseAddr("198.51.100.130"), netip.MustParseAddr("198.51.100.131")
	rib := []view.RIBEntry{
		{Prefix: p1, Paths: []view.Path{{Best: true, Multipath: true, NextHop: b}, {Multipath: true, NextHop: a}}},
		{Prefix: p2, Paths: []view.Path{{Best: true, NextHop: a}, {NextHop: b}}},
		{Prefix: p3, Paths: []view.Path{{NextHop: a}}}, // nothing selected: not in the kernel
	}
	want := ribWants(rib)
	if d := FIBDiff(want, map[netip.Prefix][]netip.Addr{p1: {a, b}, p2: {a}}); len(d) != 0 {
		t.Fatalf("equal sets differ: %q", d)
	}
	d := FIBDiff(want, map[netip.Prefix][]netip.Addr{p1: {a}, p3: {a}})
	if len(d) != 3 || !strings.Contains(d[0], "198.18.0.1/32") || !strings.Contains(d[1], "kernel has []") || !strings.Contains(d[2], "RIB wants []") {
		t.Fatalf("got %q", d)
	}
}
