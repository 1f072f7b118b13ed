package lbmodel

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

func TestPeerFrom(t *testing.T) {
	for _, tc := range []struct {
		name    string
		spec    v1alpha1.BGPRouterSpec
		check   func(Peer) bool
		wantErr []string
	}{{
		name: "every node",
		spec: v1alpha1.BGPRouterSpec{PeerAddress: "198.51.100.1", MyASN: 64512},
		check: func(p Peer) bool {
			return p.SelectsNode(nil) && p.Address == ip("198.51.100.1") && !p.Source.IsValid() && p.Spec.MyASN == 64512
		},
	}, {
		name: "some nodes, source address, mapped addresses read as IPv4",
		spec: v1alpha1.BGPRouterSpec{PeerAddress: "::ffff:198.51.100.1", SourceAddress: "198.51.100.11",
			NodeSelectors: []metav1.LabelSelector{expr("zone", metav1.LabelSelectorOpIn, "a")}},
		check: func(p Peer) bool {
			return p.SelectsNode(labels.Set{"zone": "a"}) && !p.SelectsNode(labels.Set{"zone": "b"}) &&
				p.Address == ip("198.51.100.1") && p.Source == ip("198.51.100.11")
		},
	}, {
		name:    "operator in lower case",
		spec:    v1alpha1.BGPRouterSpec{PeerAddress: "198.51.100.1", NodeSelectors: []metav1.LabelSelector{expr("zone", "in", "a")}},
		wantErr: []string{`spec.nodeSelectors[0]: "in" is not a valid label selector operator`},
	}, {
		name:    "addresses that are not addresses, each reported",
		spec:    v1alpha1.BGPRouterSpec{PeerAddress: "router.lan", SourceAddress: "fe80::1%eth0"},
		wantErr: []string{`spec.peerAddress: "router.lan"`, `spec.sourceAddress: "fe80::1%eth0"`},
	}} {
		p, err := PeerFrom(&v1alpha1.BGPRouter{ObjectMeta: metav1.ObjectMeta{Name: "r", Generation: 7}, Spec: tc.spec})
		if len(tc.wantErr) == 0 {
			if err != nil || p.Name != "r" || p.Generation != 7 || !tc.check(p) {
				t.Errorf("%s: %+v, %v", tc.name, p, err)
			}
			continue
		}
		for _, w := range tc.wantErr {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %v lacks %q", tc.name, err, w)
			}
		}
	}
}

func TestNodeFrom(t *testing.T) {
	ready := func(st corev1.ConditionStatus) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"zone": "a"}},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionTrue}, {Type: corev1.NodeReady, Status: st}}}}
	}
	if n := NodeFrom(ready(corev1.ConditionTrue)); !n.Ready || n.Name != "n1" || n.Labels["zone"] != "a" || n.Excluded() {
		t.Errorf("ready node %+v", n)
	}
	for _, st := range []corev1.ConditionStatus{corev1.ConditionFalse, corev1.ConditionUnknown} {
		if NodeFrom(ready(st)).Ready {
			t.Errorf("Ready %s read as ready", st)
		}
	}
	if n := NodeFrom(nil); n.Name != "" || n.Ready {
		t.Errorf("no node %+v", n)
	}
	n := Node{Labels: map[string]string{ExcludeLabel: ""}}
	if !n.Excluded() {
		t.Error("the exclusion label with an empty value excludes")
	}
}
