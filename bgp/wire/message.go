package wire

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// Notification is a NOTIFICATION message.
type Notification struct {
	Code    uint8
	Subcode uint8
	Data    []byte
}

func (n *Notification) String() string {
	s := CodeString(n.Code, n.Subcode)
	if msg, ok := n.ShutdownMessage(); ok && msg != "" {
		s += fmt.Sprintf(": %q", msg)
	}
	return s
}

// MaxShutdownMessage is the longest shutdown communication, in bytes (RFC 9003).
const MaxShutdownMessage = 255

// NewShutdown builds a Cease NOTIFICATION with subcode sub (usually
// CeaseAdminShutdown or CeaseAdminReset) carrying msg as the RFC 9003
// shutdown communication, cut at a UTF-8 boundary to 255 bytes.
func NewShutdown(sub uint8, msg string) *Notification {
	if len(msg) > MaxShutdownMessage {
		msg = msg[:MaxShutdownMessage]
		for !utf8.ValidString(msg) {
			msg = msg[:len(msg)-1]
		}
	}
	data := make([]byte, 0, 1+len(msg))
	data = append(data, byte(len(msg)))
	data = append(data, msg...)
	return &Notification{Code: ErrCodeCease, Subcode: sub, Data: data}
}

// ShutdownMessage returns the RFC 9003 shutdown communication of a Cease /
// Administrative Shutdown or Reset. ok is false when there is none or it is
// malformed (wrong length or invalid UTF-8), in which case RFC 9003 §5 says to
// log the data as hex, not as text.
func (n *Notification) ShutdownMessage() (msg string, ok bool) {
	if n.Code != ErrCodeCease || (n.Subcode != CeaseAdminShutdown && n.Subcode != CeaseAdminReset) || len(n.Data) == 0 {
		return "", false
	}
	l := int(n.Data[0])
	if 1+l > len(n.Data) || !utf8.Valid(n.Data[1:1+l]) {
		return "", false
	}
	return string(n.Data[1 : 1+l]), true
}

// AppendNotification appends n as a complete message. Data that would push
// the message past the limit is cut: a NOTIFICATION must still go out.
func AppendNotification(b []byte, n *Notification, o *Options) []byte {
	b, start := appendHeader(b, TypeNotification)
	b = append(b, n.Code, n.Subcode)
	data := n.Data
	if max := o.maxLenFor(TypeNotification) - minNotificationLen; len(data) > max {
		data = data[:max]
	}
	b = append(b, data...)
	b, _ = finishMessage(b, start, o)
	return b
}

// DecodeNotification decodes the body of a NOTIFICATION. Data aliases body.
func DecodeNotification(body []byte) (*Notification, error) {
	if len(body) < 2 {
		return nil, resetErr(ErrCodeHeader, ErrSubBadMessageLength, beUint16Bytes(uint16(HeaderLen+len(body))),
			"NOTIFICATION body of %d bytes", len(body))
	}
	return &Notification{Code: body[0], Subcode: body[1], Data: body[2:]}, nil
}

// AppendKeepalive appends a KEEPALIVE message.
func AppendKeepalive(b []byte) []byte {
	b, start := appendHeader(b, TypeKeepalive)
	b, _ = finishMessage(b, start, nil)
	return b
}

// Route refresh subtypes (RFC 7313 §3).
const (
	RefreshNormal uint8 = 0
	RefreshBoRR   uint8 = 1 // beginning of route refresh
	RefreshEoRR   uint8 = 2 // end of route refresh
)

// RouteRefresh is a ROUTE-REFRESH message. A Subtype other than the three
// above must be ignored by the receiver (RFC 7313 §5).
type RouteRefresh struct {
	Family  Family
	Subtype uint8
}

// AppendRouteRefresh appends r as a complete message.
func AppendRouteRefresh(b []byte, r *RouteRefresh) []byte {
	b, start := appendHeader(b, TypeRouteRefresh)
	b = binary.BigEndian.AppendUint16(b, r.Family.AFI)
	b = append(b, r.Subtype, r.Family.SAFI)
	b, _ = finishMessage(b, start, nil)
	return b
}

// DecodeRouteRefresh decodes the body of a ROUTE-REFRESH. A body that is not
// 4 bytes is the RFC 7313 §5 error, whose data is the whole message.
func DecodeRouteRefresh(body []byte) (*RouteRefresh, error) {
	if len(body) != 4 {
		msg, start := appendHeader(nil, TypeRouteRefresh)
		msg = append(msg, body...)
		binary.BigEndian.PutUint16(msg[start+16:], uint16(len(msg)))
		return nil, resetErr(ErrCodeRouteRefresh, ErrSubInvalidRouteRefreshLength, msg,
			"ROUTE-REFRESH body of %d bytes, want 4", len(body))
	}
	return &RouteRefresh{Family: Family{binary.BigEndian.Uint16(body), body[3]}, Subtype: body[2]}, nil
}

// Keepalive is the KEEPALIVE message, which has no body.
type Keepalive struct{}

// Message is any decoded message: *Open, *Update, *Notification, Keepalive or
// *RouteRefresh.
type Message interface{ messageType() uint8 }

func (*Open) messageType() uint8         { return TypeOpen }
func (*Update) messageType() uint8       { return TypeUpdate }
func (*Notification) messageType() uint8 { return TypeNotification }
func (Keepalive) messageType() uint8     { return TypeKeepalive }
func (*RouteRefresh) messageType() uint8 { return TypeRouteRefresh }

// MessageType returns the type code of m.
func MessageType(m Message) uint8 { return m.messageType() }

// DecodeMessage decodes one whole message (header included) into a new value.
// It is the convenient entry point for tools and tests; a session's receive
// loop calls ParseHeader and then DecodeUpdate with a reused Update.
// For an UPDATE with a non-fatal malformation (attribute discard or
// treat-as-withdraw) it returns both the Update and the error.
func DecodeMessage(msg []byte, o *Options) (Message, error) {
	h, err := ParseHeader(msg, o)
	if err != nil {
		return nil, err
	}
	if int(h.Length) != len(msg) {
		return nil, resetErr(ErrCodeHeader, ErrSubBadMessageLength, beUint16Bytes(h.Length),
			"header says %d bytes, message has %d", h.Length, len(msg))
	}
	body := msg[HeaderLen:]
	switch h.Type {
	case TypeOpen:
		return nilIfErr(DecodeOpen(body))
	case TypeUpdate:
		u := new(Update)
		err := DecodeUpdate(u, body, o)
		if ActionOf(err) >= AFISAFIDisable {
			return nil, err
		}
		return u, err
	case TypeNotification:
		return nilIfErr(DecodeNotification(body))
	case TypeKeepalive:
		return Keepalive{}, nil
	default: // ParseHeader admits no other type
		return nilIfErr(DecodeRouteRefresh(body))
	}
}

func nilIfErr[T Message](m T, err error) (Message, error) {
	if err != nil {
		return nil, err
	}
	return m, nil
}
