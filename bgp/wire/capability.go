package wire

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Capability codes (RFC 5492 and the RFCs named on each).
const (
	CapMultiprotocol        uint8 = 1  // RFC 4760
	CapRouteRefresh         uint8 = 2  // RFC 2918
	CapExtendedNextHop      uint8 = 5  // RFC 8950
	CapExtendedMessage      uint8 = 6  // RFC 8654
	CapRole                 uint8 = 9  // RFC 9234
	CapGracefulRestart      uint8 = 64 // RFC 4724
	CapAS4                  uint8 = 65 // RFC 6793
	CapAddPath              uint8 = 69 // RFC 7911
	CapEnhancedRouteRefresh uint8 = 70 // RFC 7313
	CapLongLivedGR          uint8 = 71 // RFC 9494
	CapFQDN                 uint8 = 73 // draft-walton-bgp-hostname-capability
)

// Capabilities is every capability one OPEN announces, decoded. Capabilities
// this codec does not know are kept byte-exact in Unknown.
type Capabilities struct {
	Multiprotocol        []Family
	RouteRefresh         bool
	EnhancedRouteRefresh bool
	ExtendedMessage      bool
	// AS4 is the speaker's 4-octet AS number, when HasAS4.
	HasAS4          bool
	AS4             uint32
	GracefulRestart *GracefulRestart
	LongLivedGR     []LLGRFamily
	AddPath         []AddPathFamily
	ExtendedNextHop []ExtendedNextHop
	// Role is the BGP role (RFC 9234), when HasRole.
	HasRole bool
	Role    Role
	FQDN    *FQDN
	Unknown []RawCapability
}

// GracefulRestart is the RFC 4724 capability.
type GracefulRestart struct {
	Restarting   bool   // R bit: the speaker has restarted
	Notification bool   // N bit: graceful restart for NOTIFICATIONs (RFC 8538)
	Time         uint16 // restart time in seconds, 12 bits
	Families     []GRFamily
}

// GRFamily is one family of a graceful-restart capability.
type GRFamily struct {
	Family     Family
	Forwarding bool // F bit: forwarding state was preserved
}

// LLGRFamily is one family of the long-lived graceful restart capability.
type LLGRFamily struct {
	Family     Family
	Forwarding bool
	StaleTime  uint32 // seconds, 24 bits
}

// AddPathMode says whether a speaker can send and/or receive path IDs.
type AddPathMode uint8

// ADD-PATH modes (RFC 7911 §4).
const (
	AddPathReceive AddPathMode = 1
	AddPathSend    AddPathMode = 2
	AddPathBoth    AddPathMode = 3
)

// AddPathFamily is one family of the ADD-PATH capability.
type AddPathFamily struct {
	Family Family
	Mode   AddPathMode
}

// ExtendedNextHop is one tuple of the RFC 8950 capability: routes of NLRI
// family may carry a next hop of NextHopAFI.
type ExtendedNextHop struct {
	NLRI       Family
	NextHopAFI uint16
}

// Role is a BGP role (RFC 9234 §4.1).
type Role uint8

// BGP roles.
const (
	RoleProvider Role = 0
	RoleRS       Role = 1
	RoleRSClient Role = 2
	RoleCustomer Role = 3
	RolePeer     Role = 4
)

func (r Role) String() string {
	switch r {
	case RoleProvider:
		return "provider"
	case RoleRS:
		return "rs"
	case RoleRSClient:
		return "rs-client"
	case RoleCustomer:
		return "customer"
	case RolePeer:
		return "peer"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// FQDN is the hostname capability.
type FQDN struct {
	Hostname string
	Domain   string
}

// RawCapability is a capability kept as received.
type RawCapability struct {
	Code  uint8
	Value []byte
}

// appendCapabilities appends each capability as code, length, value.
func (c *Capabilities) appendTo(b []byte) ([]byte, error) {
	// Each capability goes through a one-byte length; anything larger is a
	// caller bug, reported rather than truncated.
	put := func(code uint8, value func(b []byte) []byte) error {
		start := len(b)
		b = append(b, code, 0)
		b = value(b)
		n := len(b) - start - 2
		if n > 255 {
			return fmt.Errorf("bgp: capability %d value of %d bytes: %w", code, n, ErrTooLong)
		}
		b[start+1] = byte(n)
		return nil
	}
	var err error
	add := func(code uint8, value func(b []byte) []byte) {
		if err == nil {
			err = put(code, value)
		}
	}
	for _, f := range c.Multiprotocol {
		add(CapMultiprotocol, func(b []byte) []byte { return appendFamily4(b, f) })
	}
	if c.RouteRefresh {
		add(CapRouteRefresh, func(b []byte) []byte { return b })
	}
	if c.EnhancedRouteRefresh {
		add(CapEnhancedRouteRefresh, func(b []byte) []byte { return b })
	}
	if c.ExtendedMessage {
		add(CapExtendedMessage, func(b []byte) []byte { return b })
	}
	if len(c.ExtendedNextHop) > 0 {
		add(CapExtendedNextHop, func(b []byte) []byte {
			for _, e := range c.ExtendedNextHop {
				b = binary.BigEndian.AppendUint16(b, e.NLRI.AFI)
				b = binary.BigEndian.AppendUint16(b, uint16(e.NLRI.SAFI))
				b = binary.BigEndian.AppendUint16(b, e.NextHopAFI)
			}
			return b
		})
	}
	if c.HasAS4 {
		add(CapAS4, func(b []byte) []byte { return binary.BigEndian.AppendUint32(b, c.AS4) })
	}
	if g := c.GracefulRestart; g != nil {
		add(CapGracefulRestart, func(b []byte) []byte {
			v := g.Time & 0x0fff
			if g.Restarting {
				v |= 0x8000
			}
			if g.Notification {
				v |= 0x4000
			}
			b = binary.BigEndian.AppendUint16(b, v)
			for _, f := range g.Families {
				b = appendFamily3(b, f.Family)
				b = append(b, boolBit(f.Forwarding, 0x80))
			}
			return b
		})
	}
	if len(c.LongLivedGR) > 0 {
		add(CapLongLivedGR, func(b []byte) []byte {
			for _, f := range c.LongLivedGR {
				b = appendFamily3(b, f.Family)
				b = append(b, boolBit(f.Forwarding, 0x80),
					byte(f.StaleTime>>16), byte(f.StaleTime>>8), byte(f.StaleTime))
			}
			return b
		})
	}
	if len(c.AddPath) > 0 {
		add(CapAddPath, func(b []byte) []byte {
			for _, f := range c.AddPath {
				b = appendFamily3(b, f.Family)
				b = append(b, byte(f.Mode))
			}
			return b
		})
	}
	if c.HasRole {
		add(CapRole, func(b []byte) []byte { return append(b, byte(c.Role)) })
	}
	if f := c.FQDN; f != nil {
		if len(f.Hostname) > 255 || len(f.Domain) > 255 {
			return b, fmt.Errorf("bgp: FQDN capability name over 255 bytes: %w", ErrTooLong)
		}
		add(CapFQDN, func(b []byte) []byte {
			b = append(b, byte(len(f.Hostname)))
			b = append(b, f.Hostname...)
			b = append(b, byte(len(f.Domain)))
			return append(b, f.Domain...)
		})
	}
	for _, u := range c.Unknown {
		add(u.Code, func(b []byte) []byte { return append(b, u.Value...) })
	}
	return b, err
}

// decodeCapabilities adds the capabilities in one optional parameter's value
// to c. A capability whose value does not match its code's format is an OPEN
// error: the peer would otherwise run with a capability it thinks we
// understood differently.
func (c *Capabilities) decode(b []byte) *Error {
	for len(b) > 0 {
		if len(b) < 2 || len(b) < 2+int(b[1]) {
			return resetErr(ErrCodeOpen, 0, nil, "capability runs past its optional parameter")
		}
		code, v := b[0], b[2:2+int(b[1])]
		b = b[2+int(b[1]):]
		if err := c.decodeOne(code, v); err != nil {
			return err
		}
	}
	return nil
}

func (c *Capabilities) decodeOne(code uint8, v []byte) *Error {
	bad := func(what string) *Error {
		return resetErr(ErrCodeOpen, 0, nil, "capability %d: %s (%d bytes)", code, what, len(v))
	}
	switch code {
	case CapMultiprotocol:
		if len(v) != 4 {
			return bad("multiprotocol value must be 4 bytes")
		}
		c.Multiprotocol = append(c.Multiprotocol, Family{binary.BigEndian.Uint16(v), v[3]})
	case CapRouteRefresh, CapEnhancedRouteRefresh, CapExtendedMessage:
		if len(v) != 0 {
			return bad("value must be empty")
		}
		switch code {
		case CapRouteRefresh:
			c.RouteRefresh = true
		case CapEnhancedRouteRefresh:
			c.EnhancedRouteRefresh = true
		default:
			c.ExtendedMessage = true
		}
	case CapExtendedNextHop:
		if len(v)%6 != 0 {
			return bad("extended next hop value must be a multiple of 6 bytes")
		}
		for ; len(v) > 0; v = v[6:] {
			safi := binary.BigEndian.Uint16(v[2:])
			if safi > 255 {
				return bad("extended next hop SAFI over 255")
			}
			c.ExtendedNextHop = append(c.ExtendedNextHop, ExtendedNextHop{
				NLRI:       Family{binary.BigEndian.Uint16(v), uint8(safi)},
				NextHopAFI: binary.BigEndian.Uint16(v[4:]),
			})
		}
	case CapAS4:
		if len(v) != 4 {
			return bad("4-octet AS value must be 4 bytes")
		}
		c.HasAS4, c.AS4 = true, binary.BigEndian.Uint32(v)
	case CapGracefulRestart:
		if len(v) < 2 || (len(v)-2)%4 != 0 {
			return bad("graceful restart value must be 2 + 4n bytes")
		}
		flags := binary.BigEndian.Uint16(v)
		g := &GracefulRestart{Restarting: flags&0x8000 != 0, Notification: flags&0x4000 != 0, Time: flags & 0x0fff}
		for v = v[2:]; len(v) > 0; v = v[4:] {
			g.Families = append(g.Families, GRFamily{Family{binary.BigEndian.Uint16(v), v[2]}, v[3]&0x80 != 0})
		}
		c.GracefulRestart = g
	case CapLongLivedGR:
		if len(v)%7 != 0 {
			return bad("long-lived graceful restart value must be a multiple of 7 bytes")
		}
		for ; len(v) > 0; v = v[7:] {
			c.LongLivedGR = append(c.LongLivedGR, LLGRFamily{
				Family:     Family{binary.BigEndian.Uint16(v), v[2]},
				Forwarding: v[3]&0x80 != 0,
				StaleTime:  uint32(v[4])<<16 | uint32(v[5])<<8 | uint32(v[6]),
			})
		}
	case CapAddPath:
		if len(v)%4 != 0 {
			return bad("ADD-PATH value must be a multiple of 4 bytes")
		}
		for ; len(v) > 0; v = v[4:] {
			m := AddPathMode(v[3])
			if m < AddPathReceive || m > AddPathBoth {
				return bad(fmt.Sprintf("ADD-PATH send/receive value %d", m))
			}
			c.AddPath = append(c.AddPath, AddPathFamily{Family{binary.BigEndian.Uint16(v), v[2]}, m})
		}
	case CapRole:
		if len(v) != 1 {
			return bad("role value must be 1 byte")
		}
		c.HasRole, c.Role = true, Role(v[0])
	case CapFQDN:
		if len(v) < 1 || len(v) < 2+int(v[0]) || len(v) != 2+int(v[0])+int(v[1+int(v[0])]) {
			return bad("FQDN lengths do not match the value")
		}
		h := int(v[0])
		c.FQDN = &FQDN{Hostname: string(v[1 : 1+h]), Domain: string(v[2+h:])}
	default:
		c.Unknown = append(c.Unknown, RawCapability{Code: code, Value: slices.Clone(v)})
	}
	return nil
}

// AddPathFor returns the ADD-PATH mode announced for f, or 0.
func (c *Capabilities) AddPathFor(f Family) AddPathMode {
	for _, a := range c.AddPath {
		if a.Family == f {
			return a.Mode
		}
	}
	return 0
}

func appendFamily4(b []byte, f Family) []byte {
	b = binary.BigEndian.AppendUint16(b, f.AFI)
	return append(b, 0, f.SAFI)
}

func appendFamily3(b []byte, f Family) []byte {
	b = binary.BigEndian.AppendUint16(b, f.AFI)
	return append(b, f.SAFI)
}

func boolBit(v bool, bit byte) byte {
	if v {
		return bit
	}
	return 0
}
