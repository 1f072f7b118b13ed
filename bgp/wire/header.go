package wire

import (
	"encoding/binary"
	"fmt"
)

// Message types (RFC 4271 §4.1, RFC 2918).
const (
	TypeOpen         uint8 = 1
	TypeUpdate       uint8 = 2
	TypeNotification uint8 = 3
	TypeKeepalive    uint8 = 4
	TypeRouteRefresh uint8 = 5
)

// Sizes of the fixed parts of a message.
const (
	HeaderLen = 19
	// MaxLen is the largest message without RFC 8654.
	MaxLen = 4096
	// MaxExtendedLen is the largest message once extended messages are
	// negotiated (RFC 8654); OPEN and KEEPALIVE stay within MaxLen.
	MaxExtendedLen = 65535

	minOpenLen         = HeaderLen + 10
	minUpdateLen       = HeaderLen + 4
	minNotificationLen = HeaderLen + 2
	routeRefreshLen    = HeaderLen + 4
)

// Header is the fixed 19-byte message header.
type Header struct {
	Length uint16
	Type   uint8
}

// MessageTypeString names a message type.
func MessageTypeString(t uint8) string {
	switch t {
	case TypeOpen:
		return "OPEN"
	case TypeUpdate:
		return "UPDATE"
	case TypeNotification:
		return "NOTIFICATION"
	case TypeKeepalive:
		return "KEEPALIVE"
	case TypeRouteRefresh:
		return "ROUTE-REFRESH"
	}
	return fmt.Sprintf("type(%d)", t)
}

// maxLenFor is the size limit for a message of type t. RFC 8654 §3: OPEN and
// KEEPALIVE never exceed 4096 octets, even after extended messages are
// negotiated.
func (o *Options) maxLenFor(t uint8) int {
	if o != nil && o.ExtendedMessage && t != TypeOpen && t != TypeKeepalive {
		return MaxExtendedLen
	}
	return MaxLen
}

// ParseHeader checks the first 19 bytes of b as a message header: marker,
// length within limits for its type, and a known type. The whole message is
// then b[:h.Length]. A problem is a session reset with the Message Header
// Error NOTIFICATION RFC 4271 §6.1 prescribes.
func ParseHeader(b []byte, o *Options) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, resetErr(ErrCodeHeader, ErrSubBadMessageLength, beUint16Bytes(uint16(len(b))),
			"message of %d bytes is shorter than the %d-byte header", len(b), HeaderLen)
	}
	if binary.LittleEndian.Uint64(b)&binary.LittleEndian.Uint64(b[8:]) != ^uint64(0) {
		return Header{}, resetErr(ErrCodeHeader, ErrSubConnNotSynchronized, nil, "marker is not all ones")
	}
	h := Header{Length: binary.BigEndian.Uint16(b[16:18]), Type: b[18]}
	var minLen int
	switch h.Type {
	case TypeOpen:
		minLen = minOpenLen
	case TypeUpdate:
		minLen = minUpdateLen
	case TypeNotification:
		minLen = minNotificationLen
	case TypeKeepalive:
		minLen = HeaderLen
	case TypeRouteRefresh:
		minLen = routeRefreshLen
	default:
		return Header{}, resetErr(ErrCodeHeader, ErrSubBadMessageType, []byte{h.Type}, "unknown message type %d", h.Type)
	}
	maxLen := o.maxLenFor(h.Type)
	if h.Type == TypeKeepalive {
		maxLen = HeaderLen
	}
	// ROUTE-REFRESH of a wrong length is its own error (RFC 7313 §5), found
	// by DecodeRouteRefresh, so the header accepts any sane length for it.
	if h.Type == TypeRouteRefresh {
		minLen = HeaderLen
	}
	if int(h.Length) < minLen || int(h.Length) > maxLen {
		return h, resetErr(ErrCodeHeader, ErrSubBadMessageLength, beUint16Bytes(h.Length),
			"%s length %d outside %d..%d", MessageTypeString(h.Type), h.Length, minLen, maxLen)
	}
	return h, nil
}

// AppendHeader appends a header whose length is patched later by
// finishMessage; it returns the buffer and the message's start offset.
func appendHeader(b []byte, t uint8) ([]byte, int) {
	start := len(b)
	b = append(b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, t)
	return b, start
}

// finishMessage writes the length of the message starting at start and
// checks it against the limit for its type.
func finishMessage(b []byte, start int, o *Options) ([]byte, error) {
	n := len(b) - start
	t := b[start+18]
	if n > o.maxLenFor(t) {
		return b[:start], fmt.Errorf("bgp: %s of %d bytes exceeds the %d-byte limit: %w",
			MessageTypeString(t), n, o.maxLenFor(t), ErrTooLong)
	}
	binary.BigEndian.PutUint16(b[start+16:], uint16(n))
	return b, nil
}

func beUint16Bytes(v uint16) []byte { return []byte{byte(v >> 8), byte(v)} }
