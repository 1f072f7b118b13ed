package controller

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/metricsrv"
)

// RunOptions configure a whole controller process.
type RunOptions struct {
	Options
	// LeaderElection runs the controller only while it holds the Lease
	// LeaderElectionID in LeaderElectionNamespace, so that replicas can
	// stand by.
	LeaderElection          bool
	LeaderElectionNamespace string
	LeaderElectionID        string
	// LeaseDuration, RenewDeadline and RetryPeriod tune the election; zero
	// takes the defaults (15 s, 10 s, 2 s).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// HealthAddr serves /healthz and /readyz; MetricsAddr serves /metrics.
	// Empty disables either.
	HealthAddr, MetricsAddr string
	// QPS and Burst limit the client's requests to the API server; zero
	// keeps cfg's own limits.
	QPS   float32
	Burst int
	// Started, if set, receives the reconciler once it is built.
	Started func(*Reconciler)
}

// Run is `bgplb controller`: it runs until ctx ends or leadership is lost.
func Run(ctx context.Context, cfg *rest.Config, o RunOptions) error {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		return err
	}
	if err := discoveryv1.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	if o.QPS != 0 {
		cfg = rest.CopyConfig(cfg)
		cfg.QPS, cfg.Burst = o.QPS, o.Burst
	}
	if o.LeaderElectionID == "" {
		o.LeaderElectionID = "bgplb-controller"
	}
	health := o.HealthAddr
	if health == "" {
		health = "0"
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Logger:                        logr.FromSlogHandler(o.Log.Handler()),
		LeaderElection:                o.LeaderElection,
		LeaderElectionNamespace:       o.LeaderElectionNamespace,
		LeaderElectionID:              o.LeaderElectionID,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 durationOr(o.LeaseDuration),
		RenewDeadline:                 durationOr(o.RenewDeadline),
		RetryPeriod:                   durationOr(o.RetryPeriod),
		HealthProbeBindAddress:        health,
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		Cache: cache.Options{
			// Managed fields are most of a small object's size and are
			// never read here.
			DefaultTransform: cache.TransformStripManagedFields(),
			ByObject:         map[client.Object]cache.ByObject{&discoveryv1.EndpointSlice{}: endpointSliceCache()},
		},
	})
	if err != nil {
		return fmt.Errorf("controller manager: %w", err)
	}
	if o.L2LeaseNamespace == "" {
		// The manifests run the controller beside the speakers, and its
		// Role (which lets it read Leases) is in its own namespace.
		o.L2LeaseNamespace = o.LeaderElectionNamespace
	}
	r, err := Setup(mgr, o.Options)
	if err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("assignments", r.ReadyCheck(mgr.Elected())); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	if err := r.Register(reg); err != nil {
		return err
	}
	// No Go and process collectors here: controller-runtime's registry,
	// gathered beside this one, has them already, and a metric gathered
	// twice fails the whole scrape.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if o.MetricsAddr != "" {
		ln, err := metricsrv.Listen(o.MetricsAddr)
		if err != nil {
			return fmt.Errorf("metrics address: %w", err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := metricsrv.Serve(ctx, ln, prometheus.Gatherers{reg, ctrlmetrics.Registry}, o.Log, nil); err != nil {
				o.Log.Error("metrics server", "err", err)
			}
		}()
		defer func() { cancel(); <-done }()
	}
	if o.Started != nil {
		o.Started(r)
	}
	o.Log.Info("bgplb controller starting", "leaderElection", o.LeaderElection,
		"handleUnclassed", o.HandleUnclassed, "holdDown", o.HoldDown)
	return mgr.Start(ctx)
}

func durationOr(d time.Duration) *time.Duration {
	if d == 0 {
		return nil
	}
	return &d
}
