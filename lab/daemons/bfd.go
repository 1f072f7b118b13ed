package daemons

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
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
// "init" or "admindown" (lower case whatever the daemon prints). Diag and
// RemoteDiag are the local and the peer's diagnostic in the daemon's words,
// where it prints them (FRR: "neighbor signaled session down",
// "administratively down").
type BFDState struct {
	Peer             netip.Addr
	State            string
	Diag, RemoteDiag string
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
	// bfdd's control socket defaults to a fixed path every instance shares.
	ctl := func(dir string) []string { return []string{"--bfdctl", filepath.Join(dir, "bfdd.sock")} }
	p, err := startFRRDaemon(ctx, ns, "bfdd", frrBFDConfig(peers), ctl, "show bfd peers json")
	if err != nil {
		return nil, err
	}
	return &FRRBFD{ns: ns, dir: p.dir, vtysh: p.vtysh, zebra: p.zebra, bfdd: p.daemon}, nil
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

// Kind implements BFDDaemon.
func (f *FRRBFD) Kind() string { return "frr-bfdd" }

// Procs returns zebra and bfdd.
func (f *FRRBFD) Procs() []*lab.Proc { return []*lab.Proc{f.zebra, f.bfdd} }

// Stop implements BFDDaemon.
func (f *FRRBFD) Stop() error { return stopAll(f.bfdd, f.zebra) }

// VTY runs vtysh commands against this instance.
func (f *FRRBFD) VTY(ctx context.Context, cmds ...string) ([]byte, error) {
	return frrVTY(ctx, f.ns, f.vtysh, f.dir, cmds...)
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
		Peer       string `json:"peer"`
		Status     string `json:"status"`
		Diag       string `json:"diagnostic"`
		RemoteDiag string `json:"remote-diagnostic"`
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
		ss = append(ss, BFDState{Peer: a, State: strings.ToLower(p.Status), Diag: p.Diag, RemoteDiag: p.RemoteDiag})
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
	dir, err := workDir(ns, "bird-bfd")
	if err != nil {
		return nil, err
	}
	b := &BIRDBFD{ns: ns}
	b.proc, b.cli, b.ctl, err = startBirdProc(ctx, ns, dir, "bird-bfd", birdBFDConfig(routerID, peers))
	if err != nil {
		return nil, err
	}
	return b, nil
}

// birdBFDConfig renders bird.conf. BIRD sets timers per interface (single
// hop) or in a multihop block, so each peer's interval goes in one of
// those: the first peer of each kind sets them for all.
func birdBFDConfig(routerID netip.Addr, peers []BFDPeer) string {
	var b strings.Builder
	fmt.Fprintf(&b, "router id %s;\nlog stderr all;\nprotocol device { scan time 1; }\nprotocol bfd bfd1 {\n", routerID)
	done := map[bool]bool{} // by multihop: BIRD takes one block of each kind here
	for _, p := range peers {
		if done[p.Multihop] {
			continue
		}
		done[p.Multihop] = true
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
