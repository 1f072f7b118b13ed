package fib

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"
)

// An IPv6 link-local gateway means nothing without its interface: every
// LAN has fe80::/64, and two nodes on two LANs may even share an address.
// Such a gateway therefore carries its interface as the address's zone
// (fe80::2%eth1), the zone is part of the gateway's identity (hop sets and
// objects are interned by address and zone), and it is written as the
// route's RTA_OIF, the multipath entry's rtnh_ifindex or the object's
// NHA_OIF; it is never looked up in the routing table, where the first
// fe80::/64 would win. Reading back, the interface index the kernel reports
// is turned into the zone again by a table of the namespace's links,
// refreshed whenever the whole kernel state is compared (link changes lead
// to that), so that a route read back equals the route desired.

// needsZone reports whether a gateway is only meaningful with an
// interface: an IPv6 link-local unicast address.
func needsZone(a netip.Addr) bool {
	return a.Is6() && !a.Is4In6() && a.IsLinkLocalUnicast()
}

// anyZoned reports whether a hop set has a gateway with an interface.
func anyZoned(hops []NextHop) bool {
	for _, h := range hops {
		if h.Addr.Zone() != "" {
			return true
		}
	}
	return false
}

// maxZone is the longest zone taken: an interface name (IFNAMSIZ less the
// terminating NUL) or a decimal index.
const maxZone = unix.IFNAMSIZ - 1

// validZone reports whether a zone can name an interface, by the rules
// Linux has for interface names (dev_valid_name): the kernel would cut a
// name with a NUL short and read back another.
func validZone(z string) bool {
	if z == "" || len(z) > maxZone || z == "." || z == ".." {
		return false
	}
	for i := 0; i < len(z); i++ {
		if c := z[i]; c == 0 || c == '/' || c == ':' || c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// rtextFilterSkipStats asks the kernel to leave the statistics out of link
// messages (RTEXT_FILTER_SKIP_STATS), most of their size.
const rtextFilterSkipStats = 1 << 3

// kernelLink is an interface as RTM_NEWLINK reports it.
type kernelLink struct {
	index int32
	name  string
	up    bool
}

// linkTable names the namespace's interfaces by index. It is immutable
// once built: the monitor's reader goroutine reads it without the FIB's
// lock, and a refresh replaces it whole.
type linkTable struct {
	names map[int32]string
	index map[string]int32
}

func newLinkTable(links []kernelLink) *linkTable {
	t := &linkTable{names: make(map[int32]string, len(links)), index: make(map[string]int32, len(links))}
	for _, l := range links {
		t.names[l.index] = l.name
		t.index[l.name] = l.index
	}
	return t
}

// zone gives a gateway read from the kernel the zone of its interface
// oif, when it is a gateway that needs one; an interface the table does
// not know yet is named by its index. A nil table leaves a unchanged.
func (t *linkTable) zone(a netip.Addr, oif int32) netip.Addr {
	if t == nil || oif <= 0 || !needsZone(a) {
		return a
	}
	if name, ok := t.names[oif]; ok {
		return a.WithZone(name)
	}
	return a.WithZone(strconv.Itoa(int(oif)))
}

// named rewrites a numeric zone as the name of its interface, the form
// reading back gives, so that a gateway given by index compares equal.
func (t *linkTable) named(a netip.Addr) netip.Addr {
	z := a.Zone()
	if t == nil || z == "" {
		return a
	}
	if _, isName := t.index[z]; isName {
		return a
	}
	if i, err := strconv.ParseUint(z, 10, 31); err == nil {
		if name, ok := t.names[int32(i)]; ok {
			return a.WithZone(name)
		}
	}
	return a
}

// namedHops rewrites numeric zones of canonical hops in place, and
// reports whether it changed any (the order may then be another).
func (t *linkTable) namedHops(hops []NextHop) bool {
	changed := false
	for i := range hops {
		if z := hops[i].Addr.Zone(); z != "" && z[0] >= '0' && z[0] <= '9' {
			a := t.named(hops[i].Addr)
			changed = changed || a != hops[i].Addr
			hops[i].Addr = a
		}
	}
	return changed
}

// parseLink reads an RTM_NEWLINK (struct ifinfomsg, then attributes).
func parseLink(data []byte) (kernelLink, error) {
	var l kernelLink
	if len(data) < unix.SizeofIfInfomsg {
		return l, fmt.Errorf("%w: short ifinfomsg", errMalformed)
	}
	l.index = int32(ne.Uint32(data[4:]))
	l.up = ne.Uint32(data[8:])&unix.IFF_UP != 0
	err := walkAttrs(data[unix.SizeofIfInfomsg:], func(typ uint16, v []byte) {
		if typ == unix.IFLA_IFNAME {
			l.name = cString(v)
		}
	})
	return l, err
}

// getLink appends an RTM_GETLINK: a dump of every link when index and
// name are empty, else the link of that index or name.
func (m *msgBuf) getLink(seq uint32, index int32, name string) {
	flags := uint16(unix.NLM_F_REQUEST)
	if index == 0 && name == "" {
		flags |= unix.NLM_F_DUMP
	}
	off := m.begin(unix.RTM_GETLINK, flags, seq)
	ifi := m.grow(unix.SizeofIfInfomsg)
	m.b[ifi] = unix.AF_UNSPEC
	ne.PutUint32(m.b[ifi+4:], uint32(index))
	if name != "" {
		copy(m.b[m.attr(unix.IFLA_IFNAME, len(name)+1):], name)
	}
	m.attrU32(unix.IFLA_EXT_MASK, rtextFilterSkipStats)
	m.end(off)
}

// refreshLinks reads the namespace's links into the table that names
// the interfaces of gateways read back.
func (f *FIB) refreshLinks(ctx context.Context) error {
	var links []kernelLink
	var err error
	for try := 1; try <= dumpRetries; try++ {
		links = links[:0]
		var req msgBuf
		seq := f.c.nextSeq(1)
		req.getLink(seq, 0, "")
		err = f.c.dump(ctx, req.b, seq, func(m nlMsg) error {
			if m.typ != unix.RTM_NEWLINK {
				return nil
			}
			l, err := parseLink(m.data)
			if err == nil && l.name != "" {
				links = append(links, l)
			}
			return err
		})
		if !errors.Is(err, errDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("fib: dump links: %w", err)
	}
	f.links.Store(newLinkTable(links))
	return nil
}

// resolveZone finds the interface a link-local gateway's zone names, in
// the FIB's namespace, asking the kernel each time (a gateway is resolved
// when first used and on every full comparison, as other gateways are), so
// that a name never resolves to an interface that has since lost it. A
// zone is an interface name or, failing that, a decimal index. The
// interface must be up: the kernel refuses next hops on one that is not.
func (f *FIB) resolveZone(ctx context.Context, gw netip.Addr) (int32, error) {
	zone := gw.Zone()
	l, err := f.getLink(ctx, 0, zone)
	if errors.Is(err, unix.ENODEV) {
		if i, perr := strconv.ParseUint(zone, 10, 31); perr == nil && i > 0 {
			l, err = f.getLink(ctx, int32(i), "")
		}
	}
	switch {
	case errors.Is(err, unix.ENODEV):
		return 0, fmt.Errorf("%w: %v: no interface %q", ErrGatewayNotOnLink, gw, zone)
	case err != nil:
		return 0, err
	case !l.up:
		return 0, fmt.Errorf("%w: %v: interface %s is down", ErrGatewayNotOnLink, gw, l.name)
	}
	return l.index, nil
}

func (f *FIB) getLink(ctx context.Context, index int32, name string) (kernelLink, error) {
	var req msgBuf
	seq := f.c.nextSeq(1)
	req.getLink(seq, index, name)
	var l kernelLink
	err := f.c.request(ctx, "get link", req.b, seq, func(m nlMsg) error {
		if m.typ != unix.RTM_NEWLINK {
			return fmt.Errorf("%w: answer type %d to a link request", errMalformed, m.typ)
		}
		var err error
		l, err = parseLink(m.data)
		return err
	})
	return l, err
}
