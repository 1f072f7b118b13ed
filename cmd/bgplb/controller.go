package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/bgplb/bgplb/controller"
)

func newControllerCmd() *cobra.Command {
	var o controller.RunOptions
	var kubeconfig, logLevel string
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the IP allocator: LoadBalancer Services get addresses from the IPPools",
		Long: `Run the controller. It gives each Service of type LoadBalancer that bgplb serves
(loadBalancerClass ` + controller.Class + `, or none with --handle-unclassed) addresses from
the IPPools, writes them to status.loadBalancer.ingress, and reports on the
Service (condition ` + controller.ConditionAllocated + ` and events) when a request cannot be met.

At start-up it rebuilds every assignment from the Services' status before it
assigns anything, so a restart never moves an address. Run two replicas with
--leader-elect for a warm standby.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			if o.HoldDown < 0 {
				return fmt.Errorf("--hold-down %v: must not be negative", o.HoldDown)
			}
			cfg, err := kubeConfig(kubeconfig, "bgplb-controller")
			if err != nil {
				return err
			}
			if o.LeaderElectionNamespace == "" {
				o.LeaderElectionNamespace = podNamespace()
			}
			// controller-runtime's own packages log through its global
			// logger; give them ours instead of its warning.
			ctrllog.SetLogger(logr.FromSlogHandler(log.Handler()))
			o.Log = log
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return controller.Run(ctx, cfg, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)")
	f.BoolVar(&o.HandleUnclassed, "handle-unclassed", true, "serve LoadBalancer Services with no loadBalancerClass")
	f.DurationVar(&o.HoldDown, "hold-down", 5*time.Minute, "how long a released address stays out of automatic assignment")
	f.IntVar(&o.Workers, "workers", 4, "Services reconciled at once")
	f.BoolVar(&o.LeaderElection, "leader-elect", true, "hold a Lease so that only one replica allocates")
	f.StringVar(&o.LeaderElectionNamespace, "leader-elect-namespace", "", "namespace of the Lease (default: the pod's, else bgplb-system)")
	f.StringVar(&o.LeaderElectionID, "leader-elect-id", "bgplb-controller", "name of the Lease")
	f.StringVar(&o.HealthAddr, "health-addr", ":7473", "address for /healthz and /readyz (empty: off)")
	f.StringVar(&o.MetricsAddr, "metrics-addr", ":7472", "address for /metrics (empty: off)")
	f.Float32Var(&o.QPS, "kube-api-qps", 50, "requests per second to the API server (status writes bound how fast a burst of Services is served)")
	f.IntVar(&o.Burst, "kube-api-burst", 100, "burst of requests to the API server")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

// podNamespace is the namespace the controller runs in, from the service
// account mount, or bgplb-system outside a pod.
func podNamespace() string {
	b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
	if err != nil || len(b) == 0 {
		return "bgplb-system"
	}
	return string(b)
}

// kubeConfig loads the client configuration: the file given, else
// $KUBECONFIG or ~/.kube/config, else the in-cluster one.
func kubeConfig(path, agent string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cfg.UserAgent = agent + "/" + buildVersion()
	return cfg, nil
}
