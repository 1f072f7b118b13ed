package bench

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

// runResult is one daemon's figures from one run.
type runResult struct {
	Install   time.Duration // first UPDATE sent until all N are counted
	Gone      time.Duration // connection reset until none is left
	IngestCPU time.Duration // CPU spent between the two
	CPU       time.Duration // CPU over the whole run, start-up included
	PeakRSS   int64         // bytes, VmHWM summed over the daemon's processes
}

// compareRow is one daemon's medians, in seconds and megabytes.
type compareRow struct {
	Name string
	// Kernel: the figures are the kernel's; else the daemon's own RIB (it
	// cannot program the kernel).
	Kernel                        bool
	Install, Gone, IngestCPU, CPU float64
	PeakMB                        float64
}

// medianRow folds one daemon's runs into medians.
func medianRow(name string, kernel bool, runs []runResult) compareRow {
	col := func(f func(runResult) float64) float64 {
		xs := make([]float64, len(runs))
		for i, r := range runs {
			xs[i] = f(r)
		}
		return Median(xs)
	}
	secs := func(d time.Duration) float64 { return d.Seconds() }
	return compareRow{
		Name: name, Kernel: kernel,
		Install:   col(func(r runResult) float64 { return secs(r.Install) }),
		Gone:      col(func(r runResult) float64 { return secs(r.Gone) }),
		IngestCPU: col(func(r runResult) float64 { return secs(r.IngestCPU) }),
		CPU:       col(func(r runResult) float64 { return secs(r.CPU) }),
		PeakMB:    col(func(r runResult) float64 { return float64(r.PeakRSS) / 1e6 }),
	}
}

// formatCompare prints the rows as a table; the first row is the
// reference, and every other figure comes with its ratio to it (2.0x: twice
// bgplb's time or memory).
func formatCompare(rows []compareRow) string {
	if len(rows) == 0 {
		return ""
	}
	ref := rows[0]
	ratio := func(v, r float64) string {
		if r == 0 {
			return fmt.Sprintf("%.2f", v)
		}
		return fmt.Sprintf("%.2f (%.1fx)", v, v/r)
	}
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "daemon\tin kernel s\tgone after drop s\tingest CPU s\ttotal CPU s\tpeak RSS MB\t")
	for _, r := range rows {
		name := r.Name
		if !r.Kernel {
			name += " (RIB only)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t\n", name, ratio(r.Install, ref.Install), ratio(r.Gone, ref.Gone),
			ratio(r.IngestCPU, ref.IngestCPU), ratio(r.CPU, ref.CPU), ratio(r.PeakMB, ref.PeakMB))
	}
	w.Flush()
	return b.String()
}
