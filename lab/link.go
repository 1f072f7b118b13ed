package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// The kernel limits interface names to 15 bytes (IFNAMSIZ - 1).
const maxIfname = 15

func checkIfname(name string) error {
	if name == "" || len(name) > maxIfname {
		return fmt.Errorf("lab: interface name %q must be 1-%d characters", name, maxIfname)
	}
	return nil
}

// SetUp brings an interface up.
func (n *Netns) SetUp(ctx context.Context, ifname string) error {
	return n.IP(ctx, "link", "set", "dev", ifname, "up")
}

// SetDown brings an interface down (a cable pulled).
func (n *Netns) SetDown(ctx context.Context, ifname string) error {
	return n.IP(ctx, "link", "set", "dev", ifname, "down")
}

// AddAddr adds an address to an interface. IPv6 addresses are added with
// nodad: usable at once instead of tentative for a second.
func (n *Netns) AddAddr(ctx context.Context, ifname string, p netip.Prefix) error {
	if !p.IsValid() {
		return fmt.Errorf("lab: add invalid address to %s in %s", ifname, n.Name)
	}
	return n.IP(ctx, addrAddArgs(ifname, p)...)
}

func addrAddArgs(ifname string, p netip.Prefix) []string {
	args := []string{"addr", "add", p.String(), "dev", ifname}
	if p.Addr().Is6() {
		args = append(args, "nodad")
	}
	return args
}

// DelAddr removes an address from an interface.
func (n *Netns) DelAddr(ctx context.Context, ifname string, p netip.Prefix) error {
	return n.IP(ctx, "addr", "del", p.String(), "dev", ifname)
}

// AddBridge creates a bridge and brings it up. STP stays off, so ports
// forward the moment they are up; multicast snooping is off so IPv6
// neighbour discovery never waits for a querier.
func (n *Netns) AddBridge(ctx context.Context, name string) error {
	if err := checkIfname(name); err != nil {
		return err
	}
	return n.IPBatch(ctx,
		[]string{"link", "add", "name", name, "type", "bridge", "stp_state", "0", "mcast_snooping", "0"},
		[]string{"link", "set", "dev", name, "up"})
}

// AddVeth creates a veth pair: local here, peerName inside peer (which may
// be n itself). Both ends stay down.
func (n *Netns) AddVeth(ctx context.Context, local string, peer *Netns, peerName string) error {
	if err := checkIfname(local); err != nil {
		return err
	}
	if err := checkIfname(peerName); err != nil {
		return err
	}
	return n.IP(ctx, "link", "add", "name", local, "type", "veth", "peer", "name", peerName, "netns", peer.Name)
}

// SetMaster enslaves an interface to a bridge.
func (n *Netns) SetMaster(ctx context.Context, ifname, bridge string) error {
	return n.IP(ctx, "link", "set", "dev", ifname, "master", bridge)
}

// AddRoute adds a static route, e.g. a client's route to the service pool
// via the router.
func (n *Netns) AddRoute(ctx context.Context, dst netip.Prefix, via netip.Addr) error {
	return n.IP(ctx, "route", "add", dst.String(), "via", via.String())
}

// AddLoopbackAddr puts an address on lo, where kube-proxy-like tests keep a
// service IP. This kernel has no dummy interfaces (CONFIG_DUMMY is off).
func (n *Netns) AddLoopbackAddr(ctx context.Context, p netip.Prefix) error {
	return n.AddAddr(ctx, "lo", p)
}

// Addr is an interface address as the kernel reports it.
type Addr struct {
	Prefix    netip.Prefix
	Tentative bool // IPv6 DAD not finished: not usable as a source yet
	DADFailed bool
}

// Addrs lists the addresses of one interface.
func (n *Netns) Addrs(ctx context.Context, ifname string) ([]Addr, error) {
	out, err := n.IPOutput(ctx, "-j", "addr", "show", "dev", ifname)
	if err != nil {
		return nil, err
	}
	return parseAddrs(out)
}

func parseAddrs(out []byte) ([]Addr, error) {
	var links []struct {
		AddrInfo []struct {
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
			Tentative bool   `json:"tentative"`
			DADFailed bool   `json:"dadfailed"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		return nil, fmt.Errorf("lab: parse addresses: %w", err)
	}
	var addrs []Addr
	for _, l := range links {
		for _, a := range l.AddrInfo {
			ip, err := netip.ParseAddr(a.Local)
			if err != nil {
				return nil, fmt.Errorf("lab: parse address %q: %w", a.Local, err)
			}
			p, err := ip.Prefix(a.PrefixLen)
			if err != nil {
				return nil, fmt.Errorf("lab: parse address %s/%d: %w", a.Local, a.PrefixLen, err)
			}
			addrs = append(addrs, Addr{Prefix: netip.PrefixFrom(ip, p.Bits()), Tentative: a.Tentative, DADFailed: a.DADFailed})
		}
	}
	return addrs, nil
}

// WaitAddr waits until the address is on the interface and usable (not
// tentative): a daemon binding to it before that gets EADDRNOTAVAIL.
func (n *Netns) WaitAddr(ctx context.Context, ifname string, p netip.Prefix) error {
	return n.WaitAddrs(ctx, ifname, p)
}

// WaitAddrs is WaitAddr for several addresses at once.
func (n *Netns) WaitAddrs(ctx context.Context, ifname string, ps ...netip.Prefix) error {
	return Poll(ctx, 20*time.Millisecond, func() (bool, error) {
		addrs, err := n.Addrs(ctx, ifname)
		if err != nil {
			return false, err
		}
		return addrsUsable(addrs, ps)
	})
}

// addrsUsable reports whether every wanted address is present and out of
// DAD; a failed DAD is final.
func addrsUsable(have []Addr, want []netip.Prefix) (bool, error) {
	for _, p := range want {
		i := slices.IndexFunc(have, func(a Addr) bool { return a.Prefix == p })
		if i < 0 || have[i].Tentative && !have[i].DADFailed {
			return false, nil
		}
		if have[i].DADFailed {
			return false, Permanent(fmt.Errorf("lab: %s: duplicate address", p))
		}
	}
	return true, nil
}

// permanentError stops Poll at once instead of being retried.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks an error that Poll must not retry.
func Permanent(err error) error { return permanentError{err} }

// Poll calls cond every interval until it reports done, returns a Permanent
// error, or ctx ends. Other errors are retried (a daemon's CLI fails while
// it starts); on timeout the last of them is included.
func Poll(ctx context.Context, interval time.Duration, cond func() (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last error
	for {
		done, err := cond()
		if err == nil && done {
			return nil
		}
		if pe := (permanentError{}); errors.As(err, &pe) {
			return pe.err
		}
		if err != nil && ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%w (last error: %w)", ctx.Err(), last)
			}
			return ctx.Err()
		case <-t.C:
		}
	}
}
