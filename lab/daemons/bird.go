package daemons

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/bgplb/bgplb/lab"
)

// BIRD is a BIRD 2 daemon driven through birdc. Announcements are static
// blackhole routes in an included file, exported to BGP with next hop self;
// changing them rewrites the file and runs `birdc configure`.
type BIRD struct {
	ns   *lab.Netns
	cfg  Config
	dir  string
	cli  string
	ctl  string
	proc *lab.Proc

	mu        sync.Mutex // serialises announcements (file rewrite + configure)
	announced prefixSet
}

var _ Daemon = (*BIRD)(nil)

// StartBIRD writes a BIRD config and starts bird in the foreground in ns.
func StartBIRD(ctx context.Context, ns *lab.Netns, cfg Config) (*BIRD, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	dir, err := workDir(ns, "bird")
	if err != nil {
		return nil, err
	}
	b := &BIRD{ns: ns, cfg: cfg, dir: dir}
	if err := b.writeStatic(); err != nil {
		return nil, err
	}
	b.proc, b.cli, b.ctl, err = startBirdProc(ctx, ns, dir, "bird", birdConfig(cfg, dir))
	if err != nil {
		return nil, err
	}
	return b, nil
}

// startBirdProc writes bird.conf in dir, starts bird in the foreground with
// its control socket there and returns once birdc says it is up, with
// birdc's path and the socket's; on failure it has stopped bird.
func startBirdProc(ctx context.Context, ns *lab.Netns, dir, label, config string) (proc *lab.Proc, cli, ctl string, err error) {
	bin, err := lookPath("bird")
	if err != nil {
		return nil, "", "", err
	}
	if cli, err = lookPath("birdc"); err != nil {
		return nil, "", "", err
	}
	ctl = filepath.Join(dir, "bird.ctl")
	conf := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		return nil, "", "", fmt.Errorf("daemons: bird config: %w", err)
	}
	proc, err = ns.StartWith(ctx, lab.StartOptions{Label: label, Dir: dir}, bin,
		"-f", "-c", conf, "-s", ctl, "-P", filepath.Join(dir, "bird.pid"))
	if err != nil {
		return nil, "", "", err
	}
	if err := waitReady(ctx, label, []*lab.Proc{proc}, func() error {
		out, err := ns.Run(ctx, cli, "-s", ctl, "show", "status")
		if err == nil && !bytes.Contains(out, []byte("Daemon is up and running")) {
			err = fmt.Errorf("bird status: %s", out)
		}
		return err
	}); err != nil {
		return nil, "", "", errors.Join(fmt.Errorf("%w; log:\n%s", err, proc.Logs()), stopAll(proc))
	}
	return proc, cli, ctl, nil
}

// birdProtoName names the bgp protocol of a neighbour; BIRD names allow
// letters, digits and '_'.
func birdProtoName(a netip.Addr) string {
	return "n" + strings.NewReplacer(".", "_", ":", "_", "%", "_").Replace(a.String())
}

func birdStaticFile(dir string, f Family) string {
	return filepath.Join(dir, fmt.Sprintf("static%d.conf", f))
}

// birdConfig renders bird.conf. The static protocols include files that
// Announce rewrites.
func birdConfig(c Config, dir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "router id %s;\nlog stderr all;\nprotocol device { scan time 10; }\n", c.RouterID)
	if c.FIB {
		// merge paths: equal BGP routes become one ECMP kernel route.
		for _, f := range []Family{IPv4, IPv6} {
			fmt.Fprintf(&b, "protocol kernel kernel%d { ipv%d { import none; export where source = RTS_BGP; }; merge paths on; }\n", f, f)
		}
	}
	for _, f := range []Family{IPv4, IPv6} {
		// BIRD takes include only at the start of a line.
		fmt.Fprintf(&b, "protocol static static%d {\n  ipv%d;\ninclude %q;\n}\n", f, f, birdStaticFile(dir, f))
	}
	for _, n := range c.Neighbors {
		fmt.Fprintf(&b, "protocol bgp %s {\n", birdProtoName(n.Address))
		// A link-local neighbour (fe80::1%eth0) is reached from this
		// host's link-local address on that interface, which BIRD picks;
		// binding the global one would make the session come from an
		// address the peer does not know.
		if local := c.localFor(n.Address); local.IsValid() && n.Address.Zone() == "" {
			fmt.Fprintf(&b, "  local %s as %d;\n", local, c.ASN)
		} else {
			fmt.Fprintf(&b, "  local as %d;\n", c.ASN)
		}
		fmt.Fprintf(&b, "  neighbor %s as %d;\n  direct;\n", n.Address, n.ASN)
		// connect delay (5 s) and error wait (60-300 s) would stall tests
		// after a start or a reset.
		fmt.Fprintf(&b, "  hold time %d; keepalive time %d; connect retry time %d; connect delay time 1; error wait time 1,5;\n",
			secs(c.hold()), secs(c.keepalive()), secs(c.connectRetry()))
		if n.Passive {
			b.WriteString("  passive on;\n")
		}
		if n.Password != "" {
			fmt.Fprintf(&b, "  password %q;\n", n.Password)
		}
		for _, f := range n.families() {
			nh := "next hop self"
			if l := c.Local4; f == IPv4 && l.IsValid() {
				nh = "next hop address " + l.String()
			}
			if l := c.Local6; f == IPv6 && l.IsValid() {
				nh = "next hop address " + l.String()
			}
			fmt.Fprintf(&b, "  ipv%d { import all; export where source = RTS_STATIC; %s; };\n", f, nh)
		}
		b.WriteString("}\n")
	}
	return b.String()
}

func birdStatic(ps []netip.Prefix) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "route %s blackhole;\n", p)
	}
	return b.String()
}

func (b *BIRD) writeStatic() error {
	for _, f := range []Family{IPv4, IPv6} {
		if err := os.WriteFile(birdStaticFile(b.dir, f), []byte(birdStatic(b.announced.family(f))), 0o644); err != nil {
			return fmt.Errorf("daemons: bird static routes: %w", err)
		}
	}
	return nil
}

// Kind implements Daemon.
func (b *BIRD) Kind() string { return "bird" }

// Procs implements Daemon.
func (b *BIRD) Procs() []*lab.Proc { return []*lab.Proc{b.proc} }

// Stop implements Daemon.
func (b *BIRD) Stop() error { return stopAll(b.proc) }

// CLI runs birdc against this daemon's control socket.
func (b *BIRD) CLI(ctx context.Context, args ...string) ([]byte, error) {
	return b.ns.Run(ctx, b.cli, append([]string{"-s", b.ctl}, args...)...)
}

// Announce implements Daemon.
func (b *BIRD) Announce(ctx context.Context, prefixes ...netip.Prefix) error {
	return b.update(ctx, prefixes, true)
}

// Withdraw implements Daemon.
func (b *BIRD) Withdraw(ctx context.Context, prefixes ...netip.Prefix) error {
	return b.update(ctx, prefixes, false)
}

func (b *BIRD) update(ctx context.Context, prefixes []netip.Prefix, add bool) error {
	if err := checkPrefixes(prefixes); err != nil {
		return err
	}
	if add {
		for _, p := range prefixes {
			if _, err := b.cfg.nextHop(p); err != nil {
				return err
			}
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	prev := append(prefixSet(nil), b.announced...)
	if add {
		b.announced = b.announced.add(prefixes...)
	} else {
		b.announced = b.announced.remove(prefixes...)
	}
	err := b.writeStatic()
	if err == nil {
		err = b.configure(ctx)
	}
	if err != nil {
		b.announced = prev
		return err
	}
	return nil
}

func (b *BIRD) configure(ctx context.Context) error {
	out, err := b.CLI(ctx, "configure")
	if err != nil {
		return err
	}
	if !bytes.Contains(out, []byte("Reconfigured")) && !bytes.Contains(out, []byte("Reconfiguration in progress")) {
		return fmt.Errorf("daemons: bird configure: %s", out)
	}
	return nil
}

// Sessions implements Daemon.
func (b *BIRD) Sessions(ctx context.Context) ([]Session, error) {
	out, err := b.CLI(ctx, "show", "protocols")
	if err != nil {
		return nil, err
	}
	return parseBIRDProtocols(out, b.protoNames())
}

// Received implements Daemon.
func (b *BIRD) Received(ctx context.Context) ([]Route, error) {
	out, err := b.CLI(ctx, "show", "route", "all")
	if err != nil {
		return nil, err
	}
	return parseBIRDRoutes(out, b.protoNames())
}

func (b *BIRD) protoNames() map[string]netip.Addr {
	m := make(map[string]netip.Addr, len(b.cfg.Neighbors))
	for _, n := range b.cfg.Neighbors {
		m[birdProtoName(n.Address)] = n.Address
	}
	return m
}

var birdStates = map[string]State{
	"Idle": Idle, "Connect": Connect, "Active": Active, "OpenSent": OpenSent,
	"OpenConfirm": OpenConfirm, "Established": Established,
}

// parseBIRDProtocols reads `birdc show protocols`. The Since column may be
// one or two words depending on the time format, so the BGP state is the
// first known state word after the State column.
func parseBIRDProtocols(out []byte, names map[string]netip.Addr) ([]Session, error) {
	var ss []Session
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[1] != "BGP" {
			continue
		}
		addr, ok := names[f[0]]
		if !ok {
			continue
		}
		s := Session{Peer: addr, State: Idle}
		for _, w := range f[4:] {
			if st, ok := birdStates[w]; ok {
				s.State = st
				break
			}
		}
		ss = append(ss, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("daemons: parse bird protocols: %w", err)
	}
	sortSessions(ss)
	return ss, nil
}

// parseBIRDRoutes reads `birdc show route all`: a route line starts with
// the prefix (or, for more routes to the same prefix, with blanks) and
// names its protocol in brackets; '*' marks the best; attribute lines are
// tab-indented.
func parseBIRDRoutes(out []byte, names map[string]netip.Addr) ([]Route, error) {
	var (
		rs     []Route
		prefix netip.Prefix
		cur    *Route // the route whose attribute lines follow, if ours
	)
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "\t"):
			if cur == nil {
				continue
			}
			f := strings.Fields(line)
			switch {
			case len(f) >= 2 && f[0] == "BGP.next_hop:":
				if nh, err := netip.ParseAddr(f[1]); err == nil {
					cur.NextHop = nh
				}
			case len(f) >= 2 && f[0] == "via" && !cur.NextHop.IsValid():
				if nh, err := netip.ParseAddr(f[1]); err == nil {
					cur.NextHop = nh
				}
			}
		case strings.HasPrefix(line, "Table ") || strings.HasPrefix(line, "BIRD ") || strings.TrimSpace(line) == "":
			cur = nil
		default:
			if !strings.HasPrefix(line, " ") {
				f := strings.Fields(line)
				p, err := netip.ParsePrefix(f[0])
				if err != nil {
					return nil, fmt.Errorf("daemons: parse bird route %q: %w", line, err)
				}
				prefix = p
			}
			cur = nil
			proto, best, ok := birdRouteProto(line)
			if peer, mine := names[proto]; ok && mine {
				rs = append(rs, Route{Prefix: prefix, Peer: peer, Best: best})
				cur = &rs[len(rs)-1]
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("daemons: parse bird routes: %w", err)
	}
	sortRoutes(rs)
	return rs, nil
}

// birdRouteProto extracts "proto" and the best marker from
// "203.0.113.10/32  unicast [proto 12:00:00.000] * (100) [i]".
func birdRouteProto(line string) (proto string, best bool, ok bool) {
	i := strings.IndexByte(line, '[')
	if i < 0 {
		return "", false, false
	}
	j := strings.IndexByte(line[i:], ']')
	if j < 0 {
		return "", false, false
	}
	inside := strings.Fields(line[i+1 : i+j])
	if len(inside) == 0 {
		return "", false, false
	}
	rest := strings.Fields(line[i+j+1:])
	return inside[0], len(rest) > 0 && rest[0] == "*", true
}
