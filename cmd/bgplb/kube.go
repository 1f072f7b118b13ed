//go:build !routeronly

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// kubeAgent is what the controller and the speaker share: a kubeconfig, a
// log level, the client's rate limit, and a start that gives them a
// logger, an API client config and a context that SIGTERM ends.
type kubeAgent struct {
	name                 string // the user agent: bgplb-controller, bgplb-speaker
	kubeconfig, logLevel string
	// qps and burst hold the role's defaults until the flags are parsed:
	// client-go's own (5/s, 10) would make a burst of status writes take
	// minutes.
	qps   float32
	burst int
}

func (k *kubeAgent) addFlags(f *pflag.FlagSet) {
	f.StringVar(&k.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)")
	f.StringVar(&k.logLevel, "log-level", "info", "debug, info, warn or error")
	f.Float32Var(&k.qps, "kube-api-qps", k.qps, "requests per second to the API server (status writes bound how fast a burst of Services is reported)")
	f.IntVar(&k.burst, "kube-api-burst", k.burst, "burst of requests to the API server")
}

func (k *kubeAgent) start(ctx context.Context) (context.Context, context.CancelFunc, *rest.Config, *slog.Logger, error) {
	log, err := newLogger(k.logLevel)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if k.qps <= 0 || k.burst <= 0 {
		return nil, nil, nil, nil, fmt.Errorf("--kube-api-qps %g, --kube-api-burst %d: both must be positive", k.qps, k.burst)
	}
	cfg, err := kubeConfig(k.kubeconfig, k.name)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	cfg.QPS, cfg.Burst = k.qps, k.burst
	// controller-runtime's own packages log through its global logger;
	// give them ours instead of its warning.
	ctrllog.SetLogger(logr.FromSlogHandler(log.Handler()))
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	return ctx, stop, cfg, log, nil
}

// podNamespace is the namespace this runs in, from the service account
// mount, or bgplb-system outside a pod.
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
