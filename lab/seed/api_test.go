package seed_test

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bgplb/bgplb/lab/labtest"
	"github.com/bgplb/bgplb/lab/seed"
	"github.com/bgplb/bgplb/lab/seed/seedtest"
)

// TestControlPlane runs the real kube-apiserver on the lab's API address
// and reaches it from node1's namespace, as a speaker there will, and from
// the root namespace, as the test process and `bgplb lab` do; the client,
// which has no business with it, cannot.
func TestControlPlane(t *testing.T) {
	labtest.Require(t)
	crds, err := seed.FindCRDDir()
	if err != nil {
		t.Fatal(err)
	}
	s := seedtest.New(t, seed.Options{CRDDir: crds})
	began := time.Now()
	env := seedtest.ControlPlane(t, s)
	t.Logf("control plane with CRDs on %s in %v", env.Addr, time.Since(began))
	ctx := labtest.Context(t, 60*time.Second)
	if env.Addr.Addr() != s.APIServerAddr() {
		t.Fatalf("API server on %s, want %s", env.Addr, s.APIServerAddr())
	}

	// From the root namespace.
	if _, err := env.Client.CoreV1().Namespaces().Get(ctx, metav1.NamespaceDefault, metav1.GetOptions{}); err != nil {
		t.Fatalf("from the root namespace: %v", err)
	}

	// From each node, with the node's API address as the source.
	for _, node := range s.Nodes() {
		cfg, err := s.RESTConfigFrom(node, env.Config)
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var from []netip.Addr
		dial := cfg.Dial
		cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err == nil {
				mu.Lock()
				from = append(from, c.LocalAddr().(*net.TCPAddr).AddrPort().Addr().Unmap())
				mu.Unlock()
			}
			return c, err
		}
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cs.CoreV1().Namespaces().Get(ctx, metav1.NamespaceDefault, metav1.GetOptions{}); err != nil {
			t.Fatalf("from %s: %v", node, err)
		}
		// The project's CRDs are served.
		rl, err := cs.Discovery().ServerResourcesForGroupVersion("bgplb.io/v1alpha1")
		if err != nil {
			t.Fatalf("from %s: bgplb.io/v1alpha1: %v", node, err)
		}
		if !slices.ContainsFunc(rl.APIResources, func(r metav1.APIResource) bool { return r.Name == "loadbalancerpools" }) {
			t.Errorf("bgplb.io/v1alpha1 lacks loadbalancerpools: %+v", rl.APIResources)
		}
		mu.Lock()
		if len(from) == 0 || slices.ContainsFunc(from, func(a netip.Addr) bool { return a != s.NodeAPIAddr(node) }) {
			t.Errorf("%s's connections came from %v, want %s", node, from, s.NodeAPIAddr(node))
		}
		mu.Unlock()
	}

	// Not from the client: it is not on the API link, and on the LAN
	// nobody has that address.
	err = s.Host(seed.Client).Do(func() error {
		c, err := net.DialTimeout("tcp", env.Addr.String(), 500*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err
	})
	if err == nil {
		t.Errorf("the client reaches the API server on %s", env.Addr)
	}

	// Close stops the control plane with the lab.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", env.Addr.String(), time.Second); err == nil {
		c.Close()
		t.Errorf("API server still listening on %s after Close", env.Addr)
	}
}
