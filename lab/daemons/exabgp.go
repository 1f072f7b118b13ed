package daemons

import (
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
	"sync"

	"github.com/bgplb/bgplb/lab"
)

// ExaBGP is an ExaBGP 4.2 speaker. It is driven through its process API:
// a small shell helper follows a commands file (tail -F) into ExaBGP's
// stdin-side API and copies ExaBGP's JSON events (session changes, parsed
// UPDATEs) into an events file, from which Sessions and Received are
// rebuilt. ExaBGP keeps no RIB of its own; received routes are therefore
// the fold of the event stream, and every one counts as best.
type ExaBGP struct {
	ns   *lab.Netns
	cfg  Config
	dir  string
	proc *lab.Proc

	mu sync.Mutex // serialises writes to the commands file
}

var _ Daemon = (*ExaBGP)(nil)

// exaHelper follows the commands file from its start, so a helper that
// ExaBGP respawns replays every announcement; tail exits with cat (--pid).
const exaHelper = `#!/bin/sh
tail -n +1 -s 0.1 -F --pid=$$ %q 2>/dev/null &
exec cat >> %q
`

// StartExaBGP writes ExaBGP's config, environment file and helper, starts
// it in ns and waits until the helper runs.
func StartExaBGP(ctx context.Context, ns *lab.Netns, cfg Config) (*ExaBGP, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.FIB {
		return nil, fmt.Errorf("daemons: exabgp does not install routes (FIB)")
	}
	bin, err := lookPath("exabgp")
	if err != nil {
		return nil, err
	}
	dir, err := workDir(ns, "exabgp")
	if err != nil {
		return nil, err
	}
	e := &ExaBGP{ns: ns, cfg: cfg, dir: dir}
	conf, err := exaConfig(cfg, filepath.Join(dir, "helper.sh"))
	if err != nil {
		return nil, err
	}
	files := map[string]string{
		"commands":     "",
		"helper.sh":    fmt.Sprintf(exaHelper, e.commandsPath(), e.eventsPath()),
		"exabgp.conf":  conf,
		"exabgp.env":   exaEnv(cfg),
		"events.jsonl": "",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return nil, fmt.Errorf("daemons: exabgp files: %w", err)
		}
	}
	// Paths must be absolute: ExaBGP resolves relative ones against /etc/exabgp.
	e.proc, err = ns.StartWith(ctx, lab.StartOptions{Label: "exabgp", Dir: dir}, bin,
		"-e", filepath.Join(dir, "exabgp.env"), filepath.Join(dir, "exabgp.conf"))
	if err != nil {
		return nil, err
	}
	if err := waitReady(ctx, "exabgp", e.Procs(), func() error {
		if !strings.Contains(e.proc.Logs(), "loaded new configuration successfully") {
			return errors.New("configuration not loaded yet")
		}
		return nil
	}); err != nil {
		return nil, errors.Join(fmt.Errorf("%w; log:\n%s", err, e.proc.Logs()), e.Stop())
	}
	return e, nil
}

func (e *ExaBGP) commandsPath() string { return filepath.Join(e.dir, "commands") }
func (e *ExaBGP) eventsPath() string   { return filepath.Join(e.dir, "events.jsonl") }

// exaConfig renders exabgp.conf; ExaBGP needs each session's local address.
func exaConfig(c Config, helper string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "process lab {\n    run /bin/sh %s;\n    encoder json;\n}\n", helper)
	for _, n := range c.Neighbors {
		local := c.localFor(n.Address)
		if !local.IsValid() {
			return "", fmt.Errorf("daemons: exabgp needs this speaker's address of neighbor %s's family (Local4/Local6)", n.Address)
		}
		fmt.Fprintf(&b, "neighbor %s {\n    router-id %s;\n    local-address %s;\n    local-as %d;\n    peer-as %d;\n    hold-time %d;\n",
			n.Address, c.RouterID, local, c.ASN, n.ASN, secs(c.hold()))
		if n.Passive {
			b.WriteString("    passive true;\n")
		}
		if n.Password != "" {
			fmt.Fprintf(&b, "    md5-password %q;\n", n.Password)
		}
		b.WriteString("    family {\n")
		for _, f := range n.families() {
			fmt.Fprintf(&b, "        ipv%d unicast;\n", f)
		}
		b.WriteString("    }\n    api {\n        processes [ lab ];\n        receive { parsed; update; }\n        neighbor-changes;\n    }\n}\n")
	}
	return b.String(), nil
}

// exaEnv renders the environment file. The package defaults would drop to
// user exabgp (which cannot read our files), look for CLI pipes under /run
// and answer every command with "done" on the helper's stdin.
func exaEnv(c Config) string {
	var bind []string
	for _, n := range c.Neighbors {
		if !n.Passive {
			continue
		}
		if s := c.localFor(n.Address).String(); !slices.Contains(bind, s) {
			bind = append(bind, s)
		}
	}
	return fmt.Sprintf(`[exabgp.api]
ack = false
cli = false

[exabgp.daemon]
daemonize = false
drop = false
user = 'root'
pid = ''

[exabgp.log]
destination = 'stdout'

[exabgp.tcp]
bind = '%s'
port = 179
`, strings.Join(bind, " "))
}

// Kind implements Daemon.
func (e *ExaBGP) Kind() string { return "exabgp" }

// Procs implements Daemon.
func (e *ExaBGP) Procs() []*lab.Proc { return []*lab.Proc{e.proc} }

// Stop implements Daemon.
func (e *ExaBGP) Stop() error { return stopAll(e.proc) }

// Command sends raw API lines ("announce route ...", "neighbor X teardown 2").
func (e *ExaBGP) Command(lines ...string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	f, err := os.OpenFile(e.commandsPath(), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("daemons: exabgp commands: %w", err)
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(strings.TrimSpace(l) + "\n")
	}
	_, err = f.WriteString(b.String()) // one write: tail never sees half a batch
	return errors.Join(err, f.Close())
}

// Announce implements Daemon.
func (e *ExaBGP) Announce(ctx context.Context, prefixes ...netip.Prefix) error {
	return e.AnnounceWith(ctx, "", prefixes...)
}

// AnnounceWith announces prefixes with extra attributes in ExaBGP's route
// syntax appended to each, e.g. "extended-community [ 0x4004fc003f800000 ]"
// (a link-bandwidth community, written as its 8 bytes in hex).
func (e *ExaBGP) AnnounceWith(ctx context.Context, attrs string, prefixes ...netip.Prefix) error {
	if err := checkPrefixes(prefixes); err != nil {
		return err
	}
	lines := make([]string, 0, len(prefixes))
	for _, p := range prefixes {
		nh, err := e.cfg.nextHop(p)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("announce route %s next-hop %s", p, nh)
		if attrs != "" {
			line += " " + attrs
		}
		lines = append(lines, line)
	}
	return e.Command(lines...)
}

// Withdraw implements Daemon.
func (e *ExaBGP) Withdraw(ctx context.Context, prefixes ...netip.Prefix) error {
	if err := checkPrefixes(prefixes); err != nil {
		return err
	}
	lines := make([]string, 0, len(prefixes))
	for _, p := range prefixes {
		lines = append(lines, fmt.Sprintf("withdraw route %s", p))
	}
	return e.Command(lines...)
}

func (e *ExaBGP) events() (*exaRIB, error) {
	data, err := os.ReadFile(e.eventsPath())
	if err != nil {
		return nil, fmt.Errorf("daemons: exabgp events: %w", err)
	}
	rib := newExaRIB(e.cfg.Neighbors)
	return rib, rib.applyAll(data)
}

// Sessions implements Daemon.
func (e *ExaBGP) Sessions(ctx context.Context) ([]Session, error) {
	rib, err := e.events()
	if err != nil {
		return nil, err
	}
	return rib.sessions(), nil
}

// Received implements Daemon.
func (e *ExaBGP) Received(ctx context.Context) ([]Route, error) {
	rib, err := e.events()
	if err != nil {
		return nil, err
	}
	return rib.received(), nil
}

// exaRIB is the state rebuilt from ExaBGP's event stream.
type exaRIB struct {
	state  map[netip.Addr]State
	routes map[netip.Addr]map[netip.Prefix]netip.Addr // peer -> prefix -> next hop
}

func newExaRIB(neighbors []Neighbor) *exaRIB {
	r := &exaRIB{state: map[netip.Addr]State{}, routes: map[netip.Addr]map[netip.Prefix]netip.Addr{}}
	for _, n := range neighbors {
		r.state[n.Address] = Idle
	}
	return r
}

type exaEvent struct {
	Type     string `json:"type"`
	Neighbor struct {
		Address struct {
			Peer string `json:"peer"`
		} `json:"address"`
		State   string `json:"state"`
		Message struct {
			Update *struct {
				Announce map[string]map[string][]json.RawMessage `json:"announce"`
				Withdraw map[string][]json.RawMessage            `json:"withdraw"`
			} `json:"update"`
		} `json:"message"`
	} `json:"neighbor"`
}

// applyAll folds a stream of JSON lines. An unterminated last line is
// still being written and waits for the next read.
func (r *exaRIB) applyAll(data []byte) error {
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		data = nil
	}
	for line := range bytes.Lines(data) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] != '{' {
			continue // "done"/"error" acknowledgements, if enabled
		}
		if err := r.apply(line); err != nil {
			return err
		}
	}
	return nil
}

func (r *exaRIB) apply(line []byte) error {
	var ev exaEvent
	if err := json.Unmarshal(line, &ev); err != nil {
		return fmt.Errorf("daemons: exabgp event %q: %w", line, err)
	}
	peer, err := netip.ParseAddr(ev.Neighbor.Address.Peer)
	if err != nil {
		return nil // events without a neighbour (notifications about the daemon)
	}
	switch ev.Type {
	case "state":
		switch ev.Neighbor.State {
		case "up":
			r.state[peer] = Established
		case "connected":
			// Sent when a connection attempt starts, even to a host
			// that is not there: not evidence of an OPEN exchange.
			r.state[peer] = Connect
		default: // "down", "shutdown", ...
			r.state[peer] = Idle
			delete(r.routes, peer)
		}
	case "update":
		u := ev.Neighbor.Message.Update
		if u == nil {
			return nil // End-of-RIB and other non-update messages
		}
		for _, nlris := range u.Withdraw {
			for _, raw := range nlris {
				if p, ok := exaNLRI(raw); ok {
					delete(r.routes[peer], p)
				}
			}
		}
		for _, byNH := range u.Announce {
			r.announce(peer, byNH)
		}
	}
	return nil
}

// announce records an UPDATE's NLRI. An IPv6 route may come under two next
// hops (global and link-local); the global one wins.
func (r *exaRIB) announce(peer netip.Addr, byNH map[string][]json.RawMessage) {
	if r.routes[peer] == nil {
		r.routes[peer] = map[netip.Prefix]netip.Addr{}
	}
	for nhs, nlris := range byNH {
		nh, _ := netip.ParseAddr(nhs) // invalid stays invalid: "null" next hops
		for _, raw := range nlris {
			p, ok := exaNLRI(raw)
			if !ok {
				continue
			}
			if old, seen := r.routes[peer][p]; seen && old.IsValid() && !old.IsLinkLocalUnicast() && nh.IsLinkLocalUnicast() {
				continue
			}
			r.routes[peer][p] = nh
		}
	}
}

// exaNLRI accepts {"nlri": "p"} objects and bare "p" strings.
func exaNLRI(raw json.RawMessage) (netip.Prefix, bool) {
	var obj struct {
		NLRI string `json:"nlri"`
	}
	s := ""
	if json.Unmarshal(raw, &obj) == nil && obj.NLRI != "" {
		s = obj.NLRI
	} else if json.Unmarshal(raw, &s) != nil {
		return netip.Prefix{}, false
	}
	p, err := netip.ParsePrefix(s)
	return p, err == nil
}

func (r *exaRIB) sessions() []Session {
	ss := make([]Session, 0, len(r.state))
	for p, st := range r.state {
		ss = append(ss, Session{Peer: p, State: st})
	}
	sortSessions(ss)
	return ss
}

func (r *exaRIB) received() []Route {
	var rs []Route
	for peer, m := range r.routes {
		for p, nh := range m {
			rs = append(rs, Route{Prefix: p, NextHop: nh, Peer: peer, Best: true})
		}
	}
	sortRoutes(rs)
	return rs
}
