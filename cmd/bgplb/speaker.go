//go:build !routeronly

package main

import (
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/bgplb/bgplb/speaker"
	"github.com/bgplb/bgplb/speaker/healthcheck"
	"github.com/bgplb/bgplb/speaker/l2owner"
)

func newSpeakerCmd() *cobra.Command {
	var o speaker.Options
	// One per node: a cluster's speakers together may ask the API server
	// for nodes × this; reports wait, announcements never do.
	k := kubeAgent{name: "bgplb-speaker", qps: 20, burst: 40}
	var listen []string
	cmd := &cobra.Command{
		Use:   "speaker",
		Short: "Run the node agent: announce this node's Service addresses over BGP",
		Long: `Run the speaker, one per node (a DaemonSet on the host network). It watches
Services, EndpointSlices, its Node and the bgplb CRDs, decides what this node
announces to each BGPRouter (externalTrafficPolicy Local: only with a ready local
endpoint, and while kube-proxy's health check on the Service's healthCheckNodePort
on this node passes), keeps the BGP sessions, and reports in ServiceAnnouncement and
BGPSessionStatus objects.

A node going away (cordoned, tainted for maintenance, labelled
node.kubernetes.io/exclude-from-external-load-balancers, being deleted) is
drained (RFC 8326): its routes are announced again with the GRACEFUL_SHUTDOWN
community for --drain-time, then withdrawn; undone, they come back as before.

On SIGTERM, a speaker whose node is going away, or whose DaemonSet is deleted
or no longer selects the node, drains, withdraws every route and closes each
session with a Cease / Administrative Shutdown carrying "node <name> shutting
down". Any other SIGTERM is a restart (a rolling update): sessions with
BGPRouter spec.gracefulRestart are left without a NOTIFICATION, so the routers
keep the routes (RFC 4724) until the new process sends them again; the others
close as above. Losing the API server withdraws nothing: the last known plan
stays announced.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, a := range listen {
				ap, err := netip.ParseAddrPort(a)
				if err != nil {
					return fmt.Errorf("--listen %q: %w", a, err)
				}
				o.ListenAddrs = append(o.ListenAddrs, ap)
			}
			ctx, stop, cfg, log, err := k.start(cmd.Context())
			if err != nil {
				return err
			}
			defer stop()
			if o.NodeName == "" {
				o.NodeName = os.Getenv("NODE_NAME")
			}
			if o.Namespace == "" {
				o.Namespace = podNamespace()
			}
			if o.PodName == "" {
				o.PodName = os.Getenv("POD_NAME")
			}
			o.Log = log
			return speaker.Run(ctx, cfg, o)
		},
	}
	f := cmd.Flags()
	k.addFlags(f)
	f.StringVar(&o.NodeName, "node-name", "", "this node's name (default $NODE_NAME)")
	f.StringVar(&o.Namespace, "namespace", "", "the one namespace password Secrets are read from (default: the pod's, else bgplb-system); a BGPRouter naming another is refused")
	f.BoolVar(&o.HandleUnclassed, "handle-unclassed", true, "announce LoadBalancer Services with no loadBalancerClass (match the controller)")
	f.StringVar(&o.APISocket, "socket", speakerSocket, "local API socket for bgplb neighbor / rib / l2 (empty: off)")
	f.StringSliceVar(&listen, "listen", nil, "addresses to accept BGP sessions on, for passive BGPRouters (e.g. 0.0.0.0:179,[::]:179)")
	f.StringVar(&o.MetricsAddr, "metrics-addr", "127.0.0.1:7474", "address for /metrics and /debug/pprof/, unauthenticated: on the host network keep it local or on the node's address, e.g. $(NODE_IP):7474 (empty: off)")
	f.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long SIGTERM waits for withdrawals and NOTIFICATIONs")
	f.DurationVar(&o.DrainTime, "drain-time", speaker.DefaultDrainTime, "how long a node going away announces with GRACEFUL_SHUTDOWN before it withdraws (negative: withdraw at once); with --shutdown-timeout within the pod's termination grace period")
	f.DurationVar(&o.RestartTime, "graceful-restart-time", speaker.DefaultRestartTime, "restart time announced to BGPRouters with spec.gracefulRestart: how long they keep this node's routes while its speaker restarts (1s to 4095s)")
	f.StringVar(&o.PodName, "pod-name", "", "this speaker's pod, whose DaemonSet tells a SIGTERM for good from a restart (default $POD_NAME)")
	hc := &o.HealthCheck
	f.DurationVar(&hc.Interval, "health-check-interval", healthcheck.DefaultInterval, "how often kube-proxy's health check (healthCheckNodePort) of each externalTrafficPolicy Local Service with a local endpoint is probed on this node's address; a failing one withholds the Service here (0: no probes, the endpoints alone decide)")
	f.DurationVar(&hc.Timeout, "health-check-timeout", healthcheck.DefaultTimeout, "how long one health check probe waits for kube-proxy's answer")
	f.IntVar(&hc.Rise, "health-check-rise", healthcheck.DefaultRise, "consecutive passing probes that bring a failed health check back")
	f.IntVar(&hc.Fall, "health-check-fall", healthcheck.DefaultFall, "consecutive failing probes that withhold a Service (a Service's first probe decides alone)")
	f.DurationVar(&o.L2.LeaseDuration, "l2-lease-duration", l2owner.DefaultLeaseDuration, "L2 mode: how long a node's heartbeat Lease holds its addresses after it stops renewing, i.e. the failover time when a node dies")
	f.DurationVar(&o.L2.RenewInterval, "l2-renew-interval", l2owner.DefaultRenewInterval, "L2 mode: how often each node renews its heartbeat Lease (its whole API load in L2 mode, whatever the number of addresses); below --l2-lease-duration/2")
	return cmd
}
