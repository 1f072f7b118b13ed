package lab

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Route is a kernel route as `ip -j route` reports it. Single-path routes
// have one NextHop; ECMP routes (RTA_MULTIPATH or a nexthop group, which the
// kernel dumps resolved) have several, sorted by gateway.
type Route struct {
	Dst      netip.Prefix
	Type     string // "unicast", "blackhole", "unreachable", ...
	Table    string // "main", "local" or a number
	Proto    string // "bgp", "bird", "zebra", "kernel", a number ...
	Metric   int
	NHID     int // nexthop object id, 0 without one
	NextHops []NextHop
}

// NextHop is one path of a route.
type NextHop struct {
	Gateway netip.Addr // invalid for a directly connected route
	Dev     string
	Weight  int // 1 unless weighted ECMP
}

// Gateways returns the next hops' gateways in order.
func (r Route) Gateways() []netip.Addr {
	gws := make([]netip.Addr, 0, len(r.NextHops))
	for _, nh := range r.NextHops {
		gws = append(gws, nh.Gateway)
	}
	return gws
}

func (r Route) String() string {
	var b strings.Builder
	b.WriteString(r.Dst.String())
	for _, nh := range r.NextHops {
		fmt.Fprintf(&b, " via %s dev %s", nh.Gateway, nh.Dev)
		if nh.Weight != 1 {
			fmt.Fprintf(&b, " weight %d", nh.Weight)
		}
	}
	fmt.Fprintf(&b, " proto %s table %s metric %d", r.Proto, r.Table, r.Metric)
	if r.Type != "unicast" {
		b.WriteString(" type " + r.Type)
	}
	return b.String()
}

// RouteQuery selects kernel routes.
type RouteQuery struct {
	Family int    // 4, 6, or 0 for both
	Table  string // "" is main; "all" is every table
	Proto  string // "" is any; names from /etc/iproute2/rt_protos ("bgp" is 186) or numbers
}

// Routes reads the kernel routing table, IPv4 then IPv6, each sorted by
// destination.
func (n *Netns) Routes(ctx context.Context, q RouteQuery) ([]Route, error) {
	var all []Route
	for _, fam := range []int{4, 6} {
		if q.Family != 0 && q.Family != fam {
			continue
		}
		args := []string{"-j", fmt.Sprintf("-%d", fam), "route", "show"}
		if q.Table != "" {
			args = append(args, "table", q.Table)
		}
		if q.Proto != "" {
			args = append(args, "proto", q.Proto)
		}
		out, err := n.IPOutput(ctx, args...)
		if err != nil {
			return nil, err
		}
		rs, err := ParseRoutes(out, fam, q)
		if err != nil {
			return nil, fmt.Errorf("lab: routes in %s: %w", n.Name, err)
		}
		all = append(all, rs...)
	}
	return all, nil
}

// WaitRoutes polls the kernel table until cond accepts it, and returns the
// routes that satisfied it. On timeout the error shows the last table.
func (n *Netns) WaitRoutes(ctx context.Context, q RouteQuery, cond func([]Route) bool) ([]Route, error) {
	return n.WaitRoutesEvery(ctx, 25*time.Millisecond, q, cond)
}

// WaitRoutesEvery is WaitRoutes reading the table every interval, for a
// wait whose duration is a figure.
func (n *Netns) WaitRoutesEvery(ctx context.Context, interval time.Duration, q RouteQuery, cond func([]Route) bool) ([]Route, error) {
	var last []Route
	err := Poll(ctx, interval, func() (bool, error) {
		rs, err := n.Routes(ctx, q)
		if err != nil {
			return false, err
		}
		last = rs
		return cond(rs), nil
	})
	if err != nil && last == nil {
		// The wait ended before a read finished (a busy machine, a short
		// deadline): read once more, so the error shows the table.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		last, _ = n.Routes(rctx, q)
		cancel()
	}
	if err != nil {
		return last, fmt.Errorf("lab: waiting for routes in %s: %w; last table:\n%s", n.Name, err, FormatRoutes(last))
	}
	return last, nil
}

// FormatRoutes renders routes one per line, for failure messages.
func FormatRoutes(rs []Route) string {
	if len(rs) == 0 {
		return "(no routes)"
	}
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	return b.String()
}

type jsonNextHop struct {
	Gateway string `json:"gateway"`
	Dev     string `json:"dev"`
	Weight  int    `json:"weight"`
}

type jsonRoute struct {
	Dst      string        `json:"dst"`
	Type     string        `json:"type"`
	Table    string        `json:"table"`
	Protocol string        `json:"protocol"`
	Metric   int           `json:"metric"`
	NHID     int           `json:"nhid"`
	Gateway  string        `json:"gateway"`
	Dev      string        `json:"dev"`
	NextHops []jsonNextHop `json:"nexthops"`
}

// ParseRoutes decodes `ip -j -4|-6 route show` output of one family. ip
// leaves out the fields the query fixed (the protocol when filtering by
// it, the table when it is main) and the prefix length of host routes; q
// fills them back in.
func ParseRoutes(out []byte, family int, q RouteQuery) ([]Route, error) {
	var raw []jsonRoute
	if err := json.Unmarshal(out, &raw); err != nil {
		return nil, fmt.Errorf("parse ip -j route: %w", err)
	}
	routes := make([]Route, 0, len(raw))
	for _, j := range raw {
		r, err := j.route(family, q)
		if err != nil {
			return nil, err
		}
		routes = append(routes, r)
	}
	slices.SortFunc(routes, func(a, b Route) int {
		return cmp.Or(a.Dst.Addr().Compare(b.Dst.Addr()), cmp.Compare(a.Dst.Bits(), b.Dst.Bits()),
			strings.Compare(a.Table, b.Table), cmp.Compare(a.Metric, b.Metric))
	})
	return routes, nil
}

func (j jsonRoute) route(family int, q RouteQuery) (Route, error) {
	dst, err := parseDst(j.Dst, family)
	if err != nil {
		return Route{}, err
	}
	r := Route{Dst: dst, Type: j.Type, Table: j.Table, Proto: j.Protocol, Metric: j.Metric, NHID: j.NHID}
	if r.Type == "" {
		r.Type = "unicast"
	}
	if r.Table == "" {
		r.Table = cmp.Or(q.Table, "main")
		if r.Table == "all" {
			r.Table = "main" // ip names every table but main in an "all" dump
		}
	}
	if r.Proto == "" {
		r.Proto = cmp.Or(q.Proto, "boot") // ip omits the default protocol
	}
	hops := j.NextHops
	if len(hops) == 0 && (j.Gateway != "" || j.Dev != "") {
		hops = []jsonNextHop{{Gateway: j.Gateway, Dev: j.Dev}}
	}
	for _, h := range hops {
		nh := NextHop{Dev: h.Dev, Weight: max(h.Weight, 1)}
		if h.Gateway != "" {
			if nh.Gateway, err = netip.ParseAddr(h.Gateway); err != nil {
				return Route{}, fmt.Errorf("route %s: gateway: %w", j.Dst, err)
			}
		}
		r.NextHops = append(r.NextHops, nh)
	}
	slices.SortFunc(r.NextHops, func(a, b NextHop) int {
		return cmp.Or(a.Gateway.Compare(b.Gateway), strings.Compare(a.Dev, b.Dev))
	})
	return r, nil
}

func parseDst(s string, family int) (netip.Prefix, error) {
	if s == "default" {
		if family == 6 {
			return netip.MustParsePrefix("::/0"), nil
		}
		return netip.MustParsePrefix("0.0.0.0/0"), nil
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("route destination: %w", err)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("route destination: %w", err)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
