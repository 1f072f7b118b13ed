package controller

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const hcZero = "kube-proxy health check on 198.51.100.2:31234 says 0 local endpoints (503)"

func withheldAnn(node string, peers ...string) nodeAnnouncement {
	a := ann(node, 1, peers...)
	a.HealthCheck = hcZero
	return a
}

// The speakers' health check reasons on the Announced condition: the
// reason when no node announces, an addition when some do.
func TestAnnouncedHealthCheck(t *testing.T) {
	trueCond := &metav1.Condition{Type: ConditionAnnounced, Status: metav1.ConditionTrue, Reason: ReasonAnnounced,
		Message: "announced by node1 (1 endpoint), node2 (1 endpoint) to router-a"}
	tests := []struct {
		name                     string
		prev                     *metav1.Condition
		anns                     []nodeAnnouncement
		status                   metav1.ConditionStatus
		reason, msg, event, note string
	}{
		{name: "one node withholds, another announces", prev: trueCond,
			anns:   []nodeAnnouncement{ann("node1", 1, "router-a"), withheldAnn("node2")},
			status: metav1.ConditionTrue, reason: ReasonAnnounced,
			msg:   "announced by node1 (1 endpoint) to router-a; withheld by node2: " + hcZero,
			event: EventAnnouncedBy, note: "announced by node1"},
		{name: "every node withholds", prev: trueCond,
			anns:   []nodeAnnouncement{withheldAnn("node2"), withheldAnn("node1")},
			status: metav1.ConditionFalse, reason: ReasonHealthCheckFailing,
			msg:   "node1: " + hcZero + "; node2: " + hcZero,
			event: EventNotAnnounced, note: "no longer announced: node1: " + hcZero + "; node2: " + hcZero},
		{name: "a node announcing one family and withholding the other", prev: nil,
			anns:   []nodeAnnouncement{withheldAnn("node1", "router-a")},
			status: metav1.ConditionTrue, reason: ReasonAnnounced,
			msg:   "announced by node1 (1 endpoint) to router-a; withheld by node1: " + hcZero,
			event: EventAnnouncedBy, note: "announced by node1"},
		{name: "withheld beats a node without session", prev: nil,
			anns:   []nodeAnnouncement{withheldAnn("node1"), ann("node2", 1)},
			status: metav1.ConditionFalse, reason: ReasonHealthCheckFailing, msg: "node1: " + hcZero},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := ready(func(f *announceFacts) { f.Announcements, f.Local = tc.anns, true })
			a := decideAnnounced(tc.prev, f)
			c := a.condition
			// The reasons appended do not confuse reading the announcing
			// nodes back: deciding again gives no event.
			if again := decideAnnounced(&c, f); again.eventReason != "" {
				t.Errorf("deciding again on %q: event %s %q", c.Message, again.eventReason, again.note)
			}
			if c.Status != tc.status || c.Reason != tc.reason || c.Message != tc.msg {
				t.Errorf("condition %s/%s %q,\nwant %s/%s %q", c.Status, c.Reason, c.Message, tc.status, tc.reason, tc.msg)
			}
			if a.eventReason != tc.event || a.note != tc.note {
				t.Errorf("event %s %q, want %s %q", a.eventReason, a.note, tc.event, tc.note)
			}
			if tc.status == metav1.ConditionTrue && a.eventType != corev1.EventTypeNormal && a.eventType != "" {
				t.Errorf("event type %s", a.eventType)
			}
		})
	}
}

// Many withholding nodes: the message stays short.
func TestWithheldLimit(t *testing.T) {
	var anns []nodeAnnouncement
	for i := range 40 {
		anns = append(anns, withheldAnn(fmt.Sprintf("node%02d", i)))
	}
	got := withheld(anns)
	if !strings.HasPrefix(got, "node00: "+hcZero+"; node01: ") || !strings.HasSuffix(got, "node09: "+hcZero+"; and 30 more nodes") {
		t.Errorf("withheld: %q", got)
	}
}
