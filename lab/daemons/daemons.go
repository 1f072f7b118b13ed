package daemons

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bgplb/bgplb/lab"
)

// ErrNotInstalled is lab.ErrNotInstalled: a daemon's binaries are missing.
var ErrNotInstalled = lab.ErrNotInstalled

// Family is an address family a session carries (unicast only).
type Family uint8

const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// Neighbor is one BGP peer of a daemon.
type Neighbor struct {
	Address netip.Addr
	ASN     uint32
	// Passive waits for the neighbour to connect.
	Passive bool
	// Password enables TCP-MD5 (RFC 2385).
	Password string
	// Families carried on the session; default IPv4 and IPv6 unicast on
	// one session, whatever the session's own address family.
	Families []Family
	// BFDInterval, if set, runs BFD (interval × 3) with the neighbour and
	// takes the session down with it. FRR only (bgpd with bfdd).
	BFDInterval time.Duration
}

func (n Neighbor) families() []Family {
	if len(n.Families) == 0 {
		return []Family{IPv4, IPv6}
	}
	return n.Families
}

func (n Neighbor) has(f Family) bool { return slices.Contains(n.families(), f) }

// Config is what every launcher needs. The daemon runs in its own directory
// under the namespace's Dir, with its own config, sockets and pid file.
type Config struct {
	ASN      uint32
	RouterID netip.Addr
	// Local4 and Local6 are this speaker's addresses on the LAN. They are
	// the next hops of its announcements (an IPv6 route carried on an IPv4
	// session needs an IPv6 next hop), so announcing a family needs its
	// address.
	Local4, Local6 netip.Addr
	Neighbors      []Neighbor
	// HoldTime defaults to 9 s (keepalive a third of it): short, so tests
	// see a dead peer quickly.
	HoldTime time.Duration
	// ConnectRetry defaults to 1 s; the daemons' own defaults (30-120 s)
	// would stall a test whose peer started a moment later.
	ConnectRetry time.Duration
	// FIB installs the best received routes into the namespace's kernel
	// table (BIRD: kernel protocol; FRR: zebra). GoBGP and ExaBGP cannot.
	FIB bool
}

func (c Config) hold() time.Duration {
	if c.HoldTime == 0 {
		return 9 * time.Second
	}
	return c.HoldTime
}

func (c Config) keepalive() time.Duration { return max(c.hold()/3, time.Second) }

func (c Config) connectRetry() time.Duration {
	if c.ConnectRetry == 0 {
		return time.Second
	}
	return c.ConnectRetry
}

// secs renders a duration as whole seconds, at least 1 (BGP timers are in
// seconds; zero would mean "off" to some daemons).
func secs(d time.Duration) int { return max(int(d/time.Second), 1) }

func (c Config) validate() error {
	if c.ASN == 0 {
		return errors.New("daemons: ASN missing")
	}
	if !c.RouterID.Is4() {
		return fmt.Errorf("daemons: router ID %v must be an IPv4 address", c.RouterID)
	}
	if c.Local4.IsValid() && !c.Local4.Is4() {
		return fmt.Errorf("daemons: Local4 %v is not IPv4", c.Local4)
	}
	if c.Local6.IsValid() && (!c.Local6.Is6() || c.Local6.Is4In6()) {
		return fmt.Errorf("daemons: Local6 %v is not IPv6", c.Local6)
	}
	if c.HoldTime != 0 && c.HoldTime < 3*time.Second {
		return fmt.Errorf("daemons: hold time %v below 3 s", c.HoldTime)
	}
	seen := map[netip.Addr]bool{}
	for _, n := range c.Neighbors {
		if !n.Address.IsValid() || n.ASN == 0 {
			return fmt.Errorf("daemons: neighbor %v: address and ASN are required", n.Address)
		}
		if seen[n.Address] {
			return fmt.Errorf("daemons: neighbor %v listed twice", n.Address)
		}
		seen[n.Address] = true
		for _, f := range n.Families {
			if f != IPv4 && f != IPv6 {
				return fmt.Errorf("daemons: neighbor %v: unknown family %d", n.Address, f)
			}
		}
		if strings.ContainsAny(n.Password, "\"'\n\\ ") {
			return fmt.Errorf("daemons: neighbor %v: password with quotes, spaces or backslashes is not supported", n.Address)
		}
	}
	return nil
}

// localFor returns this speaker's address in the family of peer.
func (c Config) localFor(peer netip.Addr) netip.Addr {
	if peer.Is4() {
		return c.Local4
	}
	return c.Local6
}

// nextHop returns the next hop for announcing p, or an error if the
// family's local address is not configured.
func (c Config) nextHop(p netip.Prefix) (netip.Addr, error) {
	nh := c.Local4
	if p.Addr().Is6() {
		nh = c.Local6
	}
	if !nh.IsValid() {
		return netip.Addr{}, fmt.Errorf("daemons: announcing %s needs Local%d (the next hop)", p, familyOf(p))
	}
	return nh, nil
}

func familyOf(p netip.Prefix) Family {
	if p.Addr().Is4() {
		return IPv4
	}
	return IPv6
}

func checkPrefixes(ps []netip.Prefix) error {
	for _, p := range ps {
		if !p.IsValid() || p != p.Masked() {
			return fmt.Errorf("daemons: %v is not a canonical prefix", p)
		}
	}
	return nil
}

// State is a BGP session state, named as in RFC 4271.
type State string

const (
	Idle        State = "Idle"
	Connect     State = "Connect"
	Active      State = "Active"
	OpenSent    State = "OpenSent"
	OpenConfirm State = "OpenConfirm"
	Established State = "Established"
)

// Session is one neighbour's session as the daemon reports it.
type Session struct {
	Peer  netip.Addr
	State State
}

// Route is a route the daemon received from a neighbour.
type Route struct {
	Prefix  netip.Prefix
	NextHop netip.Addr // the BGP next hop (the global one when a link-local came too)
	Peer    netip.Addr // the neighbour it came from
	Best    bool       // selected by the daemon (always true for ExaBGP, which does not select)
}

func (r Route) String() string {
	best := " "
	if r.Best {
		best = "*"
	}
	return fmt.Sprintf("%s%s via %s from %s", best, r.Prefix, r.NextHop, r.Peer)
}

func sortSessions(ss []Session) {
	slices.SortFunc(ss, func(a, b Session) int { return a.Peer.Compare(b.Peer) })
}

func sortRoutes(rs []Route) {
	slices.SortFunc(rs, func(a, b Route) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		if c := a.Prefix.Bits() - b.Prefix.Bits(); c != 0 {
			return c
		}
		return a.Peer.Compare(b.Peer)
	})
}

// Daemon is what the tests drive, whichever implementation runs.
type Daemon interface {
	// Kind is "gobgpd", "bird", "frr" or "exabgp".
	Kind() string
	// Announce originates the prefixes toward every neighbour carrying
	// their family, with this speaker's LAN address as next hop.
	Announce(ctx context.Context, prefixes ...netip.Prefix) error
	// Withdraw stops originating them.
	Withdraw(ctx context.Context, prefixes ...netip.Prefix) error
	// Sessions reports every configured neighbour's session state.
	Sessions(ctx context.Context) ([]Session, error)
	// Received lists the routes learned from neighbours.
	Received(ctx context.Context) ([]Route, error)
	// Procs are the daemon's processes, for their logs.
	Procs() []*lab.Proc
	// Stop ends the daemon's processes.
	Stop() error
}

// WaitEstablished waits until the sessions with all the given peers are
// Established. On timeout the error lists the states last seen.
func WaitEstablished(ctx context.Context, d Daemon, peers ...netip.Addr) error {
	var last []Session
	err := waitFor(ctx, d, func() (bool, error) {
		ss, err := d.Sessions(ctx)
		if err != nil {
			return false, err
		}
		last = ss
		for _, p := range peers {
			if !slices.Contains(ss, Session{Peer: p, State: Established}) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("daemons: %s: waiting for sessions with %v: %w; last seen %v", d.Kind(), peers, err, last)
	}
	return nil
}

// WaitReceived waits until the received routes satisfy cond and returns them.
func WaitReceived(ctx context.Context, d Daemon, cond func([]Route) bool) ([]Route, error) {
	var last []Route
	err := waitFor(ctx, d, func() (bool, error) {
		rs, err := d.Received(ctx)
		if err != nil {
			return false, err
		}
		last = rs
		return cond(rs), nil
	})
	if err != nil {
		return last, fmt.Errorf("daemons: %s: waiting for routes: %w; last seen %v", d.Kind(), err, last)
	}
	return last, nil
}

// HasRoutes matches when every prefix was received, as best, from peer via
// next hop nh (either may be left zero to match any).
func HasRoutes(peer, nh netip.Addr, prefixes ...netip.Prefix) func([]Route) bool {
	return func(rs []Route) bool {
		for _, p := range prefixes {
			if !slices.ContainsFunc(rs, func(r Route) bool {
				return r.Prefix == p && r.Best && (!peer.IsValid() || r.Peer == peer) && (!nh.IsValid() || r.NextHop == nh)
			}) {
				return false
			}
		}
		return true
	}
}

// LacksRoutes matches when none of the prefixes is received from anyone.
func LacksRoutes(prefixes ...netip.Prefix) func([]Route) bool {
	return func(rs []Route) bool {
		return !slices.ContainsFunc(rs, func(r Route) bool { return slices.Contains(prefixes, r.Prefix) })
	}
}

// waitFor polls cond, failing fast with the daemon's logs if one of its
// processes died.
func waitFor(ctx context.Context, d Daemon, cond func() (bool, error)) error {
	return lab.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		if err := checkAlive(d.Procs()); err != nil {
			return false, lab.Permanent(err)
		}
		return cond()
	})
}

func checkAlive(procs []*lab.Proc) error {
	for _, p := range procs {
		if exited, err := p.Exited(); exited {
			return fmt.Errorf("daemons: %s exited (%v); its log:\n%s", p.Label, err, p.Logs())
		}
	}
	return nil
}

// workDir makes the daemon's directory under the namespace's scratch dir.
func workDir(ns *lab.Netns, kind string) (string, error) {
	dir, err := os.MkdirTemp(ns.Dir, kind+"-")
	if err != nil {
		return "", fmt.Errorf("daemons: %s work dir: %w", kind, err)
	}
	return dir, nil
}

// lookPath finds a daemon binary, also in the sbin and libexec places
// Debian uses, which root's PATH may lack in CI.
func lookPath(name string) (string, error) {
	if filepath.IsAbs(name) {
		if _, err := os.Stat(name); err != nil {
			return "", fmt.Errorf("daemons: %s %w: %w", name, ErrNotInstalled, err)
		}
		return name, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/usr/lib/frr"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("daemons: %s %w", name, ErrNotInstalled)
}

// waitReady polls ready until it succeeds, failing fast if a process died.
func waitReady(ctx context.Context, kind string, procs []*lab.Proc, ready func() error) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	err := lab.Poll(ctx, 25*time.Millisecond, func() (bool, error) {
		if err := checkAlive(procs); err != nil {
			return false, lab.Permanent(err)
		}
		err := ready()
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("daemons: %s not ready: %w", kind, err)
	}
	return nil
}

// stopAll stops processes in order, collecting errors other than "had
// already exited" (which tests see through Sessions failing instead).
func stopAll(procs ...*lab.Proc) error {
	var errs []error
	for _, p := range procs {
		if p == nil {
			continue
		}
		if err := p.Stop(); err != nil && !errors.Is(err, lab.ErrExited) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// prefixSet is the set of originated prefixes, kept in order for configs
// that are rewritten on every change.
type prefixSet []netip.Prefix

func (s prefixSet) add(ps ...netip.Prefix) prefixSet {
	for _, p := range ps {
		if !slices.Contains(s, p) {
			s = append(s, p)
		}
	}
	return s
}

func (s prefixSet) remove(ps ...netip.Prefix) prefixSet {
	return slices.DeleteFunc(s, func(p netip.Prefix) bool { return slices.Contains(ps, p) })
}

func (s prefixSet) family(f Family) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		if familyOf(p) == f {
			out = append(out, p)
		}
	}
	return out
}
