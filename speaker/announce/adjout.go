package announce

import (
	"net/netip"
	"slices"

	"github.com/bgplb/bgplb/bgp/wire"
)

// path is what one prefix is announced with on one session: its attributes
// and next hop. It is comparable, so the diff is a struct comparison.
type path struct {
	attrs   attrsHandle
	nextHop netip.Addr
}

// family is the address family of a prefix (unicast only).
func family(p netip.Prefix) wire.Family {
	if p.Addr().Is4() {
		return wire.IPv4Unicast
	}
	return wire.IPv6Unicast
}

// target is what resolving a route for one established session needs.
type target struct {
	families []wire.Family // negotiated
	// nh4 and nh6 are the next hops of IPv4 and IPv6 routes; invalid when
	// the session cannot carry routes of that family.
	nh4, nh6 netip.Addr
	// why4 and why6 say why, when nh4 or nh6 is invalid.
	why4, why6 string
}

// newTarget picks the next hops for a session whose local address is local:
// the configured ones, else the local address for its own family. An IPv4
// route may take an IPv6 next hop when the peer accepts RFC 8950 extended
// next hops for IPv4 unicast (extNH4).
func newTarget(families []wire.Family, local, cfg4, cfg6 netip.Addr, extNH4 bool) target {
	t := target{families: families, nh4: cfg4, nh6: cfg6}
	local = local.Unmap()
	if !t.nh4.IsValid() && local.Is4() {
		t.nh4 = local
	}
	if !t.nh6.IsValid() && local.Is6() {
		t.nh6 = local
	}
	if !t.nh4.IsValid() && extNH4 {
		t.nh4 = t.nh6
	}
	if !t.nh4.IsValid() {
		t.why4 = "IPv4 route over an IPv6 session needs NextHop4 (or an extended next hop capability)"
	}
	if !t.nh6.IsValid() {
		t.why6 = "IPv6 route over an IPv4 session needs NextHop6"
	}
	return t
}

// resolve returns the path for w on this session, or why it cannot be sent.
func (t *target) resolve(w *wanted) (path, string) {
	f := family(w.prefix)
	if !slices.Contains(t.families, f) {
		return path{}, f.String() + " not negotiated with this peer"
	}
	if f == wire.IPv4Unicast {
		if !t.nh4.IsValid() {
			return path{}, t.why4
		}
		return path{w.attrs, t.nh4}, ""
	}
	if !t.nh6.IsValid() {
		return path{}, t.why6
	}
	return path{w.attrs, t.nh6}, ""
}

// outEntry is one prefix of the Adj-RIB-Out.
type outEntry struct {
	path path
	mark uint32 // the diff that last wanted it
	// since is when this path was sent (unix nanoseconds), for the view.
	since int64
}

// adjRIBOut is what one session has been sent: every prefix announced and
// not withdrawn since, with its path. It lives as long as the session.
type adjRIBOut struct {
	routes   map[netip.Prefix]outEntry
	mark     uint32
	external bool // the session's, for the view

	// The last diff's input and skipped routes, for the fast path.
	last        []wanted
	lastSkipped []SkippedRoute
	lastTarget  target
	lastValid   bool
}

func newAdjRIBOut() *adjRIBOut { return &adjRIBOut{routes: make(map[netip.Prefix]outEntry)} }

// announcement is one prefix to (re)announce.
type announcement struct {
	prefix netip.Prefix
	path   path
}

// changes is the difference between a desired set and an Adj-RIB-Out.
type changes struct {
	announce []announcement
	withdraw []netip.Prefix
	skipped  []SkippedRoute
}

func (c *changes) reset() {
	c.announce, c.withdraw, c.skipped = c.announce[:0], c.withdraw[:0], c.skipped[:0]
}

func (c *changes) empty() bool { return len(c.announce) == 0 && len(c.withdraw) == 0 }

// diff makes the Adj-RIB-Out hold exactly the wanted routes that t can
// carry and records in c what changed, at time now. wants must hold each
// prefix once (normalize sees to it).
//
// A planner re-plans often and usually lists the same prefixes in the same
// order, so when wants has the prefixes of the last diff, in order, and the
// target is the same, only routes whose attributes changed are looked at:
// no route can have appeared, gone, or changed whether it can be sent.
func (o *adjRIBOut) diff(wants []wanted, t *target, now int64, c *changes) {
	skipped := len(c.skipped)
	if !o.diffSameOrder(wants, t, now, c) {
		o.diffAll(wants, t, now, c)
	}
	o.last = append(o.last[:0], wants...)
	o.lastSkipped = append(o.lastSkipped[:0], c.skipped[skipped:]...)
	o.lastTarget, o.lastValid = *t, true
}

// diffSameOrder is the fast path of diff; false if it does not apply.
func (o *adjRIBOut) diffSameOrder(wants []wanted, t *target, now int64, c *changes) bool {
	if !o.lastValid || len(wants) != len(o.last) || !o.lastTarget.equal(t) {
		return false
	}
	for i := range wants {
		if wants[i].prefix != o.last[i].prefix {
			return false
		}
	}
	c.skipped = append(c.skipped, o.lastSkipped...)
	for i := range wants {
		w := &wants[i]
		if w.attrs == o.last[i].attrs {
			continue
		}
		p, why := t.resolve(w)
		if why != "" {
			continue // skipped last time too: that depends on the family alone
		}
		e := o.routes[w.prefix]
		e.path, e.since = p, now
		o.routes[w.prefix] = e
		c.announce = append(c.announce, announcement{w.prefix, p})
	}
	return true
}

// diffAll is the general diff. It marks the entries it meets instead of
// building a set of the wanted prefixes, so it costs a map lookup and
// store per route and allocates nothing but new entries.
func (o *adjRIBOut) diffAll(wants []wanted, t *target, now int64, c *changes) {
	o.mark++
	for i := range wants {
		w := &wants[i]
		p, why := t.resolve(w)
		if why != "" {
			c.skipped = append(c.skipped, SkippedRoute{Prefix: w.prefix, Reason: why})
			continue
		}
		e, ok := o.routes[w.prefix]
		if !ok || e.path != p {
			c.announce = append(c.announce, announcement{w.prefix, p})
			e = outEntry{path: p, since: now}
		}
		e.mark = o.mark
		o.routes[w.prefix] = e
	}
	for pfx, e := range o.routes {
		if e.mark != o.mark {
			c.withdraw = append(c.withdraw, pfx)
			delete(o.routes, pfx)
		}
	}
}

// equal reports whether two targets resolve every route the same way.
func (t *target) equal(u *target) bool {
	return t.nh4 == u.nh4 && t.nh6 == u.nh6 && t.why4 == u.why4 && t.why6 == u.why6 && slices.Equal(t.families, u.families)
}

// resendAll makes the next diff announce every prefix again (ROUTE-REFRESH).
func (o *adjRIBOut) resendAll() {
	o.lastValid = false
	for p, e := range o.routes {
		e.path = path{}
		o.routes[p] = e
	}
}

// forget removes prefixes from the Adj-RIB-Out (announcements that could not
// be encoded and were withdrawn instead).
func (o *adjRIBOut) forget(ps []netip.Prefix) {
	o.lastValid = false
	for _, p := range ps {
		delete(o.routes, p)
	}
}
