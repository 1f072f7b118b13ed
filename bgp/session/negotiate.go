package session

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
)

// Negotiated is what both OPENs agreed on. It is computed once per session
// by negotiate and never changes while the session is up.
type Negotiated struct {
	LocalOpen, PeerOpen *wire.Open
	PeerAS              uint32
	PeerID              netip.Addr
	// External: the peer is in another AS.
	External bool
	// Families both sides announced (IPv4 unicast alone when the peer
	// announced no multiprotocol capability, RFC 4760 §1).
	Families             []wire.Family
	AS4, ExtendedMessage bool
	RouteRefresh         bool
	EnhancedRouteRefresh bool
	// HoldTime is the smaller of both offers; 0 means no keepalives and no
	// hold timer. KeepaliveTime is our sending interval.
	HoldTime, KeepaliveTime time.Duration
	// Rx decodes what the peer sends; Tx encodes what we send.
	Rx, Tx wire.Options
	// Local and Remote are the TCP endpoints of the session.
	Local, Remote netip.AddrPort
	// GracefulRestart is the peer's RFC 4724 capability when both sides
	// announced one, nil otherwise; its families are those negotiated.
	GracefulRestart *wire.GracefulRestart
	// GRNotification: both sides set the N bit (RFC 8538).
	GRNotification bool
}

// HasFamily reports whether f was negotiated.
func (n *Negotiated) HasFamily(f wire.Family) bool { return slices.Contains(n.Families, f) }

// localOpen builds the OPEN we send, from the configuration alone.
func localOpen(c Config) *wire.Open {
	caps := wire.Capabilities{
		Multiprotocol:        slices.Clone(c.Families),
		RouteRefresh:         c.RouteRefresh,
		EnhancedRouteRefresh: c.EnhancedRouteRefresh,
		ExtendedMessage:      c.ExtendedMessage,
	}
	if c.ExtendedNextHop {
		for _, f := range c.Families {
			other := wire.AFIIPv6
			if f.AFI == wire.AFIIPv6 {
				other = wire.AFIIPv4
			}
			caps.ExtendedNextHop = append(caps.ExtendedNextHop, wire.ExtendedNextHop{NLRI: f, NextHopAFI: other})
		}
	}
	for _, f := range c.AddPathReceive {
		caps.AddPath = append(caps.AddPath, wire.AddPathFamily{Family: f, Mode: wire.AddPathReceive})
	}
	if g := c.GracefulRestart; g != nil {
		gr := &wire.GracefulRestart{Restarting: g.Restarting, Notification: g.Notification, Time: uint16(g.Time / time.Second)}
		for _, f := range c.Families {
			gr.Families = append(gr.Families, wire.GRFamily{Family: f, Forwarding: g.Forwarding})
		}
		caps.GracefulRestart = gr
	}
	return wire.NewOpen(c.LocalAS, uint16(c.HoldTime/time.Second), c.RouterID, caps)
}

// openError is the NOTIFICATION for a peer's OPEN we refuse.
func openError(sub uint8, data []byte, format string, args ...any) error {
	return &wire.Error{
		Action: wire.SessionReset, Code: wire.ErrCodeOpen, Subcode: sub, Data: data,
		Reason: fmt.Sprintf(format, args...),
	}
}

// negotiate checks the peer's OPEN against our configuration and our own
// OPEN (RFC 4271 §6.2, RFC 6286, RFC 5492) and computes the session
// parameters. A refusal is a *wire.Error with the NOTIFICATION to send.
func negotiate(c Config, local, peer *wire.Open) (Negotiated, error) {
	peerAS := peer.AS()
	if c.PeerAS != 0 && peerAS != c.PeerAS {
		return Negotiated{}, openError(wire.ErrSubBadPeerAS, nil, "peer AS %d, expected %d", peerAS, c.PeerAS)
	}
	if peerAS == 0 || (peer.Caps.HasAS4 && peer.Caps.AS4 == wire.ASTrans) {
		return Negotiated{}, openError(wire.ErrSubBadPeerAS, nil, "peer AS %d is not usable", peerAS)
	}
	external := peerAS != c.LocalAS
	// RFC 6286 §2.2: only an internal peer must have another identifier.
	if !external && peer.ID == local.ID {
		return Negotiated{}, openError(wire.ErrSubBadBGPIdentifier, nil, "peer uses our BGP Identifier %v", peer.ID)
	}
	peerHold := time.Duration(peer.HoldTime) * time.Second
	if c.MinHoldTime > 0 && peerHold < c.MinHoldTime {
		return Negotiated{}, openError(wire.ErrSubUnacceptableHoldTime, nil,
			"peer hold time %v is below our minimum %v", peerHold, c.MinHoldTime)
	}
	hold := min(time.Duration(local.HoldTime)*time.Second, peerHold)
	n := Negotiated{
		LocalOpen: local, PeerOpen: peer, PeerAS: peerAS, PeerID: peer.ID, External: external,
		Families:             commonFamilies(local.Caps.Multiprotocol, peer.Caps.Multiprotocol),
		AS4:                  local.Caps.HasAS4 && peer.Caps.HasAS4,
		ExtendedMessage:      local.Caps.ExtendedMessage && peer.Caps.ExtendedMessage,
		RouteRefresh:         local.Caps.RouteRefresh && peer.Caps.RouteRefresh,
		EnhancedRouteRefresh: local.Caps.EnhancedRouteRefresh && peer.Caps.EnhancedRouteRefresh,
		HoldTime:             hold,
		KeepaliveTime:        c.keepalive(hold),
	}
	n.Rx, n.Tx = directionOptions(&n, &local.Caps, &peer.Caps)
	if lg, pg := local.Caps.GracefulRestart, peer.Caps.GracefulRestart; lg != nil && pg != nil {
		g := &wire.GracefulRestart{Restarting: pg.Restarting, Notification: pg.Notification, Time: pg.Time}
		for _, f := range pg.Families {
			if n.HasFamily(f.Family) {
				g.Families = append(g.Families, f)
			}
		}
		n.GracefulRestart = g
		n.GRNotification = lg.Notification && pg.Notification
	}
	return n, nil
}

// GRFamily reports whether the peer asked us to keep its routes of family
// f across its restarts, and whether its last OPEN said it kept forwarding
// them (the F bit; RFC 4724 §4.2: without it, routes kept from before the
// restart must go at once).
func (n *Negotiated) GRFamily(f wire.Family) (ok, forwarding bool) {
	if n.GracefulRestart == nil {
		return false, false
	}
	for _, g := range n.GracefulRestart.Families {
		if g.Family == f {
			return true, g.Forwarding
		}
	}
	return false, false
}

// RestartTime is how long the peer asked us to keep its routes after the
// session ends, before a new session comes up; 0 without graceful restart.
func (n *Negotiated) RestartTime() time.Duration {
	if n.GracefulRestart == nil {
		return 0
	}
	return time.Duration(n.GracefulRestart.Time) * time.Second
}

// KeepsRoutes reports whether the end of this session, for reason (what
// Handler.Down got), keeps the peer's routes as stale for a restart (RFC
// 4724 §4.2, RFC 8538 §3): graceful restart was negotiated for some
// family, and the session ended without a NOTIFICATION (the TCP connection
// failed or closed, or the peer opened a new one: ErrPeerRestarted), or,
// when both sides set the N bit, with any
// NOTIFICATION but Cease / Hard Reset or the hold timer. Our own shutdown
// never keeps them.
func (n *Negotiated) KeepsRoutes(reason error) bool {
	if n == nil || n.GracefulRestart == nil || len(n.GracefulRestart.Families) == 0 || errors.Is(reason, ErrShutdown) {
		return false
	}
	var ne *NotificationError
	if !errors.As(reason, &ne) {
		return !errors.Is(reason, ErrHoldTimerExpired) || n.GRNotification
	}
	return n.GRNotification && !(ne.Notification.Code == wire.ErrCodeCease && ne.Notification.Subcode == wire.CeaseHardReset)
}

// commonFamilies is the intersection of both multiprotocol capabilities; a
// speaker without one supports IPv4 unicast only (RFC 4760 §1).
func commonFamilies(local, peer []wire.Family) []wire.Family {
	if len(local) == 0 {
		local = []wire.Family{wire.IPv4Unicast}
	}
	if len(peer) == 0 {
		peer = []wire.Family{wire.IPv4Unicast}
	}
	var out []wire.Family
	for _, f := range local {
		if slices.Contains(peer, f) && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// directionOptions computes the codec options per direction. Capabilities
// that announce what the speaker can receive (extended next hop, the
// receive half of ADD-PATH) differ by direction: the peer may send us what
// we announced, and we may send it what it announced.
func directionOptions(n *Negotiated, local, peer *wire.Capabilities) (rx, tx wire.Options) {
	base := wire.Options{AS4: n.AS4, ExtendedMessage: n.ExtendedMessage, External: n.External}
	rx, tx = base, base
	rx.ExtendedNextHop = extNHSet(local.ExtendedNextHop, n.Families)
	tx.ExtendedNextHop = extNHSet(peer.ExtendedNextHop, n.Families)
	for _, f := range n.Families {
		lm, pm := local.AddPathFor(f), peer.AddPathFor(f)
		if lm&wire.AddPathReceive != 0 && pm&wire.AddPathSend != 0 {
			rx.AddPath |= wire.FamilySetOf(f)
		}
		if lm&wire.AddPathSend != 0 && pm&wire.AddPathReceive != 0 {
			tx.AddPath |= wire.FamilySetOf(f)
		}
	}
	return rx, tx
}

// extNHSet is the set of negotiated families that one side's RFC 8950
// capability lets carry a next hop of the other address family.
func extNHSet(tuples []wire.ExtendedNextHop, families []wire.Family) wire.FamilySet {
	var s wire.FamilySet
	for _, t := range tuples {
		if t.NextHopAFI != t.NLRI.AFI && slices.Contains(families, t.NLRI) {
			s |= wire.FamilySetOf(t.NLRI)
		}
	}
	return s
}

// keepIncoming decides a connection collision (RFC 4271 §6.8): the
// connection opened by the speaker with the higher BGP Identifier survives,
// so we keep the peer's (incoming) one when our identifier is lower. Equal
// identifiers, legal between ASes, are broken by the larger AS (RFC 6286 §2.3).
func keepIncoming(localID, peerID netip.Addr, localAS, peerAS uint32) bool {
	if c := localID.Compare(peerID); c != 0 {
		return c < 0
	}
	return localAS < peerAS
}
