package wire

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// ASTrans is the 2-octet AS a 4-octet speaker puts where a 2-octet field
// cannot hold its AS number (RFC 6793).
const ASTrans = 23456

const (
	optParamCapabilities = 2
	// RFC 9072: a Non-Ext OP Len and Non-Ext OP Type of 255 announce the
	// extended optional parameters format.
	optParamExtended = 255
)

// Open is an OPEN message.
type Open struct {
	Version  uint8 // 4; zero is encoded as 4
	MyAS     uint16
	HoldTime uint16
	ID       netip.Addr // BGP Identifier, an IPv4 address
	Caps     Capabilities
	// Extended is set when the optional parameters were (or must be)
	// encoded in the RFC 9072 format. Encoding switches to it by itself
	// when the parameters do not fit 255 bytes.
	Extended bool
}

// NewOpen builds an OPEN for a speaker in AS as, with the 4-octet AS
// capability announced and MyAS set to AS_TRANS when as needs four octets.
func NewOpen(as uint32, hold uint16, id netip.Addr, caps Capabilities) *Open {
	o := &Open{Version: 4, HoldTime: hold, ID: id, Caps: caps}
	o.Caps.HasAS4, o.Caps.AS4 = true, as
	o.MyAS = uint16(as)
	if as > 0xffff {
		o.MyAS = ASTrans
	}
	return o
}

// AS returns the speaker's AS number: the 4-octet capability's when present.
func (o *Open) AS() uint32 {
	if o.Caps.HasAS4 {
		return o.Caps.AS4
	}
	return uint32(o.MyAS)
}

// AppendOpen appends o as a complete OPEN message.
func AppendOpen(b []byte, o *Open) ([]byte, error) {
	if !o.ID.Is4() {
		return b, fmt.Errorf("bgp: cannot encode OPEN: BGP Identifier %v is not an IPv4 address", o.ID)
	}
	b, start := appendHeader(b, TypeOpen)
	v := o.Version
	if v == 0 {
		v = 4
	}
	b = append(b, v)
	b = binary.BigEndian.AppendUint16(b, o.MyAS)
	b = binary.BigEndian.AppendUint16(b, o.HoldTime)
	id := o.ID.As4()
	b = append(b, id[:]...)

	caps, err := o.Caps.appendTo(nil)
	if err != nil {
		return b[:start], err
	}
	params, fits := packCapabilities(caps)
	if o.Extended || !fits || len(params) > 255 {
		// RFC 9072: one capabilities parameter with a 2-byte length.
		if len(caps) > 0xffff-3 {
			return b[:start], ErrTooLong
		}
		params = append([]byte{optParamCapabilities, byte(len(caps) >> 8), byte(len(caps))}, caps...)
		b = append(b, 255, optParamExtended)
		b = binary.BigEndian.AppendUint16(b, uint16(len(params)))
	} else {
		b = append(b, byte(len(params)))
	}
	b = append(b, params...)
	return finishMessage(b, start, nil)
}

// DecodeOpen decodes the body of an OPEN message (after the header). It
// checks what RFC 4271 §6.2 lets a receiver check without configuration:
// version, hold time and BGP Identifier; the peer AS is the session's to check.
func DecodeOpen(body []byte) (*Open, error) {
	if len(body) < 10 {
		return nil, resetErr(ErrCodeHeader, ErrSubBadMessageLength, beUint16Bytes(uint16(HeaderLen+len(body))),
			"OPEN body of %d bytes is shorter than 10", len(body))
	}
	o := &Open{
		Version:  body[0],
		MyAS:     binary.BigEndian.Uint16(body[1:]),
		HoldTime: binary.BigEndian.Uint16(body[3:]),
		ID:       netip.AddrFrom4([4]byte(body[5:9])),
	}
	if o.Version != 4 {
		return nil, resetErr(ErrCodeOpen, ErrSubUnsupportedVersion, []byte{0, 4}, "BGP version %d, only 4 is supported", o.Version)
	}
	if o.HoldTime == 1 || o.HoldTime == 2 {
		return nil, resetErr(ErrCodeOpen, ErrSubUnacceptableHoldTime, nil, "hold time %d s (must be 0 or at least 3)", o.HoldTime)
	}
	if o.ID == netip.IPv4Unspecified() {
		return nil, resetErr(ErrCodeOpen, ErrSubBadBGPIdentifier, nil, "BGP Identifier 0.0.0.0")
	}
	plen, params := int(body[9]), body[10:]
	lenSize := 1
	if plen == 255 && len(params) > 0 && params[0] == optParamExtended {
		if len(params) < 3 {
			return nil, resetErr(ErrCodeOpen, 0, nil, "extended optional parameters length truncated")
		}
		o.Extended, lenSize = true, 2
		plen, params = int(binary.BigEndian.Uint16(params[1:])), params[3:]
	}
	if plen != len(params) {
		return nil, resetErr(ErrCodeOpen, 0, nil, "optional parameters length %d, but %d bytes follow", plen, len(params))
	}
	for len(params) > 0 {
		if len(params) < 1+lenSize {
			return nil, resetErr(ErrCodeOpen, 0, nil, "optional parameter header truncated")
		}
		t, l := params[0], int(params[1])
		if lenSize == 2 {
			l = int(binary.BigEndian.Uint16(params[1:]))
		}
		params = params[1+lenSize:]
		if l > len(params) {
			return nil, resetErr(ErrCodeOpen, 0, nil, "optional parameter %d of %d bytes runs past the message", t, l)
		}
		v := params[:l]
		params = params[l:]
		if t != optParamCapabilities {
			return nil, resetErr(ErrCodeOpen, ErrSubUnsupportedOptParam, nil, "unsupported optional parameter type %d", t)
		}
		if err := o.Caps.decode(v); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// packCapabilities puts the encoded capabilities into as few classic optional
// parameters as possible; a parameter holds whole capabilities only (RFC 5492
// §4). It reports false when one capability alone cannot fit a parameter.
func packCapabilities(caps []byte) (params []byte, fits bool) {
	for len(caps) > 0 {
		n := 0
		for n < len(caps) && n+2+int(caps[n+1]) <= 255 {
			n += 2 + int(caps[n+1])
		}
		if n == 0 {
			return nil, false
		}
		params = append(params, optParamCapabilities, byte(n))
		params = append(params, caps[:n]...)
		caps = caps[n:]
	}
	return params, true
}
