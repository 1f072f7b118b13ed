package speaker

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/speaker/announce"
	"github.com/bgplb/bgplb/speaker/plan"
)

// A speaker's stop keeps each session's report, with its BFD: how it last
// went down is what an operator looks for after the stop.
func TestClearKeepsBFD(t *testing.T) {
	k := startKube(t)
	node := k.prefix + "-n1"
	name := objectName(node, "r")
	t.Cleanup(func() {
		obj := &v1alpha1.BGPSessionStatus{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if err := k.c.Delete(context.Background(), obj); client.IgnoreNotFound(err) != nil {
			t.Errorf("deleting %s: %v", name, err)
		}
	})
	r := newReporter(k.c, node, slog.New(slog.NewTextHandler(t.Output(), nil)))
	peer := announce.PeerStatus{Name: "r", Addr: netip.MustParseAddr("198.51.100.1"), State: session.Established}
	r.write(k.ctx, desiredReports(node, plan.Result{}, nil, []announce.PeerStatus{peer},
		map[string]*v1alpha1.BGPSessionBFD{"r": {State: "Up", RemoteState: "Up"}}, nil), false)

	down := metav1.NewTime(time.Now().Truncate(time.Second))
	bfds := map[string]*v1alpha1.BGPSessionBFD{"r": {State: "Down", LastDownReason: "NeighborDown", LastDownTime: &down}}
	peer.State = session.Idle
	r.clear(k.ctx, []announce.PeerStatus{peer}, nil, bfds)

	var got v1alpha1.BGPSessionStatus
	if err := k.c.Get(k.ctx, types.NamespacedName{Name: name}, &got); err != nil {
		t.Fatal(err)
	}
	if b := got.Status.BFD; got.Status.State != "Idle" || b == nil || b.State != "Down" ||
		b.LastDownReason != "NeighborDown" || b.LastDownTime == nil || !b.LastDownTime.Equal(&down) {
		t.Errorf("after the stop: %+v (bfd %+v), want Idle with BFD Down by NeighborDown at %v", got.Status, got.Status.BFD, down)
	}
}
