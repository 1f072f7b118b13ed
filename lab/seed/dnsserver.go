package seed

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/bgplb/bgplb/lab/dnsserver"
)

// DNSPort is where the responders listen and Dig asks.
const DNSPort = dnsserver.Port

// DNSServer is the lab's stand-in for the write-up's Pi-hole: a DNS
// responder on UDP and TCP port 53 of one address inside one host (see
// dnsserver.Server). Its sockets live in the host's namespace.
type DNSServer = dnsserver.Server

// DNSAnswer is what Dig got back.
type DNSAnswer = dnsserver.Answer

// StartDNS starts a responder on addr inside node's namespace. The
// sockets are bound with IP_FREEBIND, so addr need not be on the node yet:
// AddVIP may come before or after, and DelVIP leaves the responder running
// but out of reach, as a pod is when the node stops accepting its VIP.
// The lab's Close stops it, if its own Close did not.
func (s *Seed) StartDNS(ctx context.Context, node string, addr netip.Addr) (*DNSServer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ns := s.Host(node)
	if ns == nil {
		return nil, fmt.Errorf("seed: no host %q in lab %s", node, s.ID)
	}
	if !addr.IsValid() || addr.Zone() != "" {
		return nil, fmt.Errorf("seed: DNS address %v is not an address", addr)
	}
	ap := netip.AddrPortFrom(addr, DNSPort).String()
	var d *DNSServer
	err := ns.Do(func() error {
		var err error
		d, err = dnsserver.Listen(ctx, dnsserver.Config{Listen: ap, Node: node, Answer: addr, FreeBind: true})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("seed: DNS on %s in %s: %w", ap, node, err)
	}
	s.mu.Lock()
	closed := s.closed
	if !closed {
		s.dns = append(s.dns, d)
	}
	s.mu.Unlock()
	if closed {
		d.Close()
		return nil, fmt.Errorf("seed: lab %s is closed", s.ID)
	}
	return d, nil
}

// Dig asks server (port 53), from inside host from's namespace, for name's
// address in the server's family (A for an IPv4 server, AAAA for IPv6),
// over TCP or UDP, and renders the answer as DNSAnswer.String does:
// "203.0.113.53 from node1" when one of the lab's responders answered.
func (s *Seed) Dig(ctx context.Context, from string, server netip.Addr, name string, tcp bool) (string, error) {
	a, err := s.Query(ctx, from, server, name, tcp)
	if err != nil {
		return "", err
	}
	return a.String(), nil
}

// Query is Dig returning the parsed answer.
func (s *Seed) Query(ctx context.Context, from string, server netip.Addr, name string, tcp bool) (DNSAnswer, error) {
	ns := s.Host(from)
	if ns == nil {
		return DNSAnswer{}, fmt.Errorf("seed: no host %q in lab %s", from, s.ID)
	}
	a, err := dnsserver.Query(ctx, ns.Do, netip.AddrPortFrom(server, DNSPort), name, tcp)
	if err != nil {
		return DNSAnswer{}, fmt.Errorf("seed: dig %s @%s from %s: %w", name, server, from, err)
	}
	return a, nil
}
