package kubetest_test

import (
	"context"
	"crypto/rand"
	"net"
	"net/netip"
	"os/exec"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/bgplb/bgplb/internal/kubetest"
	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/labtest"
)

// TestReachableFromNetns binds the API server to an address on a veth in
// the root namespace, as the lab will, and talks to it from a client whose
// socket lives in another network namespace: the path a speaker in a lab
// host takes.
func TestReachableFromNetns(t *testing.T) {
	labtest.Require(t)
	ctx := testContext(t)
	ns := labtest.Netns(t, "kt")

	// A /30 of its own in the upper half of 198.51.100.0/24, so that runs
	// overlapping on one machine rarely meet; the names are unique anyway.
	var r [1]byte
	if _, err := rand.Read(r[:]); err != nil {
		t.Fatal(err)
	}
	base := netip.AddrFrom4([4]byte{198, 51, 100, 128 + 4*(r[0]%31)})
	server, client := base.Next(), base.Next().Next()
	root, peer := "ktv"+lab.UniqueSuffix(), "ktp"+lab.UniqueSuffix()
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	ip("link", "add", root, "type", "veth", "peer", "name", peer, "netns", ns.Name)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", root).Run() })
	ip("addr", "add", netip.PrefixFrom(server, 30).String(), "dev", root)
	ip("link", "set", root, "up")
	if err := ns.AddAddr(ctx, peer, netip.PrefixFrom(client, 30)); err != nil {
		t.Fatal(err)
	}
	if err := ns.SetUp(ctx, peer); err != nil {
		t.Fatal(err)
	}

	env := kubetest.Start(t, kubetest.WithBindAddress(server))
	cfg := rest.CopyConfig(env.Config)
	var mu sync.Mutex
	var from []netip.Addr // the client ends of the connections made
	cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := ns.Do(func() error {
			var err error
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		if err == nil {
			mu.Lock()
			from = append(from, c.LocalAddr().(*net.TCPAddr).AddrPort().Addr())
			mu.Unlock()
		}
		return c, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Fatalf("from namespace %s to %s: %v", ns.Name, env.Addr, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(from) == 0 || from[0].Unmap() != client {
		t.Errorf("connections came from %v, want %s (the namespace's end of the veth)", from, client)
	}
}
