package announce

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/bgp/wire"
	"github.com/bgplb/bgplb/view"
)

// PeerStatus is one peer's state, for logs, metrics, Kubernetes conditions
// and the tests.
type PeerStatus struct {
	Name   string        `json:"name"`
	Addr   netip.Addr    `json:"addr"`
	PeerAS uint32        `json:"peerAS"` // negotiated when up, else configured
	State  session.State `json:"state"`
	// Since is when the session came up (Established) or last went down;
	// Uptime is how long it has been up, 0 when it is not.
	Since  time.Time      `json:"since,omitzero"`
	Uptime time.Duration  `json:"uptime,omitempty"`
	Local  netip.AddrPort `json:"local,omitzero"`
	// Desired is how many routes the last Announce gave; Announced how
	// many prefixes the session currently has from us.
	Desired   int `json:"desired"`
	Announced int `json:"announced"`
	// Synced is true when the session is up and has been sent the latest
	// desired set.
	Synced bool `json:"synced"`
	// GracefulRestart: both sides announced graceful restart (RFC 4724)
	// on the current session, so a Restart leaves our routes at the peer.
	GracefulRestart bool   `json:"gracefulRestart,omitempty"`
	UpdatesOut      uint64 `json:"updatesOut"`
	Flaps           uint64 `json:"flaps"`
	// SkippedCount routes of the desired set are not announced; Skipped
	// shows the first few and why.
	SkippedCount int            `json:"skippedCount"`
	Skipped      []SkippedRoute `json:"skipped,omitempty"`
	LastError    string         `json:"lastError,omitempty"`
}

// Status reports every peer, sorted by name: the running ones, and the
// ones the last SetPeers refused (State Idle, LastError saying why).
func (a *Announcer) Status() []PeerStatus {
	type snap struct {
		p   *peer
		cfg PeerConfig
		gen uint64
	}
	a.mu.Lock()
	peers := make([]snap, 0, len(a.peers))
	for name, p := range a.peers {
		peers = append(peers, snap{p, p.cfg, a.routes[name].gen})
	}
	out := make([]PeerStatus, 0, len(a.peers)+len(a.invalid))
	for _, name := range slices.Sorted(maps.Keys(a.invalid)) {
		if _, ok := a.peers[name]; !ok {
			out = append(out, PeerStatus{Name: name, State: session.Idle, LastError: a.invalid[name].Error()})
		}
	}
	a.mu.Unlock()
	for _, s := range peers {
		out = append(out, s.p.status(s.cfg, s.gen))
	}
	slices.SortFunc(out, func(x, y PeerStatus) int { return cmp.Compare(x.Name, y.Name) })
	return out
}

func (p *peer) status(cfg PeerConfig, gen uint64) PeerStatus {
	info := p.sess.Info()
	p.mu.Lock()
	epoch, sendErr := p.in.epoch, p.in.sendErr
	p.mu.Unlock()
	s := PeerStatus{
		Name: cfg.Name, Addr: cfg.Session.PeerAddr, PeerAS: cfg.Session.PeerAS, State: info.State,
		Since: info.Since, Local: info.Local, UpdatesOut: info.UpdatesOut, Flaps: info.Flaps,
	}
	if n := info.Negotiated; n != nil {
		s.PeerAS = n.PeerAS
		s.GracefulRestart = n.GracefulRestart != nil && info.State == session.Established
	}
	if info.State == session.Established && !info.Since.IsZero() {
		s.Uptime = time.Since(info.Since)
	}
	if err := cmp.Or(sendErr, info.LastError); err != nil {
		s.LastError = err.Error()
	}
	o := &p.out
	o.mu.RLock()
	defer o.mu.RUnlock()
	s.Desired, s.SkippedCount, s.Skipped = o.desired, o.skippedN, slices.Clone(o.skipped)
	if o.rib != nil {
		s.Announced = len(o.rib.routes)
	}
	s.Synced = o.synced && o.syncedGen == gen && o.syncedEpoch == epoch && info.State == session.Established
	return s
}

// Neighbors implements view.Source: one row per peer. A speaker receives
// nothing, so Received and Accepted stay 0; Rejected counts the routes of
// the desired set it could not announce (PeerStatus.Skipped says why), and
// Advertised the prefixes the session has from us (PeerStatus.Announced).
func (a *Announcer) Neighbors(context.Context) []view.Neighbor {
	st := a.Status()
	out := make([]view.Neighbor, 0, len(st))
	a.mu.Lock()
	ports := make(map[string]uint16, len(a.peers))
	for name, p := range a.peers {
		ports[name] = p.sess.Config().PeerPort
	}
	a.mu.Unlock()
	for _, s := range st {
		n := view.Neighbor{Address: s.Addr, Port: ports[s.Name], ASN: s.PeerAS, Description: s.Name,
			State: s.State.String(), Since: s.Since, Rejected: s.SkippedCount, Advertised: s.Announced,
			UpdatesOut: s.UpdatesOut, LastError: s.LastError}
		out = append(out, n)
	}
	return out
}

// RIB implements view.Source: the Adj-RIB-Out of every peer, one path per
// peer a prefix is announced to (Path.Peer is that peer, every path is
// "best"). With a valid prefix, only the entry that matches it exactly, or
// else the longest announced prefix containing it.
func (a *Announcer) RIB(_ context.Context, fam string, prefix netip.Prefix) []view.RIBEntry {
	a.mu.Lock()
	peers := make([]*peer, 0, len(a.peers))
	for _, p := range a.peers {
		peers = append(peers, p)
	}
	a.mu.Unlock()
	slices.SortFunc(peers, func(x, y *peer) int { return x.cfg.Session.PeerAddr.Compare(y.cfg.Session.PeerAddr) })
	entries := map[netip.Prefix][]view.Path{}
	for _, p := range peers {
		p.appendPaths(entries, fam, prefix)
	}
	out := make([]view.RIBEntry, 0, len(entries))
	for pfx, paths := range entries {
		out = append(out, view.RIBEntry{Prefix: pfx, Paths: paths})
	}
	slices.SortFunc(out, func(x, y view.RIBEntry) int {
		if c := x.Prefix.Addr().Compare(y.Prefix.Addr()); c != 0 {
			return c
		}
		return x.Prefix.Bits() - y.Prefix.Bits()
	})
	if prefix.IsValid() {
		return bestMatch(out, prefix)
	}
	return out
}

// bestMatch keeps the entry for prefix, or else the longest one containing it.
func bestMatch(es []view.RIBEntry, prefix netip.Prefix) []view.RIBEntry {
	best := -1
	for i, e := range es {
		if e.Prefix.Bits() <= prefix.Bits() && e.Prefix.Contains(prefix.Addr()) &&
			(best < 0 || e.Prefix.Bits() > es[best].Prefix.Bits()) {
			best = i
		}
	}
	if best < 0 {
		return []view.RIBEntry{}
	}
	return es[best : best+1]
}

// appendPaths adds p's announced routes of family fam ("" for both) to m;
// with a valid prefix, only those that may match it.
func (p *peer) appendPaths(m map[netip.Prefix][]view.Path, fam string, prefix netip.Prefix) {
	o := &p.out
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.rib == nil {
		return
	}
	for pfx, e := range o.rib.routes {
		if (fam == "ipv4" && !pfx.Addr().Is4()) || (fam == "ipv6" && !pfx.Addr().Is6()) {
			continue
		}
		if prefix.IsValid() && !pfx.Contains(prefix.Addr()) {
			continue
		}
		m[pfx] = append(m[pfx], viewPath(p.cfg.Session, o.rib.external, e))
	}
}

func viewPath(c session.Config, external bool, e outEntry) view.Path {
	a := e.path.attrs.Value()
	v := view.Path{Best: true, Peer: c.PeerAddr, NextHop: e.path.nextHop, Origin: wire.OriginIGP.String(),
		Since: time.Unix(0, e.since)}
	if external {
		v.ASPath = strconv.FormatUint(uint64(c.LocalAS), 10)
	} else {
		lp := a.localPref
		v.LocalPref = &lp
	}
	for _, c := range a.appendCommunities(nil) {
		v.Communities = append(v.Communities, c.String())
	}
	for _, c := range a.appendLarge(nil) {
		v.Communities = append(v.Communities, c.String())
	}
	if bw := a.bandwidthValue(); bw > 0 {
		v.LinkBandwidth = &bw
	}
	return v
}

// ErrNoFIB is what FIB returns: a speaker programs no routes.
var ErrNoFIB = errors.New("a speaker installs no routes in the kernel: ask the router (bgplb fib --socket ROUTER)")

// FIB implements view.Source.
func (a *Announcer) FIB(context.Context) ([]view.FIBRoute, error) { return nil, ErrNoFIB }

var _ view.Source = (*Announcer)(nil)
