package daemons

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/bgplb/bgplb/lab"
)

// goBGPAPIPort is gobgpd's gRPC port. It listens on the namespace's own
// loopback, so every namespace can use the same port.
const goBGPAPIPort = "50051"

// GoBGP is a gobgpd (the seed's router daemon) driven through the gobgp CLI.
type GoBGP struct {
	ns   *lab.Netns
	cfg  Config
	dir  string
	cli  string
	proc *lab.Proc
}

var _ Daemon = (*GoBGP)(nil)

// StartGoBGP writes a gobgpd config and starts gobgpd in ns. It returns
// once the API answers; sessions come up on their own.
func StartGoBGP(ctx context.Context, ns *lab.Netns, cfg Config) (*GoBGP, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.FIB {
		return nil, fmt.Errorf("daemons: gobgpd cannot install routes without zebra (FIB)")
	}
	bin, err := lookPath("gobgpd")
	if err != nil {
		return nil, err
	}
	cli, err := lookPath("gobgp")
	if err != nil {
		return nil, err
	}
	dir, err := workDir(ns, "gobgpd")
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "gobgpd.toml")
	if err := os.WriteFile(conf, []byte(goBGPConfig(cfg)), 0o644); err != nil {
		return nil, fmt.Errorf("daemons: gobgpd config: %w", err)
	}
	proc, err := ns.StartWith(ctx, lab.StartOptions{Label: "gobgpd", Dir: dir}, bin,
		"-f", conf, "-t", "toml", "--api-hosts", "127.0.0.1:"+goBGPAPIPort, "--pprof-disable", "--log-plain")
	if err != nil {
		return nil, err
	}
	g := &GoBGP{ns: ns, cfg: cfg, dir: dir, cli: cli, proc: proc}
	if err := waitReady(ctx, "gobgpd", g.Procs(), func() error {
		_, err := g.CLI(ctx, "global")
		return err
	}); err != nil {
		return nil, errors.Join(fmt.Errorf("%w; log:\n%s", err, proc.Logs()), g.Stop())
	}
	return g, nil
}

// goBGPConfig renders gobgpd's TOML config.
func goBGPConfig(c Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[global.config]\n  as = %d\n  router-id = %q\n", c.ASN, c.RouterID)
	for _, n := range c.Neighbors {
		fmt.Fprintf(&b, "\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = %q\n    peer-as = %d\n", n.Address, n.ASN)
		if n.Password != "" {
			fmt.Fprintf(&b, "    auth-password = %q\n", n.Password)
		}
		// idle-hold-time-after-reset defaults to 30 s: a reset peer would
		// stay away for half a minute.
		fmt.Fprintf(&b, "  [neighbors.timers.config]\n    connect-retry = %d\n    hold-time = %d\n    keepalive-interval = %d\n    idle-hold-time-after-reset = 1\n",
			secs(c.connectRetry()), secs(c.hold()), secs(c.keepalive()))
		if n.Passive {
			b.WriteString("  [neighbors.transport.config]\n    passive-mode = true\n")
		}
		for _, f := range n.families() {
			fmt.Fprintf(&b, "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"ipv%d-unicast\"\n", f)
		}
	}
	return b.String()
}

// Kind implements Daemon.
func (g *GoBGP) Kind() string { return "gobgpd" }

// Procs implements Daemon.
func (g *GoBGP) Procs() []*lab.Proc { return []*lab.Proc{g.proc} }

// Stop implements Daemon.
func (g *GoBGP) Stop() error { return stopAll(g.proc) }

// CLI runs the gobgp client against this daemon.
func (g *GoBGP) CLI(ctx context.Context, args ...string) ([]byte, error) {
	return g.ns.Run(ctx, g.cli, append([]string{"-p", goBGPAPIPort}, args...)...)
}

// Announce implements Daemon.
func (g *GoBGP) Announce(ctx context.Context, prefixes ...netip.Prefix) error {
	if err := checkPrefixes(prefixes); err != nil {
		return err
	}
	for _, p := range prefixes {
		nh, err := g.cfg.nextHop(p)
		if err != nil {
			return err
		}
		if _, err := g.CLI(ctx, "global", "rib", "add", "-a", afiName(p), p.String(), "nexthop", nh.String(), "origin", "igp"); err != nil {
			return err
		}
	}
	return nil
}

// Withdraw implements Daemon.
func (g *GoBGP) Withdraw(ctx context.Context, prefixes ...netip.Prefix) error {
	if err := checkPrefixes(prefixes); err != nil {
		return err
	}
	for _, p := range prefixes {
		if _, err := g.CLI(ctx, "global", "rib", "del", "-a", afiName(p), p.String()); err != nil {
			return err
		}
	}
	return nil
}

func afiName(p netip.Prefix) string { return fmt.Sprintf("ipv%d", familyOf(p)) }

// Sessions implements Daemon.
func (g *GoBGP) Sessions(ctx context.Context) ([]Session, error) {
	out, err := g.CLI(ctx, "-j", "neighbor")
	if err != nil {
		return nil, err
	}
	return parseGoBGPNeighbors(out)
}

// Received implements Daemon.
func (g *GoBGP) Received(ctx context.Context) ([]Route, error) {
	var all []Route
	for _, afi := range []string{"ipv4", "ipv6"} {
		out, err := g.CLI(ctx, "-j", "global", "rib", "-a", afi)
		if err != nil {
			return nil, err
		}
		rs, err := parseGoBGPRib(out)
		if err != nil {
			return nil, err
		}
		all = append(all, rs...)
	}
	sortRoutes(all)
	return all, nil
}

// goBGPStates maps the API's session_state enum, which the CLI prints as a
// number (or, in some versions, as its name).
var goBGPStates = map[string]State{
	"1": Idle, "2": Connect, "3": Active, "4": OpenSent, "5": OpenConfirm, "6": Established,
	"IDLE": Idle, "CONNECT": Connect, "ACTIVE": Active, "OPENSENT": OpenSent,
	"OPENCONFIRM": OpenConfirm, "ESTABLISHED": Established,
}

func parseGoBGPNeighbors(out []byte) ([]Session, error) {
	var peers []struct {
		Conf struct {
			NeighborAddress string `json:"neighbor_address"`
		} `json:"conf"`
		State struct {
			SessionState json.RawMessage `json:"session_state"`
		} `json:"state"`
	}
	if err := json.Unmarshal(out, &peers); err != nil {
		return nil, fmt.Errorf("daemons: parse gobgp neighbor: %w", err)
	}
	var ss []Session
	for _, p := range peers {
		addr, err := netip.ParseAddr(p.Conf.NeighborAddress)
		if err != nil {
			return nil, fmt.Errorf("daemons: parse gobgp neighbor: %w", err)
		}
		raw := strings.Trim(string(p.State.SessionState), `"`)
		st, ok := goBGPStates[strings.ToUpper(raw)]
		if !ok {
			st = Idle // absent (proto3 zero value) or unknown
		}
		ss = append(ss, Session{Peer: addr, State: st})
	}
	return ss, nil
}

func parseGoBGPRib(out []byte) ([]Route, error) {
	var rib map[string][]struct {
		Best       bool   `json:"best"`
		NeighborIP string `json:"neighbor-ip"`
		Attrs      []struct {
			Type    int    `json:"type"`
			Nexthop string `json:"nexthop"`
		} `json:"attrs"`
	}
	if err := json.Unmarshal(out, &rib); err != nil {
		return nil, fmt.Errorf("daemons: parse gobgp rib: %w", err)
	}
	var rs []Route
	for prefix, paths := range rib {
		p, err := netip.ParsePrefix(prefix)
		if err != nil {
			return nil, fmt.Errorf("daemons: parse gobgp rib: %w", err)
		}
		for _, path := range paths {
			if path.NeighborIP == "" {
				continue // originated here
			}
			r := Route{Prefix: p, Best: path.Best}
			if r.Peer, err = netip.ParseAddr(path.NeighborIP); err != nil {
				return nil, fmt.Errorf("daemons: parse gobgp rib: %w", err)
			}
			for _, a := range path.Attrs {
				if a.Type == 3 || a.Type == 14 { // NEXT_HOP, MP_REACH_NLRI
					if r.NextHop, err = netip.ParseAddr(a.Nexthop); err != nil {
						return nil, fmt.Errorf("daemons: parse gobgp rib next hop: %w", err)
					}
				}
			}
			rs = append(rs, r)
		}
	}
	sortRoutes(rs)
	return rs, nil
}
