package speaker

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/internal/lbmodel"
	"github.com/bgplb/bgplb/speaker/plan"
)

// A sync happens on every Service or EndpointSlice change in the cluster;
// the password Secret is read again only when its BGPRouter changed or the
// last read is a minute old, not on every sync of every node.
func TestPasswordReadOncePerPeerVersion(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	gets := 0
	c := fake.NewClientBuilder().WithScheme(scheme).
		WithObjects(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "bgplb-system", Name: "bgp"},
			Data: map[string][]byte{"password": []byte("s3cret\n")}}).
		WithInterceptorFuncs(interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			gets++
			return c.Get(ctx, key, obj, opts...)
		}}).Build()
	s := &Speaker{c: c, o: Options{Namespace: "bgplb-system"}}
	node := &corev1.Node{Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "198.51.100.11"}}}}
	peer := v1alpha1.BGPRouter{ObjectMeta: metav1.ObjectMeta{Name: "router", Generation: 1}, Spec: v1alpha1.BGPRouterSpec{
		MyASN: 64512, PeerASN: 64512, PeerAddress: "198.51.100.1",
		PasswordSecret: &v1alpha1.SecretKeyReference{Name: "bgp"},
	}}
	res := plan.Result{Peers: map[string][]plan.Route{"router": nil}}
	sync := func(want int, when string) {
		t.Helper()
		p, err := lbmodel.PeerFrom(&peer)
		if err != nil {
			t.Fatal(err)
		}
		cfgs, problems := s.peerConfigs(context.Background(), node, []lbmodel.Peer{p}, res)
		if len(problems) != 0 || len(cfgs) != 1 || cfgs[0].Session.Password != "s3cret" {
			t.Fatalf("%s: configs %+v, problems %v", when, cfgs, problems)
		}
		if gets != want {
			t.Errorf("%s: %d Secret reads, want %d", when, gets, want)
		}
	}
	sync(1, "first sync")
	sync(1, "second sync, nothing changed")
	peer.Generation = 2
	sync(2, "after the BGPRouter changed")
	for ref, pw := range s.passwords {
		pw.read = pw.read.Add(-secretTTL)
		s.passwords[ref] = pw
	}
	sync(3, "a minute later")
	sync(3, "right after that")
}

// A passwordSecret in another namespace is refused before any read, and
// the session report says why.
func TestPasswordSecretInAnotherNamespace(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	gets := 0
	c := fake.NewClientBuilder().WithScheme(scheme).
		WithInterceptorFuncs(interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			gets++
			return c.Get(ctx, key, obj, opts...)
		}}).Build()
	s := &Speaker{c: c, o: Options{Namespace: "bgplb-system"}}
	peer := v1alpha1.BGPRouter{ObjectMeta: metav1.ObjectMeta{Name: "router", Generation: 1}, Spec: v1alpha1.BGPRouterSpec{
		MyASN: 64512, PeerASN: 64512, PeerAddress: "198.51.100.1",
		PasswordSecret: &v1alpha1.SecretKeyReference{Namespace: "kube-system", Name: "bgp"},
	}}
	p, err := lbmodel.PeerFrom(&peer)
	if err != nil {
		t.Fatal(err)
	}
	cfgs, problems := s.peerConfigs(context.Background(), nil, []lbmodel.Peer{p}, plan.Result{Peers: map[string][]plan.Route{"router": nil}})
	const want = "BGPRouter router: spec.passwordSecret: Secret kube-system/bgp is refused: the speaker reads Secrets only in its own namespace bgplb-system"
	if len(cfgs) != 0 || len(problems) != 1 || !strings.HasPrefix(problems[0], want) {
		t.Errorf("configs %+v, problems %q", cfgs, problems)
	}
	if gets != 0 {
		t.Errorf("%d Secret reads", gets)
	}
	if len(s.refused) != 1 || s.refused[0].State != session.Idle || !strings.HasPrefix(s.refused[0].LastError, want) {
		t.Errorf("session report %+v", s.refused)
	}
}
