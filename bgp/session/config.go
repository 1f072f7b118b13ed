package session

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
)

// Defaults applied by Config.withDefaults.
const (
	DefaultPort         = 179
	DefaultHoldTime     = 90 * time.Second
	DefaultConnectRetry = 5 * time.Second
	// DefaultMaxIdleHoldTime caps the damping of a failing peer.
	DefaultMaxIdleHoldTime = 2 * time.Minute
	// The OpenSent hold timer (RFC 4271 §8: "a large value", 4 minutes
	// suggested) bounds how long we wait for the peer's OPEN.
	openSentHoldTime = 4 * time.Minute
	// minSendHoldTime is RFC 9687's floor for the default send hold time.
	minSendHoldTime = 8 * time.Minute
	// maxPasswordLen is the kernel's TCP_MD5SIG_MAXKEYLEN.
	maxPasswordLen = 80
)

// ErrConfig matches every error Config.Validate returns.
var ErrConfig = errors.New("bgp session: invalid configuration")

// Config is one peer's settings. The zero values of the optional fields pick
// the defaults documented on each.
type Config struct {
	LocalAS  uint32
	RouterID netip.Addr // our BGP Identifier, an IPv4 address
	// PeerAS is the AS the peer must announce in its OPEN; 0 accepts any
	// (the session is internal when the peer's AS equals LocalAS).
	PeerAS   uint32
	PeerAddr netip.Addr
	PeerPort uint16 // default 179

	// LocalAddr and LocalPort bind the outgoing connection (optional).
	LocalAddr netip.Addr
	LocalPort uint16

	// Passive peers never connect out; they wait for Accept.
	Passive bool

	// HoldTime we offer: 0 (no keepalives) or at least 3 s; default 90 s.
	// The negotiated value is the smaller of both OPENs.
	HoldTime time.Duration
	// DisableHoldTime offers a hold time of 0, which a zero HoldTime cannot
	// say because it means the default.
	DisableHoldTime bool
	// MinHoldTime rejects a peer offering less (or 0) with OPEN Message
	// Error / Unacceptable Hold Time; 0 accepts anything legal.
	MinHoldTime time.Duration
	// KeepaliveTime, default and at most a third of the negotiated hold time.
	KeepaliveTime time.Duration
	// ConnectRetry is the interval between connection attempts and before
	// an automatic restart, jittered by RFC 4271 §10; default 5 s.
	ConnectRetry time.Duration
	// IdleHoldTime and MaxIdleHoldTime damp a peer that keeps failing
	// (RFC 4271 §8.1.1 DampPeerOscillations): after the second failure in
	// a row the peer stays Idle for IdleHoldTime (default ConnectRetry),
	// refusing incoming connections and not connecting out, and each
	// further failure doubles that, up to MaxIdleHoldTime (default 2 min).
	// A session that stays Established for MaxIdleHoldTime clears the
	// count. A negative MaxIdleHoldTime turns damping off.
	IdleHoldTime, MaxIdleHoldTime time.Duration
	// SendHoldTime closes a session we cannot write to for this long (RFC
	// 9687); default max(8 min, 2 × HoldTime). Negative disables it.
	SendHoldTime time.Duration

	// Password enables TCP-MD5 (RFC 2385), at most 80 bytes.
	Password string
	// TTLSecurity is GTSM (RFC 5082): we send with TTL 255 and drop packets
	// that arrive with a TTL below 256 - hops, where hops is MultihopTTL or 1.
	TTLSecurity bool
	// MultihopTTL is the TTL of our packets for a peer more than one hop
	// away. Zero means 1 for an external peer (RFC 4271 practice for eBGP)
	// and the system default for an internal one.
	MultihopTTL uint8

	// Families we announce in the multiprotocol capability; default IPv4
	// and IPv6 unicast.
	Families []wire.Family
	// ExtendedNextHop announces RFC 8950 for IPv4 unicast over an IPv6
	// next hop (and IPv6 unicast over an IPv4 one), for the families above.
	ExtendedNextHop bool
	// ExtendedMessage announces RFC 8654 messages up to 65535 bytes.
	ExtendedMessage bool
	// RouteRefresh and EnhancedRouteRefresh are announced when set.
	RouteRefresh, EnhancedRouteRefresh bool
	// AddPathReceive announces that we accept ADD-PATH path identifiers
	// for these families (RFC 7911).
	AddPathReceive []wire.Family
	// GracefulRestart announces RFC 4724 for the families above; nil
	// announces nothing, and the peer's capability is then ignored.
	GracefulRestart *GracefulRestart
}

// GracefulRestart is our side of RFC 4724.
type GracefulRestart struct {
	// Time is how long the peer should keep our routes after our session
	// ends without a NOTIFICATION, until a new one comes up: whole seconds,
	// at most MaxRestartTime. A receiving-only speaker (a route server
	// such as bgplb router) may announce 0: it only helps its peers.
	Time time.Duration
	// Restarting sets the R bit in the first session's OPEN: this process
	// is the restart of one whose routes the peer kept, and the peer must
	// not wait for our End-of-RIB before it sends us its own.
	Restarting bool
	// StillRestarting, when set, is asked before each OPEN while the R bit
	// is on: false clears it from then on, as the first session would.
	// For a restart whose wait ends by a timer or another peer's doing,
	// not by this session coming up.
	StillRestarting func() bool
	// Forwarding sets the F bit for every family: our data plane kept
	// forwarding while the BGP process restarted, so the peer may keep
	// using the routes it kept until we send them again.
	Forwarding bool
	// Notification sets the N bit (RFC 8538): a NOTIFICATION other than
	// Cease / Hard Reset, or the hold timer, also keeps the routes when
	// both sides set it.
	Notification bool
}

// MaxRestartTime is the largest restart time the capability carries (12 bits).
const MaxRestartTime = 4095 * time.Second

// withDefaults returns c with every unset optional field filled in.
func (c Config) withDefaults() Config {
	if c.PeerPort == 0 {
		c.PeerPort = DefaultPort
	}
	if c.HoldTime == 0 && !c.DisableHoldTime {
		c.HoldTime = DefaultHoldTime
	}
	if c.DisableHoldTime {
		c.HoldTime = 0
	}
	if c.ConnectRetry == 0 {
		c.ConnectRetry = DefaultConnectRetry
	}
	if c.IdleHoldTime == 0 {
		c.IdleHoldTime = c.ConnectRetry
	}
	if c.MaxIdleHoldTime == 0 {
		c.MaxIdleHoldTime = DefaultMaxIdleHoldTime
	}
	if c.SendHoldTime == 0 {
		c.SendHoldTime = max(minSendHoldTime, 2*c.HoldTime)
	}
	if len(c.Families) == 0 {
		c.Families = []wire.Family{wire.IPv4Unicast, wire.IPv6Unicast}
	}
	return c
}

// Validate reports the first problem of c (after defaults), wrapping ErrConfig.
func (c Config) Validate() error {
	c = c.withDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.LocalAS == 0:
		return bad("LocalAS is 0")
	case !c.RouterID.Is4() || c.RouterID.IsUnspecified():
		return bad("RouterID %v is not a non-zero IPv4 address", c.RouterID)
	case !c.PeerAddr.IsValid() || c.PeerAddr.IsUnspecified():
		return bad("PeerAddr %v is not a peer address", c.PeerAddr)
	case c.PeerAddr.Zone() != "" && !c.PeerAddr.Is6():
		return bad("PeerAddr %v has a zone", c.PeerAddr)
	case c.LocalAddr.IsValid() && c.LocalAddr.Unmap().Is4() != c.PeerAddr.Unmap().Is4():
		return bad("LocalAddr %v and PeerAddr %v are of different families", c.LocalAddr, c.PeerAddr)
	case c.HoldTime != 0 && c.HoldTime < 3*time.Second:
		return bad("HoldTime %v is neither 0 nor at least 3s", c.HoldTime)
	case c.HoldTime > 65535*time.Second:
		return bad("HoldTime %v does not fit the OPEN message", c.HoldTime)
	case c.KeepaliveTime < 0 || c.ConnectRetry < 0 || c.MinHoldTime < 0 || c.IdleHoldTime < 0:
		return bad("negative timer")
	case c.GracefulRestart != nil && (c.GracefulRestart.Time < 0 || c.GracefulRestart.Time > MaxRestartTime):
		return bad("GracefulRestart.Time %v is not between 0 and %v", c.GracefulRestart.Time, MaxRestartTime)
	case len(c.Password) > maxPasswordLen:
		return bad("Password is %d bytes, the kernel takes at most %d", len(c.Password), maxPasswordLen)
	}
	for _, f := range append(append([]wire.Family(nil), c.Families...), c.AddPathReceive...) {
		if !wire.FamilySetOf(f).Has(f) {
			return bad("family %v is not supported", f)
		}
	}
	return nil
}

// keepalive is the keepalive interval for a negotiated hold time: the
// configured one, but never more than a third of the hold time (RFC 4271
// §10); 0 when the hold time is 0.
func (c Config) keepalive(hold time.Duration) time.Duration {
	if hold == 0 {
		return 0
	}
	k := hold / 3
	if c.KeepaliveTime > 0 && c.KeepaliveTime < k {
		k = c.KeepaliveTime
	}
	return k
}

// external reports whether the peer is in another AS, as far as the
// configuration says before the OPEN arrives.
func (c Config) external() bool { return c.PeerAS != 0 && c.PeerAS != c.LocalAS }

// ttl is the IP TTL (or IPv6 hop limit) of our packets, 0 for the system
// default, and minTTL the smallest TTL we accept, 0 for no check.
func (c Config) ttl() (ttl, minTTL int) {
	switch {
	case c.TTLSecurity:
		hops := max(int(c.MultihopTTL), 1)
		return 255, 256 - hops
	case c.MultihopTTL > 0:
		return int(c.MultihopTTL), 0
	case c.external():
		return 1, 0
	}
	return 0, 0
}

// idleHold is how long a peer stays Idle after its failures-th failure in a
// row (RFC 4271 §8.1.1): nothing for the first, which restarts as usual,
// then first, doubling with each further failure, never more than most. A
// negative most turns damping off.
func idleHold(first, most time.Duration, failures int) time.Duration {
	if failures < 2 || most < 0 || first <= 0 {
		return 0
	}
	d := first
	for i := 2; i < failures && d < most; i++ {
		d *= 2
	}
	return min(d, most)
}
