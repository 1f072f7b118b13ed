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
// announces the Service to an established BGP peer, False with the best
// explanation the controller can give otherwise. The controller only reads
// what the speakers report; it never decides who announces.
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
	msgNoAddress       = "no address assigned yet"
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
}

// servedAddress is one address a Service holds and the pool it comes from
// ("" when no pool covers it any more), with the pool's labels, which
// BGPAnnouncementPolicies may select it by.
type servedAddress struct {
	Addr       netip.Addr
	Pool       string
	PoolLabels labels.Set
}

// announceFacts is everything the controller sees about one served
// Service's announcement. When some announcement has peers, nothing past
// Announcements is read, and the shell need not fill it in.
type announceFacts struct {
	Generation    int64
	Addresses     []servedAddress
	Announcements []nodeAnnouncement
	// Peers are the names of the BGPRouters that exist.
	Peers []string
	// Advertisements are the BGPAnnouncementPolicies in force: as the speakers
	// see them, the last good version of one that a bad edit broke.
	Advertisements []lbmodel.Advertisement
	Local          bool
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
// announcing nodes, read back from the previous condition's message, so
// that neither a restart nor a message that changes for another reason
// (an endpoint count) repeats one.
func decideAnnounced(prev *metav1.Condition, f announceFacts) announced {
	a := announced{condition: metav1.Condition{Type: ConditionAnnounced, ObservedGeneration: f.Generation}}
	c := &a.condition
	nodes := announcing(f.Announcements)
	if len(nodes) > 0 {
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, ReasonAnnounced, announcedMessage(nodes)
		if w := withheld(f.Announcements); w != "" {
			c.Message += "; withheld by " + w
		}
	} else {
		c.Status = metav1.ConditionFalse
		c.Reason, c.Message = whyNotAnnounced(f)
	}
	was := announcersOf(prev)
	now := joinLimited(nodeNames(nodes))
	switch {
	case now != "" && now != was:
		a.eventType, a.eventReason, a.note = corev1.EventTypeNormal, EventAnnouncedBy, "announced by "+now
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

// announcedMessage is "announced by node1 (3 endpoints), node2 (1
// endpoint) to router-a, router-b"; nodes are sorted, peers are the sorted
// union of every node's.
func announcedMessage(nodes []nodeAnnouncement) string {
	items := make([]string, len(nodes))
	var peers []string
	for i, n := range nodes {
		items[i] = n.Node + " (" + plural(int(n.Endpoints), "endpoint") + ")"
		peers = append(peers, n.Peers...)
	}
	slices.Sort(peers)
	return "announced by " + joinLimited(items) + " to " + joinLimited(slices.Compact(peers))
}

// announcersOf reads back from a True condition's message the announcing
// nodes as joinLimited lists them ("node1, node2, and 3 more"); "" when
// the condition is absent or False. Node names (DNS subdomains) hold no
// spaces or commas, so the message parses unambiguously.
func announcersOf(c *metav1.Condition) string {
	if c == nil || c.Status != metav1.ConditionTrue || c.Reason != ReasonAnnounced {
		return ""
	}
	rest, ok := strings.CutPrefix(c.Message, "announced by ")
	if !ok {
		return ""
	}
	list, _, _ := strings.Cut(rest, " to ")
	items := strings.Split(list, ", ")
	for i, it := range items {
		if !strings.HasPrefix(it, "and ") {
			items[i], _, _ = strings.Cut(it, " (")
		}
	}
	return strings.Join(items, ", ")
}

func nodeNames(nodes []nodeAnnouncement) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Node
	}
	return out
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
// node announces the Service to an established peer, the most general
// cause first.
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
	if len(f.Peers) == 0 {
		return msgNoPeer
	}
	if len(f.Advertisements) == 0 {
		return msgNoAdvertisement
	}
	if why := unadvertised(f.Addresses, f.Advertisements, f.Peers); why != "" {
		return why
	}
	if w := withheld(f.Announcements); w != "" {
		return w
	}
	if nodes := reportedNodes(f.Announcements); len(nodes) > 0 {
		if len(nodes) == 1 {
			return nodes[0] + " announces it but has no established BGP session"
		}
		return joinLimited(nodes) + " announce it but none has an established BGP session"
	}
	switch {
	case f.ReadyEndpoints > 0:
		return msgGeneric
	case f.Local:
		return msgLocalNoReady
	}
	// Cluster policy: with no endpoint anywhere, traffic attracted to the
	// address would be dropped by every node, so it is withdrawn (as
	// MetalLB does).
	return msgClusterNoReady
}

// reportedNodes are the nodes of announcements, sorted and unique.
func reportedNodes(anns []nodeAnnouncement) []string {
	var out []string
	for _, a := range anns {
		out = append(out, a.Node)
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
