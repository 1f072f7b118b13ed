package view

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// FormatAge prints a duration the way routing CLIs do: 00:04:10, 3d02h.
func FormatAge(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Truncate(time.Second)
	if d >= 24*time.Hour {
		return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
	}
	return fmt.Sprintf("%02d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
}

func since(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return FormatAge(now.Sub(t))
}

// WriteNeighbors prints the session table. The Advertised column appears
// only when some neighbor has routes advertised to it (a speaker's table),
// so a router's table stays as it was; the BFD column likewise only when
// some session runs BFD ("-" for those that do not).
func WriteNeighbors(w io.Writer, ns []Neighbor, now time.Time) error {
	advertised := slices.ContainsFunc(ns, func(n Neighbor) bool { return n.Advertised != 0 })
	withBFD := slices.ContainsFunc(ns, func(n Neighbor) bool { return n.BFD != nil })
	withGR := slices.ContainsFunc(ns, func(n Neighbor) bool { return n.GracefulRestart != nil })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprint(tw, "Peer\tAS\tUp/Down\tState\t#Received\tAccepted\tRejected")
	if advertised {
		fmt.Fprint(tw, "\tAdvertised")
	}
	if withBFD {
		fmt.Fprint(tw, "\tBFD")
	}
	if withGR {
		fmt.Fprint(tw, "\tGR")
	}
	fmt.Fprintln(tw)
	for _, n := range ns {
		peer := n.Address.String()
		if n.Dynamic {
			peer += "*"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%d\t%d", peer, n.ASN, since(now, n.Since), n.State, n.Received, n.Accepted, n.Rejected)
		if advertised {
			fmt.Fprintf(tw, "\t%d", n.Advertised)
		}
		if withBFD {
			st := "-"
			if n.BFD != nil {
				st = n.BFD.State
			}
			fmt.Fprintf(tw, "\t%s", st)
		}
		if withGR {
			fmt.Fprintf(tw, "\t%s", grColumn(n.GracefulRestart, now))
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range ns {
		if n.LastError != "" && n.State != "Established" {
			fmt.Fprintf(w, "%s: %s\n", n.Address, n.LastError)
		}
	}
	return nil
}

// grColumn is a neighbor's GR column: "-" without graceful restart, "on"
// when negotiated, else the restart under way: "stale 12 paths, 00:05:59
// left".
func grColumn(g *GracefulRestart, now time.Time) string {
	switch {
	case g == nil:
		return "-"
	case g.State == "":
		return "on"
	}
	s := fmt.Sprintf("%s %d paths", g.State, g.StalePaths)
	if !g.Deadline.IsZero() {
		s += ", " + FormatAge(g.Deadline.Sub(now)) + " left"
	}
	return s
}

// WriteRIB prints RIB entries: "*>" marks the best path, "*=" the other
// members of the ECMP set, "* " the rest.
func WriteRIB(w io.Writer, es []RIBEntry, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "   Network\tNext Hop\tAS_PATH\tAge\tAttrs")
	for _, e := range es {
		for _, p := range e.Paths {
			mark := "*  "
			switch {
			case p.Best:
				mark = "*> "
			case p.Multipath:
				mark = "*= "
			}
			fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s\n", mark, e.Prefix, p.NextHop, p.ASPath, since(now, p.Since), attrs(p))
		}
	}
	return tw.Flush()
}

func attrs(p Path) string {
	parts := []string{"{Origin: " + p.Origin + "}"}
	if p.LocalPref != nil {
		parts = append(parts, "{LocalPref: "+strconv.FormatUint(uint64(*p.LocalPref), 10)+"}")
	}
	if p.MED != nil {
		parts = append(parts, "{Med: "+strconv.FormatUint(uint64(*p.MED), 10)+"}")
	}
	if len(p.Communities) > 0 {
		parts = append(parts, "{Communities: "+strings.Join(p.Communities, ", ")+"}")
	}
	if p.LinkBandwidth != nil {
		parts = append(parts, fmt.Sprintf("{LinkBandwidth: %g}", *p.LinkBandwidth))
	}
	if p.Reason != "" && !p.Best {
		parts = append(parts, "{NotBest: "+p.Reason+"}")
	}
	if p.Unusable != "" {
		parts = append(parts, "{Unusable: "+p.Unusable+"}")
	}
	if p.Stale {
		parts = append(parts, "{Stale}")
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// WriteFIB prints the kernel routes.
func WriteFIB(w io.Writer, rs []FIBRoute) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Prefix\tNext hops")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\n", r.Prefix, hopList(r.NextHops))
	}
	return tw.Flush()
}

// hopList prints next hops, with their weights when they differ; "-" for
// none.
func hopList(hs []FIBNextHop) string {
	if len(hs) == 0 {
		return "-"
	}
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.Addr.String()
		if h.Weight != 0 && len(hs) > 1 {
			out[i] += fmt.Sprintf(" (weight %d)", h.Weight)
		}
	}
	return strings.Join(out, ", ")
}

// WriteFIBCheck prints the comparison of the kernel with the RIB: a summary
// line, then the prefixes that differ.
func WriteFIBCheck(w io.Writer, c FIBCheck, now time.Time) error {
	when := fmt.Sprintf("checked %s ago, %d repairs since start", since(now, c.Checked), c.Repairs)
	if len(c.Differences) == 0 {
		_, err := fmt.Fprintf(w, "The kernel matches the RIB: %d routes (%s)\n", c.Routes, when)
		return err
	}
	fmt.Fprintf(w, "%d prefixes differ between the kernel and the RIB's %d routes (%s):\n", len(c.Differences), c.Routes, when)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Prefix\tKernel\tRIB wants")
	for _, d := range c.Differences {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", d.Prefix, d.Kind, hopList(d.Want))
	}
	return tw.Flush()
}

// WriteFIBVerdict prints one line under a kernel listing: whether it is what
// the RIB asks for, and where to look when not.
func WriteFIBVerdict(w io.Writer, c FIBCheck) error {
	if len(c.Differences) == 0 {
		_, err := fmt.Fprintf(w, "\nThe kernel matches the RIB (%d routes, %d without a usable next hop, %d repairs since start).\n",
			c.Routes, c.Unusable, c.Repairs)
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d prefixes differ from the RIB: see bgplb fib --check.\n", len(c.Differences))
	return err
}
