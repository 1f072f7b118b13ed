package controller

import (
	"cmp"
	"slices"
	"strings"
)

// ReasonHealthCheckFailing is the Announced reason when no node announces
// a Service because, on every node its endpoints are on, kube-proxy's
// health check for it fails (externalTrafficPolicy Local): the speakers
// probe it and withhold the Service where it fails, and say why in their
// ServiceAnnouncement (lbmodel.AnnotationHealthCheck).
const ReasonHealthCheckFailing = "HealthCheckFailing"

// withheld says which nodes withhold (some address of) the Service because
// their health check fails, and why: "node2: kube-proxy health check on
// 198.51.100.2:31234 says 0 local endpoints (503)", one item per node,
// sorted by node, joined by "; "; "" when none.
func withheld(anns []nodeAnnouncement) string {
	var items []nodeAnnouncement
	for _, a := range anns {
		if a.HealthCheck != "" {
			items = append(items, a)
		}
	}
	slices.SortFunc(items, func(a, b nodeAnnouncement) int { return cmp.Compare(a.Node, b.Node) })
	items = slices.CompactFunc(items, func(a, b nodeAnnouncement) bool { return a.Node == b.Node })
	out := make([]string, 0, min(len(items), maxListed+1))
	for i, a := range items {
		if i == maxListed {
			out = append(out, "and "+plural(len(items)-maxListed, "more node"))
			break
		}
		out = append(out, a.Node+": "+a.HealthCheck)
	}
	return strings.Join(out, "; ")
}
