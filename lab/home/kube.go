package home

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/controlplane"
)

// kube is the lab's API server, as its admin.
type kube struct {
	c client.Client
}

func newKube(kubeconfig string) (*kube, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.UserAgent = "bgplb-lab"
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	return &kube{c: c}, nil
}

// create creates o; one that exists already is left as it is, so that a
// repeated step does no harm.
func (k *kube) create(ctx context.Context, o client.Object) error {
	err := k.c.Create(ctx, o)
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating %s %s: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
	}
	return nil
}

// createNode registers a node as its kubelet would: Ready, with its LAN
// addresses.
func (k *kube) createNode(ctx context.Context, name string, v4, v6 netip.Addr) error {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}}}
	if err := k.create(ctx, n); err != nil {
		return err
	}
	if err := k.c.Get(ctx, client.ObjectKeyFromObject(n), n); err != nil {
		return err
	}
	n.Status = corev1.NodeStatus{
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
			LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(), Reason: "KubeletReady"}},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: v4.String()},
			{Type: corev1.NodeInternalIP, Address: v6.String()},
		},
	}
	return k.c.Status().Update(ctx, n)
}

// speakerRBAC gives SpeakerUser the generated speaker roles: the
// ClusterRole, and the Role (Secrets) in namespace, where the lab's speakers
// read their BGP passwords; it creates namespace, as the install bundle
// does.
func (k *kube) speakerRBAC(ctx context.Context, rolePath, namespace string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if err := k.c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("namespace %s: %w", namespace, err)
	}
	b, err := os.ReadFile(rolePath)
	if err != nil {
		return err
	}
	if err := controlplane.Grant(ctx, k.c, b, SpeakerUser, namespace); err != nil {
		return fmt.Errorf("%s: %w", rolePath, err)
	}
	return nil
}

// applyFile creates every object of a multi-document YAML file, as
// `kubectl create -f` would; objects that exist are left alone.
func (k *kube) applyFile(ctx context.Context, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return k.applyBytes(ctx, path, b)
}

// applyBytes is applyFile for YAML in memory, named path in errors.
func (k *kube) applyBytes(ctx context.Context, path string, b []byte) error {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	for {
		var u unstructured.Unstructured
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if len(u.Object) == 0 {
			continue
		}
		if err := k.create(ctx, &u); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
}

// endpoints sets the Service's EndpointSlice to one ready endpoint on
// node (index i among the nodes picks its pod address).
func (k *kube) endpoints(ctx context.Context, svc, node string, i int) error {
	ptr := func(s string) *string { return &s }
	ready := true
	proto := corev1.ProtocolUDP
	port := int32(53)
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: svc + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("dns-udp"), Protocol: &proto, Port: &port}},
		Endpoints: []discoveryv1.Endpoint{{
			Addresses: []string{fmt.Sprintf("10.244.%d.10", i+1)},
			NodeName:  ptr(node), Conditions: discoveryv1.EndpointConditions{Ready: &ready},
		}},
	}
	var cur discoveryv1.EndpointSlice
	if err := k.c.Get(ctx, client.ObjectKeyFromObject(es), &cur); err == nil {
		cur.Endpoints = es.Endpoints
		return k.c.Update(ctx, &cur)
	}
	return k.create(ctx, es)
}

// podReport describes the pods of ns matching sel (all, when nil) for an
// error message: where each runs, its phase and why its containers are
// not ready, and the namespace's recent warning events.
func (k *kube) podReport(ctx context.Context, ns string, sel client.MatchingLabels) string {
	var pods corev1.PodList
	opts := []client.ListOption{client.InNamespace(ns)}
	if sel != nil {
		opts = append(opts, sel)
	}
	if err := k.c.List(ctx, &pods, opts...); err != nil {
		return "pods: " + err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "pods in %s:\n", ns)
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "  %s on %q: %s", p.Name, p.Spec.NodeName, p.Status.Phase)
		for _, c := range p.Status.Conditions {
			if c.Status != corev1.ConditionTrue && c.Message != "" {
				fmt.Fprintf(&b, "; %s: %s", c.Type, c.Message)
			}
		}
		for _, cs := range p.Status.ContainerStatuses {
			switch {
			case cs.State.Waiting != nil:
				fmt.Fprintf(&b, "; %s waiting: %s %s", cs.Name, cs.State.Waiting.Reason, cs.State.Waiting.Message)
			case cs.State.Terminated != nil:
				fmt.Fprintf(&b, "; %s terminated: %s %s", cs.Name, cs.State.Terminated.Reason, cs.State.Terminated.Message)
			}
		}
		b.WriteString("\n")
	}
	var evs corev1.EventList
	if err := k.c.List(ctx, &evs, client.InNamespace(ns)); err == nil {
		for _, e := range evs.Items {
			if e.Type == corev1.EventTypeWarning {
				fmt.Fprintf(&b, "  event %s/%s: %s %s\n", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
			}
		}
	}
	return b.String()
}
