package controller

// The L2 side of the Announced condition: the addresses the speakers
// report they own (ServiceAnnouncement status.l2) and the configuration
// that puts an address in L2 mode.

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"time"
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
	LastError  string
	// Since is when the node took the address over; zero if unknown.
	Since time.Time
}

// claim is one node's l2Answer.
type claim struct {
	Node string
	l2Answer
}

// claims are the nodes' l2Answers, sorted by address, then node, a node
// reported twice counting once (with the union of its interfaces), and of
// each address only the latest claims: a node cut off from the API server
// cannot take back its claim, but it has lost the address to the node
// that took it over since (its speaker stops answering when its Lease is
// not renewed), so the condition names the owner, not the ghost, and a
// failover is one change of owner, not two. Since is read from each
// node's clock: clocks further apart than two takeovers of one address
// would name the ghost until its report goes.
func claims(anns []nodeAnnouncement) []claim {
	var all []claim
	for _, a := range anns {
		for _, l := range a.L2 {
			if l.Addr.IsValid() {
				all = append(all, claim{Node: a.Node, l2Answer: l})
			}
		}
	}
	slices.SortFunc(all, func(a, b claim) int { return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Node, b.Node)) })
	var out []claim
	for i := 0; i < len(all); {
		j := i + 1
		for j < len(all) && all[j].Addr == all[i].Addr {
			j++
		}
		latest := slices.MaxFunc(all[i:j], func(a, b claim) int { return a.Since.Compare(b.Since) }).Since
		for _, c := range all[i:j] {
			switch {
			case !c.Since.Equal(latest):
			case len(out) > 0 && out[len(out)-1].Addr == c.Addr && out[len(out)-1].Node == c.Node:
				last := &out[len(out)-1]
				last.Interfaces = append(slices.Clip(last.Interfaces), c.Interfaces...)
				last.LastError = cmp.Or(last.LastError, c.LastError)
			default:
				out = append(out, c)
			}
		}
		i = j
	}
	for i := range out {
		out[i].Interfaces = slices.Compact(slices.Sorted(slices.Values(out[i].Interfaces)))
	}
	return out
}

// addressOwners is one address answered for and the nodes answering (more
// than one only when their claims are equally recent).
type addressOwners struct {
	Addr  netip.Addr
	Nodes []claim
}

// answering are the addresses some node answers for on some interface,
// sorted, each with its nodes sorted.
func answering(anns []nodeAnnouncement) []addressOwners {
	var out []addressOwners
	for _, c := range claims(anns) {
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

// stuck are the latest claims of an address answered on no interface,
// sorted by address, then node.
func stuck(anns []nodeAnnouncement) []claim {
	var out []claim
	for _, c := range claims(anns) {
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
