package router

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/bgplb/bgplb/bgp/rib"
	"github.com/bgplb/bgplb/bgp/session"
	"github.com/bgplb/bgplb/bgp/wire"
	"github.com/bgplb/bgplb/reach"
	"github.com/bgplb/bgplb/view"
)

// Neighbors implements view.Source.
func (d *Daemon) Neighbors(context.Context) []view.Neighbor {
	peers := d.peerList()
	slices.SortFunc(peers, func(a, b *peer) int { return a.addr.Compare(b.addr) })
	out := make([]view.Neighbor, 0, len(peers))
	for _, p := range peers {
		info := p.sess.Info()
		cfg := p.sess.Config()
		n := view.Neighbor{
			Address: p.addr, Port: cfg.PeerPort, ASN: cfg.PeerAS,
			Dynamic: p.dynamic, State: info.State.String(), Since: info.Since,
			Received: int(p.received.Load()), Accepted: int(p.accepted.Load()), Rejected: int(p.rejected.Load()),
			UpdatesIn: info.UpdatesIn, UpdatesOut: info.UpdatesOut,
		}
		if p.static != nil {
			n.Description = p.static.Description
		}
		if info.LastError != nil {
			n.LastError = info.LastError.Error()
		}
		if ng := info.Negotiated; ng != nil {
			n.ASN, n.RouterID, n.HoldTime = ng.PeerAS, ng.PeerID, uint16(ng.HoldTime.Seconds())
		}
		if info.State != session.Established {
			n.Received, n.Accepted = 0, 0
		}
		if st, ok := p.bfdStatus(); ok {
			n.BFD = view.BFDOf(st)
		}
		n.GracefulRestart = d.viewGR(p.grStatus())
		out = append(out, n)
	}
	return out
}

// RIB implements view.Source.
func (d *Daemon) RIB(_ context.Context, family string, prefix netip.Prefix) []view.RIBEntry {
	addrs, stale := d.peerAddrs()
	if prefix.IsValid() {
		paths := d.rib.Lookup(prefix)
		if len(paths) == 0 {
			return []view.RIBEntry{}
		}
		return []view.RIBEntry{{Prefix: prefix, Paths: viewPaths(paths, addrs, stale)}}
	}
	out := []view.RIBEntry{}
	for _, fam := range []wire.Family{wire.IPv4Unicast, wire.IPv6Unicast} {
		if (family == "ipv4" && fam != wire.IPv4Unicast) || (family == "ipv6" && fam != wire.IPv6Unicast) {
			continue
		}
		d.rib.Walk(fam, func(p netip.Prefix, paths []rib.PathView) bool {
			out = append(out, view.RIBEntry{Prefix: p, Paths: viewPaths(paths, addrs, stale)})
			return true
		})
	}
	return out
}

// peerAddrs maps the RIB's peer IDs to addresses, and says which IDs are
// stale generations of a graceful restart.
func (d *Daemon) peerAddrs() (map[rib.PeerID]netip.Addr, map[rib.PeerID]bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := make(map[rib.PeerID]netip.Addr, len(d.peers))
	stale := map[rib.PeerID]bool{}
	for _, p := range d.peers {
		if id := p.ribID.Load(); id != 0 {
			m[rib.PeerID(id)] = p.addr
		}
		if id := rib.PeerID(p.staleID.Load()); id != 0 {
			m[id], stale[id] = p.addr, true
		}
	}
	return m, stale
}

func viewPaths(ps []rib.PathView, addrs map[rib.PeerID]netip.Addr, stale map[rib.PeerID]bool) []view.Path {
	out := make([]view.Path, 0, len(ps))
	for _, p := range ps {
		v := view.Path{Best: p.Best, Multipath: p.ECMP, Peer: p.PeerAddr, NextHop: p.NextHop, Since: p.Since, Stale: stale[p.Peer]}
		if !v.Peer.IsValid() {
			v.Peer = addrs[p.Peer]
		}
		if a := p.Attrs; a != nil {
			v.ASPath, v.Origin = a.ASPath.String(), a.Origin.String()
			if a.Has(wire.AttrLocalPref) {
				lp := a.LocalPref
				v.LocalPref = &lp
			}
			if a.Has(wire.AttrMED) {
				med := a.MED
				v.MED = &med
			}
			for _, c := range a.Communities {
				v.Communities = append(v.Communities, c.String())
			}
			for _, c := range a.LargeCommunities {
				v.Communities = append(v.Communities, c.String())
			}
		}
		if usableBandwidth(p.LinkBandwidth) {
			bw := p.LinkBandwidth
			v.LinkBandwidth = &bw
		}
		if !p.Best {
			v.Reason = p.Reason.String()
		}
		v.Unusable = unusable(p)
		out = append(out, v)
	}
	return out
}

// viewGR is a peer's graceful restart for display; nil when there is
// nothing to show.
func (d *Daemon) viewGR(s grStatus) *view.GracefulRestart {
	if !s.negotiated && s.stale == 0 {
		return nil
	}
	g := &view.GracefulRestart{Negotiated: s.negotiated, Deadline: s.deadline}
	if s.stale != 0 {
		g.State = "stale"
		if s.restarting {
			g.State = "restarting"
		}
		g.StalePaths, _, _ = d.rib.PeerTotals(s.stale)
		for _, f := range s.fams {
			g.Families = append(g.Families, f.String())
		}
	}
	return g
}

// unusable says why a path can never be selected, "" when it can: for a
// next hop the router cannot forward through, reach's reason too, as BIRD
// shows "unreachable".
func unusable(p rib.PathView) string {
	switch p.Invalid {
	case rib.Valid:
		return ""
	case rib.InvalidUnreachable:
		return p.Invalid.String() + ": " + reach.Reason(p.NextHopVerdict).String()
	}
	return p.Invalid.String()
}

// FIBCheck implements view.FIBChecker: the kernel compared with what the
// RIB asked the FIB for, now.
func (d *Daemon) FIBCheck(ctx context.Context) (view.FIBCheck, error) {
	r, err := d.fib.Check(ctx)
	if err != nil {
		return view.FIBCheck{}, err
	}
	c := view.FIBCheck{Checked: time.Now(), Routes: r.Routes, Unusable: r.Unusable, Repairs: d.fib.Stats().Repairs}
	for _, l := range []struct {
		kind     string
		prefixes []netip.Prefix
	}{{"missing", r.Missing}, {"extra", r.Extra}, {"different", r.Different}} {
		for _, p := range l.prefixes {
			diff := view.FIBDifference{Prefix: p, Kind: l.kind}
			if l.kind != "extra" {
				diff.Want = d.wantedHops(p)
			}
			c.Differences = append(c.Differences, diff)
		}
	}
	return c, nil
}

// wantedHops is the ECMP set the RIB holds for p, as next hops.
func (d *Daemon) wantedHops(p netip.Prefix) []view.FIBNextHop {
	var out []view.FIBNextHop
	for _, v := range d.rib.Lookup(p) {
		if v.ECMP {
			out = append(out, view.FIBNextHop{Addr: v.NextHop})
		}
	}
	return out
}

// FIB implements view.Source.
func (d *Daemon) FIB(ctx context.Context) ([]view.FIBRoute, error) {
	routes, err := d.fib.Dump(ctx)
	if err != nil {
		return nil, err
	}
	cfg := d.config()
	out := make([]view.FIBRoute, 0, len(routes))
	for _, r := range routes {
		fr := view.FIBRoute{Prefix: r.Prefix, Table: cfg.FIB.Table, Metric: cfg.FIB.Metric}
		for _, h := range r.NextHops {
			fr.NextHops = append(fr.NextHops, view.FIBNextHop{Addr: h.Addr, Weight: h.Weight})
		}
		out = append(out, fr)
	}
	return out, nil
}
