// Package view is the operator's view of a running bgplb router or speaker:
// the JSON types of its local API, the HTTP handler that serves them on a
// unix socket, the client the CLI uses, and the text tables the CLI prints
// (`bgplb neighbor`, `bgplb rib`, `bgplb fib`).
//
// The API is HTTP/JSON over a unix socket:
//
//	GET /v1/neighbors                      []Neighbor
//	GET /v1/rib?family=ipv4|ipv6&prefix=P  []RIBEntry (prefix optional: exact or longest match)
//	GET /v1/fib                            []FIBRoute
//	GET /v1/fib/check                      FIBCheck (routers that compare their kernel with their RIB)
//
// Errors come back as a non-2xx status with {"error": "..."}.
package view

import (
	"net/netip"
	"time"
)

// Neighbor is one BGP session, like a row of `gobgp neighbor`.
type Neighbor struct {
	Address     netip.Addr `json:"address"`
	Port        uint16     `json:"port,omitempty"`
	ASN         uint32     `json:"asn"`
	Description string     `json:"description,omitempty"`
	// Dynamic is set for a peer accepted from a dynamicNeighbors range.
	Dynamic bool   `json:"dynamic,omitempty"`
	State   string `json:"state"`
	// Since is when the session entered State.
	Since      time.Time  `json:"since"`
	Received   int        `json:"received"`
	Accepted   int        `json:"accepted"`
	Rejected   int        `json:"rejected"`
	Advertised int        `json:"advertised,omitempty"` // prefixes a speaker announces on the session; 0 from a router
	UpdatesIn  uint64     `json:"updatesIn"`
	UpdatesOut uint64     `json:"updatesOut"`
	LastError  string     `json:"lastError,omitempty"`
	RouterID   netip.Addr `json:"routerID,omitzero"`
	HoldTime   uint16     `json:"holdTime,omitempty"`
	// BFD is the session's BFD session, when it runs one.
	BFD *BFD `json:"bfd,omitempty"`
	// GracefulRestart is the peer's graceful restart (RFC 4724), when it
	// negotiated one or routes of its last session are kept as stale.
	GracefulRestart *GracefulRestart `json:"gracefulRestart,omitempty"`
}

// GracefulRestart is a peer's graceful-restart state as a router sees it.
type GracefulRestart struct {
	// Negotiated: both sides announced the capability on the current
	// session.
	Negotiated bool `json:"negotiated"`
	// State is "" (nothing kept), "restarting" (the session is down, its
	// routes kept until it is back or the restart time ends) or "stale"
	// (the session is back; routes not sent again wait for End-of-RIB or
	// the stale time).
	State string `json:"state,omitempty"`
	// StalePaths is how many paths are kept as stale, of Families.
	StalePaths int      `json:"stalePaths,omitempty"`
	Families   []string `json:"families,omitempty"`
	// Deadline is when the stale paths go if nothing else removes them.
	Deadline time.Time `json:"deadline,omitzero"`
}

// BFD is one BFD session's state and counters (package bfd's Status).
// Intervals are in microseconds, BFD's own unit on the wire.
type BFD struct {
	Session     string `json:"session"` // local->peer [dev IF] [multihop]
	State       string `json:"state"`
	RemoteState string `json:"remoteState"`
	LocalDiag   string `json:"localDiag"`
	RemoteDiag  string `json:"remoteDiag"`
	LocalDisc   uint32 `json:"localDiscriminator"`
	RemoteDisc  uint32 `json:"remoteDiscriminator"`
	// TxIntervalUs and DetectTimeUs are the negotiated values in use.
	TxIntervalUs  int64     `json:"txIntervalUs"`
	DetectTimeUs  int64     `json:"detectTimeUs"`
	RemoteMinTxUs int64     `json:"remoteMinTxUs"`
	RemoteMinRxUs int64     `json:"remoteMinRxUs"`
	RemoteMult    uint8     `json:"remoteMultiplier"`
	Polling       bool      `json:"polling,omitempty"`
	LastUp        time.Time `json:"lastUp,omitzero"`
	LastDown      time.Time `json:"lastDown,omitzero"`
	LastDownDiag  string    `json:"lastDownDiag,omitempty"` // why it last left Up
	LastRx        time.Time `json:"lastRx,omitzero"`
	PacketsIn     uint64    `json:"packetsIn"`
	PacketsOut    uint64    `json:"packetsOut"`
	Dropped       uint64    `json:"dropped"`
	DroppedTTL    uint64    `json:"droppedTTL"`
	SendErrors    uint64    `json:"sendErrors"`
	EventsLost    uint64    `json:"eventsLost"`
}

// Path is one path to a prefix.
type Path struct {
	Best bool `json:"best"`
	// Multipath marks the members of the ECMP set (the best path included).
	Multipath   bool       `json:"multipath"`
	Peer        netip.Addr `json:"peer"`
	NextHop     netip.Addr `json:"nextHop"`
	ASPath      string     `json:"asPath"`
	Origin      string     `json:"origin"`
	LocalPref   *uint32    `json:"localPref,omitempty"`
	MED         *uint32    `json:"med,omitempty"`
	Communities []string   `json:"communities,omitempty"`
	// LinkBandwidth is the link-bandwidth extended community, in bytes/s.
	LinkBandwidth *float32  `json:"linkBandwidth,omitempty"`
	Since         time.Time `json:"since"`
	// Reason says why the best path won over this one, when it lost.
	Reason string `json:"reason,omitempty"`
	// Unusable says why the path can never be selected (an unreachable
	// next hop, an AS loop, ...); such paths stay in the RIB but never
	// reach the kernel.
	Unusable string `json:"unusable,omitempty"`
	// Stale marks a path kept from a peer's session that ended with a
	// graceful restart, not yet sent again (RFC 4724).
	Stale bool `json:"stale,omitempty"`
}

// RIBEntry is every path the RIB holds for one prefix.
type RIBEntry struct {
	Prefix netip.Prefix `json:"prefix"`
	Paths  []Path       `json:"paths"`
}

// FIBNextHop is one next hop of a kernel route.
type FIBNextHop struct {
	Addr   netip.Addr `json:"addr"`
	Weight uint32     `json:"weight,omitempty"`
}

// FIBCheck is the router's last comparison of its kernel routes with what
// its RIB asks for, and the repairs it has made since it started.
type FIBCheck struct {
	// Checked is when the comparison ran.
	Checked time.Time `json:"checked"`
	// Routes is how many routes the RIB asks the kernel for.
	Routes int `json:"routes"`
	// Unusable is how many of those have no usable next hop, so rightly
	// no kernel route.
	Unusable    int             `json:"unusable"`
	Differences []FIBDifference `json:"differences"`
	// Repairs counts the kernel routes the router has put back as its RIB
	// wants them (deleted or changed behind its back, or a failed write
	// retried) since it started.
	Repairs uint64 `json:"repairs"`
}

// FIBDifference is one prefix whose kernel route is not what the RIB asks
// for.
type FIBDifference struct {
	Prefix netip.Prefix `json:"prefix"`
	// Kind is missing (the kernel lacks the route), extra (the kernel has
	// a route of ours the RIB does not ask for) or different (the kernel's
	// route has other next hops).
	Kind string `json:"kind"`
	// Want is the RIB's ECMP set for the prefix; empty when extra.
	Want []FIBNextHop `json:"want,omitempty"`
}

// FIBRoute is a route as installed in the kernel.
type FIBRoute struct {
	Prefix   netip.Prefix `json:"prefix"`
	NextHops []FIBNextHop `json:"nextHops"`
	Table    int          `json:"table,omitempty"`
	Metric   uint32       `json:"metric,omitempty"`
}
