package controller

// The L2 side of the Announced condition: the addresses the speakers
// report they own (ServiceAnnouncement status.l2) and the configuration
// that puts an address in L2 mode.

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"unicode"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

// l2Answer is one address a node owns in L2 mode (v1alpha1.L2Answer),
// parsed.
type l2Answer struct {
	Addr netip.Addr
	// Interfaces are those the node answers on; none when no interface
	// qualifies, and then the node owns the address but nobody hears it.
	Interfaces []string
	// LastError is why the node answers on no interface, if it does not.
	// (The report's since is not read: only the Lease holder's claim
	// counts, so nodes' clocks never decide.)
	LastError string
}

// claim is one node's l2Answer.
type claim struct {
	Node string
	l2Answer
}

// claims are the nodes' l2Answers that the holder of their address's
// Lease makes (holders: the node holding each address's Lease), sorted
// by address, then node, a node reported twice counting once (with the
// union of its interfaces). A node cut off from the API server cannot
// take back its claim, but it has lost the address to the node its Lease
// passed to (its speaker stops answering when its heartbeat is not
// renewed), and its claim must not come back when that node lets go in
// turn: only the holder's claim counts, whatever the claims' clocks say.
// An address whose Lease is missing or held by nobody has no owner.
func claims(anns []nodeAnnouncement, holders map[netip.Addr]string) []claim {
	var all []claim
	for _, a := range anns {
		for _, l := range a.L2 {
			if l.Addr.IsValid() && a.Node != "" && holders[l.Addr.Unmap().WithZone("")] == a.Node {
				all = append(all, claim{Node: a.Node, l2Answer: l})
			}
		}
	}
	slices.SortFunc(all, func(a, b claim) int { return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Node, b.Node)) })
	var out []claim
	for _, c := range all {
		if n := len(out); n > 0 && out[n-1].Addr == c.Addr && out[n-1].Node == c.Node {
			last := &out[n-1]
			last.Interfaces = append(slices.Clip(last.Interfaces), c.Interfaces...)
			last.LastError = cmp.Or(last.LastError, c.LastError)
			continue
		}
		out = append(out, c)
	}
	for i := range out {
		out[i].Interfaces = slices.Compact(slices.Sorted(slices.Values(out[i].Interfaces)))
	}
	return out
}

// addressOwners is one address answered for and the node answering (a
// list, for the message's sake: one Lease has one holder).
type addressOwners struct {
	Addr  netip.Addr
	Nodes []claim
}

// answering are the addresses some node answers for on some interface,
// sorted, each with its nodes sorted.
func answering(anns []nodeAnnouncement, holders map[netip.Addr]string) []addressOwners {
	var out []addressOwners
	for _, c := range claims(anns, holders) {
		if len(c.Interfaces) == 0 {
			continue
		}
		if len(out) == 0 || out[len(out)-1].Addr != c.Addr {
			out = append(out, addressOwners{Addr: c.Addr})
		}
		o := &out[len(out)-1]
		o.Nodes = append(o.Nodes, c)
	}
	return out
}

// message is "198.51.100.153 answered by node2 (ARP on eth0, eth1)".
func (o addressOwners) message() string {
	items := make([]string, len(o.Nodes))
	for i, n := range o.Nodes {
		names := make([]string, len(n.Interfaces))
		for k, ifc := range n.Interfaces {
			names[k] = l2Name(ifc)
		}
		items[i] = n.Node + " (" + l2Protocol(o.Addr) + " on " + joinLimited(names) + ")"
	}
	return o.Addr.String() + " answered by " + joinLimited(items)
}

// l2Name is an interface name as a message shows it: Linux lets a name
// hold commas, semicolons and parentheses, which would make the message
// unreadable by announcersOf, so they (and spaces, which the kernel
// refuses anyway) show as '?'.
func l2Name(name string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(",;()", r) || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, name)
}

// l2Protocol is how an address is answered for: ARP for IPv4, NDP for
// IPv6.
func l2Protocol(a netip.Addr) string {
	if a.Unmap().Is4() {
		return "ARP"
	}
	return "NDP"
}

// stuck are the holders' claims of an address answered on no interface,
// sorted by address, then node.
func stuck(anns []nodeAnnouncement, holders map[netip.Addr]string) []claim {
	var out []claim
	for _, c := range claims(anns, holders) {
		if len(c.Interfaces) == 0 {
			out = append(out, c)
		}
	}
	return out
}

// message is "node2 owns 198.51.100.153 but answers on no interface:
// <its lastError>".
func (s claim) stuckMessage() string {
	msg := s.Node + " owns " + s.Addr.String() + " but answers on no interface"
	if e := strings.Join(strings.Fields(s.LastError), " "); e != "" {
		msg += ": " + e
	}
	return msg
}

// modes sorts the Service's addresses by what the configuration in force
// does with them, where some L2AnnouncementPolicy is in force: l2 are the
// addresses an L2AnnouncementPolicy selects (the controller does not
// watch nodes, so node selectors are not checked, as for BGP); bgp is
// whether some address can be announced over BGP; why says, when neither
// holds for any address, what is missing for each; bgpWhy says what is
// missing for the addresses a BGPAnnouncementPolicy selects, when none
// of them can be announced (the BGP part of a pool in both modes).
func modes(f announceFacts) (l2 []netip.Addr, bgp bool, why, bgpWhy string) {
	var whys, bgpWhys []string
	add := func(s string) {
		if !slices.Contains(whys, s) {
			whys = append(whys, s)
		}
	}
	addBGP := func(s string) {
		add(s)
		if !slices.Contains(bgpWhys, s) {
			bgpWhys = append(bgpWhys, s)
		}
	}
	bgpInUse := len(f.Peers) > 0 || len(f.Advertisements) > 0
	for _, a := range f.Addresses {
		if a.Pool == "" {
			add(a.Addr.String() + " is in no LoadBalancerPool")
			continue
		}
		inL2 := len(lbmodel.L2Policies(f.L2Advertisements, a.Pool, a.PoolLabels)) > 0
		if inL2 {
			l2 = append(l2, a.Addr)
		}
		inBGP := slices.ContainsFunc(f.Advertisements, func(ad lbmodel.Advertisement) bool { return ad.SelectsPool(a.Pool, a.PoolLabels) })
		switch {
		case inBGP && len(f.Peers) == 0:
			addBGP(msgNoPeer)
		case inBGP:
			if w := addressUnadvertised(a, f.Advertisements, f.Peers); w != "" {
				addBGP(w)
			} else {
				bgp = true
			}
		case !inL2 && bgpInUse:
			add("no BGPAnnouncementPolicy or L2AnnouncementPolicy selects pool " + a.Pool)
		case !inL2:
			add("no L2AnnouncementPolicy selects pool " + a.Pool)
		}
	}
	slices.SortFunc(l2, netip.Addr.Compare)
	if bgp {
		bgpWhys = nil
	}
	return slices.Compact(l2), bgp, strings.Join(whys, "; "), strings.Join(bgpWhys, "; ")
}
