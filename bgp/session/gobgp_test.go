package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
	"golang.org/x/sys/unix"
)

// netns creates a network namespace for the test and removes it afterwards.
func netns(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces (CI runs as root)")
	}
	name := fmt.Sprintf("bgps%d%04x", os.Getpid()%100000, rand.IntN(0x10000))
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// inNetns runs f on a thread switched into the namespace: sockets created
// there stay in it, whichever thread uses them later.
func inNetns(t *testing.T, name string, f func()) {
	t.Helper()
	target, err := os.Open(filepath.Join("/run/netns", name))
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	runtime.LockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer self.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	f()
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: Go retires it when this goroutine ends.
		t.Fatalf("back to our namespace: %v", err)
	}
	runtime.UnlockOSThread()
}

const gobgpGlobal = `[global.config]
  as = 64512
  router-id = "198.51.100.2"
  port = -1
`

// gobgpNeighbor is one neighbour of gobgpd: one of our listening addresses.
const gobgpNeighbor = `
[[neighbors]]
  [neighbors.config]
    neighbor-address = "%s"
    peer-as = 64512
    auth-password = "interop-key"
  [neighbors.transport.config]
    local-address = "198.51.100.2"
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 9
    keepalive-interval = 3
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
`

// syncBuffer collects a daemon's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestGoBGPInterop runs Debian's gobgpd in a namespace of its own against
// two passive Peers behind one Listener with two addresses, with TCP-MD5.
// gobgpd connects to both; the Listener dispatches by local address. It
// announces an IPv4 /32 and an IPv6 /128 (multiprotocol over the IPv4
// session) and withdraws one; each side sees the other's shutdown
// communication.
func TestGoBGPInterop(t *testing.T) {
	gobgpd, err := exec.LookPath("gobgpd")
	if err != nil {
		t.Skip("gobgpd not installed (hack/install-deps.sh installs it)")
	}
	leakCheck(t)
	ns := netns(t)
	// Everyone lives in the namespace, on its loopback interface.
	for _, a := range []string{"198.51.100.1/32", "198.51.100.4/32", "198.51.100.2/32", "2001:db8::2/128"} {
		run(t, "ip", "-n", ns, "addr", "add", a, "dev", "lo")
	}
	ours1, ours2 := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.4")
	theirs := netip.MustParseAddr("198.51.100.2")
	rec1, rec2 := newRecorder(), newRecorder()
	_, p2 := interopPeers(t, ns, theirs, map[netip.Addr]*recorder{ours1: rec1, ours2: rec2})
	logs := startGoBGPd(t, gobgpd, ns, gobgpGlobal+fmt.Sprintf(gobgpNeighbor, ours1)+fmt.Sprintf(gobgpNeighbor, ours2))
	gobgp := func(args ...string) string {
		t.Helper()
		return run(t, append([]string{"ip", "netns", "exec", ns, "gobgp", "-p", "50051"}, args...)...)
	}

	n := wait(t, rec1.established, 20*time.Second, "session with gobgpd")
	if n.PeerID != theirs || !n.HasFamily(wire.IPv6Unicast) || !n.AS4 || n.HoldTime != 9*time.Second ||
		n.Local != netip.AddrPortFrom(ours1, 179) {
		t.Errorf("negotiated %+v", n)
	}
	wait(t, rec2.established, 20*time.Second, "second session with gobgpd")
	if out := gobgp("neighbor"); strings.Count(out, "Establ") != 2 {
		t.Errorf("gobgp neighbor:\n%s", out)
	}

	gobgp("global", "rib", "add", "203.0.113.10/32", "-a", "ipv4")
	gobgp("global", "rib", "add", "2001:db8:100::10/128", "nexthop", "2001:db8::2", "-a", "ipv6")
	want := map[netip.Prefix]netip.Addr{
		netip.MustParsePrefix("203.0.113.10/32"):      theirs,
		netip.MustParsePrefix("2001:db8:100::10/128"): netip.MustParseAddr("2001:db8::2"),
	}
	for len(want) > 0 {
		u := wait(t, rec1.updates, 10*time.Second, fmt.Sprintf("announcements %v", want))
		for _, nlri := range u.nlri {
			nh, ok := want[nlri.Prefix]
			if !ok || u.nextHop != nh || u.action != wire.ActionNone {
				t.Fatalf("unexpected update %v", u)
			}
			delete(want, nlri.Prefix)
		}
	}
	gobgp("global", "rib", "del", "203.0.113.10/32", "-a", "ipv4")
	u := wait(t, rec1.updates, 10*time.Second, "withdrawal")
	if len(u.withdrawn) != 1 || u.withdrawn[0].Prefix != netip.MustParsePrefix("203.0.113.10/32") {
		t.Errorf("withdrawal %v", u)
	}

	// gobgpd's administrative shutdown, with a message, reaches our handler.
	gobgp("neighbor", ours1.String(), "shutdown", "--reason", "gobgpd maintenance")
	err = wait(t, rec1.down, 10*time.Second, "down")
	var ne *NotificationError
	if !errors.As(err, &ne) || ne.Sent {
		t.Fatalf("down: %v", err)
	}
	if msg, ok := ne.Notification.ShutdownMessage(); !ok || msg != "gobgpd maintenance" {
		t.Errorf("shutdown message %q from %v", msg, &ne.Notification)
	}

	// Ours reaches gobgpd, which logs it.
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := p2.Shutdown(sctx, "bgplb maintenance"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "bgplb maintenance") {
		if time.Now().After(deadline) {
			t.Fatal("gobgpd did not log our shutdown communication")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// interopPeers runs one passive peer for theirs per local address, behind
// one Listener created in the namespace, which dispatches by local address.
// It returns the peers of the first and second address in sorted order.
func interopPeers(t *testing.T, ns string, theirs netip.Addr, recs map[netip.Addr]*recorder) (*Peer, *Peer) {
	t.Helper()
	byLocal := map[netip.Addr]*Peer{}
	var addrs []netip.AddrPort
	for _, local := range slices.SortedFunc(maps.Keys(recs), netip.Addr.Compare) {
		byLocal[local] = New(Config{LocalAS: 64512, PeerAS: 64512, RouterID: local, PeerAddr: theirs, Passive: true,
			HoldTime: 9 * time.Second, Password: "interop-key"}, recs[local], testLog(t, local.String()))
		addrs = append(addrs, netip.AddrPortFrom(local, 179))
	}
	var l *Listener
	var err error
	inNetns(t, ns, func() {
		l, err = Listen(addrs, func(remote, local netip.AddrPort) (*Peer, bool) {
			p, ok := byLocal[local.Addr()]
			return p, ok && remote.Addr() == theirs
		}, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetPassword(netip.PrefixFrom(theirs, 32), "interop-key"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	lerr := make(chan error, 1)
	go func() { lerr <- l.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-lerr })
	for _, a := range addrs {
		runPeer(t, byLocal[a.Addr()])
	}
	return byLocal[addrs[0].Addr()], byLocal[addrs[1].Addr()]
}

// startGoBGPd runs gobgpd in the namespace with config, its API on the
// namespace's own loopback, and stops it when the test ends.
func startGoBGPd(t *testing.T, gobgpd, ns, config string) *syncBuffer {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "gobgpd.toml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := new(syncBuffer)
	cmd := exec.Command("ip", "netns", "exec", ns, gobgpd, "-f", cfg, "-t", "toml", "-p", "-l", "debug",
		"--api-hosts", "127.0.0.1:50051", "--pprof-disable")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(unix.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("gobgpd output:\n%s", logs.String())
		}
	})
	return logs
}
