// Package bfd implements Bidirectional Forwarding Detection in asynchronous
// mode (RFC 5880) for single-hop (RFC 5881) and multihop (RFC 5883) IPv4 and
// IPv6 sessions. The codec (this file) and the session state machine
// (session.go) are pure; Manager (manager.go) owns the sockets and timers.
//
// Demand mode and the echo function are not implemented: bgplb never asks
// for them (it advertises a zero echo interval) and honours a peer's demand
// bit only as far as the RFC requires (it stops its periodic packets).
package bfd

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
)

// State is a session state (RFC 5880 §4.1, "Sta").
type State uint8

const (
	AdminDown State = 0
	Down      State = 1
	Init      State = 2
	Up        State = 3
)

func (s State) String() string {
	switch s {
	case AdminDown:
		return "AdminDown"
	case Down:
		return "Down"
	case Init:
		return "Init"
	case Up:
		return "Up"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Diag is a diagnostic code (RFC 5880 §4.1).
type Diag uint8

const (
	DiagNone                 Diag = 0
	DiagDetectionExpired     Diag = 1
	DiagEchoFailed           Diag = 2
	DiagNeighborDown         Diag = 3
	DiagForwardingPlaneReset Diag = 4
	DiagPathDown             Diag = 5
	DiagConcatenatedPathDown Diag = 6
	DiagAdminDown            Diag = 7
	DiagReverseConcatenated  Diag = 8
)

var diagNames = [...]string{"None", "DetectionTimeExpired", "EchoFailed", "NeighborDown",
	"ForwardingPlaneReset", "PathDown", "ConcatenatedPathDown", "AdminDown", "ReverseConcatenatedPathDown"}

func (d Diag) String() string {
	if int(d) < len(diagNames) {
		return diagNames[d]
	}
	return fmt.Sprintf("Diag(%d)", uint8(d))
}

// AuthType is the authentication type (RFC 5880 §4.1, "Auth Type").
type AuthType uint8

const (
	AuthNone              AuthType = 0
	AuthSimplePassword    AuthType = 1
	AuthKeyedMD5          AuthType = 2
	AuthMeticulousMD5     AuthType = 3
	AuthKeyedSHA1         AuthType = 4
	AuthMeticulousSHA1    AuthType = 5
	maxPasswordLen                 = 16
	md5AuthLen                     = 24
	sha1AuthLen                    = 28
	headerLen                      = 24
	maxPacketLen                   = headerLen + sha1AuthLen
	versionBits                    = 1 << 5
	flagPoll                       = 0x20
	flagFinal                      = 0x10
	flagCPI                        = 0x08
	flagAuth                       = 0x04
	flagDemand                     = 0x02
	flagMultipoint                 = 0x01
	stateShift                     = 6
	diagMask                       = 0x1f
	authSectionLenOff              = 1
	authSeqOff                     = 4
	authDigestOff                  = 8
	passwordOff                    = 3
	minPasswordSectionLen          = passwordOff + 1
	minAuthPacketLen               = headerLen + 2
	meticulousFlag        AuthType = 1 // the meticulous variant is the odd one of each pair
)

// Decode errors. They are sentinels so that decoding never allocates.
var (
	ErrShort       = errors.New("bfd: packet shorter than its header")
	ErrVersion     = errors.New("bfd: unsupported version")
	ErrLength      = errors.New("bfd: bad length field")
	ErrDetectMult  = errors.New("bfd: zero detect multiplier")
	ErrMultipoint  = errors.New("bfd: multipoint bit set")
	ErrMyDisc      = errors.New("bfd: zero my discriminator")
	ErrYourDisc    = errors.New("bfd: zero your discriminator outside Down/AdminDown")
	ErrAuthSection = errors.New("bfd: malformed authentication section")
	ErrPollFinal   = errors.New("bfd: poll and final both set")
)

// Packet is a BFD control packet (RFC 5880 §4.1). Intervals are in
// microseconds, as on the wire.
type Packet struct {
	Version    uint8
	Diag       Diag
	State      State
	Poll       bool
	Final      bool
	CPI        bool // control plane independent
	Demand     bool
	Multipoint bool
	DetectMult uint8
	// Length is the length field as decoded; Append computes it.
	Length            uint8
	MyDisc            uint32
	YourDisc          uint32
	DesiredMinTx      uint32
	RequiredMinRx     uint32
	RequiredMinEchoRx uint32
	// Auth is the authentication section; Auth.Type AuthNone means absent.
	Auth AuthSection
}

// AuthSection is the optional authentication section (RFC 5880 §4.2-4.4).
// Data holds the password (simple password) or the digest; DataLen says
// how many of its bytes are used.
type AuthSection struct {
	Type    AuthType
	KeyID   uint8
	Seq     uint32
	Data    [20]byte
	DataLen uint8
}

// Decode parses and validates b (one UDP payload) into p per RFC 5880
// §6.8.6, up to the checks that need the session. It does not allocate
// and never panics on any input. Authentication is only parsed here; see
// CheckAuth.
func (p *Packet) Decode(b []byte) error {
	if len(b) < headerLen {
		return ErrShort
	}
	*p = Packet{
		Version:           b[0] >> 5,
		Diag:              Diag(b[0] & diagMask),
		State:             State(b[1] >> stateShift),
		Poll:              b[1]&flagPoll != 0,
		Final:             b[1]&flagFinal != 0,
		CPI:               b[1]&flagCPI != 0,
		Demand:            b[1]&flagDemand != 0,
		Multipoint:        b[1]&flagMultipoint != 0,
		DetectMult:        b[2],
		Length:            b[3],
		MyDisc:            binary.BigEndian.Uint32(b[4:]),
		YourDisc:          binary.BigEndian.Uint32(b[8:]),
		DesiredMinTx:      binary.BigEndian.Uint32(b[12:]),
		RequiredMinRx:     binary.BigEndian.Uint32(b[16:]),
		RequiredMinEchoRx: binary.BigEndian.Uint32(b[20:]),
	}
	hasAuth := b[1]&flagAuth != 0
	switch {
	case p.Version != 1:
		return ErrVersion
	case int(p.Length) > len(b), p.Length < headerLen, hasAuth && p.Length < minAuthPacketLen:
		return ErrLength
	case p.DetectMult == 0:
		return ErrDetectMult
	case p.Multipoint:
		return ErrMultipoint
	case p.MyDisc == 0:
		return ErrMyDisc
	case p.YourDisc == 0 && p.State != Down && p.State != AdminDown:
		return ErrYourDisc
	case p.Poll && p.Final:
		return ErrPollFinal
	}
	if hasAuth {
		return p.Auth.decode(b[headerLen:p.Length])
	}
	return nil
}

func (a *AuthSection) decode(b []byte) error {
	if len(b) < 2 || int(b[authSectionLenOff]) > len(b) {
		return ErrAuthSection
	}
	a.Type = AuthType(b[0])
	n := int(b[authSectionLenOff])
	switch a.Type {
	case AuthSimplePassword:
		if n < minPasswordSectionLen || n > passwordOff+maxPasswordLen {
			return ErrAuthSection
		}
		a.KeyID = b[2]
		a.DataLen = uint8(copy(a.Data[:], b[passwordOff:n]))
	case AuthKeyedMD5, AuthMeticulousMD5, AuthKeyedSHA1, AuthMeticulousSHA1:
		if n != a.Type.sectionLen() {
			return ErrAuthSection
		}
		a.KeyID = b[2]
		a.Seq = binary.BigEndian.Uint32(b[authSeqOff:])
		a.DataLen = uint8(copy(a.Data[:], b[authDigestOff:n]))
	default:
		return ErrAuthSection
	}
	return nil
}

// sectionLen is the fixed auth section length of the digest types.
func (t AuthType) sectionLen() int {
	switch t {
	case AuthKeyedMD5, AuthMeticulousMD5:
		return md5AuthLen
	case AuthKeyedSHA1, AuthMeticulousSHA1:
		return sha1AuthLen
	}
	return 0
}

// Meticulous reports whether the sequence number must grow with every packet.
func (t AuthType) Meticulous() bool {
	return t.sectionLen() > 0 && t&meticulousFlag == meticulousFlag
}

// Auth is a session's authentication configuration. Key is the password
// (simple password, 1-16 bytes) or the secret (MD5: up to 16, SHA1: up to
// 20 bytes).
type Auth struct {
	Type  AuthType
	KeyID uint8
	Key   []byte
}

// Validate reports a configuration the RFC does not allow.
func (a Auth) Validate() error {
	limit := 0
	switch a.Type {
	case AuthNone:
		return nil
	case AuthSimplePassword:
		limit = maxPasswordLen
	case AuthKeyedMD5, AuthMeticulousMD5:
		limit = 16
	case AuthKeyedSHA1, AuthMeticulousSHA1:
		limit = 20
	default:
		return fmt.Errorf("bfd: unknown auth type %d", a.Type)
	}
	if len(a.Key) == 0 || len(a.Key) > limit {
		return fmt.Errorf("bfd: auth type %d needs a key of 1-%d bytes, have %d", a.Type, limit, len(a.Key))
	}
	return nil
}

// Append encodes p onto b, signing it with auth when auth.Type is not
// AuthNone (p.Auth.Seq is the sequence number to send). The length field
// and the A bit follow from auth.
func (p *Packet) Append(b []byte, auth Auth) []byte {
	start := len(b)
	b0 := byte(versionBits) | byte(p.Diag)&diagMask
	b1 := byte(p.State) << stateShift
	for _, f := range [...]struct {
		on  bool
		bit byte
	}{{p.Poll, flagPoll}, {p.Final, flagFinal}, {p.CPI, flagCPI}, {auth.Type != AuthNone, flagAuth},
		{p.Demand, flagDemand}, {p.Multipoint, flagMultipoint}} {
		if f.on {
			b1 |= f.bit
		}
	}
	b = append(b, b0, b1, p.DetectMult, headerLen)
	b = binary.BigEndian.AppendUint32(b, p.MyDisc)
	b = binary.BigEndian.AppendUint32(b, p.YourDisc)
	b = binary.BigEndian.AppendUint32(b, p.DesiredMinTx)
	b = binary.BigEndian.AppendUint32(b, p.RequiredMinRx)
	b = binary.BigEndian.AppendUint32(b, p.RequiredMinEchoRx)
	switch auth.Type {
	case AuthNone:
		return b
	case AuthSimplePassword:
		b = append(b, byte(auth.Type), byte(passwordOff+len(auth.Key)), auth.KeyID)
		b = append(b, auth.Key...)
	default:
		n := auth.Type.sectionLen()
		b = append(b, byte(auth.Type), byte(n), auth.KeyID, 0)
		b = binary.BigEndian.AppendUint32(b, p.Auth.Seq)
		b = append(b, make([]byte, n-authDigestOff)...)
	}
	pkt := b[start:]
	pkt[3] = byte(len(pkt))
	if auth.Type.sectionLen() > 0 {
		d := digest(pkt, auth)
		copy(pkt[headerLen+authDigestOff:], d[:])
	}
	return b
}

// digest computes the MD5 or SHA1 digest of pkt (a complete packet) with
// the key in place of the digest field, zero padded (RFC 5880 §6.7.3, §6.7.4).
func digest(pkt []byte, auth Auth) [20]byte {
	var buf [maxPacketLen]byte
	var out [20]byte
	n := copy(buf[:], pkt)
	field := buf[headerLen+authDigestOff : n]
	clear(field)
	copy(field, auth.Key)
	switch auth.Type {
	case AuthKeyedMD5, AuthMeticulousMD5:
		s := md5.Sum(buf[:n])
		copy(out[:], s[:])
	case AuthKeyedSHA1, AuthMeticulousSHA1:
		out = sha1.Sum(buf[:n])
	}
	return out
}

// CheckAuth verifies the authentication section of raw (the packet p was
// decoded from) against the configured auth: present iff configured, same
// type and key ID, and a matching password or digest. Sequence numbers are
// the session's business.
func CheckAuth(raw []byte, p *Packet, auth Auth) bool {
	if p.Auth.Type != auth.Type {
		return false
	}
	if auth.Type == AuthNone {
		return true
	}
	if p.Auth.KeyID != auth.KeyID {
		return false
	}
	if auth.Type == AuthSimplePassword {
		return subtle.ConstantTimeCompare(p.Auth.Data[:p.Auth.DataLen], auth.Key) == 1
	}
	n := int(p.Length)
	if n > len(raw) || n > maxPacketLen || n != headerLen+auth.Type.sectionLen() {
		return false
	}
	want := digest(raw[:n], auth)
	return subtle.ConstantTimeCompare(want[:p.Auth.DataLen], p.Auth.Data[:p.Auth.DataLen]) == 1
}
