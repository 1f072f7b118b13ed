package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Usage is what the kernel says a daemon's processes cost, summed over them
// (FRR is bgpd plus zebra).
type Usage struct {
	PeakRSS int64         // bytes, VmHWM: the high-water resident set
	RSS     int64         // bytes, VmRSS now
	CPU     time.Duration // utime + stime
}

// userHZ is the unit of utime and stime in /proc/PID/stat: USER_HZ is 100
// on every Linux architecture, whatever the kernel's own HZ.
const userHZ = 100

// ReadUsage reads /proc for each pid and sums.
func ReadUsage(pids ...int) (Usage, error) {
	var u Usage
	for _, pid := range pids {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return Usage{}, fmt.Errorf("bench: usage of %d: %w", pid, err)
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return Usage{}, fmt.Errorf("bench: usage of %d: %w", pid, err)
		}
		hwm, rss, err := parseStatus(status)
		if err != nil {
			return Usage{}, fmt.Errorf("bench: /proc/%d/status: %w", pid, err)
		}
		cpu, err := parseStatCPU(stat)
		if err != nil {
			return Usage{}, fmt.Errorf("bench: /proc/%d/stat: %w", pid, err)
		}
		u.PeakRSS += hwm
		u.RSS += rss
		u.CPU += cpu
	}
	return u, nil
}

// parseStatus returns VmHWM and VmRSS from /proc/PID/status, in bytes.
func parseStatus(data []byte) (hwm, rss int64, err error) {
	found := 0
	for line := range strings.SplitSeq(string(data), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmHWM" && key != "VmRSS") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", key, err)
		}
		if key == "VmHWM" {
			hwm = kb << 10
		} else {
			rss = kb << 10
		}
		found++
	}
	if found != 2 {
		return 0, 0, errors.New("no VmHWM and VmRSS (a kernel thread or a zombie?)")
	}
	return hwm, rss, nil
}

// parseStatCPU returns utime+stime from /proc/PID/stat. The command name
// (field 2) is in parentheses and may hold spaces, so fields count from the
// last ')'.
func parseStatCPU(data []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, errors.New("no command name")
	}
	// After ")": state is field 3, utime field 14, stime field 15.
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields", len(f)+2)
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// KernelRoutes counts the IPv4 prefixes of the main table in the namespace
// of process pid from /proc/PID/net/fib_triestat: the kernel walks its trie
// and prints a few lines, which costs milliseconds at a million routes where
// a netlink dump costs a second and formats every route.
func KernelRoutes(pid int) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/fib_triestat", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: kernel routes: %w", err)
	}
	return parseTrieStat(data)
}

// parseTrieStat returns the "Prefixes" count of the "Main:" table. With no
// policy rules the kernel merges the local table into main, so the count
// includes local and connected routes: callers subtract a baseline taken
// before the daemon installs anything.
func parseTrieStat(data []byte) (int, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	inMain := false
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "\t") && !strings.HasPrefix(line, " ") {
			inMain = strings.HasPrefix(line, "Main:")
			continue
		}
		if !inMain {
			continue
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Prefixes:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, errors.New("bench: fib_triestat has no Main table prefix count")
}

// Median of xs (the mean of the middle two for an even count); NaN-free
// input assumed, 0 for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Listening reports whether a TCP socket listens on port in the namespace
// of process pid, from /proc/PID/net/tcp (IPv4) and tcp6.
func Listening(pid int, port uint16) (bool, error) {
	for _, f := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			return false, fmt.Errorf("bench: sockets: %w", err)
		}
		if listensOn(data, port) {
			return true, nil
		}
	}
	return false, nil
}

// listensOn scans /proc/net/tcp lines: "sl local_address rem_address st",
// the address as hex IP:PORT and the state 0A for LISTEN.
func listensOn(data []byte, port uint16) bool {
	want := fmt.Sprintf(":%04X", port)
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 3 && strings.HasSuffix(f[1], want) && f[3] == "0A" {
			return true
		}
	}
	return false
}
