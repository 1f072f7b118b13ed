//go:build !routeronly

package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/bgplb/bgplb/lab/home"
)

func newLabCmd() *cobra.Command {
	var o home.Options
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Run the seed's home lab on this machine: router, two nodes, a client, and every bgplb part",
		Long: `bgplb lab builds the home lab of the seed write-up in network namespaces (needs
root): a router running bgplb router, two Kubernetes nodes running bgplb speaker,
a LAN client, a real kube-apiserver with bgplb controller, the example config of
deploy/examples, and a Pi-hole-like DNS Service on node1. The lab keeps running
after the command; bgplb lab down removes it.`,
	}
	// The lab's API client logs nothing of its own; without a logger,
	// controller-runtime warns with a stack trace after 30 s.
	cmd.PersistentPreRun = func(*cobra.Command, []string) { ctrllog.SetLogger(logr.Discard()) }
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.StateDir, "state", "", "state directory (default /run/bgplb-lab as root, else ~/.cache/bgplb/lab)")
	out := func(c *cobra.Command) home.Options { o.Out = c.OutOrStdout(); return o }

	up := &cobra.Command{
		Use:   "up",
		Short: "Bring the lab up (safe to run again) and show the routes and a DNS answer",
		Args:  cobra.NoArgs,
		RunE:  func(c *cobra.Command, _ []string) error { return home.Up(c.Context(), out(c)) },
	}
	up.Flags().IntVar(&o.Routers, "routers", 1, "routers: 1, or 2 for the write-up's backup 4G router")
	up.Flags().BoolVar(&o.Cluster, "cluster", true, "run a real cluster: containerd, kubelet and kube-proxy in each node, bgplb installed from deploy/bgplb.yaml, the Pi-hole a Deployment (its images are built from the source tree); false plays the Kubernetes half and runs bgplb's roles as processes")
	up.Flags().StringVar(&o.Mode, "mode", home.ModeBGP, "how the client reaches the Pi-hole: bgp (the nodes announce its address to the routers) or l2 (one node answers ARP/NDP for an address on the LAN; no router sessions; real cluster only)")
	up.Flags().StringVar(&o.SourceDir, "source", "", "bgplb source tree with deploy/examples and config/ to apply instead of the ones built into this binary")
	up.Flags().StringVar(&o.BinPath, "bin", "", "bgplb binary the lab runs (default: this one)")

	status := &cobra.Command{
		Use:   "status",
		Short: "Show the lab again: processes, neighbours, RIB, kernel routes, a DNS answer",
		Args:  cobra.NoArgs,
		RunE:  func(c *cobra.Command, _ []string) error { return home.Status(c.Context(), out(c)) },
	}
	execCmd := &cobra.Command{
		Use:   "exec HOST -- CMD [ARG...]",
		Short: "Run a command in a lab host: router, router2, node1, node2, client",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			return home.Exec(c.Context(), out(c), args[0], args[1:])
		},
	}
	kubectl := &cobra.Command{
		Use:                "kubectl [ARG...]",
		Short:              "Run kubectl against the lab's API server",
		DisableFlagParsing: true,
		RunE: func(c *cobra.Command, args []string) error {
			// Flags are kubectl's, but for a leading --state.
			switch {
			case len(args) >= 2 && args[0] == "--state":
				o.StateDir, args = args[1], args[2:]
			case len(args) >= 1 && strings.HasPrefix(args[0], "--state="):
				o.StateDir, args = strings.TrimPrefix(args[0], "--state="), args[1:]
			}
			return home.Kubectl(c.Context(), out(c), args)
		},
	}
	down := &cobra.Command{
		Use:   "down",
		Short: "Remove every namespace, process and file the lab made",
		Args:  cobra.NoArgs,
		RunE:  func(c *cobra.Command, _ []string) error { return home.Down(c.Context(), out(c)) },
	}
	down.Flags().BoolVar(&o.All, "all", false, "also remove labs that no state records (an interrupted up)")
	// preflight lets `make lab` say what is missing before a long first build.
	preflight := &cobra.Command{
		Use:    "preflight",
		Short:  "Check that this machine can run the lab (root, iproute2)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE:   func(*cobra.Command, []string) error { return home.Preflight() },
	}
	cmd.AddCommand(up, status, execCmd, kubectl, down, preflight, newLabControlPlaneCmd(), newLabDNSCmd())
	cmd.AddCommand(newLabPlayCmds(out)...)
	for _, c := range cmd.Commands() {
		switch c.Name() {
		case "up", "down", "move", "fail", "heal", "restart", "bfd", "drain", "uncordon", "lease":
			interruptible(c)
		}
	}
	return cmd
}

// interruptible makes Ctrl-C (or SIGTERM) cancel a command that changes
// the lab, so that it records or removes what it made instead of dying
// half-way. exec and kubectl are left alone: their child gets the Ctrl-C
// itself and decides what to do with it.
func interruptible(c *cobra.Command) {
	stop := func() {}
	c.PreRun = func(c *cobra.Command, _ []string) {
		var ctx context.Context
		ctx, stop = signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
		c.SetContext(ctx)
	}
	c.PostRun = func(*cobra.Command, []string) { stop() }
}

// newLabPlayCmds are the commands that play the write-up's events on a
// running lab: a pod moving, a node failing and coming back, a restart.
func newLabPlayCmds(out func(*cobra.Command) home.Options) []*cobra.Command {
	move := &cobra.Command{
		Use:   "move",
		Short: "Move the Pi-hole pod to the other node and show the route following it",
		Args:  cobra.NoArgs,
		RunE:  func(c *cobra.Command, _ []string) error { return home.Move(c.Context(), out(c)) },
	}
	fail := &cobra.Command{
		Use:   "fail NODE|owner",
		Short: "Cut a node off the LAN and show the failover (the Pi-hole moves if it ran there; in L2 mode, owner names the node owning its address)",
		Args:  cobra.ExactArgs(1),
		RunE:  func(c *cobra.Command, a []string) error { return home.Fail(c.Context(), out(c), a[0]) },
	}
	heal := &cobra.Command{
		Use:   "heal NODE",
		Short: "Put a failed node back on the LAN and wait for its sessions",
		Args:  cobra.ExactArgs(1),
		RunE:  func(c *cobra.Command, a []string) error { return home.Heal(c.Context(), out(c), a[0]) },
	}
	restart := &cobra.Command{
		Use:       "restart controller|speaker|router",
		Short:     "Restart one component in place and show that nothing moved",
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"controller", "speaker", "router"},
		RunE:      func(c *cobra.Command, a []string) error { return home.Restart(c.Context(), out(c), a[0]) },
	}
	bfd := &cobra.Command{
		Use:   "bfd INTERVAL|off",
		Short: "Set how the routers notice a dead node: BFD at INTERVAL × 3 on both ends (default 300ms), or off (hold time 3s)",
		Long: `bfd sets the BFDPolicy the example BGPRouters name and every router's
peer range to INTERVAL (e.g. 50ms: a dead node is noticed in 150 ms), or with
"off" removes BFD and lowers the hold time to its minimum, 3 s. It waits until
every session runs the new settings; then "bgplb lab fail NODE" shows the figure.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, a []string) error {
			var d time.Duration
			if a[0] != "off" {
				var err error
				if d, err = time.ParseDuration(a[0]); err != nil || d <= 0 {
					return fmt.Errorf("bfd %q: want an interval such as 300ms, or off", a[0])
				}
			}
			return home.TuneBFD(c.Context(), out(c), d)
		},
	}
	drain := &cobra.Command{
		Use:   "drain NODE",
		Short: "Cordon a node (the Pi-hole rolls over if it ran there) and show its speaker draining its routes",
		Args:  cobra.ExactArgs(1),
		RunE:  func(c *cobra.Command, a []string) error { return home.Drain(c.Context(), out(c), a[0]) },
	}
	uncordon := &cobra.Command{
		Use:   "uncordon NODE",
		Short: "Put a drained node back in service",
		Args:  cobra.ExactArgs(1),
		RunE:  func(c *cobra.Command, a []string) error { return home.Uncordon(c.Context(), out(c), a[0]) },
	}
	lease := &cobra.Command{
		Use:   "lease DURATION RENEW",
		Short: "L2 mode: set the speakers' owner election timings (default 1.5s 500ms) and wait for their rolling update",
		Long: `lease sets --l2-lease-duration and --l2-renew-interval on the speaker
DaemonSet (e.g. 600ms 200ms: a dead owner's addresses move within about
600 ms), as an operator would, and waits for the rolling update; then
"bgplb lab fail owner" shows the figure.`,
		Args: cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, a []string) error {
			var l home.L2Lease
			var err1, err2 error
			l.Duration, err1 = time.ParseDuration(a[0])
			l.Renew, err2 = time.ParseDuration(a[1])
			if err1 != nil || err2 != nil {
				return fmt.Errorf("lease %s %s: want two durations, such as 600ms 200ms", a[0], a[1])
			}
			return home.TuneLease(c.Context(), out(c), l)
		},
	}
	return []*cobra.Command{move, fail, heal, restart, bfd, drain, uncordon, lease}
}

// newLabControlPlaneCmd is the detached process that owns the lab's etcd
// and kube-apiserver (they die with the process that starts them).
func newLabControlPlaneCmd() *cobra.Command {
	var cp home.ControlPlaneOptions
	cmd := &cobra.Command{
		Use:    "control-plane",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return home.RunControlPlane(ctx, cp)
		},
	}
	cmd.Flags().StringVar(&cp.StateDir, "dir", "", "state directory")
	cmd.Flags().StringVar(&cp.ID, "id", "", "lab ID")
	cmd.Flags().StringVar(&cp.CRDDir, "crds", "", "CRD directory")
	cmd.Flags().BoolVar(&cp.Cluster, "cluster", false, "also run the controller manager and scheduler, for kubelets")
	return cmd
}

// newLabDNSCmd is the Pi-hole stand-in, run detached in a node.
func newLabDNSCmd() *cobra.Command {
	var id, node, addr string
	cmd := &cobra.Command{
		Use:    "dns-responder",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			a, err := netip.ParseAddr(addr)
			if err != nil {
				return fmt.Errorf("--addr: %w", err)
			}
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return home.RunDNSResponder(ctx, id, node, a)
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "lab ID")
	cmd.Flags().StringVar(&node, "node", "", "node")
	cmd.Flags().StringVar(&addr, "addr", "", "address to answer on")
	return cmd
}
