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
	BFD     bool
	Listen  bool // listen addresses changed
	FIB     bool // table, metric, protocol or next-hop mode changed: routes move, at the next start
	API     bool
	Metrics bool
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
		case p.RestartAll || withoutBFD(o) != withoutBFD(n):
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
		case p.RestartAll || withoutBFD(o) != withoutBFD(d):
			p.RestartRanges = append(p.RestartRanges, d.Prefix)
		}
		delete(oldD, d.Prefix)
	}
	for r := range oldD {
		p.RemoveRanges = append(p.RemoveRanges, r)
	}
	slices.SortFunc(p.RemoveRanges, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })

	p.BFD = !maps.Equal(bfdByPeer(old), bfdByPeer(cur))
	p.Reimport = !reflect.DeepEqual(old.Import, cur.Import)
	p.Listen = !slices.Equal(old.Listen, cur.Listen)
	p.FIB = old.FIB != cur.FIB
	p.API = old.API != cur.API
	p.Metrics = old.Metrics != cur.Metrics
	return p
}

// withoutBFD is a neighbour or range minus its bfd block, which a reload
// applies without touching the BGP session.
func withoutBFD[T interface{ Neighbor | DynamicNeighbor }](v T) T {
	switch x := any(&v).(type) {
	case *Neighbor:
		x.BFD = BFD{}
	case *DynamicNeighbor:
		x.BFD = BFD{}
	}
	return v
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
