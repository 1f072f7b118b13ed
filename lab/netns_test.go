package lab_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/labtest"
)

func TestNetnsLifecycle(t *testing.T) {
	labtest.Require(t)
	ctx := labtest.Context(t, 30*time.Second)
	ns, err := lab.NewNetns(ctx, "lt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	if names, _ := lab.ListNetns(ns.Name); !slices.Contains(names, ns.Name) {
		t.Fatalf("namespace %s not listed: %v", ns.Name, names)
	}
	out, err := ns.Run(ctx, "ip", "-o", "link", "show", "lo")
	if err != nil || !strings.Contains(string(out), "UP") {
		t.Fatalf("lo not up in %s: %v %s", ns.Name, err, out)
	}
	for key, want := range map[string]string{"net.ipv6.conf.default.accept_dad": "0", "net/ipv6/conf/all/accept_dad": "0"} {
		if got, err := ns.Sysctl(key); err != nil || got != want {
			t.Errorf("%s = %q (%v), want %q", key, got, err, want)
		}
	}
	// One process through Start, one behind our back: Close kills both.
	own, err := ns.Start(ctx, "sleep", "600")
	if err != nil {
		t.Fatal(err)
	}
	stranger := exec.Command("ip", "netns", "exec", ns.Name, "sleep", "601")
	stranger.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := stranger.Start(); err != nil {
		t.Fatal(err)
	}
	strangerDone := make(chan error, 1)
	go func() { strangerDone <- stranger.Wait() }()
	// Start returns once its process is inside; the stranger gets there
	// a moment after its fork.
	if pids, err := ns.Pids(ctx); err != nil || !slices.Contains(pids, own.PID()) {
		t.Fatalf("pids %v (%v) lack %d right after Start", pids, err, own.PID())
	}
	if err := lab.Poll(ctx, 5*time.Millisecond, func() (bool, error) {
		pids, err := ns.Pids(ctx)
		return slices.Contains(pids, stranger.Process.Pid), err
	}); err != nil {
		t.Fatalf("the stranger %d never entered %s: %v", stranger.Process.Pid, ns.Name, err)
	}
	if err := ns.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ns.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if names, _ := lab.ListNetns(ns.Name); len(names) != 0 {
		t.Errorf("namespace left behind: %v", names)
	}
	if exited, _ := own.Exited(); !exited {
		t.Errorf("%s survived Close", own)
	}
	select {
	case <-strangerDone:
	case <-time.After(5 * time.Second):
		t.Errorf("a process started behind lab's back survived Close")
		stranger.Process.Kill()
	}
	if _, err := os.Stat(ns.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("scratch dir %s left behind: %v", ns.Dir, err)
	}
	if _, err := ns.Start(ctx, "true"); err == nil {
		t.Error("Start in a closed namespace succeeded")
	}
}

func TestCreateNetnsRejectsBadNames(t *testing.T) {
	labtest.Require(t)
	for _, name := range []string{"", "../etc", "a b", strings.Repeat("x", 64), "-x"} {
		if ns, err := lab.CreateNetns(context.Background(), name); err == nil {
			ns.Close()
			t.Errorf("CreateNetns(%q) succeeded", name)
		}
	}
}

// inode identifies a network namespace.
func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestDo(t *testing.T) {
	ns := labtest.Netns(t, "lt")
	ctx := labtest.Context(t, 30*time.Second)
	rootNS := inode(t, "/proc/self/ns/net")

	var ln net.Listener
	err := ns.Do(func() error {
		if got, want := inode(t, "/proc/thread-self/ns/net"), inode(t, ns.Path()); got != want {
			return fmt.Errorf("inside Do the thread is in namespace %d, want %d", got, want)
		}
		ifs, err := net.Interfaces()
		if err != nil {
			return err
		}
		if len(ifs) != 1 || ifs[0].Name != "lo" {
			return fmt.Errorf("interfaces inside Do: %v, want only lo", ifs)
		}
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if got := inode(t, "/proc/thread-self/ns/net"); got != rootNS {
		t.Errorf("caller's thread moved to namespace %d", got)
	}
	// The socket lives in the namespace: ss there sees it.
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	out, err := ns.Run(ctx, "ss", "-Hltn", "sport", "= :"+port)
	if err != nil || !strings.Contains(string(out), port) {
		t.Errorf("listener on port %s not visible in %s: %v %s", port, ns.Name, err, out)
	}

	boom := errors.New("boom")
	if err := ns.Do(func() error { return boom }); !errors.Is(err, boom) {
		t.Errorf("Do returned %v, want boom", err)
	}
	func() {
		defer func() {
			if r := recover(); r != "inside" {
				t.Errorf("recovered %v, want the panic from inside Do", r)
			}
		}()
		_ = ns.Do(func() error { panic("inside") })
	}()
}

func TestForwardingStaysInNamespace(t *testing.T) {
	ns := labtest.Netns(t, "lt")
	ctx := labtest.Context(t, 30*time.Second)
	before, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.EnableForwarding(ctx, true, true); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"} {
		if v, err := ns.Sysctl(k); err != nil || v != "1" {
			t.Errorf("%s = %q (%v) in %s, want 1", k, v, err, ns.Name)
		}
	}
	out, err := ns.Run(ctx, "sysctl", "-n", "net.ipv4.ip_forward")
	if err != nil || strings.TrimSpace(string(out)) != "1" {
		t.Errorf("sysctl(8) inside sees ip_forward=%q (%v)", out, err)
	}
	after, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil || string(after) != string(before) {
		t.Errorf("root namespace ip_forward changed: %q -> %q (%v)", before, after, err)
	}
}

func TestProc(t *testing.T) {
	ns := labtest.Netns(t, "lt")
	ctx := labtest.Context(t, 30*time.Second)

	t.Run("logs and exit", func(t *testing.T) {
		p, err := ns.Start(ctx, "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 4")
		if err != nil {
			t.Fatal(err)
		}
		err = p.Wait(ctx)
		var ee interface{ ExitCode() int }
		if !errors.As(err, &ee) || ee.ExitCode() != 4 {
			t.Errorf("Wait: %v, want exit status 4", err)
		}
		if logs := p.Logs(); !strings.Contains(logs, "to-stdout") || !strings.Contains(logs, "to-stderr") {
			t.Errorf("logs %q lack the output", logs)
		}
		if err := p.Stop(); !errors.Is(err, lab.ErrExited) {
			t.Errorf("Stop after exit: %v, want ErrExited", err)
		}
	})
	t.Run("SIGTERM", func(t *testing.T) {
		p, err := ns.Start(ctx, "sleep", "600")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := p.Stop(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("sleep took %v to stop on SIGTERM", d)
		}
	})
	t.Run("SIGKILL after the timeout, children too", func(t *testing.T) {
		// The shell ignores SIGTERM; so does its child, which would keep
		// the namespace busy if Stop did not kill the whole group.
		p, err := ns.StartWith(ctx, lab.StartOptions{StopTimeout: 200 * time.Millisecond}, "sh", "-c",
			`trap "" TERM; sh -c 'trap "" TERM; sleep 600' & echo ready; wait`)
		if err != nil {
			t.Fatal(err)
		}
		if err := lab.Poll(ctx, 10*time.Millisecond, func() (bool, error) {
			return strings.Contains(p.Logs(), "ready"), nil
		}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := p.Stop(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 200*time.Millisecond {
			t.Errorf("stopped after %v, before the SIGTERM timeout: the trap did not hold", d)
		}
		if err := lab.Poll(ctx, 10*time.Millisecond, func() (bool, error) {
			pids, err := ns.Pids(ctx)
			return len(pids) == 0, err
		}); err != nil {
			pids, _ := ns.Pids(ctx)
			t.Errorf("processes left in the namespace: %v", pids)
		}
	})
	t.Run("missing binary", func(t *testing.T) {
		p, err := ns.Start(ctx, "/nonexistent/daemon")
		if err == nil {
			// ip netns exec starts, then fails to exec: the process ends at once.
			if werr := p.Wait(ctx); werr == nil {
				t.Error("a missing binary ran successfully")
			}
		}
	})
}

func TestLAN(t *testing.T) {
	hosts := []lab.HostSpec{
		{Name: "router", Addrs: []netip.Prefix{pfx("198.51.100.1/24"), pfx("2001:db8::1/64")}},
		{Name: "node1", Addrs: []netip.Prefix{pfx("198.51.100.11/24"), pfx("2001:db8::11/64")}},
		{Name: "client", Ifname: "lan0", Addrs: []netip.Prefix{pfx("198.51.100.100/24"), pfx("2001:db8::100/64")}},
	}
	l, lan := labtest.LAN(t, hosts...)
	// A second lab with the same host names and addresses must not collide.
	l2, _ := labtest.LAN(t, hosts...)
	ctx := labtest.Context(t, 60*time.Second)
	if l.ID == l2.ID {
		t.Fatalf("two labs got the same ID %s", l.ID)
	}
	if got, want := l.Hosts(), []string{"client", "node1", "router", "sw-lan"}; !slices.Equal(got, want) {
		t.Errorf("hosts %v, want %v", got, want)
	}
	for _, h := range hosts {
		ns := l.Host(h.Name)
		ifname := h.Ifname
		if ifname == "" {
			ifname = lab.DefaultIfname
		}
		addrs, err := ns.Addrs(ctx, ifname)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range h.Addrs {
			if !slices.Contains(addrs, lab.Addr{Prefix: want}) {
				t.Errorf("%s %s: addresses %v lack usable %s", h.Name, ifname, addrs, want)
			}
		}
	}
	ping := func(from, to string) error {
		_, err := l.Host(from).Run(ctx, "ping", "-c", "1", "-W", "1", to)
		return err
	}
	for _, to := range []string{"198.51.100.1", "198.51.100.11", "2001:db8::1", "2001:db8::11"} {
		if err := ping("client", to); err != nil {
			t.Errorf("client cannot reach %s: %v", to, err)
		}
	}
	if a, ok := lan.Addr("node1", 6); !ok || a != addr("2001:db8::11") {
		t.Errorf("lan.Addr(node1, 6) = %v, %v", a, ok)
	}

	// Unplug node1: the client loses it, the router stays reachable.
	if err := lan.SetLink(ctx, "node1", false); err != nil {
		t.Fatal(err)
	}
	if err := ping("client", "198.51.100.11"); err == nil {
		t.Error("node1 reachable with its cable pulled")
	}
	if err := ping("client", "198.51.100.1"); err != nil {
		t.Errorf("router unreachable after node1 was unplugged: %v", err)
	}
	if err := lan.SetLink(ctx, "node1", true); err != nil {
		t.Fatal(err)
	}
	if err := lab.Poll(ctx, 50*time.Millisecond, func() (bool, error) { return ping("client", "198.51.100.11") == nil, nil }); err != nil {
		t.Errorf("node1 unreachable after plugging it back: %v", err)
	}
	if err := l.Connect(ctx, "lan", lab.HostSpec{Name: "node1"}); err == nil {
		t.Error("connecting node1 twice succeeded")
	}
	if err := lan.SetLink(ctx, "ghost", false); err == nil {
		t.Error("SetLink of a host not on the LAN succeeded")
	}
}

func TestOpenFindsLabByID(t *testing.T) {
	labtest.Require(t)
	ctx := labtest.Context(t, 30*time.Second)
	l, _, err := lab.NewLAN(ctx, "lt", lab.HostSpec{Name: "router", Addrs: []netip.Prefix{pfx("198.51.100.1/24")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	p, err := l.Host("router").StartWith(ctx, lab.StartOptions{Detach: true}, "sleep", "600")
	if err != nil {
		t.Fatal(err)
	}
	// Another process would do this: `bgplb lab down`.
	again, err := lab.Open(l.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := again.Hosts(), []string{"router", "sw-lan"}; !slices.Equal(got, want) {
		t.Fatalf("Open found hosts %v, want %v", got, want)
	}
	if got, want := again.Host("router").Dir, l.Host("router").Dir; got != want {
		t.Errorf("reopened scratch dir %s, want %s (where the logs are)", got, want)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
	if names, _ := lab.ListNetns(l.ID); len(names) != 0 {
		t.Errorf("namespaces left: %v", names)
	}
	if err := p.Wait(ctx); err == nil {
		t.Error("detached process survived the lab's removal")
	}
	if _, err := os.Stat(l.Host("router").Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("scratch dir left behind: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("closing the original after Open's Close: %v", err)
	}
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

// TestRoutesFromKernel installs each kind of route the router will write
// (single path, RTA_MULTIPATH, nexthop objects and groups, IPv6, another
// table) and reads them back through Routes.
func TestRoutesFromKernel(t *testing.T) {
	l, _ := labtest.LAN(t, lab.HostSpec{Name: "r", Addrs: []netip.Prefix{pfx("198.51.100.1/24"), pfx("2001:db8::1/64")}})
	ns := l.Host("r")
	ctx := labtest.Context(t, 30*time.Second)
	for _, cmd := range [][]string{
		{"route", "add", "203.0.113.1/32", "via", "198.51.100.11", "proto", "bgp", "metric", "20"},
		{"route", "add", "203.0.113.2/32", "proto", "bgp", "nexthop", "via", "198.51.100.12", "weight", "3", "nexthop", "via", "198.51.100.11"},
		{"nexthop", "add", "id", "1", "via", "198.51.100.11", "dev", "eth0"},
		{"nexthop", "add", "id", "2", "via", "198.51.100.12", "dev", "eth0"},
		{"nexthop", "add", "id", "10", "group", "1/2,5"},
		{"route", "add", "203.0.113.3/32", "nhid", "10", "proto", "bgp"},
		{"-6", "route", "add", "2001:db8:100::1/128", "via", "2001:db8::11", "proto", "bgp"},
		{"route", "add", "203.0.113.4/32", "via", "198.51.100.13", "proto", "bird"},
		{"route", "add", "203.0.113.5/32", "via", "198.51.100.13", "proto", "bgp", "table", "100"},
	} {
		if err := ns.IP(ctx, cmd...); err != nil {
			t.Fatal(err)
		}
	}
	one := func(gw string, w int) NextHop { return NextHop{Gateway: addr(gw), Dev: "eth0", Weight: w} }
	got, err := ns.Routes(ctx, lab.RouteQuery{Proto: "bgp"})
	if err != nil {
		t.Fatal(err)
	}
	want := []lab.Route{
		{Dst: pfx("203.0.113.1/32"), Type: "unicast", Table: "main", Proto: "bgp", Metric: 20, NextHops: []NextHop{one("198.51.100.11", 1)}},
		{Dst: pfx("203.0.113.2/32"), Type: "unicast", Table: "main", Proto: "bgp", NextHops: []NextHop{one("198.51.100.11", 1), one("198.51.100.12", 3)}},
		{Dst: pfx("203.0.113.3/32"), Type: "unicast", Table: "main", Proto: "bgp", NHID: 10, NextHops: []NextHop{one("198.51.100.11", 1), one("198.51.100.12", 5)}},
		{Dst: pfx("2001:db8:100::1/128"), Type: "unicast", Table: "main", Proto: "bgp", Metric: 1024, NextHops: []NextHop{one("2001:db8::11", 1)}},
	}
	if !slices.EqualFunc(got, want, routeEqual) {
		t.Errorf("proto bgp, main table:\n%s\nwant\n%s", lab.FormatRoutes(got), lab.FormatRoutes(want))
	}
	got, err = ns.Routes(ctx, lab.RouteQuery{Family: 4, Table: "100"})
	if err != nil {
		t.Fatal(err)
	}
	want = []lab.Route{{Dst: pfx("203.0.113.5/32"), Type: "unicast", Table: "100", Proto: "bgp", NextHops: []NextHop{one("198.51.100.13", 1)}}}
	if !slices.EqualFunc(got, want, routeEqual) {
		t.Errorf("table 100:\n%s\nwant\n%s", lab.FormatRoutes(got), lab.FormatRoutes(want))
	}

	// WaitRoutes sees a change made while it waits.
	go func() {
		time.Sleep(100 * time.Millisecond)
		_ = ns.IP(context.Background(), "route", "del", "203.0.113.1/32", "proto", "bgp")
	}()
	if _, err := ns.WaitRoutes(ctx, lab.RouteQuery{Family: 4, Proto: "bgp"}, func(rs []lab.Route) bool {
		return !slices.ContainsFunc(rs, func(r lab.Route) bool { return r.Dst == pfx("203.0.113.1/32") })
	}); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err = ns.WaitRoutes(short, lab.RouteQuery{Proto: "bgp"}, func([]lab.Route) bool { return false })
	if err == nil || !strings.Contains(err.Error(), "203.0.113.2/32") {
		t.Errorf("a timed-out WaitRoutes should show the last table: %v", err)
	}
}

type NextHop = lab.NextHop

func routeEqual(a, b lab.Route) bool {
	return a.Dst == b.Dst && a.Type == b.Type && a.Table == b.Table && a.Proto == b.Proto &&
		a.Metric == b.Metric && a.NHID == b.NHID && slices.Equal(a.NextHops, b.NextHops)
}

// TestDaemonsDieWithTheirStarter proves that a process started in a
// namespace does not outlive a test binary that is killed (a timeout panic
// runs no cleanups): a helper process starts one and is SIGKILLed.
func TestDaemonsDieWithTheirStarter(t *testing.T) {
	if name := os.Getenv("LAB_TEST_HELPER_NETNS"); name != "" {
		ns, err := lab.OpenNetns(name)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		p, err := ns.Start(context.Background(), "sleep", "600")
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Printf("pid %d\n", p.PID())
		select {} // until killed
	}
	ns := labtest.Netns(t, "lt")
	ctx := labtest.Context(t, 30*time.Second)
	helper := exec.Command(os.Args[0], "-test.run=^TestDaemonsDieWithTheirStarter$")
	helper.Env = append(os.Environ(), "LAB_TEST_HELPER_NETNS="+ns.Name)
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Fscanf(out, "pid %d\n", &pid); err != nil {
		helper.Process.Kill()
		helper.Wait()
		t.Fatalf("helper did not report its daemon: %v", err)
	}
	if pids, err := ns.Pids(ctx); err != nil || !slices.Contains(pids, pid) {
		helper.Process.Kill()
		helper.Wait()
		t.Fatalf("daemon %d not in %s: %v %v", pid, ns.Name, pids, err)
	}
	helper.Process.Kill()
	helper.Wait()
	if err := lab.Poll(ctx, 20*time.Millisecond, func() (bool, error) {
		pids, err := ns.Pids(ctx)
		return !slices.Contains(pids, pid), err
	}); err != nil {
		t.Errorf("daemon %d outlived its killed starter: %v", pid, err)
	}
}
