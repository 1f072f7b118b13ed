//go:build !routeronly

package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/bgplb/bgplb/internal/metallb"
)

// newImportCmd converts other load balancers' configurations. It writes
// objects for review rather than applying them: a migration is checked
// before it is trusted.
func newImportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Convert another load balancer's configuration into bgplb objects",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "metallb FILE|DIR|-",
		Short: "Convert MetalLB's ConfigMap or metallb.io objects into bgplb objects (YAML on stdout)",
		Long: "Reads MetalLB's legacy ConfigMap (peers, address-pools, bgp-communities, bfd-profiles) and its\n" +
			"metallb.io objects (IPAddressPool, BGPPeer, BGPAdvertisement, L2Advertisement, Community,\n" +
			"BFDProfile) from a file, every *.yaml/*.yml/*.json of a directory, or stdin (-), and prints\n" +
			"bgplb's objects. What could not be carried is listed in comments at the top and on stderr.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := metallb.ReadPath(args[0], cmd.InOrStdin())
			if err != nil {
				return err
			}
			res := metallb.Convert(in)
			if err := res.Write(cmd.OutOrStdout()); err != nil {
				return err
			}
			for _, n := range res.Notes {
				fmt.Fprintf(cmd.ErrOrStderr(), "bgplb import: %s\n", n)
			}
			return nil
		},
	})
	return cmd
}
