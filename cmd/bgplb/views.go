package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/spf13/cobra"

	"github.com/bgplb/bgplb/router"
	"github.com/bgplb/bgplb/view"
)

// speakerSocket is `bgplb speaker`'s API socket (--socket).
const speakerSocket = "/run/bgplb/speaker.sock"

// viewFlags are the flags every operator view takes.
type viewFlags struct {
	socket string
	output string
}

func (f *viewFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.socket, "socket", router.DefaultSocket, "API socket of the router or speaker")
	cmd.Flags().StringVarP(&f.output, "output", "o", "text", "output format: text or json")
}

// emit prints v as JSON, or through text when the format is text.
func (f *viewFlags) emit(w io.Writer, v any, text func(io.Writer) error) error {
	switch f.output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "text":
		return text(w)
	}
	return fmt.Errorf("--output %q: want text or json", f.output)
}

func newNeighborCmd() *cobra.Command {
	var f viewFlags
	cmd := &cobra.Command{
		Use:     "neighbor",
		Aliases: []string{"neighbors"},
		Short:   "Show the BGP sessions of a running router or speaker",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ns, err := view.NewClient(f.socket).Neighbors(cmd.Context())
			if err != nil {
				return err
			}
			return f.emit(cmd.OutOrStdout(), ns, func(w io.Writer) error { return view.WriteNeighbors(w, ns, time.Now()) })
		},
	}
	f.add(cmd)
	return cmd
}

func newL2Cmd() *cobra.Command {
	var f viewFlags
	cmd := &cobra.Command{
		Use:   "l2",
		Short: "Show the addresses a running speaker's cluster serves in L2 mode: owner, interfaces, ARP/NDP answers (* this node)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			as, err := view.NewClient(f.socket).L2(cmd.Context())
			if err != nil {
				return err
			}
			return f.emit(cmd.OutOrStdout(), as, func(w io.Writer) error { return view.WriteL2(w, as, time.Now()) })
		},
	}
	f.add(cmd)
	// The speaker's socket, not the router's: L2 mode is the speaker's.
	cmd.Flags().Lookup("socket").DefValue = speakerSocket
	f.socket = speakerSocket
	return cmd
}

func newRIBCmd() *cobra.Command {
	var f viewFlags
	var family string
	cmd := &cobra.Command{
		Use:   "rib [prefix|address]",
		Short: "Show the routes a running router or speaker holds (*> best, *= ECMP)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p netip.Prefix
			if len(args) == 1 {
				var err error
				if p, err = view.ParsePrefixOrAddr(args[0]); err != nil {
					return err
				}
			}
			es, err := view.NewClient(f.socket).RIB(cmd.Context(), family, p)
			if err != nil {
				return err
			}
			return f.emit(cmd.OutOrStdout(), es, func(w io.Writer) error { return view.WriteRIB(w, es, time.Now()) })
		},
	}
	f.add(cmd)
	cmd.Flags().StringVarP(&family, "address-family", "a", "", "ipv4 or ipv6 (default both)")
	return cmd
}

func newFIBCmd() *cobra.Command {
	var f viewFlags
	var check bool
	cmd := &cobra.Command{
		Use:   "fib",
		Short: "Show the routes a running router has installed in the kernel",
		Long: `Show the routes a running router has installed in the kernel. With --check,
show instead where the kernel differs from the router's RIB at its last
comparison, and how many routes it has repaired since it started.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if check {
				c, err := view.NewClient(f.socket).FIBCheck(cmd.Context())
				if err != nil {
					return err
				}
				return f.emit(cmd.OutOrStdout(), c, func(w io.Writer) error { return view.WriteFIBCheck(w, c, time.Now()) })
			}
			c := view.NewClient(f.socket)
			rs, err := c.FIB(cmd.Context())
			if err != nil {
				return err
			}
			return f.emit(cmd.OutOrStdout(), rs, func(w io.Writer) error {
				if err := view.WriteFIB(w, rs); err != nil {
					return err
				}
				// The listing is what the kernel has; say whether that is
				// what the RIB wants, so a difference is never silent.
				check, err := c.FIBCheck(cmd.Context())
				if err != nil {
					_, err = fmt.Fprintf(w, "\n(could not compare with the RIB: %v)\n", err)
					return err
				}
				return view.WriteFIBVerdict(w, check)
			})
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&check, "check", false, "show where the kernel differs from the RIB, and the repairs")
	return cmd
}
