package speaker

import (
	"fmt"
	"net/netip"

	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/internal/lbmodel"
	"github.com/bgplb/bgplb/speaker/announce"
)

// secretFunc returns one key of a Secret.
type secretFunc func(namespace, name, key string) (string, error)

// peerConfig turns the version of a BGPPeer in force into the announcer's
// session settings for this node. addrs are the node's addresses (IPv4
// first): the router ID is the first IPv4 one, and an IPv6 one is the next
// hop of IPv6 routes sent over an IPv4 session.
func peerConfig(p *lbmodel.Peer, addrs []netip.Addr, defaultNS string, secret secretFunc) (announce.PeerConfig, error) {
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
		if key == "" {
			key = "password"
		}
		pw, err := secret(ns, ref.Name, key)
		if err != nil {
			return announce.PeerConfig{}, fmt.Errorf("spec.passwordSecret: %w", err)
		}
		cfg.Password = pw
	}
	for _, a := range addrs {
		if a.Is4() && !cfg.RouterID.IsValid() {
			cfg.RouterID = a
		}
	}
	if src := cfg.LocalAddr; src.Is4() {
		cfg.RouterID = src
	}
	out := announce.PeerConfig{Name: p.Name, Session: cfg}
	for _, a := range addrs {
		if a.Is6() && !out.NextHop6.IsValid() && !peer.Is6() {
			out.NextHop6 = a
		}
	}
	if err := cfg.Validate(); err != nil {
		return announce.PeerConfig{}, err
	}
	return out, nil
}

// unsupported names the settings of p this speaker does not honour yet, so
// that the operator is told rather than left to believe them in force.
func unsupported(p *lbmodel.Peer) []string {
	var out []string
	if p.Spec.BFDProfile != "" {
		out = append(out, fmt.Sprintf("BGPPeer %s: spec.bfdProfile %q is ignored: BFD is not implemented yet, "+
			"so a dead link is noticed only when the hold time runs out", p.Name, p.Spec.BFDProfile))
	}
	if p.Spec.GracefulRestart {
		out = append(out, fmt.Sprintf("BGPPeer %s: spec.gracefulRestart is ignored: graceful restart is not implemented yet, "+
			"so a restarting speaker withdraws its routes", p.Name))
	}
	return out
}
