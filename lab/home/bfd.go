package home

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/lab/seed"
	"github.com/bgplb/bgplb/view"
)

// Detection is how the routers notice that a node is gone: BFD at an
// interval (both ends ask for it, three packets missed declare the path
// down), or with BFD 0 the BGP hold time alone.
type Detection struct {
	BFD  time.Duration `json:"bfd,omitempty"`
	Hold time.Duration `json:"hold"`
}

const (
	bfdMultiplier = 3
	// bfdPolicyName is the BFDPolicy of deploy/examples/bfdpolicy.yaml,
	// which the example BGPRouters name.
	bfdPolicyName = "default"
	// The hold time of the examples, and the smallest RFC 4271 allows,
	// which is what a lab without BFD runs to fail over fastest.
	exampleHold = 9 * time.Second
	minHold     = 3 * time.Second
)

// defaultDetection is what Up configures: the examples' BFDPolicy
// defaults (300 ms × 3, what MetalLB's BFD profile defaults to as well).
var defaultDetection = Detection{BFD: 300 * time.Millisecond, Hold: exampleHold}

func (d Detection) String() string {
	if d.BFD == 0 {
		return fmt.Sprintf("no BFD, hold time %s", d.Hold)
	}
	return fmt.Sprintf("BFD %s × %d", d.BFD, bfdMultiplier)
}

// window is how long a router may take to notice a node gone.
func (d Detection) window() time.Duration {
	if d.BFD == 0 {
		return d.Hold
	}
	return d.BFD * bfdMultiplier
}

// TuneBFD sets how the lab's routers notice a dead node: BFD at interval
// on both ends (the BFDPolicy the BGPRouters name, and every router's
// peer range), or with interval 0 no BFD and the smallest hold time, 3 s.
// It waits until every session runs with the new settings.
func TuneBFD(ctx context.Context, o Options, interval time.Duration) error {
	// The BFDPolicy CRD takes whole milliseconds, 10 to 60000.
	if interval != 0 && (interval < 10*time.Millisecond || interval > time.Minute || interval%time.Millisecond != 0) {
		return fmt.Errorf("BFD interval %v: want off, or whole milliseconds from 10ms to 1m", interval)
	}
	u, ctx, done, err := play(ctx, o, 2*time.Minute)
	if err != nil {
		return err
	}
	defer done()
	if u.st.l2() {
		return errL2("bfd")
	}
	d := Detection{BFD: interval, Hold: exampleHold}
	if interval == 0 {
		d.Hold = minHold
	}
	if err := u.do([]step{
		{fmt.Sprintf("setting %s on the BGPRouters and BFDPolicy %q", d, bfdPolicyName), func() error { return u.tuneSpeakers(ctx, d) }},
		{"reloading every router's config", func() error { return u.tuneRouters(d) }},
		{"waiting for every session to run " + d.String(), func() error {
			return u.whileAlive(ctx, func(ctx context.Context) error { return u.waitDetection(ctx, d) })
		}},
	}); err != nil {
		return err
	}
	u.st.Detection = d
	if err := u.st.save(); err != nil {
		return err
	}
	fmt.Fprintf(u.o.Out, "\nthe routers now notice a dead node within %s (%s); try `bgplb lab fail node2`.\n", d.window(), d)
	return nil
}

// tuneSpeakers sets the speakers' side: the BFDPolicy's timers, and on
// every example BGPRouter the policy (or none) and the hold time.
func (u *upper) tuneSpeakers(ctx context.Context, d Detection) error {
	if d.BFD > 0 {
		ms := d.BFD.Milliseconds()
		patch := fmt.Sprintf(`{"spec":{"receiveInterval":%d,"transmitInterval":%d,"detectMultiplier":%d}}`, ms, ms, bfdMultiplier)
		if err := u.k.c.Patch(ctx, &v1alpha1.BFDPolicy{ObjectMeta: metav1.ObjectMeta{Name: bfdPolicyName}}, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
			return err
		}
	}
	policy := `null`
	if d.BFD > 0 {
		policy = fmt.Sprintf("%q", bfdPolicyName)
	}
	var routers v1alpha1.BGPRouterList
	if err := u.k.c.List(ctx, &routers); err != nil {
		return err
	}
	for i := range routers.Items {
		patch := fmt.Sprintf(`{"spec":{"bfdPolicy":%s,"holdTime":%q}}`, policy, d.Hold)
		if err := u.k.c.Patch(ctx, &routers.Items[i], client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
			return err
		}
	}
	return nil
}

// tuneRouters rewrites every router's config and reloads it (SIGHUP):
// a change of BFD alone keeps the BGP sessions up.
func (u *upper) tuneRouters(d Detection) error {
	for i := 1; i <= u.st.Routers; i++ {
		name := seed.RouterName(i)
		p := u.st.Procs[name]
		if err := os.WriteFile(u.st.path(name+".yaml"), []byte(routerConfig(u.s.RouterAddr(i), p.Socket, d)), 0o644); err != nil {
			return err
		}
		if !p.Alive() {
			return fmt.Errorf("%s is not running (pid %d)", name, p.PID)
		}
		if err := syscall.Kill(p.PID, syscall.SIGHUP); err != nil {
			return fmt.Errorf("reloading %s: %w", name, err)
		}
	}
	return nil
}

// waitDetection waits until every router has both nodes Established with
// the hold time of d, and with d's BFD interval negotiated and Up (or no
// BFD session at all).
func (u *upper) waitDetection(ctx context.Context, d Detection) error {
	return u.waitNeighbors(ctx, func(n view.Neighbor) bool { return n.State == "Established" && detectionIs(n, d) })
}

// detectionIs reports whether a router's neighbour runs with d.
func detectionIs(n view.Neighbor, d Detection) bool {
	if time.Duration(n.HoldTime)*time.Second != d.Hold {
		return false
	}
	if d.BFD == 0 {
		return n.BFD == nil
	}
	return n.BFD != nil && n.BFD.State == "Up" && n.BFD.TxIntervalUs == d.BFD.Microseconds()
}
