package home

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bgplb/bgplb/internal/controlplane"
	"github.com/bgplb/bgplb/lab/seed"
	"github.com/bgplb/bgplb/view"
)

// healthy reports whether every process of the state runs and the lab's
// namespaces exist.
func (st *State) healthy() bool {
	if st.ID == "" {
		return false
	}
	if _, err := seed.Open(st.ID); err != nil {
		return false
	}
	for _, p := range st.allProcs() {
		if !p.Alive() {
			return false
		}
	}
	return true
}

// open loads the state and opens its lab.
func open(o *Options) (*State, *seed.Seed, error) {
	if err := o.defaults(); err != nil {
		return nil, nil, err
	}
	if err := Preflight(); err != nil {
		return nil, nil, err
	}
	st, err := LoadState(o.StateDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("%w (no state in %s)", errNoLab, o.StateDir)
	}
	if err != nil {
		return nil, nil, err
	}
	if st.ID == "" {
		return nil, nil, fmt.Errorf("%w (an up did not finish building it: `bgplb lab up` starts over)", errNoLab)
	}
	if st.Bin != "" {
		o.BinPath = st.Bin
	}
	s, err := seed.Open(st.ID)
	if err != nil {
		return st, nil, fmt.Errorf("lab %s in %s: %w; `bgplb lab down` cleans up, `bgplb lab up` starts again", st.ID, o.StateDir, err)
	}
	return st, s, nil
}

// openLocked is open for the commands that change the lab; they hold the
// state directory's lock until the returned function runs.
func openLocked(o *Options) (*State, *seed.Seed, func(), error) {
	if err := o.defaults(); err != nil {
		return nil, nil, nil, err
	}
	if _, err := os.Stat(o.StateDir); err != nil {
		return nil, nil, nil, fmt.Errorf("%w (no state in %s)", errNoLab, o.StateDir)
	}
	unlock, err := acquire(o)
	if err != nil {
		return nil, nil, nil, err
	}
	st, s, err := open(o)
	if err != nil {
		unlock()
		return nil, nil, nil, err
	}
	return st, s, unlock, nil
}

// Status shows the lab again: its processes and what Up showed.
func Status(ctx context.Context, o Options) error {
	st, s, err := open(&o)
	if err != nil {
		return err
	}
	fmt.Fprint(o.Out, s.Describe())
	fmt.Fprintf(o.Out, "kube-apiserver %s; KUBECONFIG=%s\n\n", st.APIServer, st.Kubeconfig)
	tw := tabwriter.NewWriter(o.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS\tHOST\tPID\tSTATE\tLOG")
	procs := st.allProcs()
	names := slices.Sorted(maps.Keys(procs))
	bad := 0
	for _, n := range names {
		p := procs[n]
		state, host := "running", p.Host
		if !p.Alive() {
			state, bad = "DEAD", bad+1
		}
		if host == "" {
			host = "(root)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", n, host, p.PID, state, p.Log)
	}
	tw.Flush()
	fmt.Fprintln(o.Out)
	if !st.Ready {
		fmt.Fprintln(o.Out, "Up did not finish: `bgplb lab up` removes this lab and starts again.")
	}
	if bad > 0 {
		fmt.Fprintf(o.Out, "%d process(es) died: read their logs; `bgplb lab down && bgplb lab up` starts afresh.\n\n", bad)
	}
	if k, err := newKube(st.Kubeconfig); err != nil {
		fmt.Fprintf(o.Out, "the cluster: %v\n\n", err)
	} else {
		if st.Cluster {
			if err := clusterStatus(ctx, o.Out, k); err != nil {
				fmt.Fprintf(o.Out, "the cluster: %v\n", err)
			}
			fmt.Fprintln(o.Out)
		}
		if err := objectStatus(ctx, o.Out, k); err != nil {
			fmt.Fprintf(o.Out, "bgplb's status objects: %v\n", err)
		}
		fmt.Fprintln(o.Out)
	}
	return show(ctx, o.Out, s, st)
}

// show prints what the write-up shows: the router's neighbours and RIB,
// its kernel's bgp routes, and a DNS answer the client got through it.
func show(ctx context.Context, w io.Writer, s *seed.Seed, st *State) error {
	if st.l2() {
		return showL2(ctx, w, s, st)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var errs []error
	for i := 1; i <= st.Routers; i++ {
		name := seed.RouterName(i)
		sock := st.Procs[name].Socket
		c := view.NewClient(sock)
		fmt.Fprintf(w, "$ bgplb neighbor --socket %s        # on %s\n", sock, name)
		if ns, err := c.Neighbors(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s neighbours: %w", name, err))
		} else {
			_ = view.WriteNeighbors(w, ns, time.Now())
		}
		fmt.Fprintf(w, "\n$ bgplb rib --socket %s\n", sock)
		if es, err := c.RIB(ctx, "", netip.Prefix{}); err != nil {
			errs = append(errs, fmt.Errorf("%s RIB: %w", name, err))
		} else {
			_ = view.WriteRIB(w, es, time.Now())
		}
		fmt.Fprintf(w, "\n$ bgplb lab exec %s -- ip route show proto bgp\n", name)
		out, err := s.Host(name).Run(ctx, "ip", "route", "show", "proto", "bgp")
		if err != nil {
			errs = append(errs, fmt.Errorf("%s routes: %w", name, err))
		}
		fmt.Fprintf(w, "%s\n", strings.TrimRight(string(out), "\n"))
	}
	// The lab asks itself rather than running dig, which may not be installed.
	fmt.Fprintf(w, "\n# on client: pihole.lab? asked of %s, through the router\n", PiholeVIP)
	a, err := s.Query(ctx, seed.Client, PiholeVIP, "pihole.lab.", false)
	if err != nil {
		errs = append(errs, fmt.Errorf("DNS from the client: %w", err))
		fmt.Fprintf(w, "no answer: %v\n", err)
	} else {
		addrs := make([]string, len(a.Addrs))
		for i, x := range a.Addrs {
			addrs[i] = x.String()
		}
		fmt.Fprintf(w, "%s A %s, answered by the Pi-hole on %s\n", a.Name, strings.Join(addrs, " "), a.Node)
	}
	return errors.Join(errs...)
}

// Exec runs argv in a lab host (router, router2, node1, node2, client)
// with the caller's standard streams.
func Exec(ctx context.Context, o Options, host string, argv []string) error {
	if len(argv) == 0 {
		return errors.New("no command: bgplb lab exec HOST -- CMD [ARG...]")
	}
	st, s, err := open(&o)
	if err != nil {
		return err
	}
	ns := s.Host(host)
	if ns == nil || strings.HasPrefix(host, "sw-") {
		var hosts []string
		for _, h := range s.Hosts() {
			hosts = append(hosts, h.Name)
		}
		return fmt.Errorf("no host %q in lab %s; hosts: %s", host, st.ID, strings.Join(hosts, ", "))
	}
	cmd := ns.Command(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, o.Out, os.Stderr
	return cmd.Run()
}

// Kubectl runs kubectl against the lab's API server; without kubectl it
// says which kubeconfig to use.
func Kubectl(ctx context.Context, o Options, args []string) error {
	st, _, err := open(&o)
	if err != nil {
		return err
	}
	bin, err := kubectlPath()
	if err != nil {
		return fmt.Errorf("%w; build it with `make k8sbin`, or point yours at the lab with\n  export KUBECONFIG=%s", err, st.Kubeconfig)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+st.Kubeconfig)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, o.Out, os.Stderr
	return cmd.Run()
}

// kubectlPath prefers the kubectl hack/k8sbin.sh built beside the API
// server (same version, there on a machine with no kubectl) over PATH's.
func kubectlPath() (string, error) {
	if dir, err := controlplane.BinDir(); err == nil {
		p := filepath.Join(dir, "kubectl")
		if _, err := exec.LookPath(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("kubectl")
	if err != nil {
		return "", errors.New("no kubectl beside the lab's kube-apiserver or on PATH")
	}
	return p, nil
}
