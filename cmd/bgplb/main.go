// Command bgplb is a bare-metal load balancer for Kubernetes announced over
// BGP. One binary carries every role (controller, speaker, router, neighbor,
// rib, fib, lab); each role is a subcommand. Built with the routeronly tag
// (make build-router), it carries the router's roles alone, for the router
// box: the same commands, without the Kubernetes client's memory.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCmd().ExecuteContext(context.Background()); err != nil {
		// Plain text, not a log record: errors that say what to do run over
		// several lines and must read as written.
		fmt.Fprintf(os.Stderr, "bgplb: %v\n", err)
		os.Exit(1)
	}
}

// newRootCmd builds the whole command tree. It holds no state of its own, so
// tests can build and run as many trees as they like.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "bgplb",
		Short:         "Bare-metal load balancer for Kubernetes, announced over BGP",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newVersionCmd(), newRouterCmd(), newNeighborCmd(), newRIBCmd(), newFIBCmd(), newL2Cmd())
	root.AddCommand(kubeCmds()...)
	return root
}
