package e2e

import (
	"context"
	"encoding/json"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/seed"
	"github.com/bgplb/bgplb/view"
)

// TestSpeakerBFD: `bgplb speaker` and `bgplb router` both run BFD (300 ms
// × 3, the defaults) on their sessions, with a 9 s hold time. The speaker
// starts BFD when the BGPRouter gains a bfdPolicy (no session restart).
// When node1's cable is pulled, its route leaves the router's kernel on
// BFD's word, well before the hold time, and node1's speaker resets its
// session on its own BFD's word.
func TestSpeakerBFD(t *testing.T) {
	crds, err := seed.FindCRDDir()
	if err != nil {
		t.Fatal(err)
	}
	l := bareSeedLab(t, 2*time.Minute, false, crds)
	cfg := strings.Replace(seedRouterConfig, `password: "seed-secret"}`,
		`password: "seed-secret", bfd: {minTx: 300ms, minRx: 300ms, multiplier: 3}}`, 1)
	if cfg == seedRouterConfig {
		t.Fatal("the router config has no dynamic range to give BFD")
	}
	l.rp = startRouter(t, l.ctx, node{name: "router", ns: l.s.Host("router"), v4: l.s.RouterAddr(1)}, cfg)
	l.startController(t)
	l.speakerKubeconfig = l.speakerIdentity(t)
	for _, n := range l.s.Nodes() {
		l.startSpeaker(t, n)
	}
	l.configure(t)
	n1, n2 := l.s.NodeAddr(seed.Node1), l.s.NodeAddr(seed.Node2)
	l.rp.waitEstablished(t, l.ctx, n1, n2)

	// BFD is asked for after the sessions are up: they get BFD without a
	// restart.
	since := map[netip.Addr]time.Time{}
	for _, a := range []netip.Addr{n1, n2} {
		since[a] = l.rp.neighbor(t, l.ctx, a).Since
	}
	l.create(t, &v1alpha1.BFDPolicy{ObjectMeta: metav1.ObjectMeta{Name: "lan"}})
	var peer v1alpha1.BGPRouter
	if err := l.c.Get(l.ctx, client.ObjectKey{Name: "router"}, &peer); err != nil {
		t.Fatal(err)
	}
	peer.Spec.BFDPolicy = "lan"
	if err := l.c.Update(l.ctx, &peer); err != nil {
		t.Fatal(err)
	}
	l.waitRouterBFDUp(t, n1, n2)
	// The speakers show their end: `bgplb neighbor` and BGPSessionStatus.
	for _, n := range []string{seed.Node1, seed.Node2} {
		l.waitSpeakerBFDUp(t, n)
	}
	for _, a := range []netip.Addr{n1, n2} {
		if s := l.rp.neighbor(t, l.ctx, a).Since; !s.Equal(since[a]) {
			t.Errorf("session with %v restarted (%v, was %v) when BFD was turned on", a, s, since[a])
		}
	}

	vip := netip.MustParseAddr("203.0.113.53")
	host := netip.PrefixFrom(vip, 32)
	l.endpoints(t, "pihole", seed.Node1)
	l.create(t, pihole(corev1.ServiceExternalTrafficPolicyLocal))
	l.rp.waitKernel(t, l.ctx, want{host: {n1}})

	start := time.Now()
	if err := l.s.Lab.LAN(seed.LANName).SetLink(l.ctx, seed.Node1, false); err != nil {
		t.Fatal(err)
	}
	l.rp.waitKernel(t, l.ctx, want{host: nil})
	took := time.Since(start)
	t.Logf("node1's route left the router's kernel %v after the cut (BFD 300 ms x 3, hold time 9 s)", took)
	if took >= bfdBound {
		t.Errorf("route gone %v after the cut, want within %v (BFD 900 ms; the hold time is 9 s)", took, bfdBound)
	}
	if logs := l.rp.proc.Logs(); !strings.Contains(logs, "BFD down: closing the BGP session") {
		t.Errorf("the router did not close the session on BFD's word")
	}
	ctx, cancel := context.WithTimeout(l.ctx, bfdBound)
	defer cancel()
	if err := lab.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		return strings.Contains(l.speakers[seed.Node1].Logs(), "BFD down: resetting the BGP session"), nil
	}); err != nil {
		t.Errorf("node1's speaker did not reset its session on BFD's word within %v of the route leaving", bfdBound)
	}
	if strings.Contains(l.speakers[seed.Node2].Logs(), "BFD down") {
		t.Errorf("node2's speaker saw BFD go down, its cable is in")
	}
}

// waitRouterBFDUp waits until the router's sessions with peers run BFD, Up.
func (l *seedLab) waitRouterBFDUp(t *testing.T, peers ...netip.Addr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(l.ctx, 30*time.Second)
	defer cancel()
	if err := lab.Poll(ctx, 100*time.Millisecond, func() (bool, error) {
		for _, a := range peers {
			n := l.rp.neighbor(t, ctx, a)
			if n.BFD == nil || n.BFD.State != "Up" {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		t.Fatalf("BFD not Up with %v: %v", peers, err)
	}
}

// waitSpeakerBFDUp waits until node's speaker shows its session with the
// router running BFD, Up at 300 ms × 3, in `bgplb neighbor` and in the
// session's BGPSessionStatus.
func (l *seedLab) waitSpeakerBFDUp(t *testing.T, node string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(l.ctx, 30*time.Second)
	defer cancel()
	var ns []view.Neighbor
	var st v1alpha1.BGPSessionStatus
	if err := lab.Poll(ctx, 100*time.Millisecond, func() (bool, error) {
		out, err := exec.CommandContext(ctx, bgplbBin, "neighbor", "--socket", filepath.Join(l.dir, node+".sock"), "-o", "json").Output()
		if err != nil || json.Unmarshal(out, &ns) != nil {
			return false, nil
		}
		return len(ns) == 1 && ns[0].BFD != nil && ns[0].BFD.State == "Up", nil
	}); err != nil {
		t.Fatalf("bgplb neighbor on %s: %+v, want the router's session with BFD Up", node, ns)
	}
	if b := ns[0].BFD; b.TxIntervalUs != 300_000 || b.DetectTimeUs != 900_000 {
		t.Errorf("bgplb neighbor on %s: BFD %+v, want 300 ms x 3", node, b)
	}
	if err := lab.Poll(ctx, 100*time.Millisecond, func() (bool, error) {
		err := l.c.Get(ctx, client.ObjectKey{Name: node + ".router"}, &st)
		return err == nil && st.Status.BFD != nil && st.Status.BFD.State == "Up", client.IgnoreNotFound(err)
	}); err != nil {
		t.Fatalf("BGPSessionStatus %s.router: %+v, want BFD Up: %v", node, st.Status, err)
	}
	if b := st.Status.BFD; b.RemoteState != "Up" || b.TransmitInterval == nil || b.TransmitInterval.Duration != 300*time.Millisecond ||
		b.ReceiveInterval == nil || b.ReceiveInterval.Duration != 300*time.Millisecond || b.DetectMultiplier != 3 {
		t.Errorf("BGPSessionStatus %s.router: BFD %+v, want Up both ends at 300 ms x 3", node, b)
	}
}
