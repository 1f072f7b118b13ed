//go:build !routeronly

package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/bgplb/bgplb/controller"
)

func newControllerCmd() *cobra.Command {
	var o controller.RunOptions
	k := kubeAgent{name: "bgplb-controller", qps: 50, burst: 100}
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the IP allocator: LoadBalancer Services get addresses from the LoadBalancerPools",
		Long: `Run the controller. It gives each Service of type LoadBalancer that bgplb serves
(loadBalancerClass ` + controller.Class + `, or none with --handle-unclassed) addresses from
the LoadBalancerPools, writes them to status.loadBalancer.ingress, and reports on the
Service (condition ` + controller.ConditionAllocated + ` and events) when a request cannot be met.

At start-up it rebuilds every assignment from the Services' status before it
assigns anything, so a restart never moves an address. Run two replicas with
--leader-elect for a warm standby.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.HoldDown < 0 {
				return fmt.Errorf("--hold-down %v: must not be negative", o.HoldDown)
			}
			ctx, stop, cfg, log, err := k.start(cmd.Context())
			if err != nil {
				return err
			}
			defer stop()
			if o.LeaderElectionNamespace == "" {
				o.LeaderElectionNamespace = podNamespace()
			}
			o.Log = log
			o.QPS, o.Burst = k.qps, k.burst
			return controller.Run(ctx, cfg, o)
		},
	}
	f := cmd.Flags()
	k.addFlags(f)
	f.BoolVar(&o.HandleUnclassed, "handle-unclassed", true, "serve LoadBalancer Services with no loadBalancerClass")
	f.DurationVar(&o.HoldDown, "hold-down", 5*time.Minute, "how long a released address stays out of automatic assignment")
	f.IntVar(&o.Workers, "workers", 4, "Services reconciled at once")
	f.BoolVar(&o.LeaderElection, "leader-elect", true, "hold a Lease so that only one replica allocates")
	f.StringVar(&o.LeaderElectionNamespace, "leader-elect-namespace", "", "namespace of the Lease (default: the pod's, else bgplb-system)")
	f.StringVar(&o.LeaderElectionID, "leader-elect-id", "bgplb-controller", "name of the Lease")
	f.StringVar(&o.HealthAddr, "health-addr", ":7473", "address for /healthz and /readyz (empty: off)")
	f.StringVar(&o.MetricsAddr, "metrics-addr", ":7472", "address for /metrics (empty: off)")
	return cmd
}
