package home

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/lbmodel"
)

// A ServiceAnnouncement kept by a node whose health check fails is shown
// as withheld, not as an announcement.
func TestAnnouncementState(t *testing.T) {
	const why = "kube-proxy health check on 198.51.100.2:31234 says 0 local endpoints (503)"
	ann := func(note string, peers ...string) *v1alpha1.ServiceAnnouncement {
		a := &v1alpha1.ServiceAnnouncement{Status: v1alpha1.ServiceAnnouncementStatus{Peers: peers}}
		if note != "" {
			a.ObjectMeta = metav1.ObjectMeta{Annotations: map[string]string{lbmodel.AnnotationHealthCheck: note}}
		}
		return a
	}
	for _, c := range []struct {
		a    *v1alpha1.ServiceAnnouncement
		want string
	}{
		{ann("", "r1"), "announced"},
		{ann(why), "withheld: " + why},
		{ann(why, "r1"), "partly withheld: " + why},
	} {
		if got := announcementState(c.a); got != c.want {
			t.Errorf("%+v: %q, want %q", c.a, got, c.want)
		}
	}
}
