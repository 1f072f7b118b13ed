package router

import (
	"maps"
	"net/netip"
	"reflect"
	"slices"
)

// ReloadPlan is what a new config changes in a running daemon. Sessions
// whose settings did not change are kept: a reload never flaps a session
// for an unrelated edit.
type ReloadPlan struct {
	// RestartAll: the local AS or router ID changed, which every session
	// carries in its OPEN.
	RestartAll bool
	// Static neighbours by address.
	Add, Remove, Restart, Keep []netip.Addr
	// Dynamic ranges by prefix; sessions accepted from a removed or
	// changed range are closed (a changed one accepts them again).
	AddRanges, RemoveRanges, RestartRanges []netip.Prefix
	// Reimport: the import guard changed, so every received route is
	// judged again.
	Reimport bool
	// BFD: some neighbour's or range's bfd block changed. Its BFD
	// sessions are added, removed or retuned; BGP sessions stay up.
	BFD bool
	// GracefulRestart: some neighbour's or range's gracefulRestart block
	// changed. The timers apply from the next restart of a peer; a change
	// of enabled is announced in the next OPEN: sessions not established
	// restart now, established ones when they next go down (see
	// Daemon.Reload). No established session is reset for it.
	GracefulRestart bool
	Listen          bool // listen addresses changed
	FIB             bool // table, metric, protocol or next-hop mode changed: routes move, at the next start
	API             bool
	Metrics         bool
}

// PlanReload compares the running config with a new one.
func PlanReload(old, cur *Config) ReloadPlan {
	var p ReloadPlan
	p.RestartAll = old.ASN != cur.ASN || old.RouterID != cur.RouterID
	oldN := map[netip.Addr]Neighbor{}
	for _, n := range old.Neighbors {
		oldN[n.Address] = n
	}
	for _, n := range cur.Neighbors {
		o, ok := oldN[n.Address]
		switch {
		case !ok:
			p.Add = append(p.Add, n.Address)
		case p.RestartAll || sessionPart(o) != sessionPart(n):
			p.Restart = append(p.Restart, n.Address)
		default:
			p.Keep = append(p.Keep, n.Address)
		}
		delete(oldN, n.Address)
	}
	for a := range oldN {
		p.Remove = append(p.Remove, a)
	}
	slices.SortFunc(p.Remove, netip.Addr.Compare)

	oldD := map[netip.Prefix]DynamicNeighbor{}
	for _, d := range old.DynamicNeighbors {
		oldD[d.Prefix] = d
	}
	for _, d := range cur.DynamicNeighbors {
		o, ok := oldD[d.Prefix]
		switch {
		case !ok:
			p.AddRanges = append(p.AddRanges, d.Prefix)
		case p.RestartAll || sessionPart(o) != sessionPart(d):
			p.RestartRanges = append(p.RestartRanges, d.Prefix)
		}
		delete(oldD, d.Prefix)
	}
	for r := range oldD {
		p.RemoveRanges = append(p.RemoveRanges, r)
	}
	slices.SortFunc(p.RemoveRanges, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })

	p.BFD = !maps.Equal(bfdByPeer(old), bfdByPeer(cur))
	p.GracefulRestart = grChanged(grByPeer(old), grByPeer(cur))
	p.Reimport = !reflect.DeepEqual(old.Import, cur.Import)
	p.Listen = !slices.Equal(old.Listen, cur.Listen)
	p.FIB = old.FIB != cur.FIB
	p.API = old.API != cur.API
	p.Metrics = old.Metrics != cur.Metrics
	return p
}

// sessionPart is a neighbour or range minus its bfd and gracefulRestart
// blocks, which a reload applies without resetting the BGP session.
func sessionPart[T interface{ Neighbor | DynamicNeighbor }](v T) T {
	switch x := any(&v).(type) {
	case *Neighbor:
		x.BFD, x.GracefulRestart = BFD{}, GracefulRestart{}
	case *DynamicNeighbor:
		x.BFD, x.GracefulRestart = BFD{}, GracefulRestart{}
	}
	return v
}

// grChanged reports whether a neighbour or range in both configs has other
// gracefulRestart settings; added and removed ones start or stop anyway.
func grChanged(old, cur map[string]GracefulRestart) bool {
	for k, o := range old {
		if c, ok := cur[k]; ok && c != o {
			return true
		}
	}
	return false
}

// grByPeer is the gracefulRestart settings by neighbour address or range.
func grByPeer(c *Config) map[string]GracefulRestart {
	return byPeer(c, func(n *Neighbor) GracefulRestart { return n.GracefulRestart },
		func(r *DynamicNeighbor) GracefulRestart { return r.GracefulRestart })
}

// byPeer maps every neighbour address and range to a setting of it.
func byPeer[T any](c *Config, of func(*Neighbor) T, ofRange func(*DynamicNeighbor) T) map[string]T {
	m := make(map[string]T, len(c.Neighbors)+len(c.DynamicNeighbors))
	for i := range c.Neighbors {
		m[c.Neighbors[i].Address.String()] = of(&c.Neighbors[i])
	}
	for i := range c.DynamicNeighbors {
		m[c.DynamicNeighbors[i].Prefix.String()] = ofRange(&c.DynamicNeighbors[i])
	}
	return m
}

// bfdByPeer is the enabled bfd blocks by neighbour address or range.
func bfdByPeer(c *Config) map[string]BFD {
	m := map[string]BFD{}
	for _, n := range c.Neighbors {
		if n.BFD.Enabled {
			m[n.Address.String()] = n.BFD
		}
	}
	for _, r := range c.DynamicNeighbors {
		if r.BFD.Enabled {
			m[r.Prefix.String()] = r.BFD
		}
	}
	return m
}
