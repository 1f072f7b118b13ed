package daemons

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bgplb/bgplb/lab"
)

// FRR is FRR's bgpd with its own zebra, driven through vtysh. zebra is not
// optional: without it bgpd knows no interfaces, cannot pick an IPv6 next
// hop, and drops (and resets the session over) UPDATEs whose IPv6 next hop
// includes a link-local address, as BIRD sends. zebra also installs the
// best routes into the kernel (proto bgp) unless Config.FIB is false.
type FRR struct {
	ns    *lab.Netns
	cfg   Config
	dir   string
	vtysh string
	zebra *lab.Proc
	bgpd  *lab.Proc
	bfdd  *lab.Proc // when a neighbour has BFDInterval

	mu sync.Mutex // serialises configuration sessions
}

var _ Daemon = (*FRR)(nil)

// frrUser is the account FRR's packages create; zebra refuses to run as
// root because root is not in the frrvty group, so it drops to this user
// and needs a directory it owns.
const frrUser = "frr"

// StartFRR starts zebra and bgpd in ns with their own config, pid files,
// zserv socket and vty sockets in a fresh directory.
func StartFRR(ctx context.Context, ns *lab.Netns, cfg Config) (*FRR, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	// -S: run as root, skipping the frrvty group check that stops zebra.
	args := []string{"-S"}
	if !cfg.FIB {
		args = append(args, "--no_kernel")
	}
	p, err := startFRRDaemon(ctx, ns, "bgpd", frrBGPConfig(cfg), func(string) []string { return args }, "show bgp summary json")
	if err != nil {
		return nil, err
	}
	f := &FRR{ns: ns, cfg: cfg, dir: p.dir, vtysh: p.vtysh, zebra: p.zebra, bgpd: p.daemon}
	if bfd := frrBGPBFDConfig(cfg); bfd != "" {
		if f.bfdd, err = startFRRBFDD(ctx, ns, p.dir, bfd); err != nil {
			return nil, errors.Join(err, stopAll(p.daemon, p.zebra))
		}
	}
	return f, nil
}

// frrBGPBFDConfig is bfdd.conf for the neighbours with BFDInterval: one
// profile per interval, which bgpd's `neighbor X bfd profile` names. Empty
// when no neighbour has BFD.
func frrBGPBFDConfig(c Config) string {
	var b strings.Builder
	seen := map[time.Duration]bool{}
	for _, n := range c.Neighbors {
		if i := n.BFDInterval; i > 0 && !seen[i] {
			seen[i] = true
			ms := i.Milliseconds()
			fmt.Fprintf(&b, " profile lab%d\n  transmit-interval %d\n  receive-interval %d\n  detect-multiplier 3\n !\n", ms, ms, ms)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return "hostname lab\n!\nbfd\n" + b.String() + "!\n"
}

// startFRRBFDD starts bfdd beside the bgpd in dir, on the same zebra, which
// relays bgpd's BFD sessions to it.
func startFRRBFDD(ctx context.Context, ns *lab.Netns, dir, config string) (*lab.Proc, error) {
	bin, err := lookPath("bfdd")
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "bfdd.conf")
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		return nil, fmt.Errorf("daemons: frr config: %w", err)
	}
	return ns.StartWith(ctx, lab.StartOptions{Label: "bfdd", Dir: dir}, bin, "-f", conf, "-i", filepath.Join(dir, "bfdd.pid"),
		"-z", filepath.Join(dir, "zserv.api"), "--vty_socket", dir, "-P", "0", "--log", "stdout", "--bfdctl", filepath.Join(dir, "bfdd.sock"))
}

// frrProcs is a zebra and one protocol daemon sharing a directory.
type frrProcs struct {
	dir, vtysh    string
	zebra, daemon *lab.Proc
}

// startFRRDaemon starts zebra and the daemon name (bgpd, bfdd) with config
// text, their pid files, zserv and vty sockets in a fresh directory, plus
// the arguments extra returns for that directory; it returns once vtysh answers readyCmd. On failure it
// has stopped both.
func startFRRDaemon(ctx context.Context, ns *lab.Netns, name, config string, extra func(dir string) []string, readyCmd string) (frrProcs, error) {
	var bins [3]string
	for i, n := range []string{"zebra", name, "vtysh"} {
		p, err := lookPath(n)
		if err != nil {
			return frrProcs{}, err
		}
		bins[i] = p
	}
	dir, err := frrDir(ns)
	if err != nil {
		return frrProcs{}, err
	}
	conf := filepath.Join(dir, name+".conf")
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		return frrProcs{}, fmt.Errorf("daemons: frr config: %w", err)
	}
	p := frrProcs{dir: dir, vtysh: bins[2]}
	var zserv string
	p.zebra, zserv, err = startZebra(ctx, ns, dir, bins[0])
	if err != nil {
		return frrProcs{}, err
	}
	args := append([]string{"-f", conf, "-i", filepath.Join(dir, name+".pid"), "-z", zserv,
		"--vty_socket", dir, "-P", "0", "--log", "stdout"}, extra(dir)...)
	p.daemon, err = ns.StartWith(ctx, lab.StartOptions{Label: name, Dir: dir}, bins[1], args...)
	if err != nil {
		return frrProcs{}, errors.Join(err, stopAll(p.zebra))
	}
	if err := waitReady(ctx, name, []*lab.Proc{p.zebra, p.daemon}, func() error {
		_, err := frrVTY(ctx, ns, p.vtysh, dir, readyCmd)
		return err
	}); err != nil {
		return frrProcs{}, errors.Join(fmt.Errorf("%w; log:\n%s", err, p.daemon.Logs()), stopAll(p.daemon, p.zebra))
	}
	return p, nil
}

// frrDir makes a directory the frr user owns, under a namespace Dir that
// is world-traversable.
func frrDir(ns *lab.Netns) (string, error) {
	dir, err := workDir(ns, "frr")
	if err != nil {
		return "", err
	}
	u, err := user.Lookup(frrUser)
	if err != nil {
		return "", fmt.Errorf("daemons: frr (user %s) %w: %w", frrUser, ErrNotInstalled, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return "", fmt.Errorf("daemons: user %s: %w", frrUser, err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return "", fmt.Errorf("daemons: frr dir: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", fmt.Errorf("daemons: frr dir: %w", err)
	}
	return dir, nil
}

// frrBGPConfig renders bgpd.conf. FRR 8 defaults refuse eBGP routes without
// a policy and originate `network`s only when the IGP knows them; a lab
// wants neither.
func frrBGPConfig(c Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "frr defaults traditional\nhostname lab\n!\nrouter bgp %d\n bgp router-id %s\n", c.ASN, c.RouterID)
	b.WriteString(" no bgp ebgp-requires-policy\n no bgp network import-check\n no bgp default ipv4-unicast\n")
	for _, n := range c.Neighbors {
		// FRR takes no zone in an address: a link-local neighbour names
		// its interface apart (and then negotiates RFC 8950 by itself).
		a := n.Address.WithZone("")
		fmt.Fprintf(&b, " neighbor %s remote-as %d\n neighbor %s timers %d %d\n neighbor %s timers connect %d\n",
			a, n.ASN, a, secs(c.keepalive()), secs(c.hold()), a, secs(c.connectRetry()))
		if z := n.Address.Zone(); z != "" {
			fmt.Fprintf(&b, " neighbor %s interface %s\n", a, z)
		}
		if n.Passive {
			fmt.Fprintf(&b, " neighbor %s passive\n", a)
		}
		if n.Password != "" {
			fmt.Fprintf(&b, " neighbor %s password %s\n", a, n.Password)
		}
		if i := n.BFDInterval; i > 0 {
			fmt.Fprintf(&b, " neighbor %s bfd profile lab%d\n", a, i.Milliseconds())
		}
	}
	for _, f := range []Family{IPv4, IPv6} {
		fmt.Fprintf(&b, " !\n address-family ipv%d unicast\n", f)
		for _, n := range c.Neighbors {
			if n.has(f) {
				fmt.Fprintf(&b, "  neighbor %s activate\n", n.Address.WithZone(""))
			}
		}
		b.WriteString(" exit-address-family\n")
	}
	b.WriteString("!\n")
	return b.String()
}

// Kind implements Daemon.
func (f *FRR) Kind() string { return "frr" }

// Procs implements Daemon.
func (f *FRR) Procs() []*lab.Proc {
	var ps []*lab.Proc
	for _, p := range []*lab.Proc{f.zebra, f.bgpd, f.bfdd} {
		if p != nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// Stop implements Daemon: bgpd first, so it can send its Cease.
func (f *FRR) Stop() error { return stopAll(f.bgpd, f.bfdd, f.zebra) }

// VTY runs vtysh commands (each one a -c) against this instance.
func (f *FRR) VTY(ctx context.Context, cmds ...string) ([]byte, error) {
	return frrVTY(ctx, f.ns, f.vtysh, f.dir, cmds...)
}

// frrVTY runs vtysh commands (each one a -c) against the daemons whose vty
// sockets are in dir.
func frrVTY(ctx context.Context, ns *lab.Netns, vtysh, dir string, cmds ...string) ([]byte, error) {
	args := []string{"--vty_socket", dir}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	return ns.Run(ctx, vtysh, args...)
}

// startZebra starts a zebra with its config, pid file, zserv socket and
// vty socket in dir, and returns once the zserv socket exists, with its
// path; on failure it has stopped zebra.
func startZebra(ctx context.Context, ns *lab.Netns, dir, bin string) (*lab.Proc, string, error) {
	conf := filepath.Join(dir, "zebra.conf")
	if err := os.WriteFile(conf, []byte("hostname lab\n"), 0o644); err != nil {
		return nil, "", fmt.Errorf("daemons: frr config: %w", err)
	}
	zserv := filepath.Join(dir, "zserv.api")
	p, err := ns.StartWith(ctx, lab.StartOptions{Label: "zebra", Dir: dir}, bin,
		"-f", conf, "-i", filepath.Join(dir, "zebra.pid"), "-z", zserv,
		"--vty_socket", dir, "-P", "0", "--log", "stdout")
	if err != nil {
		return nil, "", err
	}
	if err := waitReady(ctx, "zebra", []*lab.Proc{p}, func() error { _, err := os.Stat(zserv); return err }); err != nil {
		return nil, "", errors.Join(fmt.Errorf("%w; log:\n%s", err, p.Logs()), stopAll(p))
	}
	return p, zserv, nil
}

// Announce implements Daemon.
func (f *FRR) Announce(ctx context.Context, prefixes ...netip.Prefix) error {
	for _, p := range prefixes {
		if _, err := f.cfg.nextHop(p); err != nil {
			return err
		}
	}
	return f.networks(ctx, prefixes, "network")
}

// Withdraw implements Daemon.
func (f *FRR) Withdraw(ctx context.Context, prefixes ...netip.Prefix) error {
	return f.networks(ctx, prefixes, "no network")
}

func (f *FRR) networks(ctx context.Context, prefixes []netip.Prefix, verb string) error {
	if err := checkPrefixes(prefixes); err != nil {
		return err
	}
	cmds := frrNetworkCommands(f.cfg.ASN, verb, prefixes)
	if len(cmds) == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out, err := f.VTY(ctx, cmds...)
	if err != nil {
		return err
	}
	// vtysh exits 0 on some rejected lines; they print a "%" message.
	if strings.Contains(string(out), "%") {
		return fmt.Errorf("daemons: frr %s: %s", verb, out)
	}
	return nil
}

// frrNetworkCommands renders one configuration session adding or removing
// `network` statements, grouped by address family.
func frrNetworkCommands(asn uint32, verb string, prefixes []netip.Prefix) []string {
	if len(prefixes) == 0 {
		return nil
	}
	cmds := []string{"configure terminal", fmt.Sprintf("router bgp %d", asn)}
	for _, fam := range []Family{IPv4, IPv6} {
		ps := prefixSet(prefixes).family(fam)
		if len(ps) == 0 {
			continue
		}
		cmds = append(cmds, fmt.Sprintf("address-family ipv%d unicast", fam))
		for _, p := range ps {
			cmds = append(cmds, verb+" "+p.String())
		}
		cmds = append(cmds, "exit-address-family")
	}
	return append(cmds, "end")
}

// Sessions implements Daemon.
func (f *FRR) Sessions(ctx context.Context) ([]Session, error) {
	out, err := f.VTY(ctx, "show bgp neighbors json")
	if err != nil {
		return nil, err
	}
	return parseFRRNeighbors(out)
}

// Received implements Daemon.
func (f *FRR) Received(ctx context.Context) ([]Route, error) {
	var all []Route
	for _, fam := range []Family{IPv4, IPv6} {
		out, err := f.VTY(ctx, fmt.Sprintf("show bgp ipv%d unicast json", fam))
		if err != nil {
			return nil, err
		}
		rs, err := parseFRRRoutes(out)
		if err != nil {
			return nil, err
		}
		all = append(all, rs...)
	}
	sortRoutes(all)
	return all, nil
}

var frrStates = map[string]State{
	"Idle": Idle, "Connect": Connect, "Active": Active, "OpenSent": OpenSent,
	"OpenConfirm": OpenConfirm, "Established": Established,
}

func parseFRRNeighbors(out []byte) ([]Session, error) {
	var peers map[string]struct {
		BGPState string `json:"bgpState"`
	}
	if err := json.Unmarshal(out, &peers); err != nil {
		return nil, fmt.Errorf("daemons: parse frr neighbors: %w", err)
	}
	var ss []Session
	for addr, p := range peers {
		a, err := netip.ParseAddr(addr)
		if err != nil {
			continue // not a neighbour entry (e.g. a peer-group or interface name)
		}
		st, ok := frrStates[p.BGPState]
		if !ok {
			st = Idle // "Clearing", "Deleted", ...
		}
		ss = append(ss, Session{Peer: a, State: st})
	}
	sortSessions(ss)
	return ss, nil
}

func parseFRRRoutes(out []byte) ([]Route, error) {
	var table struct {
		Routes map[string][]struct {
			Valid    bool   `json:"valid"`
			Best     bool   `json:"bestpath"`
			PeerID   string `json:"peerId"`
			NextHops []struct {
				IP    string `json:"ip"`
				Scope string `json:"scope"`
			} `json:"nexthops"`
		} `json:"routes"`
	}
	if err := json.Unmarshal(out, &table); err != nil {
		return nil, fmt.Errorf("daemons: parse frr routes: %w", err)
	}
	var rs []Route
	for prefix, paths := range table.Routes {
		p, err := netip.ParsePrefix(prefix)
		if err != nil {
			return nil, fmt.Errorf("daemons: parse frr route %q: %w", prefix, err)
		}
		for _, path := range paths {
			peer, err := netip.ParseAddr(path.PeerID)
			if err != nil {
				continue // "(unspec)": originated here
			}
			r := Route{Prefix: p, Peer: peer, Best: path.Best && path.Valid}
			for _, nh := range path.NextHops {
				if a, err := netip.ParseAddr(nh.IP); err == nil && nh.Scope != "link-local" && !r.NextHop.IsValid() {
					r.NextHop = a
				}
			}
			rs = append(rs, r)
		}
	}
	sortRoutes(rs)
	return rs, nil
}
