package fib

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// testNS is a network namespace a test created: a veth pair with
// 198.51.100.1/24 and 2001:db8::1/64 on d0, so that gateways in those
// networks are on-link. Nothing in it reaches outside.
type testNS struct {
	name string
	path string
}

// newNS creates a uniquely named namespace and removes it when the test
// ends, also on failure. Tests that need it skip when not root.
func newNS(tb testing.TB) *testNS {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root to create network namespaces (CI runs as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		tb.Skip("needs iproute2's ip command")
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	ns := &testNS{name: "bgplbfib-" + hex.EncodeToString(b[:])}
	ns.path = "/run/netns/" + ns.name
	run(tb, "ip", "netns", "add", ns.name)
	tb.Cleanup(func() { ns.del(tb) })
	for _, args := range [][]string{
		{"link", "add", "d0", "type", "veth", "peer", "name", "d1"},
		// No IPv6 link-local addresses: they would appear a moment after
		// the links come up, and tests that count the resyncs of address
		// changes would count them.
		{"link", "set", "d0", "addrgenmode", "none"},
		{"link", "set", "d1", "addrgenmode", "none"},
		{"link", "set", "lo", "up"},
		{"link", "set", "d0", "up"},
		{"link", "set", "d1", "up"},
		{"addr", "add", "198.51.100.1/24", "dev", "d0"},
		{"addr", "add", "2001:db8::1/64", "dev", "d0", "nodad"},
	} {
		ns.ip(tb, args...)
	}
	ns.waitUp(tb, "d0", "d1")
	return ns
}

// waitUp waits for the carrier of links, which comes up in the background,
// so that its notification is not taken for a change made during the test.
func (ns *testNS) waitUp(tb testing.TB, devs ...string) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, dev := range devs {
		for !strings.Contains(ns.ip(tb, "-br", "link", "show", dev), " UP ") {
			if time.Now().After(deadline) {
				tb.Fatalf("veth %s did not come up", dev)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// del removes the namespace, with its links and routes, unless it is gone.
func (ns *testNS) del(tb testing.TB) {
	if _, err := os.Stat(ns.path); err != nil {
		return
	}
	if out, err := exec.Command("ip", "netns", "del", ns.name).CombinedOutput(); err != nil {
		tb.Errorf("ip netns del %s: %v: %s", ns.name, err, out)
	}
}

func run(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (ns *testNS) ip(tb testing.TB, args ...string) string {
	tb.Helper()
	return run(tb, "ip", append([]string{"-n", ns.name}, args...)...)
}

// open opens a FIB in the namespace and closes it when the test ends.
func (ns *testNS) open(tb testing.TB, cfg Config) *FIB {
	tb.Helper()
	cfg.NetNS = ns.path
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f, err := Open(ctx, cfg, nil)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { f.Close() })
	return f
}

// ipRoute is one route of `ip -j route show`.
type ipRoute struct {
	Dst      string  `json:"dst"`
	Gateway  string  `json:"gateway"`
	Via      *ipVia  `json:"via"`
	Dev      string  `json:"dev"`
	NHID     uint32  `json:"nhid"`
	Metric   uint32  `json:"metric"`
	Protocol string  `json:"protocol"`
	NextHops []ipHop `json:"nexthops"`
}

type ipVia struct {
	Host string `json:"host"`
}

type ipHop struct {
	Gateway string `json:"gateway"`
	Via     *ipVia `json:"via"`
	Dev     string `json:"dev"`
	Weight  uint32 `json:"weight"`
}

// ipRoutes returns what `ip route show table T proto P` lists with metric
// (both families; any metric when 0), as canonical Routes: the oracle the
// tests hold our Dump to.
func (ns *testNS) ipRoutes(tb testing.TB, table uint32, proto string, metric uint32) []Route {
	tb.Helper()
	var out []Route
	for _, fam := range []string{"-4", "-6"} {
		var rs []ipRoute
		js := ns.ip(tb, "-j", fam, "route", "show", "table", fmt.Sprint(table), "proto", proto)
		if err := json.Unmarshal([]byte(js), &rs); err != nil {
			tb.Fatalf("ip -j route: %v: %s", err, js)
		}
		for _, r := range rs {
			if metric != 0 && r.Metric != metric {
				continue
			}
			out = append(out, r.route(tb, fam == "-6"))
		}
	}
	SortRoutes(out)
	return out
}

func (r ipRoute) route(tb testing.TB, v6 bool) Route {
	tb.Helper()
	dst := r.Dst
	if !strings.Contains(dst, "/") {
		if v6 {
			dst += "/128"
		} else {
			dst += "/32"
		}
	}
	p, err := netip.ParsePrefix(dst)
	if err != nil {
		tb.Fatalf("ip route dst %q: %v", r.Dst, err)
	}
	hop := func(gw string, via *ipVia, dev string, w uint32) NextHop {
		if via != nil {
			gw = via.Host
		}
		return NextHop{Addr: ipGateway(tb, gw, dev), Weight: w}
	}
	var hops []NextHop
	if len(r.NextHops) > 0 {
		for _, h := range r.NextHops {
			hops = append(hops, hop(h.Gateway, h.Via, h.Dev, h.Weight))
		}
	} else if r.Gateway != "" || r.Via != nil {
		hops = append(hops, hop(r.Gateway, r.Via, r.Dev, 0))
	}
	return Canonical(Route{Prefix: p, NextHops: hops})
}

// ipGateway is the gateway iproute2 shows on device dev: a link-local one
// with dev as its zone, the way the FIB gives them.
func ipGateway(tb testing.TB, gw, dev string) netip.Addr {
	tb.Helper()
	a, err := netip.ParseAddr(gw)
	if err != nil {
		tb.Fatalf("ip gateway %q: %v", gw, err)
	}
	if needsZone(a) {
		a = a.WithZone(dev)
	}
	return a
}

// ipNexthop is one object of `ip -j nexthop show`.
type ipNexthop struct {
	ID       uint32 `json:"id"`
	Gateway  string `json:"gateway"`
	Dev      string `json:"dev"`
	Protocol string `json:"protocol"`
	Group    []struct {
		ID     uint32 `json:"id"`
		Weight uint32 `json:"weight"`
	} `json:"group"`
}

func (ns *testNS) ipNexthops(tb testing.TB) []ipNexthop {
	tb.Helper()
	js := ns.ip(tb, "-j", "nexthop", "show")
	var nhs []ipNexthop
	if strings.TrimSpace(js) == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(js), &nhs); err != nil {
		tb.Fatalf("ip -j nexthop: %v: %s", err, js)
	}
	return nhs
}
