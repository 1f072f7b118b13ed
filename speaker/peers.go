package speaker

import (
	"crypto/sha256"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"

	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/internal/lbmodel"
	"github.com/bgplb/bgplb/speaker/announce"
)

// secretFunc returns one key of a Secret.
type secretFunc func(namespace, name, key string) (string, error)

// AnnotationRouterID on a Node sets the BGP identifier its speaker sends
// every peer that does not set spec.routerID.
const AnnotationRouterID = "bgplb.io/router-id"

// localNode is what a session's settings need of this node.
type localNode struct {
	name string
	// addrs are its addresses, IPv4 first (nodeAddrs).
	addrs []netip.Addr
	// routerID is its bgplb.io/router-id annotation, "" when unset.
	routerID string
}

func localNodeOf(name string, n *corev1.Node) localNode {
	l := localNode{name: name}
	if n != nil {
		l.addrs = nodeAddrs(n)
		l.routerID = n.Annotations[AnnotationRouterID]
	}
	return l
}

// routerID picks the BGP identifier, most explicit first: the peer's
// spec.routerID, the node's annotation, an IPv4 source address, the node's
// first IPv4 address, else one derived from the node's name, so that an
// IPv6-only node needs no configuration. RFC 6286 lets the identifier be
// any non-zero 32-bit number unique within the AS; a hash of the node name
// is stable across restarts and address changes, and unique but for a
// collision chance of about n²/2³³ among n nodes (the annotation settles
// one).
func routerID(p *lbmodel.Peer, n localNode) (netip.Addr, error) {
	explicit := func(what, s string) (netip.Addr, error) {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() || a.IsUnspecified() {
			return netip.Addr{}, fmt.Errorf("%s %q: not an IPv4 address other than 0.0.0.0", what, s)
		}
		return a, nil
	}
	if s := p.Spec.RouterID; s != "" {
		return explicit("spec.routerID", s)
	}
	if n.routerID != "" {
		return explicit("Node "+n.name+" annotation "+AnnotationRouterID, n.routerID)
	}
	if p.Source.Is4() {
		return p.Source, nil
	}
	for _, a := range n.addrs {
		if a.Is4() {
			return a, nil
		}
	}
	return derivedRouterID(n.name), nil
}

// derivedRouterID is the first four bytes of SHA-256("bgplb router-id " +
// node name), with 0.0.0.0 (not allowed) mapped to 0.0.0.1.
func derivedRouterID(node string) netip.Addr {
	h := sha256.Sum256([]byte("bgplb router-id " + node))
	a := netip.AddrFrom4([4]byte(h[:4]))
	if a.IsUnspecified() {
		a = netip.AddrFrom4([4]byte{0, 0, 0, 1})
	}
	return a
}

// peerConfig turns the version of a BGPRouter in force into the announcer's
// session settings for this node. An IPv6 address of the node is the next
// hop of IPv6 routes sent over an IPv4 session.
func peerConfig(p *lbmodel.Peer, node localNode, defaultNS string, secret secretFunc) (announce.PeerConfig, error) {
	s := p.Spec
	peer := p.Address
	cfg := session.Config{
		LocalAS:  uint32(s.MyASN),
		PeerAS:   uint32(s.PeerASN),
		PeerAddr: peer,
		PeerPort: uint16(s.PeerPort),
		Passive:  s.Passive,
	}
	if s.HoldTime != nil {
		cfg.HoldTime = s.HoldTime.Duration
		cfg.DisableHoldTime = s.HoldTime.Duration == 0
	}
	if s.KeepaliveTime != nil {
		cfg.KeepaliveTime = s.KeepaliveTime.Duration
	}
	if s.ConnectTime != nil {
		cfg.ConnectRetry = s.ConnectTime.Duration
	}
	if s.EBGPMultiHop != nil {
		cfg.MultihopTTL = uint8(*s.EBGPMultiHop)
	}
	cfg.LocalAddr = p.Source
	if ref := s.PasswordSecret; ref != nil {
		ns, key := ref.Namespace, ref.Key
		if ns == "" {
			ns = defaultNS
		}
		if ns != defaultNS {
			return announce.PeerConfig{}, fmt.Errorf("spec.passwordSecret: Secret %s/%s is refused: the speaker reads Secrets only in "+
				"its own namespace %s (its Role grants no more); move the Secret there", ns, ref.Name, defaultNS)
		}
		if key == "" {
			key = "password"
		}
		pw, err := secret(ns, ref.Name, key)
		if err != nil {
			return announce.PeerConfig{}, fmt.Errorf("spec.passwordSecret: %w", err)
		}
		cfg.Password = pw
	}
	id, err := routerID(p, node)
	if err != nil {
		return announce.PeerConfig{}, err
	}
	cfg.RouterID = id
	out := announce.PeerConfig{Name: p.Name, Session: cfg}
	for _, a := range node.addrs {
		if a.Is6() && !out.NextHop6.IsValid() && !peer.Is6() {
			out.NextHop6 = a
		}
	}
	if err := cfg.Validate(); err != nil {
		return announce.PeerConfig{}, err
	}
	return out, nil
}
