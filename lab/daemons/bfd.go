package daemons

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bgplb/bgplb/lab"
)

// BFDPeer is one BFD session a daemon runs, for interop tests of package
// bfd. Zero intervals and multiplier take 300 ms × 3.
type BFDPeer struct {
	Peer, Local netip.Addr
	// Interface binds a single-hop session to a link.
	Interface string
	Multihop  bool
	Interval  time.Duration // both transmit and receive
	Mult      uint8
	Passive   bool
}

func (p BFDPeer) interval() time.Duration {
	if p.Interval <= 0 {
		return 300 * time.Millisecond
	}
	return p.Interval
}

func (p BFDPeer) mult() uint8 {
	if p.Mult == 0 {
		return 3
	}
	return p.Mult
}

// BFDState is a daemon's view of one BFD session: state is "up", "down",
// "init" or "admindown" (lower case whatever the daemon prints).
type BFDState struct {
	Peer  netip.Addr
	State string
}

// BFDDaemon is a daemon running BFD sessions.
type BFDDaemon interface {
	Kind() string
	BFDSessions(ctx context.Context) ([]BFDState, error)
	Stop() error
}

// WaitBFD waits until the daemon reports the session with peer in state.
func WaitBFD(ctx context.Context, d BFDDaemon, peer netip.Addr, state string) error {
	var last []BFDState
	err := lab.Poll(ctx, 20*time.Millisecond, func() (bool, error) {
		ss, err := d.BFDSessions(ctx)
		if err != nil {
			return false, err
		}
		last = ss
		for _, s := range ss {
			if s.Peer == peer && s.State == state {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("daemons: %s: BFD session with %s not %s (have %v): %w", d.Kind(), peer, state, last, err)
	}
	return nil
}

// FRRBFD is FRR's bfdd with its own zebra (which tells bfdd about
// interfaces), driven through vtysh.
type FRRBFD struct {
	ns    *lab.Netns
	dir   string
	vtysh string
	zebra *lab.Proc
	bfdd  *lab.Proc
}

// StartFRRBFD starts zebra and bfdd in ns with the given peers, with
// their own config, pid files, zserv, control and vty sockets.
func StartFRRBFD(ctx context.Context, ns *lab.Netns, peers []BFDPeer) (*FRRBFD, error) {
	var bins [3]string
	for i, name := range []string{"zebra", "bfdd", "vtysh"} {
		p, err := lookPath(name)
		if err != nil {
			return nil, err
		}
		bins[i] = p
	}
	dir, err := frrDir(ns)
	if err != nil {
		return nil, err
	}
	f := &FRRBFD{ns: ns, dir: dir, vtysh: bins[2]}
	for name, text := range map[string]string{"zebra.conf": "hostname lab\n", "bfdd.conf": frrBFDConfig(peers)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return nil, fmt.Errorf("daemons: frr config: %w", err)
		}
	}
	zserv := filepath.Join(dir, "zserv.api")
	f.zebra, err = ns.StartWith(ctx, lab.StartOptions{Label: "zebra", Dir: dir}, bins[0],
		"-f", filepath.Join(dir, "zebra.conf"), "-i", filepath.Join(dir, "zebra.pid"), "-z", zserv,
		"--vty_socket", dir, "-P", "0", "--log", "stdout")
	if err != nil {
		return nil, err
	}
	if err := waitReady(ctx, "zebra", f.procs(), func() error { _, err := os.Stat(zserv); return err }); err != nil {
		return nil, errors.Join(fmt.Errorf("%w; log:\n%s", err, f.zebra.Logs()), f.Stop())
	}
	f.bfdd, err = ns.StartWith(ctx, lab.StartOptions{Label: "bfdd", Dir: dir}, bins[1],
		"-f", filepath.Join(dir, "bfdd.conf"), "-i", filepath.Join(dir, "bfdd.pid"), "-z", zserv,
		"--bfdctl", filepath.Join(dir, "bfdd.sock"), "--vty_socket", dir, "-P", "0", "--log", "stdout")
	if err != nil {
		return nil, errors.Join(err, f.Stop())
	}
	if err := waitReady(ctx, "bfdd", f.procs(), func() error {
		_, err := f.VTY(ctx, "show bfd peers json")
		return err
	}); err != nil {
		return nil, errors.Join(fmt.Errorf("%w; log:\n%s", err, f.bfdd.Logs()), f.Stop())
	}
	return f, nil
}

// frrBFDConfig renders bfdd.conf: one `peer` block per session.
func frrBFDConfig(peers []BFDPeer) string {
	var b strings.Builder
	b.WriteString("hostname lab\n!\nbfd\n")
	for _, p := range peers {
		fmt.Fprintf(&b, " peer %s", p.Peer)
		if p.Multihop {
			b.WriteString(" multihop")
		}
		if p.Local.IsValid() {
			fmt.Fprintf(&b, " local-address %s", p.Local)
		}
		if p.Interface != "" {
			fmt.Fprintf(&b, " interface %s", p.Interface)
		}
		ms := p.interval().Milliseconds()
		fmt.Fprintf(&b, "\n  receive-interval %d\n  transmit-interval %d\n  detect-multiplier %d\n", ms, ms, p.mult())
		if p.Passive {
			b.WriteString("  passive-mode\n")
		}
		b.WriteString("  no shutdown\n !\n")
	}
	b.WriteString("!\n")
	return b.String()
}

func (f *FRRBFD) procs() []*lab.Proc {
	var ps []*lab.Proc
	for _, p := range []*lab.Proc{f.zebra, f.bfdd} {
		if p != nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// Kind implements BFDDaemon.
func (f *FRRBFD) Kind() string { return "frr-bfdd" }

// Procs returns zebra and bfdd.
func (f *FRRBFD) Procs() []*lab.Proc { return f.procs() }

// Stop implements BFDDaemon.
func (f *FRRBFD) Stop() error { return stopAll(f.bfdd, f.zebra) }

// VTY runs vtysh commands against this instance.
func (f *FRRBFD) VTY(ctx context.Context, cmds ...string) ([]byte, error) {
	args := []string{"--vty_socket", f.dir}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	return f.ns.Run(ctx, f.vtysh, args...)
}

// BFDSessions implements BFDDaemon (`show bfd peers json`).
func (f *FRRBFD) BFDSessions(ctx context.Context) ([]BFDState, error) {
	out, err := f.VTY(ctx, "show bfd peers json")
	if err != nil {
		return nil, err
	}
	return parseFRRBFDPeers(out)
}

func parseFRRBFDPeers(out []byte) ([]BFDState, error) {
	var peers []struct {
		Peer   string `json:"peer"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(out, &peers); err != nil {
		return nil, fmt.Errorf("daemons: parse frr bfd peers: %w: %s", err, out)
	}
	var ss []BFDState
	for _, p := range peers {
		a, err := netip.ParseAddr(p.Peer)
		if err != nil {
			continue
		}
		ss = append(ss, BFDState{Peer: a, State: strings.ToLower(p.Status)})
	}
	return ss, nil
}

// BIRDBFD is BIRD 2 running only `protocol bfd`, driven through birdc.
type BIRDBFD struct {
	ns   *lab.Netns
	cli  string
	ctl  string
	proc *lab.Proc
}

// StartBIRDBFD starts bird in ns with a bfd protocol holding the peers.
func StartBIRDBFD(ctx context.Context, ns *lab.Netns, routerID netip.Addr, peers []BFDPeer) (*BIRDBFD, error) {
	bin, err := lookPath("bird")
	if err != nil {
		return nil, err
	}
	cli, err := lookPath("birdc")
	if err != nil {
		return nil, err
	}
	dir, err := workDir(ns, "bird-bfd")
	if err != nil {
		return nil, err
	}
	b := &BIRDBFD{ns: ns, cli: cli, ctl: filepath.Join(dir, "bird.ctl")}
	conf := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(conf, []byte(birdBFDConfig(routerID, peers)), 0o644); err != nil {
		return nil, fmt.Errorf("daemons: bird config: %w", err)
	}
	b.proc, err = ns.StartWith(ctx, lab.StartOptions{Label: "bird-bfd", Dir: dir}, bin,
		"-f", "-c", conf, "-s", b.ctl, "-P", filepath.Join(dir, "bird.pid"))
	if err != nil {
		return nil, err
	}
	if err := waitReady(ctx, "bird", []*lab.Proc{b.proc}, func() error {
		out, err := b.CLI(ctx, "show", "status")
		if err == nil && !bytes.Contains(out, []byte("Daemon is up and running")) {
			err = fmt.Errorf("bird status: %s", out)
		}
		return err
	}); err != nil {
		return nil, errors.Join(fmt.Errorf("%w; log:\n%s", err, b.proc.Logs()), b.Stop())
	}
	return b, nil
}

// birdBFDConfig renders bird.conf. BIRD sets timers per interface (single
// hop) or in a multihop block, so each peer's interval goes in one of
// those; the tests use one interval per daemon.
func birdBFDConfig(routerID netip.Addr, peers []BFDPeer) string {
	var b strings.Builder
	fmt.Fprintf(&b, "router id %s;\nlog stderr all;\nprotocol device { scan time 1; }\nprotocol bfd bfd1 {\n", routerID)
	for _, p := range peers {
		opts := fmt.Sprintf("min rx interval %d ms; min tx interval %d ms; idle tx interval 1000 ms; multiplier %d;",
			p.interval().Milliseconds(), p.interval().Milliseconds(), p.mult())
		if p.Passive {
			opts += " passive on;"
		}
		if p.Multihop {
			fmt.Fprintf(&b, "  multihop { %s };\n", opts)
		} else {
			fmt.Fprintf(&b, "  interface \"*\" { %s };\n", opts)
		}
	}
	for _, p := range peers {
		fmt.Fprintf(&b, "  neighbor %s", p.Peer)
		if p.Interface != "" {
			fmt.Fprintf(&b, " dev %q", p.Interface)
		}
		if p.Local.IsValid() {
			fmt.Fprintf(&b, " local %s", p.Local)
		}
		if p.Multihop {
			b.WriteString(" multihop on")
		}
		b.WriteString(";\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// Kind implements BFDDaemon.
func (b *BIRDBFD) Kind() string { return "bird-bfd" }

// Procs returns bird.
func (b *BIRDBFD) Procs() []*lab.Proc { return []*lab.Proc{b.proc} }

// Stop implements BFDDaemon.
func (b *BIRDBFD) Stop() error { return stopAll(b.proc) }

// CLI runs birdc against this daemon's control socket.
func (b *BIRDBFD) CLI(ctx context.Context, args ...string) ([]byte, error) {
	return b.ns.Run(ctx, b.cli, append([]string{"-s", b.ctl}, args...)...)
}

// BFDSessions implements BFDDaemon (`show bfd sessions`).
func (b *BIRDBFD) BFDSessions(ctx context.Context) ([]BFDState, error) {
	out, err := b.CLI(ctx, "show", "bfd", "sessions")
	if err != nil {
		return nil, err
	}
	return parseBIRDBFDSessions(out)
}

var birdBFDStates = []string{"up", "down", "init", "admindown"}

// parseBIRDBFDSessions reads rows like
// "198.51.100.21   eth0   Up   15:20:00.123   0.050   0.150": an address,
// then (after an optional interface) the state.
func parseBIRDBFDSessions(out []byte) ([]BFDState, error) {
	var ss []BFDState
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		a, err := netip.ParseAddr(f[0])
		if err != nil {
			continue
		}
		for _, w := range f[1:] {
			if st := strings.ToLower(w); slices.Contains(birdBFDStates, st) {
				ss = append(ss, BFDState{Peer: a, State: st})
				break
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("daemons: parse bird bfd sessions: %w", err)
	}
	return ss, nil
}
