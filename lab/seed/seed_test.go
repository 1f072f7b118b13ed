package seed_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/labtest"
	"github.com/bgplb/bgplb/lab/seed"
	"github.com/bgplb/bgplb/lab/seed/seedtest"
)

var (
	vip  = netip.MustParseAddr("203.0.113.53")
	vip6 = netip.MustParseAddr("2001:db8:100::53")
)

// ping checks that from reaches each address, in parallel.
func ping(t *testing.T, ctx context.Context, from *lab.Netns, to ...netip.Addr) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(to))
	for i, a := range to {
		wg.Go(func() {
			_, errs[i] = from.Run(ctx, "ping", "-c1", "-W2", "-n", a.String())
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("from %s: %v", from.Name, err)
	}
}

// routeVia points the router's route for a VIP at a node, as the BGP
// router will once the speakers announce it.
func routeVia(t *testing.T, ctx context.Context, s *seed.Seed, router string, dst, via netip.Addr) {
	t.Helper()
	if err := s.Host(router).IP(ctx, "route", "replace", netip.PrefixFrom(dst, dst.BitLen()).String(), "via", via.String()); err != nil {
		t.Fatal(err)
	}
}

// wantAnswer asks the VIP from the client and wants node's answer.
func wantAnswer(t *testing.T, ctx context.Context, s *seed.Seed, server netip.Addr, node string, tcp bool) {
	t.Helper()
	a, err := s.Query(ctx, seed.Client, server, "pihole.lab", tcp)
	if err != nil {
		t.Fatalf("tcp=%v: %v", tcp, err)
	}
	if a.Node != node || !slices.Equal(a.Addrs, []netip.Addr{server}) {
		t.Fatalf("tcp=%v: answer %q, want %s from %s", tcp, a, server, node)
	}
	got, err := s.Dig(ctx, seed.Client, server, "pihole.lab.", tcp)
	if want := server.String() + " from " + node; err != nil || got != want {
		t.Fatalf("Dig tcp=%v: %q, %v; want %q", tcp, got, err, want)
	}
}

// rootLinks lists the root namespace's interfaces naming the lab.
func rootLinks(t *testing.T, id string) []string {
	t.Helper()
	out, err := exec.Command("ip", "-o", "link", "show").CombinedOutput()
	if err != nil {
		t.Fatalf("ip link: %v: %s", err, out)
	}
	var found []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, id) {
			found = append(found, l)
		}
	}
	return found
}

// checkGone wants nothing of the lab left: namespaces, scratch
// directories, the root veth.
func checkGone(t *testing.T, id string, hosts []string) {
	t.Helper()
	if names, err := lab.ListNetns(id); err != nil || len(names) != 0 {
		t.Errorf("namespaces left: %v %v", names, err)
	}
	out, _ := exec.Command("ip", "netns", "list").CombinedOutput()
	if strings.Contains(string(out), id) {
		t.Errorf("ip netns list still shows %s:\n%s", id, out)
	}
	if links := rootLinks(t, id); len(links) != 0 {
		t.Errorf("root namespace links left: %v", links)
	}
	for _, h := range hosts {
		if _, err := os.Stat(lab.ScratchDir(id + "-" + h)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("scratch dir of %s left: %v", h, err)
		}
	}
	if ids, err := seed.List(id[:len(id)-6]); err != nil || slices.Contains(ids, id) {
		t.Errorf("List still finds %s: %v %v", id, ids, err)
	}
}

// TestSeed is the write-up's path without Kubernetes: the client asks the
// Pi-hole's address, the router's route leads to the node holding the VIP,
// and moving route and VIP to the other node moves the answer.
func TestSeed(t *testing.T) {
	ctx := labtest.Context(t, 60*time.Second)
	began := time.Now()
	s := seedtest.New(t, seed.Options{})
	t.Logf("built %s in %v", s.ID, time.Since(began))
	client, router := s.Host(seed.Client), s.Host(seed.Router)

	t.Run("LAN", func(t *testing.T) {
		var to []netip.Addr
		for _, h := range []string{seed.Router, seed.Node1, seed.Node2} {
			to = append(to, s.NodeAddr(h), s.NodeAddr6(h))
		}
		ping(t, ctx, client, to...)
		ping(t, ctx, s.Host(seed.Node1), s.NodeAddr(seed.Node2), s.NodeAddr6(seed.Node2))
		if v, err := router.Sysctl("net.ipv4.ip_forward"); err != nil || v != "1" {
			t.Errorf("router ip_forward = %q, %v", v, err)
		}
		if v, err := router.Sysctl("net.ipv6.conf.all.forwarding"); err != nil || v != "1" {
			t.Errorf("router IPv6 forwarding = %q, %v", v, err)
		}
		rs, err := client.Routes(ctx, lab.RouteQuery{})
		if err != nil {
			t.Fatal(err)
		}
		for _, def := range []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")} {
			i := slices.IndexFunc(rs, func(r lab.Route) bool { return r.Dst == def })
			if i < 0 || len(rs[i].NextHops) != 1 || !slices.Contains([]netip.Addr{s.RouterAddr(1), s.RouterAddr6(1)}, rs[i].NextHops[0].Gateway) {
				t.Errorf("client's %s route: %v", def, rs)
			}
		}
		// The root namespace's end of the API link answers the nodes.
		ping(t, ctx, s.Host(seed.Node1), s.APIServerAddr())
		ping(t, ctx, s.Host(seed.Node2), s.APIServerAddr())
	})

	t.Run("Describe", func(t *testing.T) {
		d := s.Describe()
		for _, h := range s.Hosts() {
			for _, want := range []string{h.Name, h.Addr4.String(), h.Addr6.String(), h.Netns} {
				if !strings.Contains(d, want) {
					t.Errorf("Describe lacks %q:\n%s", want, d)
				}
			}
		}
		for _, want := range []string{s.APIServerAddr().String(), s.APIPrefix().String(), "203.0.113.0/24"} {
			if !strings.Contains(d, want) {
				t.Errorf("Describe lacks %q:\n%s", want, d)
			}
		}
		t.Logf("\n%s", d)
	})

	t.Run("DNS through the router follows the route", func(t *testing.T) {
		// Nothing routes the pool yet: the router answers unreachable.
		if a, err := s.Query(ctx, seed.Client, vip, "pihole.lab", false); err == nil {
			t.Fatalf("answer %v before any route", a)
		}
		d1, err := s.StartDNS(ctx, seed.Node1, vip)
		if err != nil {
			t.Fatal(err)
		}
		// node2's responder starts before its VIP exists (a pod ready
		// before kube-proxy caught up).
		d2, err := s.StartDNS(ctx, seed.Node2, vip)
		if err != nil {
			t.Fatal(err)
		}
		routeVia(t, ctx, s, seed.Router, vip, s.NodeAddr(seed.Node1))
		if err := s.AddVIP(ctx, seed.Node1, vip); err != nil {
			t.Fatal(err)
		}
		if err := s.AddVIP(ctx, seed.Node1, vip); err != nil {
			t.Fatalf("AddVIP twice: %v", err)
		}
		wantAnswer(t, ctx, s, vip, seed.Node1, false)
		wantAnswer(t, ctx, s, vip, seed.Node1, true)
		if vips, err := s.VIPs(ctx, seed.Node1); err != nil || !slices.Equal(vips, []netip.Addr{vip}) {
			t.Errorf("VIPs(node1) = %v, %v", vips, err)
		}
		// The path went through the router and stays so: no redirect
		// taught the client a shortcut to node1.
		out, err := client.IPOutput(ctx, "route", "get", vip.String())
		if err != nil || !strings.Contains(string(out), "via "+s.RouterAddr(1).String()) {
			t.Errorf("client's route to %s: %s %v", vip, out, err)
		}

		// The pod moves: route and VIP go to node2.
		routeVia(t, ctx, s, seed.Router, vip, s.NodeAddr(seed.Node2))
		if err := s.DelVIP(ctx, seed.Node1, vip); err != nil {
			t.Fatal(err)
		}
		if err := s.DelVIP(ctx, seed.Node1, vip); err != nil {
			t.Fatalf("DelVIP twice: %v", err)
		}
		if err := s.AddVIP(ctx, seed.Node2, vip); err != nil {
			t.Fatal(err)
		}
		wantAnswer(t, ctx, s, vip, seed.Node2, false)
		wantAnswer(t, ctx, s, vip, seed.Node2, true)
		if d1.Queries() != 4 || d2.Queries() != 4 {
			t.Errorf("queries answered: node1 %d, node2 %d; want 4 each", d1.Queries(), d2.Queries())
		}

		// A stray route to a node without the VIP reaches no one.
		routeVia(t, ctx, s, seed.Router, vip, s.NodeAddr(seed.Node1))
		qctx, cancel := context.WithTimeout(ctx, time.Second) // node1 drops it silently
		defer cancel()
		if a, err := s.Query(qctx, seed.Client, vip, "pihole.lab", true); err == nil {
			t.Errorf("answer %v from a node without the VIP", a)
		}
		routeVia(t, ctx, s, seed.Router, vip, s.NodeAddr(seed.Node2))
	})

	t.Run("IPv6", func(t *testing.T) {
		if _, err := s.StartDNS(ctx, seed.Node1, vip6); err != nil {
			t.Fatal(err)
		}
		if err := s.AddVIP(ctx, seed.Node1, vip6); err != nil {
			t.Fatal(err)
		}
		routeVia(t, ctx, s, seed.Router, vip6, s.NodeAddr6(seed.Node1))
		wantAnswer(t, ctx, s, vip6, seed.Node1, false)
		wantAnswer(t, ctx, s, vip6, seed.Node1, true)
	})

	t.Run("dig(1) agrees", func(t *testing.T) {
		if _, err := exec.LookPath("dig"); err != nil {
			t.Skip("dig not installed")
		}
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"@" + vip.String(), "pihole.lab"}, vip.String()},
			{[]string{"+tcp", "@" + vip.String(), "pihole.lab"}, vip.String()},
			{[]string{"@" + vip.String(), "whoami.lab", "TXT"}, `"node2"`},
			{[]string{"@" + vip6.String(), "pihole.lab", "AAAA"}, vip6.String()},
		} {
			args := append([]string{"+short", "+tries=1", "+time=2"}, c.args...)
			out, err := client.Run(ctx, "dig", args...)
			if got := strings.TrimSpace(string(out)); err != nil || got != c.want {
				t.Errorf("dig %s: %q, %v; want %q", strings.Join(args, " "), got, err, c.want)
			}
		}
	})

	t.Run("Close leaves nothing", func(t *testing.T) {
		// A process of the lab's and one started behind its back.
		own, err := s.Host(seed.Node1).Start(ctx, "sleep", "600")
		if err != nil {
			t.Fatal(err)
		}
		stranger := s.Host(seed.Node2).Command(context.Background(), "sleep", "601")
		if err := stranger.Start(); err != nil {
			t.Fatal(err)
		}
		strangerDone := make(chan error, 1)
		go func() { strangerDone <- stranger.Wait() }()
		hosts := s.Lab.Hosts()
		if len(rootLinks(t, s.ID)) != 1 {
			t.Fatalf("want one root link naming %s: %v", s.ID, rootLinks(t, s.ID))
		}
		closed := time.Now()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("Close took %v", time.Since(closed))
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		checkGone(t, s.ID, hosts)
		if exited, _ := own.Exited(); !exited {
			t.Errorf("%s survived Close", own)
		}
		select {
		case <-strangerDone:
		case <-time.After(5 * time.Second):
			t.Error("a process started behind the lab's back survived Close")
			_ = stranger.Process.Kill()
		}
		if _, err := s.StartDNS(ctx, seed.Node1, vip); err == nil {
			t.Error("StartDNS after Close succeeded")
		}
	})
}

// TestTwoRouters is the write-up's next step: a second router on the LAN
// that routes the same Service addresses; and two labs side by side.
func TestTwoRouters(t *testing.T) {
	labtest.Require(t)
	ctx := labtest.Context(t, 60*time.Second)
	// Built at the same time, they must still pick different API links.
	labs := make([]*seed.Seed, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, o := range []seed.Options{{Routers: 2}, {}} {
		wg.Go(func() { labs[i], errs[i] = seed.New(ctx, o) })
	}
	wg.Wait()
	for _, l := range labs {
		if l != nil {
			t.Cleanup(func() {
				if err := l.Close(); err != nil {
					t.Error(err)
				}
			})
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	s, other := labs[0], labs[1]
	if s.APIPrefix().Overlaps(other.APIPrefix()) || !seed.APIRange.Contains(s.APIPrefix().Addr()) {
		t.Fatalf("API links %s and %s", s.APIPrefix(), other.APIPrefix())
	}
	if got := s.RouterAddr(2); got != netip.MustParseAddr("198.51.100.2") || s.RouterAddr6(2) != netip.MustParseAddr("2001:db8:51::2") {
		t.Fatalf("RouterAddr(2) = %s, %s", got, s.RouterAddr6(2))
	}
	if other.RouterAddr(2).IsValid() || other.Host(seed.Router2) != nil {
		t.Fatal("a one-router lab has router2")
	}
	r2 := s.Host(seed.Router2)
	if v, err := r2.Sysctl("net.ipv4.ip_forward"); err != nil || v != "1" {
		t.Errorf("router2 ip_forward = %q, %v", v, err)
	}
	ping(t, ctx, r2, s.NodeAddr(seed.Node1), s.NodeAddr(seed.Node2), s.NodeAddr6(seed.Client), s.RouterAddr(1))

	// The client's default route is the main router; this test sends the
	// VIP through the backup one.
	if err := s.Host(seed.Client).IP(ctx, "route", "add", vip.String()+"/32", "via", s.RouterAddr(2).String()); err != nil {
		t.Fatal(err)
	}
	routeVia(t, ctx, s, seed.Router2, vip, s.NodeAddr(seed.Node2))
	if err := s.AddVIP(ctx, seed.Node2, vip); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartDNS(ctx, seed.Node2, vip); err != nil {
		t.Fatal(err)
	}
	wantAnswer(t, ctx, s, vip, seed.Node2, false)
	// The other lab, same addresses, is another world.
	if a, err := other.Query(ctx, seed.Client, vip, "pihole.lab", false); err == nil {
		t.Errorf("the other lab's client got %v", a)
	}
	if !strings.Contains(s.Describe(), "router2") {
		t.Errorf("Describe lacks router2:\n%s", s.Describe())
	}

	// Typos fail instead of passing silently.
	if err := other.AddVIP(ctx, "node3", vip); err == nil {
		t.Error("AddVIP on node3 succeeded")
	}
	if _, err := other.StartDNS(ctx, "node3", vip); err == nil {
		t.Error("StartDNS on node3 succeeded")
	}
	if _, err := other.Dig(ctx, "nobody", vip, "x.lab", false); err == nil {
		t.Error("Dig from nobody succeeded")
	}
	if other.NodeAddr("node3").IsValid() || other.RouterAddr(0).IsValid() || other.NodeAPIAddr(seed.Client).IsValid() {
		t.Error("addresses of hosts that do not exist")
	}
}

// helperEnv makes the test binary, run again, build a lab and die without
// closing it: the crash `bgplb lab down` must clean up after.
const helperEnv = "BGPLB_SEED_HELPER"

func TestHelperBuildAndDie(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process for TestOpenAfterCreatorDied")
	}
	ctx := context.Background()
	s, err := seed.New(ctx, seed.Options{Prefix: "sdt", Routers: 2})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	fmt.Println("ID", s.ID)
	// A daemon meant to outlive its starter, as `bgplb lab up` leaves them.
	if _, err := s.Host(seed.Node1).StartWith(ctx, lab.StartOptions{Detach: true}, "sleep", "600"); err != nil {
		fmt.Println("ERROR", err)
	}
	if err := s.AddVIP(ctx, seed.Node1, vip); err != nil {
		fmt.Println("ERROR", err)
	}
	os.Exit(0) // no Close
}

// TestOpenAfterCreatorDied finds a lab by ID after the process that built
// it died, reads it back and removes it.
func TestOpenAfterCreatorDied(t *testing.T) {
	labtest.Require(t)
	ctx := labtest.Context(t, 60*time.Second)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperBuildAndDie$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	out, err := cmd.Output()
	var id string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "ID "); ok {
			id = v
		}
		if strings.HasPrefix(sc.Text(), "ERROR") {
			t.Error(sc.Text())
		}
	}
	if id == "" {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	t.Cleanup(func() { // whatever happens below
		if s, err := seed.Open(id); err == nil {
			s.Close()
		}
	})
	if ids, err := seed.List("sdt"); err != nil || !slices.Contains(ids, id) {
		t.Errorf("List(sdt) = %v, %v; want %s among them", ids, err, id)
	}
	s, err := seed.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	if s.Routers() != 2 || !s.APIPrefix().IsValid() || !seed.APIRange.Contains(s.APIServerAddr()) {
		t.Errorf("read back: %d routers, API link %s", s.Routers(), s.APIPrefix())
	}
	if vips, err := s.VIPs(ctx, seed.Node1); err != nil || !slices.Equal(vips, []netip.Addr{vip}) {
		t.Errorf("VIPs(node1) = %v, %v", vips, err)
	}
	// The opened lab works: the root namespace still reaches node1.
	ping(t, ctx, s.Host(seed.Node1), s.APIServerAddr())
	pids, err := s.Host(seed.Node1).Pids(ctx)
	if err != nil || len(pids) != 1 {
		t.Fatalf("processes in node1: %v %v; want the detached sleep", pids, err)
	}
	t.Logf("\n%s", s.Describe())
	hosts := s.Lab.Hosts()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkGone(t, id, hosts)
	if err := lab.Poll(ctx, 10*time.Millisecond, func() (bool, error) {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pids[0]))
		return errors.Is(err, os.ErrNotExist), nil
	}); err != nil {
		t.Errorf("the detached process %d survived Close", pids[0])
	}
	if _, err := seed.Open(id); err == nil {
		t.Error("Open of a removed lab succeeded")
	}
}

func TestRejectsBadOptions(t *testing.T) {
	for _, o := range []seed.Options{{Routers: 3}, {Routers: -1}, {Prefix: "toolong"}, {Prefix: "Seed"}, {Prefix: "1ab"}} {
		if s, err := seed.New(context.Background(), o); err == nil {
			s.Close()
			t.Errorf("New(%+v) succeeded", o)
		}
	}
	for _, id := range []string{"", "seed", "../x", "seed12345z", "seedseed123456"} {
		if _, err := seed.Open(id); err == nil {
			t.Errorf("Open(%q) succeeded", id)
		}
	}
}
