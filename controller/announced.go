package controller

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/bgplb/bgplb/internal/lbmodel"
)

// ConditionAnnounced is the second Service condition bgplb owns: True when
// at least one node's speaker reports (with a ServiceAnnouncement) that it
// announces the Service to an established BGP peer, or that it owns one of
// its addresses in L2 mode and answers ARP/NDP for it on some interface;
// False with the best explanation the controller can give otherwise. The
// controller only reads what the speakers report; it never decides who
// announces or owns.
const ConditionAnnounced = "bgplb.io/Announced"

// Reasons of ConditionAnnounced.
const (
	ReasonAnnounced    = "Announced"
	ReasonNotAnnounced = "NotAnnounced"
	// ReasonNoReadyEndpoints: no endpoint of the Service is usable
	// (lbmodel.ReadyEndpoints is 0), so the speakers withdraw it, whatever
	// its externalTrafficPolicy. The speakers' planner applies the same
	// rule and the same reason string.
	ReasonNoReadyEndpoints = "NoReadyEndpoints"
)

// Event reasons for changes of the announcing nodes.
const (
	EventAnnouncedBy  = "AnnouncedBy"
	EventNotAnnounced = "NotAnnounced"
)

// maxListed bounds the nodes and peers a message names; the rest are
// counted ("and 12 more"), so that a Service announced by every node of a
// large cluster keeps a short condition and event.
const maxListed = 10

// The False messages. The first that holds is given, from the most general
// cause to the most particular.
const (
	msgNoAddress = "no address assigned yet"
	// msgNothing: neither mode is configured at all, so neither is named
	// as the one missing.
	msgNothing         = "no BGPAnnouncementPolicy or L2AnnouncementPolicy exists"
	msgNoPeer          = "no BGPRouter exists"
	msgNoAdvertisement = "no BGPAnnouncementPolicy exists"
	msgLocalNoReady    = "no node announces it: externalTrafficPolicy is Local and no endpoint is ready"
	msgClusterNoReady  = "no node announces it: no endpoint is ready anywhere, so it is withdrawn until one is"
	msgGeneric         = "no node announces it; see the speakers' logs"
)

// nodeAnnouncement is one ServiceAnnouncement, as plain values.
type nodeAnnouncement struct {
	Node      string
	Peers     []string
	Endpoints int32
	// HealthCheck is why the node withholds the Service (or some address
	// of it) although its endpoints are there: its kube-proxy health
	// check fails (lbmodel.AnnotationHealthCheck); "" when it does not.
	HealthCheck string
	// Prefixes: the node announces some prefix over BGP (whether or not
	// a session is up).
	Prefixes bool
	// L2 are the addresses the node owns in L2 mode.
	L2 []l2Answer
}

// servedAddress is one address a Service holds and the pool it comes from
// ("" when no pool covers it any more), with the pool's labels, which
// BGP and L2AnnouncementPolicies may select it by.
type servedAddress struct {
	Addr       netip.Addr
	Pool       string
	PoolLabels labels.Set
}

// announceFacts is everything the controller sees about one served
// Service's announcement. When some announcement has peers or some node
// answers ARP/NDP for an address, nothing past Announcements is read, and
// the shell need not fill it in.
type announceFacts struct {
	Generation    int64
	Addresses     []servedAddress
	Announcements []nodeAnnouncement
	// Holders are the nodes holding the Leases of the addresses some
	// announcement claims in L2 mode (the speakers' election), by address
	// (unmapped, without zone); an address missing or held by "" has no
	// owner, and every claim of it is stale.
	Holders map[netip.Addr]string
	// Peers are the names of the BGPRouters that exist.
	Peers []string
	// Advertisements are the BGPAnnouncementPolicies in force: as the speakers
	// see them, the last good version of one that a bad edit broke.
	Advertisements []lbmodel.Advertisement
	// L2Advertisements are the L2AnnouncementPolicies in force, likewise.
	L2Advertisements []lbmodel.L2Advertisement
	Local            bool
	// ReadyEndpoints counts the Service's endpoints on some node that
	// may receive traffic (lbmodel.ReadyEndpoints), whatever its policy.
	ReadyEndpoints int
}

// announced is the Announced condition a Service should show and the
// event the change deserves, if any.
type announced struct {
	condition metav1.Condition
	// eventType and eventReason are empty when the announcing nodes did
	// not change; note is the event's message.
	eventType, eventReason, note string
}

// decideAnnounced is the pure heart of the Announced condition: from what
// the controller sees and the condition the Service shows now, the
// condition to write and the event to record. Events follow the set of
// announcing nodes and L2 owners, read back from the previous condition's
// message and from the new one alike, so that neither a restart nor a
// message that changes for another reason (an endpoint count, an
// interface) repeats one.
func decideAnnounced(prev *metav1.Condition, f announceFacts) announced {
	a := announced{condition: metav1.Condition{Type: ConditionAnnounced, ObservedGeneration: f.Generation}}
	c := &a.condition
	nodes, owners := announcing(f.Announcements), answering(f.Announcements, f.Holders)
	if len(nodes) > 0 || len(owners) > 0 {
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, ReasonAnnounced, announcedMessage(nodes, owners, f)
	} else {
		c.Status = metav1.ConditionFalse
		c.Reason, c.Message = whyNotAnnounced(f)
	}
	was, now := announcersOf(prev), announcersOf(c)
	switch {
	case now != "" && now != was:
		a.eventType, a.eventReason, a.note = corev1.EventTypeNormal, EventAnnouncedBy, now
	case now == "" && was != "":
		a.eventType, a.eventReason, a.note = corev1.EventTypeWarning, EventNotAnnounced, "no longer announced: "+c.Message
	}
	return a
}

// apply writes the condition into svc's status and reports whether
// anything changed.
func (a announced) apply(svc *corev1.Service, now metav1.Time) bool {
	c := a.condition
	c.LastTransitionTime = now // kept by SetStatusCondition unless the status changes
	return meta.SetStatusCondition(&svc.Status.Conditions, c)
}

// announcing are the announcements that reach a peer, one per node (a
// node reported twice counts once, with the union of its peers), sorted by
// node.
func announcing(anns []nodeAnnouncement) []nodeAnnouncement {
	var out []nodeAnnouncement
	for _, a := range anns {
		if len(a.Peers) == 0 {
			continue
		}
		i, found := slices.BinarySearchFunc(out, a.Node, func(x nodeAnnouncement, n string) int { return cmp.Compare(x.Node, n) })
		if !found {
			out = slices.Insert(out, i, nodeAnnouncement{Node: a.Node, Endpoints: a.Endpoints})
		}
		out[i].Peers = append(out[i].Peers, a.Peers...)
		out[i].Endpoints = max(out[i].Endpoints, a.Endpoints)
	}
	return out
}

// announcedMessage is the True message, its parts joined by "; ": the
// BGP part, then one part per address answered in L2 mode, then the
// addresses owned but answered on no interface, then the nodes that
// withhold the Service:
//
//	announced by node1 (3 endpoints) to router-a; 198.51.100.153 answered by node2 (ARP on eth0); withheld by node3: ...
//
// announcersOf reads the first parts back.
func announcedMessage(nodes []nodeAnnouncement, owners []addressOwners, f announceFacts) string {
	var parts []string
	if len(nodes) > 0 {
		parts = append(parts, bgpMessage(nodes))
	}
	for _, o := range owners {
		parts = append(parts, o.message())
	}
	for _, s := range stuck(f.Announcements, f.Holders) {
		parts = append(parts, s.stuckMessage())
	}
	if w := withheld(f.Announcements); w != "" {
		parts = append(parts, "withheld by "+w)
	}
	return strings.Join(parts, "; ")
}

// bgpMessage is "announced by node1 (3 endpoints), node2 (1 endpoint) to
// router-a, router-b"; nodes are sorted, peers are the sorted union of
// every node's.
func bgpMessage(nodes []nodeAnnouncement) string {
	items := make([]string, len(nodes))
	var peers []string
	for i, n := range nodes {
		items[i] = n.Node + " (" + plural(int(n.Endpoints), "endpoint") + ")"
		peers = append(peers, n.Peers...)
	}
	slices.Sort(peers)
	return "announced by " + joinLimited(items) + " to " + joinLimited(slices.Compact(peers))
}

// announcersOf reads back from a True condition's message who announces
// and owns, without the details that may change under them (endpoint
// counts, peers, interfaces): "announced by node1, node2; 198.51.100.153
// answered by node2"; "" when the condition is absent or False. It is
// also the AnnouncedBy event's note. Node names (DNS subdomains) hold no
// spaces, commas or parentheses, and the details are in parentheses free
// of "; " (l2Name), so the message parses unambiguously; the parts it does
// not know end the reading, so that free text after them (a health check's
// answer) is never read as a name.
func announcersOf(c *metav1.Condition) string {
	if c == nil || c.Status != metav1.ConditionTrue || c.Reason != ReasonAnnounced {
		return ""
	}
	var out []string
	for i, part := range strings.Split(c.Message, "; ") {
		if rest, ok := strings.CutPrefix(part, "announced by "); ok && i == 0 {
			list, _, _ := strings.Cut(rest, " to ")
			out = append(out, "announced by "+listedNames(list))
			continue
		}
		addr, list, ok := strings.Cut(part, " answered by ")
		if _, err := netip.ParseAddr(addr); !ok || err != nil {
			break
		}
		out = append(out, addr+" answered by "+listedNames(list))
	}
	return strings.Join(out, "; ")
}

// listedNames reads back the names of a list joinLimited wrote, whose
// items are "name (details)" or "and 3 more": the details are dropped, and
// commas within them do not split.
func listedNames(list string) string {
	var items []string
	depth, start := 0, 0
	for i := 0; i < len(list); i++ {
		switch list[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 && strings.HasPrefix(list[i:], ", ") {
				items, start = append(items, list[start:i]), i+2
			}
		}
	}
	items = append(items, list[start:])
	for i, it := range items {
		if !strings.HasPrefix(it, "and ") {
			items[i], _, _ = strings.Cut(it, " (")
		}
	}
	return strings.Join(items, ", ")
}

// joinLimited joins at most maxListed items and counts the rest.
func joinLimited(items []string) string {
	if len(items) <= maxListed {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:maxListed], ", ") + fmt.Sprintf(", and %d more", len(items)-maxListed)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// whyNotAnnounced is the best explanation (reason and message) of why no
// node announces the Service to an established peer nor answers ARP/NDP
// for any of its addresses, the most general cause first.
func whyNotAnnounced(f announceFacts) (reason, msg string) {
	msg = whyNotAnnouncedMsg(f)
	if msg == msgLocalNoReady || msg == msgClusterNoReady {
		return ReasonNoReadyEndpoints, msg
	}
	if w := withheld(f.Announcements); w != "" && msg == w {
		return ReasonHealthCheckFailing, msg
	}
	return ReasonNotAnnounced, msg
}

func whyNotAnnouncedMsg(f announceFacts) string {
	if len(f.Addresses) == 0 {
		return msgNoAddress
	}
	if len(f.L2Advertisements) == 0 {
		if why := bgpUnconfigured(f); why != "" {
			return why
		}
		return notAnsweredYet(f, nil, true)
	}
	l2, bgp, why, bgpWhy := modes(f)
	switch {
	case len(l2) == 0 && !bgp:
		return why
	case bgpWhy != "":
		// A pool in both modes whose BGP side cannot work: both parts.
		return bgpWhy + "; " + notAnsweredYet(f, l2, bgp)
	}
	return notAnsweredYet(f, l2, bgp)
}

// bgpUnconfigured is why no address can be announced over BGP where no
// L2AnnouncementPolicy is in force, the most general cause first; "" when
// some address can be.
func bgpUnconfigured(f announceFacts) string {
	switch {
	case len(f.Peers) == 0 && len(f.Advertisements) == 0:
		return msgNothing
	case len(f.Peers) == 0:
		return msgNoPeer
	case len(f.Advertisements) == 0:
		return msgNoAdvertisement
	}
	return unadvertised(f.Addresses, f.Advertisements, f.Peers)
}

// notAnsweredYet explains, once the configuration lets some address be
// announced over BGP (bgp) or answered for in L2 mode (the addresses
// l2), why no node does: what the nodes report first, then the
// endpoints, then for each mode that no node does yet.
func notAnsweredYet(f announceFacts, l2 []netip.Addr, bgp bool) string {
	if w := withheld(f.Announcements); w != "" {
		return w
	}
	var parts []string
	if nodes := bgpReporters(f.Announcements); bgp && len(nodes) > 0 {
		if len(nodes) == 1 {
			parts = append(parts, nodes[0]+" announces it but has no established BGP session")
		} else {
			parts = append(parts, joinLimited(nodes)+" announce it but none has an established BGP session")
		}
	}
	owned := stuck(f.Announcements, f.Holders)
	for _, s := range owned {
		parts = append(parts, s.stuckMessage())
	}
	if len(parts) == 0 && f.ReadyEndpoints == 0 {
		if f.Local {
			return msgLocalNoReady
		}
		// Cluster policy: with no endpoint anywhere, traffic attracted to
		// the address would be dropped by every node, so it is withdrawn
		// (as MetalLB does).
		return msgClusterNoReady
	}
	if bgp && len(parts) == len(owned) {
		parts = slices.Insert(parts, 0, msgGeneric)
	}
	for _, a := range l2 {
		if !slices.ContainsFunc(owned, func(s claim) bool { return s.Addr == a }) {
			parts = append(parts, "no node answers "+l2Protocol(a)+" for "+a.String()+" yet")
		}
	}
	return strings.Join(parts, "; ")
}

// bgpReporters are the nodes whose announcement is about BGP (not one
// carrying only L2 answers), sorted and unique.
func bgpReporters(anns []nodeAnnouncement) []string {
	var out []string
	for _, a := range anns {
		if len(a.L2) == 0 || a.Prefixes || len(a.Peers) > 0 {
			out = append(out, a.Node)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// unadvertised says why none of the Service's addresses can be announced
// to any peer by the BGPAnnouncementPolicies, or "" when one of them can. The
// speakers announce an address when an advertisement selects its pool and
// sends to at least one peer; node selectors are not checked here (the
// controller does not watch nodes).
func unadvertised(addrs []servedAddress, advs []lbmodel.Advertisement, peers []string) string {
	var whys []string
	for _, a := range addrs {
		why := addressUnadvertised(a, advs, peers)
		if why == "" {
			return ""
		}
		if !slices.Contains(whys, why) {
			whys = append(whys, why)
		}
	}
	return strings.Join(whys, "; ")
}

func addressUnadvertised(a servedAddress, advs []lbmodel.Advertisement, peers []string) string {
	if a.Pool == "" {
		return a.Addr.String() + " is in no LoadBalancerPool"
	}
	var silent []string
	for i := range advs {
		ad := &advs[i]
		if !ad.SelectsPool(a.Pool, a.PoolLabels) {
			continue
		}
		if ad.SendsToAny(peers) {
			return ""
		}
		silent = append(silent, ad.Name)
	}
	if len(silent) == 0 {
		return "no BGPAnnouncementPolicy selects pool " + a.Pool
	}
	slices.Sort(silent)
	return fmt.Sprintf("the BGPAnnouncementPolicies selecting pool %s (%s) name no BGPRouter that exists", a.Pool, joinLimited(silent))
}
