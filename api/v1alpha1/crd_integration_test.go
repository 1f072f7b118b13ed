package v1alpha1

// The CRDs in a real kube-apiserver (internal/kubetest): they install, the
// Go types round-trip through them with defaults applied, and bad objects
// are refused with a message naming the field.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bgplb/bgplb/internal/kubetest"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"
)

// resources are the plural names of the kinds, for the dynamic client.
var resources = map[string]string{
	"LoadBalancerPool":      "loadbalancerpools",
	"BGPRouter":             "bgprouters",
	"BGPAnnouncementPolicy": "bgpannouncementpolicies",
	"L2AnnouncementPolicy":  "l2announcementpolicies",
	"BFDPolicy":             "bfdpolicies",
}

func TestCRDsInAPIServer(t *testing.T) {
	env := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := env.InstallCRDs(ctx, crdDir); err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	c := &crClient{t: t, dyn: dyn}

	t.Run("valid objects round-trip", func(t *testing.T) { testRoundTrip(ctx, t, c) })
	t.Run("invalid objects are refused", func(t *testing.T) { testRefused(ctx, t, c) })
	t.Run("status subresource", func(t *testing.T) { testStatus(ctx, t, c) })
	t.Run("printer columns", func(t *testing.T) { testColumns(ctx, t, env) })
}

type crClient struct {
	t   *testing.T
	dyn dynamic.Interface
}

func (c *crClient) api(kind string) dynamic.ResourceInterface {
	return c.dyn.Resource(GroupVersion.WithResource(resources[kind]))
}

// create creates obj (a typed object or a YAML string), deleting it when
// the test ends.
func (c *crClient) create(ctx context.Context, t *testing.T, obj any) (*unstructured.Unstructured, error) {
	t.Helper()
	u := toUnstructured(t, obj)
	got, err := c.api(u.GetKind()).Create(ctx, u, metav1.CreateOptions{})
	if err == nil {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := c.api(got.GetKind()).Delete(ctx, got.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("delete %s %s: %v", got.GetKind(), got.GetName(), err)
			}
		})
	}
	return got, err
}

func toUnstructured(t *testing.T, obj any) *unstructured.Unstructured {
	t.Helper()
	var m map[string]any
	switch o := obj.(type) {
	case string:
		raw, err := yaml.YAMLToJSON([]byte(o))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
	case runtime.Object:
		var err error
		if m, err = runtime.DefaultUnstructuredConverter.ToUnstructured(o); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("cannot create a %T", obj)
	}
	return &unstructured.Unstructured{Object: m}
}

// into decodes an object the server returned into a typed value.
func into[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	var v T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &v); err != nil {
		t.Fatal(err)
	}
	return &v
}

func meta(kind, prefix string) (metav1.TypeMeta, metav1.ObjectMeta) {
	return metav1.TypeMeta{APIVersion: GroupVersion.String(), Kind: kind}, metav1.ObjectMeta{GenerateName: prefix + "-"}
}

func ptr[T any](v T) *T { return &v }

func testRoundTrip(ctx context.Context, t *testing.T, c *crClient) {
	tm, om := meta("LoadBalancerPool", "pool")
	pool := &LoadBalancerPool{TypeMeta: tm, ObjectMeta: om, Spec: LoadBalancerPoolSpec{
		Addresses:     []string{"203.0.113.0/24", "2001:db8:100::/120", "198.51.100.10-198.51.100.20", "2001:db8::ffff-2001:db8::1:0"},
		AvoidBuggyIPs: true,
		ServiceAllocation: &ServiceAllocation{
			Priority:           5,
			Namespaces:         []string{"web"},
			NamespaceSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"team": "a"}}},
			ServiceSelectors:   []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"front"}}}}},
		},
	}}
	u, err := c.create(ctx, t, pool)
	if err != nil {
		t.Fatalf("valid pool refused: %v", err)
	}
	got := into[LoadBalancerPool](t, u)
	if !got.Spec.AutoAssignEnabled() || got.Spec.AutoAssign == nil {
		t.Errorf("autoAssign not defaulted to true: %v", got.Spec.AutoAssign)
	}
	got.Spec.AutoAssign = nil
	if a, b := jsonOf(t, got.Spec), jsonOf(t, pool.Spec); a != b {
		t.Errorf("pool spec changed on the way through the server:\n got %s\nwant %s", a, b)
	}

	tm, om = meta("BGPRouter", "peer")
	peer := &BGPRouter{TypeMeta: tm, ObjectMeta: om, Spec: BGPRouterSpec{
		MyASN: 4200000000, PeerASN: 64512, PeerAddress: "2001:db8::1",
		HoldTime: &metav1.Duration{Duration: 9 * time.Second}, KeepaliveTime: &metav1.Duration{Duration: 3 * time.Second},
		ConnectTime:    &metav1.Duration{Duration: 5 * time.Second},
		PasswordSecret: &SecretKeyReference{Name: "peer-pw", Namespace: "bgplb-system"},
		SourceAddress:  "2001:db8::2", EBGPMultiHop: ptr(int32(2)),
		NodeSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"rack": "r1"}}},
		BFDPolicy:     "fast", GracefulRestart: true,
	}}
	u, err = c.create(ctx, t, peer)
	if err != nil {
		t.Fatalf("valid peer refused: %v", err)
	}
	gotPeer := into[BGPRouter](t, u)
	if gotPeer.Spec.PeerPort != 179 || gotPeer.Spec.PasswordSecret.Key != "password" {
		t.Errorf("defaults not applied: peerPort %d, passwordSecret.key %q", gotPeer.Spec.PeerPort, gotPeer.Spec.PasswordSecret.Key)
	}
	if gotPeer.Spec.MyASN != 4200000000 || gotPeer.Spec.HoldTime.Duration != 9*time.Second {
		t.Errorf("peer spec changed on the way: %s", jsonOf(t, gotPeer.Spec))
	}

	tm, om = meta("BGPAnnouncementPolicy", "bgpannounce")
	adv := &BGPAnnouncementPolicy{TypeMeta: tm, ObjectMeta: om, Spec: BGPAnnouncementPolicySpec{
		IPPools: []string{got.Name}, LocalPref: ptr(int64(4294967295)),
		Communities: []string{"64512:100", "no-export"}, LargeCommunities: []string{"4200000000:1:2"},
		Peers: []string{gotPeer.Name},
	}}
	u, err = c.create(ctx, t, adv)
	if err != nil {
		t.Fatalf("valid BGPAnnouncementPolicy refused: %v", err)
	}
	if gotAdv := into[BGPAnnouncementPolicy](t, u); *gotAdv.Spec.AggregationLength != 32 || *gotAdv.Spec.AggregationLengthV6 != 128 {
		t.Errorf("aggregation lengths not defaulted: %s", jsonOf(t, gotAdv.Spec))
	}

	tm, om = meta("L2AnnouncementPolicy", "l2announce")
	if _, err := c.create(ctx, t, &L2AnnouncementPolicy{TypeMeta: tm, ObjectMeta: om, Spec: L2AnnouncementPolicySpec{Interfaces: []string{"eth0"}}}); err != nil {
		t.Fatalf("valid L2AnnouncementPolicy refused: %v", err)
	}
	tm, om = meta("BFDPolicy", "bfd")
	u, err = c.create(ctx, t, &BFDPolicy{TypeMeta: tm, ObjectMeta: om})
	if err != nil {
		t.Fatalf("valid BFDPolicy refused: %v", err)
	}
	if bfd := into[BFDPolicy](t, u); *bfd.Spec.ReceiveInterval != 300 || *bfd.Spec.DetectMultiplier != 3 {
		t.Errorf("BFD defaults not applied: %s", jsonOf(t, bfd.Spec))
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func testRefused(ctx context.Context, t *testing.T, c *crClient) {
	cases := []struct {
		name, kind, spec, field, msg string
	}{
		{"pool octet 300", "LoadBalancerPool", `addresses: ["203.0.113.300/24"]`, "spec.addresses[0]", "must be a CIDR"},
		{"pool reversed range", "LoadBalancerPool", `addresses: ["203.0.113.0/24", "203.0.113.20-203.0.113.10"]`, "spec.addresses[1]", "the start of a range must not come after its end"},
		{"pool reversed v6 range", "LoadBalancerPool", `addresses: ["2001:db8::1:0-2001:db8::ffff"]`, "spec.addresses[0]", "must not come after its end"},
		{"pool mixed-family range", "LoadBalancerPool", `addresses: ["203.0.113.10-2001:db8::1"]`, "spec.addresses[0]", "both ends of a range must be of the same family"},
		{"pool host bits", "LoadBalancerPool", `addresses: ["203.0.113.1/24"]`, "spec.addresses[0]", "no bits set after its prefix length"},
		{"peer ASN 0", "BGPRouter", "myASN: 64512\npeerASN: 0\npeerAddress: 198.51.100.1", "spec.peerASN", "greater than or equal to 1"},
		{"peer keepalive over hold", "BGPRouter", "myASN: 64512\npeerASN: 64512\npeerAddress: 198.51.100.1\nholdTime: 9s\nkeepaliveTime: 10s", "spec.keepaliveTime", "keepaliveTime must not exceed holdTime"},
		{"peer hold 1s", "BGPRouter", "myASN: 64512\npeerASN: 64512\npeerAddress: 198.51.100.1\nholdTime: 1s", "spec.holdTime", "holdTime must be 0 or between 3s and 65535s"},
		{"peer bad address", "BGPRouter", "myASN: 64512\npeerASN: 64512\npeerAddress: 198.51.100.300", "spec.peerAddress", "must be an IPv4 or IPv6 address"},
		{"advertisement community", "BGPAnnouncementPolicy", `communities: ["65536:1"]`, "spec.communities[0]", "at most 65535"},
		{"BFD multiplier", "BFDPolicy", "detectMultiplier: 1", "spec.detectMultiplier", "greater than or equal to 2"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := fmt.Sprintf("apiVersion: bgplb.io/v1alpha1\nkind: %s\nmetadata: {name: refused-%d}\nspec:\n%s", tc.kind, i, indent(tc.spec))
			_, err := c.create(ctx, t, doc)
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want Invalid, got %v", err)
			}
			// The message a user sees names the field and says why.
			t.Logf("%v", err)
			if !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q does not name %s with %q", err, tc.field, tc.msg)
			}
			var causes []metav1.StatusCause
			if se, ok := err.(apierrors.APIStatus); ok && se.Status().Details != nil {
				causes = se.Status().Details.Causes
			}
			found := false
			for _, cause := range causes {
				found = found || cause.Field == tc.field
			}
			if !found {
				t.Errorf("no cause with field %s in %+v", tc.field, causes)
			}
		})
	}
}

func testStatus(ctx context.Context, t *testing.T, c *crClient) {
	u, err := c.create(ctx, t, "apiVersion: bgplb.io/v1alpha1\nkind: LoadBalancerPool\nmetadata: {generateName: status-}\nspec: {addresses: [198.51.100.0/24]}")
	if err != nil {
		t.Fatal(err)
	}
	pool := into[LoadBalancerPool](t, u)
	pool.Status = LoadBalancerPoolStatus{AssignedIPv4: 1, AvailableIPv4: 255, AvailableIPv6: ClampCount(1 << 63),
		Conditions: []metav1.Condition{{Type: LoadBalancerPoolConditionReady, Status: metav1.ConditionTrue, Reason: LoadBalancerPoolReasonAccepted, Message: "in use", LastTransitionTime: metav1.Now()}}}
	pool.Spec.Addresses = []string{"203.0.113.0/24"} // ignored by the status subresource
	u, err = c.api("LoadBalancerPool").UpdateStatus(ctx, toUnstructured(t, pool), metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := into[LoadBalancerPool](t, u)
	if got.Status.AvailableIPv4 != 255 || got.Status.AvailableIPv6 != ClampCount(1<<63) || len(got.Status.Conditions) != 1 {
		t.Errorf("status not stored: %s", jsonOf(t, got.Status))
	}
	if got.Spec.Addresses[0] != "198.51.100.0/24" {
		t.Errorf("a status update changed the spec: %v", got.Spec.Addresses)
	}
}

// testColumns asks for LoadBalancerPools as kubectl does and checks the
// columns.
func testColumns(ctx context.Context, t *testing.T, env *kubetest.Env) {
	raw, err := env.Client.Discovery().RESTClient().Get().
		AbsPath("/apis", Group, GroupVersion.Version, "loadbalancerpools").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").
		Do(ctx).Raw()
	if err != nil {
		t.Fatal(err)
	}
	var table metav1.Table
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range table.ColumnDefinitions {
		names = append(names, c.Name)
	}
	want := "Name,Addresses,Auto Assign,IPv4 Assigned,IPv4 Available,IPv6 Assigned,IPv6 Available,Age"
	if got := strings.Join(names, ","); got != want {
		t.Errorf("columns %s, want %s", got, want)
	}
}
