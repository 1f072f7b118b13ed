package bench

import (
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// Flatness is the verdict on one sampled series of a soak.
type Flatness struct {
	First, Last float64 // means of the first and last thirds after warm-up
	Flat        bool
}

func (f Flatness) String() string {
	verdict := "flat"
	if !f.Flat {
		verdict = "GROWING"
	}
	return fmt.Sprintf("first third %.0f, last third %.0f: %s", f.First, f.Last, verdict)
}

// Flat judges a series sampled at a steady rate: the samples of the warm-up
// (the first warmup fraction) are dropped, and the mean of the last third
// of the rest may exceed the mean of the first third by at most rel
// (relative) plus abs (absolute, for small counts such as goroutines, where
// a few sessions caught mid-flap are noise). Only growth fails: a leak
// grows, and a series that falls is not one. Fewer than six samples after
// warm-up cannot tell and fail.
func Flat(samples []float64, warmup, rel, abs float64) Flatness {
	rest := samples[int(float64(len(samples))*warmup):]
	if len(rest) < 6 {
		return Flatness{}
	}
	third := len(rest) / 3
	mean := func(xs []float64) float64 {
		var s float64
		for _, x := range xs {
			s += x
		}
		return s / float64(len(xs))
	}
	f := Flatness{First: mean(rest[:third]), Last: mean(rest[len(rest)-third:])}
	f.Flat = f.Last <= f.First*(1+rel)+abs
	return f
}

// levelRE finds slog's text-handler level of a line.
var levelRE = regexp.MustCompile(`\blevel=(WARN|ERROR)\b`)

// UnexpectedLogLines returns the WARN and ERROR lines of a slog text log
// that no allow pattern matches, and, whatever their level, lines naming
// the peer twice (a logger With(peer) handed to code that adds peer= again)
// and panics and Go runtime errors, which are not slog lines.
func UnexpectedLogLines(log string, allow []*regexp.Regexp) []string {
	var out []string
	for line := range strings.SplitSeq(log, "\n") {
		bad := levelRE.MatchString(line) || strings.HasPrefix(line, "panic:") ||
			strings.HasPrefix(line, "fatal error:") || strings.Contains(line, "DATA RACE")
		if strings.Count(line, " peer=") > 1 {
			out = append(out, line)
			continue
		}
		if bad && !slices.ContainsFunc(allow, func(re *regexp.Regexp) bool { return re.MatchString(line) }) {
			out = append(out, line)
		}
	}
	return out
}

// FIBDiff compares the routes the RIB says should be in the kernel (prefix
// to the set of next hops of its best and multipath paths) with the
// kernel's, and describes each difference; none means equal.
func FIBDiff(want, have map[netip.Prefix][]netip.Addr) []string {
	var out []string
	keys := slices.SortedFunc(maps.Keys(mergeKeys(want, have)), func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	for _, p := range keys {
		w, h := sortedAddrs(want[p]), sortedAddrs(have[p])
		if !slices.Equal(w, h) {
			out = append(out, fmt.Sprintf("%v: RIB wants %v, kernel has %v", p, w, h))
		}
	}
	return out
}

func mergeKeys(a, b map[netip.Prefix][]netip.Addr) map[netip.Prefix]bool {
	m := make(map[netip.Prefix]bool, len(a)+len(b))
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return m
}

func sortedAddrs(as []netip.Addr) []netip.Addr {
	s := slices.Clone(as)
	slices.SortFunc(s, netip.Addr.Compare)
	return slices.Compact(s)
}
