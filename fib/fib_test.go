package fib

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Integration tests: each creates its own network namespace (see newNS),
// programs it through a FIB and checks the kernel with both our Dump and
// iproute2's view of it.

var modes = []struct {
	name string
	mode Mode
}{
	{"nexthop-objects", NextHopOn},
	{"inline", NextHopOff},
}

// setTo applies the difference between the kernel and want.
func setTo(tb testing.TB, f *FIB, want []Route) Result {
	tb.Helper()
	ctx := context.Background()
	cur, err := f.Dump(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	res, err := f.Apply(ctx, Diff(cur, want))
	if err != nil {
		tb.Fatalf("Apply: %+v %v", res, err)
	}
	return res
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func routesEqual(a, b []Route) bool {
	return slices.EqualFunc(a, b, func(x, y Route) bool {
		return x.Prefix == y.Prefix && slices.Equal(x.NextHops, y.NextHops)
	})
}

func canonicalRoutes(rs []Route) []Route {
	out := make([]Route, 0, len(rs))
	for _, r := range rs {
		out = append(out, Canonical(r))
	}
	SortRoutes(out)
	return out
}

// checkKernel holds Dump and `ip route show` to want, and in nexthop mode
// checks that exactly the objects want needs exist.
func checkKernel(t *testing.T, ns *testNS, f *FIB, want []Route) {
	t.Helper()
	checkRoutes(t, ns, f, want)
	checkObjects(t, ns, f, canonicalRoutes(want))
}

// checkRoutes holds Dump and `ip route show` to want.
func checkRoutes(t *testing.T, ns *testNS, f *FIB, want []Route) {
	t.Helper()
	want = canonicalRoutes(want)
	got, err := f.Dump(testCtx(t))
	if err != nil {
		t.Fatalf("Dump: %v", err)
	}
	if !routesEqual(got, want) {
		t.Errorf("Dump =\n  %v\nwant\n  %v", got, want)
	}
	if ip := ns.ipRoutes(t, f.cfg.Table, strconv.Itoa(int(f.cfg.Protocol)), f.cfg.Metric); !routesEqual(ip, want) {
		t.Errorf("ip route show =\n  %v\nwant\n  %v", ip, want)
	}
}

// checkObjects compares our kernel nexthop objects with what the routes
// need: one per gateway, one per distinct multipath set, in our id range.
func checkObjects(t *testing.T, ns *testNS, f *FIB, want []Route) {
	t.Helper()
	wantSingles, wantGroups := map[netip.Addr]bool{}, map[string]bool{}
	if f.useNH {
		for _, r := range want {
			for _, h := range r.NextHops {
				wantSingles[h.Addr] = true
			}
			if len(r.NextHops) > 1 {
				wantGroups[fmt.Sprint(r.NextHops)] = true
			}
		}
	}
	singles, groups := 0, 0
	proto := strconv.Itoa(int(f.cfg.Protocol))
	for _, n := range ns.ipNexthops(t) {
		if n.Protocol != proto && !(proto == "186" && n.Protocol == "bgp") {
			continue
		}
		lo, hi := f.cfg.NextHopIDBase, f.cfg.NextHopIDBase+f.cfg.NextHopIDCount-1
		if n.ID < lo || n.ID > hi {
			continue
		}
		if len(n.Group) > 0 {
			groups++
			continue
		}
		singles++
		if !wantSingles[ipGateway(t, n.Gateway, n.Dev)] {
			t.Errorf("nexthop object %d via %q is not needed", n.ID, n.Gateway)
		}
	}
	if singles != len(wantSingles) || groups != len(wantGroups) {
		t.Errorf("kernel has %d single and %d group objects of ours, want %d and %d:\n%s",
			singles, groups, len(wantSingles), len(wantGroups), ns.ip(t, "nexthop"))
	}
	if tracked := f.objectsInKernel(); f.useNH && tracked != singles+groups {
		t.Errorf("FIB tracks %d objects in the kernel, kernel has %d", tracked, singles+groups)
	}
}

// sequenceSteps are the desired states TestApplySequence goes through.
var sequenceSteps = []struct {
	name    string
	desired []Route
}{
	{"add", []Route{
		route("203.0.113.1/32", "198.51.100.2"),
		route("2001:db8:100::1/128", "2001:db8::2"),
		route("203.0.113.5/32", "2001:db8::2"), // IPv4 over an IPv6 next hop, RFC 8950
	}},
	{"ecmp add", []Route{
		route("203.0.113.1/32", "198.51.100.2"),
		route("2001:db8:100::1/128", "2001:db8::2"),
		route("203.0.113.5/32", "2001:db8::2"),
		route("203.0.113.2/32", "198.51.100.2", "198.51.100.3"),
		route("203.0.113.3/32", "198.51.100.3", "198.51.100.2"),
		route("203.0.113.6/32", "198.51.100.2", "2001:db8::3"),
		route("2001:db8:100::2/128", "2001:db8::2", "2001:db8::3"),
	}},
	{"weight change", []Route{
		route("203.0.113.1/32", "198.51.100.2"),
		route("2001:db8:100::1/128", "2001:db8::2"),
		route("203.0.113.5/32", "2001:db8::2"),
		route("203.0.113.2/32", "198.51.100.2*1000", "198.51.100.3*3000"),
		route("203.0.113.3/32", "198.51.100.3", "198.51.100.2"),
		route("203.0.113.6/32", "198.51.100.2", "2001:db8::3"),
		route("2001:db8:100::2/128", "2001:db8::2*1", "2001:db8::3*256"),
	}},
	{"next hop removal", []Route{
		route("203.0.113.1/32", "198.51.100.2"),
		route("2001:db8:100::1/128", "2001:db8::2"),
		route("203.0.113.5/32", "2001:db8::2"),
		route("203.0.113.2/32", "198.51.100.2*1000", "198.51.100.3*3000"),
		route("203.0.113.3/32", "198.51.100.3"),
		route("203.0.113.6/32", "198.51.100.2"),
		route("2001:db8:100::2/128", "2001:db8::3"),
	}},
	{"replace", []Route{
		route("203.0.113.1/32", "198.51.100.4"),
		route("2001:db8:100::1/128", "2001:db8::4"),
		route("203.0.113.5/32", "2001:db8::2"),
		route("203.0.113.2/32", "198.51.100.2*1000", "198.51.100.3*3000"),
		route("203.0.113.3/32", "198.51.100.3"),
		route("203.0.113.6/32", "198.51.100.2"),
		route("2001:db8:100::2/128", "2001:db8::3"),
	}},
	{"delete", []Route{
		route("203.0.113.1/32", "198.51.100.4"),
		route("203.0.113.3/32", "198.51.100.3"),
		route("2001:db8:100::2/128", "2001:db8::3"),
	}},
	{"delete all", nil},
}

func TestApplySequence(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ns := newNS(t)
			f := ns.open(t, Config{NextHopObjects: m.mode})
			if f.NextHopObjects() != (m.mode == NextHopOn) {
				t.Fatalf("NextHopObjects() = %v in mode %v", f.NextHopObjects(), m.mode)
			}
			ctx := testCtx(t)
			for _, s := range sequenceSteps {
				current, err := f.Dump(ctx)
				if err != nil {
					t.Fatal(err)
				}
				changes := Diff(current, s.desired)
				want := expectedResult(current, changes)
				res, err := f.Apply(ctx, changes)
				if err != nil || len(res.Failed) > 0 {
					t.Fatalf("%s: Apply: %v %v", s.name, err, res.Failed)
				}
				if res.Added != want.Added || res.Replaced != want.Replaced || res.Deleted != want.Deleted {
					t.Errorf("%s: result %+v, want %+v", s.name, res, want)
				}
				checkKernel(t, ns, f, s.desired)
				if again, _ := f.Dump(ctx); len(Diff(again, s.desired)) != 0 {
					t.Errorf("%s: the kernel still differs from the desired state", s.name)
				}
			}
		})
	}
}

func expectedResult(current []Route, changes []Change) Result {
	var r Result
	for _, c := range changes {
		had := slices.ContainsFunc(current, func(x Route) bool { return x.Prefix == c.Prefix })
		switch {
		case c.Delete():
			r.Deleted++
		case had:
			r.Replaced++
		default:
			r.Added++
		}
	}
	return r
}

func TestApplyFailuresAreIsolated(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ns := newNS(t)
			// 2001:db8:ff::/48 is reachable only through a gateway, so
			// addresses in it are not on-link gateways.
			ns.ip(t, "-6", "route", "add", "2001:db8:ff::/48", "via", "2001:db8::2")
			f := ns.open(t, Config{NextHopObjects: m.mode})
			ctx := testCtx(t)
			before := []Route{route("203.0.113.200/32", "198.51.100.2")}
			if _, err := f.Apply(ctx, Diff(nil, before)); err != nil {
				t.Fatal(err)
			}
			var changes []Change
			var good []Route
			for i := range 50 {
				r := route(fmt.Sprintf("203.0.113.%d/32", i), "198.51.100.2", "198.51.100.3")
				good = append(good, r)
				changes = append(changes, Change(r))
			}
			bad := []Change{
				change("203.0.113.100/32", "203.0.113.254"),     // unreachable
				change("2001:db8:100::9/128", "2001:db8:ff::1"), // not on-link
				change("2001:db8:100::8/128", "198.51.100.2"),   // wrong family
				change("203.0.113.200/32", "203.0.113.254"),     // failed replace
			}
			for i, b := range bad { // spread through the batch
				changes = slices.Insert(changes, 10*i+5, b)
			}
			// One bad member never freezes a route: it is installed with
			// the other.
			changes = append(changes, change("203.0.113.101/32", "198.51.100.2", "203.0.113.254"))
			good = append(good, route("203.0.113.101/32", "198.51.100.2"))
			changes = append(changes, Change{Prefix: mustPrefix("203.0.113.99/32")}) // absent: not a failure
			res, err := f.Apply(ctx, changes)
			if !errors.Is(err, ErrPartial) {
				t.Fatalf("Apply error %v, want ErrPartial", err)
			}
			if res.Added != 51 || res.Replaced != 0 || res.Deleted != 0 || len(res.Failed) != len(bad) {
				t.Errorf("result %+v", res)
			}
			wantErr := []error{unix.ENETUNREACH, ErrGatewayNotOnLink, ErrInvalidRoute, unix.ENETUNREACH}
			for i, fl := range res.Failed {
				if fl.Change.Prefix != bad[i].Prefix {
					t.Errorf("failure %d is %v, want %v", i, fl.Change.Prefix, bad[i].Prefix)
					continue
				}
				if !errors.Is(fl.Err, wantErr[i]) {
					t.Errorf("failure %v: %v, want %v", fl.Change.Prefix, fl.Err, wantErr[i])
				}
			}
			if len(res.Degraded) != 1 || res.Degraded[0].Addr != mustAddr("203.0.113.254") || res.Degraded[0].Routes != 1 {
				t.Errorf("degraded %+v, want 203.0.113.254 left out of 1 route", res.Degraded)
			}
			// The failed replace does not leave the old route (through a
			// gateway the change withdrew) behind.
			checkRoutes(t, ns, f, good)
			if st := f.Stats(); st.Unusable != 3 || st.Degraded != 2 {
				t.Errorf("stats %+v: want 3 unusable routes and 2 unusable gateways", st)
			}
		})
	}
}

// TestReceiveBufferOverrun shrinks the receive buffer until the kernel
// drops answers, and checks that the replay still reports every outcome.
func TestReceiveBufferOverrun(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ns := newNS(t)
			f := ns.open(t, Config{NextHopObjects: m.mode, ReceiveBuffer: 1, BatchSize: 4096})
			ctx := testCtx(t)
			var changes []Change
			var want []Route
			var wantFailed []netip.Prefix
			for i := range 900 {
				p := netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x01, 14: byte(i >> 8), 15: byte(i)}), 128)
				switch i % 3 {
				case 0: // answered: ESRCH, not a failure
					changes = append(changes, Change{Prefix: p})
				case 1:
					changes = append(changes, change(p.String(), "2001:db8::2"))
					want = append(want, route(p.String(), "2001:db8::2"))
				case 2: // answered: a failure (inline mode only)
					if m.mode == NextHopOff {
						changes = append(changes, change(p.String(), "2001:db8:ff::1"))
						wantFailed = append(wantFailed, p)
					}
				}
			}
			res, err := f.Apply(ctx, changes)
			if len(wantFailed) == 0 && err != nil || len(wantFailed) > 0 && !errors.Is(err, ErrPartial) {
				t.Fatalf("Apply: %v", err)
			}
			if f.overruns == 0 {
				t.Fatalf("no receive buffer overrun: the test did not test the replay")
			}
			var failed []netip.Prefix
			for _, fl := range res.Failed {
				failed = append(failed, fl.Change.Prefix)
			}
			if !slices.Equal(failed, wantFailed) || res.Added != len(want) || res.Deleted != 0 {
				t.Errorf("after %d overruns: added %d deleted %d, %d failed; want %d added, %d failed",
					f.overruns, res.Added, res.Deleted, len(failed), len(want), len(wantFailed))
			}
			checkKernel(t, ns, f, want)
		})
	}
}

func TestRepeatedPrefixInOneApply(t *testing.T) {
	ns := newNS(t)
	f := ns.open(t, Config{NextHopObjects: NextHopOn})
	ctx := testCtx(t)
	res, err := f.Apply(ctx, []Change{
		change("203.0.113.1/32", "198.51.100.2"),
		change("203.0.113.1/32", "198.51.100.3"),
		change("203.0.113.2/32", "198.51.100.4"),
		change("203.0.113.1/32", "198.51.100.2", "198.51.100.3"),
		{Prefix: mustPrefix("203.0.113.2/32")},
		change("203.0.113.3/32", "203.0.113.254"), // fails
		change("203.0.113.3/32", "198.51.100.5"),
	})
	if !errors.Is(err, ErrPartial) || len(res.Failed) != 1 {
		t.Fatalf("Apply: %+v %v", res, err)
	}
	checkKernel(t, ns, f, []Route{
		route("203.0.113.1/32", "198.51.100.2", "198.51.100.3"),
		route("203.0.113.3/32", "198.51.100.5"),
	})
}

func TestTableMetricProtocol(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			ns := newNS(t)
			// Routes that are not ours: another protocol in our table, and our
			// protocol with another metric.
			ns.ip(t, "route", "add", "203.0.113.60/32", "via", "198.51.100.2", "table", "100", "proto", "static", "metric", "50")
			ns.ip(t, "route", "add", "203.0.113.61/32", "via", "198.51.100.2", "table", "100", "proto", "200", "metric", "99")
			cfg := Config{NextHopObjects: m.mode, Table: 100, Metric: 50, Protocol: 200, NextHopIDBase: 5000, NextHopIDCount: 100}
			f := ns.open(t, cfg)
			want := []Route{
				route("203.0.113.1/32", "198.51.100.2", "198.51.100.3"),
				route("2001:db8:100::1/128", "2001:db8::2"),
			}
			setTo(t, f, want)
			checkKernel(t, ns, f, want)
			if main := ns.ipRoutes(t, 254, "200", 0); len(main) != 0 {
				t.Errorf("routes in the main table: %v", main)
			}
			if out := ns.ip(t, "route", "show", "table", "100", "203.0.113.1/32"); !containsAll(out, "proto 200", "metric 50") {
				t.Errorf("ip route: %q", out)
			}
			setTo(t, f, nil)
			checkKernel(t, ns, f, nil)
			out := ns.ip(t, "route", "show", "table", "100")
			if !containsAll(out, "203.0.113.60", "203.0.113.61") {
				t.Errorf("routes that are not ours were touched:\n%s", out)
			}
		})
	}
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}
