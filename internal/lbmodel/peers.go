package lbmodel

import (
	"errors"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/bgplb/bgplb/api/v1alpha1"
)

// Peer is a BGPRouter, parsed and checked: which nodes keep a session with
// it, and the spec its session settings come from.
type Peer struct {
	Name string
	// Generation is the object's metadata.generation of this version,
	// which may be older than the object's when a bad edit left the last
	// good version in force.
	Generation int64
	// NodeSelectors select the nodes that peer with it: a node matching
	// any. Empty means every node; a nil entry matches nothing.
	NodeSelectors []labels.Selector
	// Address is spec.peerAddress; Source is spec.sourceAddress, invalid
	// when unset. IPv4-mapped addresses read as IPv4.
	Address, Source netip.Addr
	// Spec is the version of the spec in force, for the settings the
	// speaker turns into a session (timers, ASNs, password reference).
	Spec v1alpha1.BGPRouterSpec
}

// PeerFrom parses a BGPRouter, reporting every problem the object alone
// shows. What depends on the node (its router ID, a password read from a
// Secret) is the speaker's to check.
func PeerFrom(p *v1alpha1.BGPRouter) (Peer, error) {
	out := Peer{Name: p.Name, Generation: p.Generation, Spec: *p.Spec.DeepCopy()}
	var errs []error
	var err error
	if out.NodeSelectors, err = Selectors("spec.nodeSelectors", p.Spec.NodeSelectors); err != nil {
		errs = append(errs, err)
	}
	if a, err := netip.ParseAddr(p.Spec.PeerAddress); err != nil || a.Zone() != "" {
		errs = append(errs, fmt.Errorf("spec.peerAddress: %q is not an IP address", p.Spec.PeerAddress))
	} else {
		out.Address = a.Unmap()
	}
	if s := p.Spec.SourceAddress; s != "" {
		if a, err := netip.ParseAddr(s); err != nil || a.Zone() != "" {
			errs = append(errs, fmt.Errorf("spec.sourceAddress: %q is not an IP address", s))
		} else {
			out.Source = a.Unmap()
		}
	}
	return out, errors.Join(errs...)
}

// SelectsNode reports whether a node with these labels keeps a session
// with the peer.
func (p *Peer) SelectsNode(nodeLabels labels.Set) bool {
	return MatchesAny(p.NodeSelectors, nodeLabels)
}

// ExcludeLabel is the well-known node label that keeps a node out of
// external load balancers; a node carrying it, with any value, announces
// nothing.
const ExcludeLabel = "node.kubernetes.io/exclude-from-external-load-balancers"

// Node is what the rules need of a Node object.
type Node struct {
	Name   string
	Labels map[string]string
	// Ready is the Node's Ready condition being True.
	Ready bool
}

// NodeFrom reads a Node; nil (not seen yet, or deleted) is the zero Node.
func NodeFrom(n *corev1.Node) Node {
	if n == nil {
		return Node{}
	}
	out := Node{Name: n.Name, Labels: n.Labels}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			out.Ready = c.Status == corev1.ConditionTrue
		}
	}
	return out
}

// Excluded reports whether the node carries ExcludeLabel.
func (n *Node) Excluded() bool {
	_, ok := n.Labels[ExcludeLabel]
	return ok
}
