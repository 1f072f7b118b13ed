package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/bgplb/bgplb/router"
)

func newRouterCmd() *cobra.Command {
	var configPath, logLevel string
	var check bool
	var shutdownTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "router",
		Short: "Run the router daemon: BGP from the nodes straight into the kernel FIB",
		Long: `Run the router daemon. It accepts BGP sessions from the cluster nodes (static
and dynamic neighbours), refuses routes outside the import guards, selects best
paths and ECMP sets, and programs the kernel FIB over netlink (proto bgp).

SIGHUP reloads the config: sessions whose settings did not change stay up, and a
config that does not validate leaves the running one in force.

SIGTERM closes every session with a Cease and exits within --shutdown-timeout,
whatever is in flight. The routes stay in the kernel: the next start adopts
those its peers announce again and removes the rest once every peer expected
back has sent End-of-RIB, after fib.graceTime at the latest.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := router.LoadFile(configPath)
			if err != nil {
				return err
			}
			if check {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", configPath)
				return nil
			}
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			d := router.New(cfg, router.Options{Log: log, ShutdownTimeout: shutdownTimeout})
			go reloadOnHUP(ctx, d, configPath, log)
			return d.Run(ctx)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "/etc/bgplb/router.yaml", "config file")
	cmd.Flags().BoolVar(&check, "check", false, "validate the config and exit")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().DurationVar(&shutdownTimeout, "shutdown-timeout", router.DefaultShutdownTimeout,
		"on SIGTERM, exit after this long even if the sessions have not all closed")
	return cmd
}

func reloadOnHUP(ctx context.Context, d *router.Daemon, path string, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		cfg, err := router.LoadFile(path)
		if err != nil {
			log.Error("reload refused: the running config stays in force", "err", err)
			continue
		}
		d.Reload(cfg)
	}
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}
